"""Benchmark: converting a dataset to PNG trees and TFRecord shards, ours against the usual ways.

Times, in one run on the same arrays, each writing into its own folder under DIR (default
/dev/shm, so the disk is not what is measured); the ratio is ours / the baseline of the
same kind from the same run:
  png  tutorial        one process, `Image.fromarray(x).save(path)` per image, class folders
  png  ours            mnist_data.to_png (direct PNG encoder, worker threads, atomic files)
  tfr  TFRecordWriter  TF's old convert_to_records: one tf.train.Example of raw bytes per image
  tfr  tfds-like       per image: PNG encode + tf.train.Example + TFRecordWriter
  tfr  ours raw/png    mnist_data.to_tfrecord(encoding=...) (bulk wire bytes, worker threads)
Baselines read the decoded arrays from memory; ours are timed as a whole call (load from the
decoded cache, source hashing, manifest included), so the comparison does not favour ours.
Ours run first, before TensorFlow is imported unless --tensorflow-first asks for it (as a
script that imports TensorFlow, then converts); the TensorFlow baselines' one-time import is
not timed. --only png|tfrecord runs the methods of one kind.
Usage: .venv/bin/python tools/bench_convert.py [SOURCE] [--dir DIR] [--workers N]
       [--tensorflow-first] [--only png|tfrecord] [--json PATH]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mnist_data import load_splits, to_png, to_tfrecord  # noqa: E402
from mnist_data.fs import write_bytes_atomic  # noqa: E402


def png_tutorial(arrays: dict, out: Path) -> None:
    from PIL import Image

    for split, (images, labels) in arrays.items():
        for index, (image, label) in enumerate(zip(images, labels)):
            folder = out / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{index:05d}.png")


def tfrecord_writer_loop(arrays: dict, out: Path, encode_png: bool) -> None:
    import io

    import tensorflow as tf
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    for split, (images, labels) in arrays.items():
        with tf.io.TFRecordWriter(str(out / f"{split}.tfrecord")) as writer:
            for index, (image, label) in enumerate(zip(images, labels)):
                if encode_png:
                    buffer = io.BytesIO()
                    Image.fromarray(image).save(buffer, format="PNG")
                    payload = buffer.getvalue()
                else:
                    payload = image.tobytes()
                example = tf.train.Example(
                    features=tf.train.Features(
                        feature={
                            "image": tf.train.Feature(
                                bytes_list=tf.train.BytesList(value=[payload])
                            ),
                            "label": tf.train.Feature(
                                int64_list=tf.train.Int64List(value=[int(label)])
                            ),
                            "index": tf.train.Feature(int64_list=tf.train.Int64List(value=[index])),
                        }
                    )
                )
                writer.write(example.SerializeToString())


def timed(function, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    function()
    seconds = time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default="fashion-mnist")
    parser.add_argument("--dir", type=Path, default=Path("/dev/shm"))
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--tensorflow-first", action="store_true")
    parser.add_argument("--only", choices=("png", "tfrecord"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.tensorflow_first:
        import tensorflow  # noqa: F401

    arrays = load_splits(args.source, ("train", "test"))
    count = sum(len(labels) for _, labels in arrays.values())
    quiet = {"workers": args.workers, "progress": False}
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-convert-") as root:
        work = Path(root)
        methods = [  # kind, name, baseline?, the call writing into its output folder
            ("png", "tutorial (PIL save per image)", True, lambda o: png_tutorial(arrays, o)),
            ("png", "ours: to_png", False, lambda o: to_png(args.source, o, **quiet)),
            (
                "tfrecord raw",
                "TFRecordWriter loop (convert_to_records)",
                True,
                lambda o: tfrecord_writer_loop(arrays, o, False),
            ),
            (
                "tfrecord raw",
                "ours: to_tfrecord raw",
                False,
                lambda o: to_tfrecord(args.source, o, **quiet),
            ),
            (
                "tfrecord png",
                "tfds-like (PNG + Example per image)",
                True,
                lambda o: tfrecord_writer_loop(arrays, o, True),
            ),
            (
                "tfrecord png",
                "ours: to_tfrecord png",
                False,
                lambda o: to_tfrecord(args.source, o, encoding="png", **quiet),
            ),
        ]
        rows = [
            (kind, name, baseline, functools.partial(write, work / str(i)), work / str(i))
            for i, (kind, name, baseline, write) in enumerate(methods)
        ]
        import contextlib
        import io

        rows = [rows[i] for i in (0, 1, 3, 5, 2, 4) if rows[i][0].startswith(args.only or "")]
        timings = []
        for kind, name, is_baseline, function, out in rows:
            if is_baseline and kind.startswith("tfrecord"):
                import tensorflow  # noqa: F401  imported once, outside the timed call
            with contextlib.redirect_stdout(io.StringIO()):
                timings.append((kind, name, is_baseline, timed(function, out)))
    tfds = next((s for k, n, b, s in timings if n.startswith("tfds")), float("nan"))
    print(
        f"{args.source}: {count} images, into {args.dir}, {os.cpu_count()} cores, "
        f"{platform.processor() or platform.machine()}"
    )
    results = []
    for kind, name, is_baseline, seconds in sorted(timings, key=lambda t: (t[0], not t[2])):
        baseline = next(s for k, n, b, s in timings if k == kind and b)
        ratio = (
            ""
            if is_baseline
            else f"  {seconds / baseline:.3f}x baseline, {seconds / tfds:.3f}x tfds-like"
        )
        print(f"  {kind:13s} {name:42s} {seconds:7.2f} s {count / seconds:9,.0f} img/s{ratio}")
        results.append({"kind": kind, "method": name, "baseline": is_baseline, "seconds": seconds})
    if args.json:
        write_bytes_atomic(
            args.json,
            json.dumps(
                {"source": args.source, "images": count, "results": results}, indent=2
            ).encode(),
        )


if __name__ == "__main__":
    main()
