"""The main job: find the best MNIST-like data available, convert it, benchmark, train.

Online it fetches MNIST; offline it uses Fashion-MNIST from the system if installed,
else the 2,000-digit sample embedded in the package. Then: TFRecords, our pipeline+loop
against the tutorial's feeding, three short trainings, one summary table.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import shutil
import sys
import time
import warnings
from pathlib import Path

import mnist_data
import mnist_data.sources.source
from mnist_data.errors import FetchError
from mnist_data_cli.quiet_start import start_tensorflow_quietly

REPO = Path(__file__).resolve().parent.parent


def pick_source() -> str:
    """MNIST if it is here or can be fetched, else Fashion-MNIST if installed, else the sample."""
    if mnist_data.sources.source.locate(
        "mnist", "train"
    ) is not None and mnist_data.sources.source.locate("mnist", "test"):
        return "mnist"
    try:
        mnist_data.fetch("mnist", progress=True)
        return "mnist"
    except FetchError as exc:
        print(f"MNIST unavailable ({str(exc).splitlines()[0]})")
    if mnist_data.sources.source.locate("fashion-mnist", "train") is not None:
        return "fashion-mnist"
    return "mnist-sample"


def convert(source: str, work: Path) -> str:
    """Raw TFRecord shards of `source` in work/tfrecord (resumed if already there)."""
    started = time.perf_counter()
    out = work / "tfrecord"
    mnist_data.to_tfrecord(source, out, progress=False)
    print(f"convert: TFRecords in {out} ({time.perf_counter() - started:.1f} s)")
    return str(out)


def tutorial_feed_images_per_second(source: str, batch_size: int, steps: int) -> float:
    """The tutorial's way: numpy `next_batch` in Python, one compiled step per call."""
    import tensorflow as tf

    from mnist_data.input_data import DataSet
    from pipelines.training.config import get_config
    from pipelines.training.step import create_state, one_step

    images, labels = mnist_data.load(source, "train")
    data = DataSet(images, labels.astype("int32"), reshape=False, seed=0)
    config = get_config("softmax", "modern", batch_size=batch_size)
    state = create_state(config, mnist_data.resolve_source(source), need_train=False)
    step = tf.function(functools.partial(one_step, state))
    step(*data.next_batch(batch_size))
    started = time.perf_counter()
    for _ in range(steps):
        loss, _ = step(*data.next_batch(batch_size))
    float(loss)
    return steps * batch_size / (time.perf_counter() - started)


def work_folder(work: Path, source: str) -> Path:
    """One folder per source, since a converter refuses to mix two sources in one OUT: a catalog
    name as is, a directory by its name and a digest of its absolute path."""
    if source in mnist_data.CATALOG:
        return work / source
    where = Path(source).resolve()
    return work / f"{where.name}-{hashlib.sha1(str(where).encode()).hexdigest()[:8]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source", help="dataset name or IDX directory (default: the best available)"
    )
    parser.add_argument("--quick", action="store_true", help="smaller, faster run")
    parser.add_argument(
        "--work",
        type=Path,
        default=REPO / "runs" / "main-job",
        help="directory for converted data and runs (default: runs/main-job in the repository)",
    )
    args = parser.parse_args()
    try:
        run(args.source, args.work, args.quick)
    except mnist_data.MnistDataError as exc:
        print(f"main job: error: {exc}", file=sys.stderr)
        return 1
    return 0


def run(source: str | None, work: Path, quick: bool) -> None:
    """Every stage of the main job, printing as it goes and a summary table at the end."""
    source = source or pick_source()
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        splits = mnist_data.load_splits(source)
    print(f"data: {source} (decoded in {time.perf_counter() - started:.3f} s)")
    for split, (images, labels) in splits.items():
        print(
            f"  {split:5s} {images.shape[0]:6d} images {images.shape[1]}x{images.shape[2]}, "
            f"{len(set(labels.tolist()))} classes"
        )

    start_tensorflow_quietly()
    from pipelines.input.bench import bench_pipeline, format_report
    from pipelines.training.bench import bench_train
    from pipelines.training.config import get_config
    from pipelines.training.train import train

    work = work_folder(work, source)
    data = convert(source, work)
    pipeline = bench_pipeline(
        data, "tfrecord", 256, epochs=2, compare=not quick, repeat=1 if quick else 3
    )
    print(format_report(pipeline))
    steps = 100 if quick else 300
    bench = bench_train("softmax", data, batch_size=128, steps=steps, repeat=1 if quick else 2)
    tutorial = tutorial_feed_images_per_second(source, 128, steps)
    print(
        f"bench softmax b128: pipeline {bench['pipeline_images_per_second']:,.0f} img/s, "
        f"tutorial feed {tutorial:,.0f} ({bench['pipeline_images_per_second'] / tutorial:.1f}x), "
        f"keras fit {bench['keras_fit_images_per_second']:,.0f}, "
        f"synthetic {bench['synthetic_images_per_second']:,.0f}"
    )
    rows = []
    for model in ("softmax", "mlp", "lenet"):
        epochs = 1 if quick else {"softmax": 3, "mlp": 3, "lenet": 2}[model]
        run_dir = work / "runs" / model
        shutil.rmtree(run_dir, ignore_errors=True)  # this invocation's run, not a resumed older one
        rows.append(
            (
                train(get_config(model, "modern", epochs=epochs), data, run_dir, progress=False),
                run_dir,
            )
        )

    ours = pipeline["results"][-1]
    print(f"\nsummary: data {source}, TFRecords {data}")
    print(
        f"  pipeline from TFRecords: {ours['examples_per_second_first_epoch']:,} ex/s epoch 1, "
        f"{ours['examples_per_second_later_epochs']:,} ex/s later epochs"
    )
    print(
        f"  {'model':8s} {'epochs':>6s} {'test acc':>9s} {'seconds':>8s} {'images/s':>10s}  "
        "device, plots"
    )
    for r, run_dir in rows:
        print(
            f"  {r['model']:8s} {r['epochs']:6d} {r['test_accuracy']:9.4f} "
            f"{r['train_seconds']:8.1f} {r['examples_per_second']:10,.0f}  {r['device']}, "
            f"{run_dir}/curves.png {run_dir}/predictions.png"
        )
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
