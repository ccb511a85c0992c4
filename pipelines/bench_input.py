"""`mnist-data bench pipeline`: input throughput with a consumer that does no model work.

Epoch 1 is reported apart from the rest: it includes building the pipeline and reading
and parsing the source; later epochs show the cache. Figures are medians of repeated runs.
`compare=True` also runs, in the same process and on the same data, the pipelines users have
today and a ceiling.
"""

from __future__ import annotations

import gc
import resource
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

import mnist_data
from mnist_data.checks import is_whole
from mnist_data.errors import DatasetError
from pipelines.input import (
    PipelineOptions,
    detect_format,
    make_dataset,
    read_arrays,
    read_manifest,
    tf_options,
)


@dataclass
class Measurement:
    """Seconds and examples per epoch of one pipeline, for each repetition of its run."""

    name: str
    batch_size: int
    runs: list[list[float]] = field(default_factory=list)
    epoch_examples: list[int] = field(default_factory=list)

    @property
    def first_epoch(self) -> float:
        """Median over the runs of epoch 1's examples/s (it includes building the pipeline)."""
        return statistics.median(self.epoch_examples[0] / seconds[0] for seconds in self.runs)

    @property
    def later_epochs(self) -> float | None:
        if len(self.epoch_examples) < 2:
            return None
        return statistics.median(
            sum(self.epoch_examples[1:]) / sum(seconds[1:]) for seconds in self.runs
        )

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "batch_size": self.batch_size,
            "epoch_seconds": self.runs,
            "epoch_examples": self.epoch_examples,
            "examples_per_second_first_epoch": round(self.first_epoch),
            "examples_per_second_later_epochs": round(self.later_epochs)
            if self.later_epochs
            else None,
            "batches_per_second_first_epoch": round(self.first_epoch / self.batch_size, 1),
        }


def time_epochs(measurement: Measurement, build, epochs: int) -> None:
    """Build the pipeline lazily, drain it epoch by epoch, and add the run to `measurement`.

    The first epoch's time includes building the pipeline."""
    seconds, examples = [], []
    gc.collect()  # untimed: the previous run's garbage is not this run's cost
    started = time.perf_counter()
    for epoch_dataset in build(epochs):
        count = 0
        for _, labels in epoch_dataset:
            count += int(labels.shape[0])
        now = time.perf_counter()
        seconds.append(now - started)
        examples.append(count)
        started = now
    measurement.runs.append(seconds)
    measurement.epoch_examples = examples


def _split_epochs(dataset: tf.data.Dataset, batches_per_epoch: int, epochs: int):
    iterator = iter(dataset)
    for _ in range(epochs):
        yield (next(iterator) for _ in range(batches_per_epoch))


def ours(
    source: str,
    fmt: str,
    batch_size: int,
    service: str | None,
    options: PipelineOptions,
    count: int,
    service_timeout: float | None = 60.0,
):
    def build(epochs: int):
        dataset = make_dataset(
            source,
            "train",
            batch_size,
            format=fmt,
            epochs=epochs,
            seed=0,
            service=service,
            service_timeout=service_timeout,
            options=options,
        )
        return _split_epochs(dataset, -(-count // batch_size), epochs)

    return build


def tutorial(images: np.ndarray, labels: np.ndarray):
    """The classic: per-example cast and one-hot, a 1024-element shuffle, batch 64, no prefetch."""

    def per_example(image, label):
        return tf.cast(image, tf.float32) / 255.0, tf.one_hot(label, 10)

    def build(epochs: int):
        dataset = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int64))).map(
            per_example
        )
        dataset = dataset.shuffle(1024).batch(64)
        return (dataset for _ in range(epochs))

    return build


def tfds_like(tfrecord_dir: Path, batch_size: int):
    """What tfds does by default: interleave shards, parse_single_example per record, batch."""
    manifest = read_manifest(tfrecord_dir)
    files = [str(tfrecord_dir / s["file"]) for s in manifest["splits"]["train"]["shards"]]
    compression = "GZIP" if manifest.get("compression") == "gzip" else ""
    png = manifest.get("encoding") == "png"
    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
    }

    def parse(record):
        parsed = tf.io.parse_single_example(record, spec)
        image = (
            tf.io.decode_png(parsed["image"], channels=1)
            if png
            else tf.reshape(tf.io.decode_raw(parsed["image"], tf.uint8), [28, 28, 1])
        )
        return tf.cast(image, tf.float32) / 255.0, parsed["label"]

    def build(epochs: int):
        for _ in range(epochs):
            dataset = tf.data.Dataset.from_tensor_slices(files).interleave(
                lambda f: tf.data.TFRecordDataset(f, compression_type=compression),
                cycle_length=16,
                num_parallel_calls=tf.data.AUTOTUNE,
            )
            yield (
                dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
                .batch(batch_size)
                .prefetch(tf.data.AUTOTUNE)
            )

    return build


def ceiling(images: np.ndarray, labels: np.ndarray, batch_size: int):
    """Iterating batches that already exist: the cost of tf.data and the loop alone (one
    iterator over all epochs, with our options, as ours has)."""
    batch = (
        tf.constant(np.zeros((batch_size, 28, 28, 1), np.float32)),
        tf.constant(np.zeros(batch_size, np.int32)),
    )

    def build(epochs: int):
        full, rest = divmod(
            len(labels), batch_size
        )  # an epoch's batches, the last one short as ours is
        epoch = tf.data.Dataset.from_tensors(batch).repeat(full)
        if rest:
            epoch = epoch.concatenate(
                tf.data.Dataset.from_tensors(tuple(part[:rest] for part in batch))
            )
        dataset = epoch.repeat(epochs).prefetch(tf.data.AUTOTUNE)
        return _split_epochs(
            dataset.with_options(tf_options(PipelineOptions())), full + bool(rest), epochs
        )

    return build


def _as_idx(source: str, fmt: str, images: np.ndarray, labels: np.ndarray, scratch: Path) -> str:
    """`source` itself if it is IDX, else its train split written as IDX files in `scratch`, so
    that the TFRecord baselines read the same examples as ours."""
    if fmt == "idx":
        return source
    (scratch / "idx").mkdir()
    mnist_data.write_idx(scratch / "idx" / "train-images-idx3-ubyte.gz", images, compresslevel=1)
    mnist_data.write_idx(
        scratch / "idx" / "train-labels-idx1-ubyte.gz", labels.astype(np.uint8), compresslevel=1
    )
    return str(scratch / "idx")


def bench_pipeline(
    source: str = "fashion-mnist",
    fmt: str | None = None,
    batch_size: int = 256,
    epochs: int = 3,
    compare: bool = False,
    service: str | None = None,
    options: PipelineOptions | None = None,
    repeat: int = 3,
    service_timeout: float | None = 60.0,
) -> dict:
    """Measure our pipeline (and with `compare` the baselines and the ceiling); return a report.

    Each pipeline runs `repeat` times, taking turns with the others, and the median run counts:
    the machines this runs on are shared and noisy.
    """
    for name, value in (("batch_size", batch_size), ("epochs", epochs), ("repeat", repeat)):
        if not is_whole(value, 1):
            raise DatasetError(f"{name} must be a whole number >= 1, got {value!r}")
    options = options or PipelineOptions()
    fmt = fmt or detect_format(source)
    images, labels = read_arrays(source, "train", format=fmt)
    if not len(labels):
        raise DatasetError(f"{source}: the train split holds no examples to measure")
    with tempfile.TemporaryDirectory() as scratch:
        pipelines: list[tuple[Measurement, object]] = []
        if compare:
            tfrecords = Path(source) if fmt == "tfrecord" else Path(scratch) / "tfrecord"
            if fmt != "tfrecord":
                mnist_data.to_tfrecord(
                    _as_idx(source, fmt, images, labels, Path(scratch)),
                    tfrecords,
                    splits=["train"],
                    progress=False,
                )
            pipelines += [
                (
                    Measurement("tutorial (map per example, shuffle 1024, batch 64)", 64),
                    tutorial(images, labels),
                ),
                (
                    Measurement("tfds-like (parse_single_example per record)", batch_size),
                    tfds_like(tfrecords, batch_size),
                ),
                (
                    Measurement("ceiling (pre-made batches)", batch_size),
                    ceiling(images, labels, batch_size),
                ),
            ]
        pipelines.append(
            (
                Measurement(f"ours ({fmt}{', service' if service else ''})", batch_size),
                ours(source, fmt, batch_size, service, options, len(labels), service_timeout),
            )
        )
        for _ in range(repeat):
            for measurement, build in pipelines:
                time_epochs(measurement, build, epochs)
    return {
        "source": source,
        "format": fmt,
        "batch_size": batch_size,
        "epochs": epochs,
        "repeat": repeat,
        "examples": len(labels),
        "options": asdict(options),
        "service": service,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "results": [measurement.as_dict() for measurement, _ in pipelines],
    }


def format_report(report: dict) -> str:
    """A table; with baselines, our ratios to each of them."""
    rows = report["results"]
    ours_row = rows[-1]
    lines = [
        f"bench pipeline: {report['source']} ({report['format']}), {report['examples']} examples, "
        f"batch {report['batch_size']}, {report['epochs']} epochs, "
        f"median of {report['repeat']} runs, "
        f"peak RSS {report['peak_rss_mb']} MB",
        f"{'pipeline':52s} {'epoch 1 ex/s':>13s} {'later ex/s':>12s} "
        f"{'ours/this (ep1, later)':>24s}",
    ]
    for row in rows:
        first, later = (
            row["examples_per_second_first_epoch"],
            row["examples_per_second_later_epochs"],
        )
        ratio = ""
        if row is not ours_row:
            ours_later = ours_row["examples_per_second_later_epochs"]
            later_ratio = f"{ours_later / later:8.2f}x" if later and ours_later else f"{'-':>9s}"
            ratio = f"{ours_row['examples_per_second_first_epoch'] / first:8.2f}x {later_ratio}"
        later_text = f"{later:12,d}" if later else f"{'-':>12s}"  # one epoch has no later ones
        lines.append(f"{row['name']:52s} {first:13,d} {later_text} {ratio:>24s}")
    lines.append("options: " + ", ".join(f"{k}={v}" for k, v in report["options"].items()))
    return "\n".join(lines)
