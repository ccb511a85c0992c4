"""`mnist-data bench pipeline`: input throughput with a consumer that does no model work.

Epoch 1 is reported apart from the rest: it includes building the pipeline and reading and
parsing the source; later epochs show the cache. Figures are medians of repeated runs.
`compare=True` also runs, in the same process and on the same data, the pipelines users have
today and a ceiling.
"""

from __future__ import annotations

import gc
import resource
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import tensorflow as tf

import mnist_data
from mnist_data.checks import is_whole
from mnist_data.errors import DatasetError
from pipelines.input.dataset import detect_format, make_dataset, read_arrays
from pipelines.input.options import PipelineOptions, tf_options
from pipelines.input.readers import split_shards


def _epochs(dataset: tf.data.Dataset, batches: int, epochs: int):
    """One iterator over all epochs, handed out epoch by epoch."""
    iterator = iter(dataset)
    for _ in range(epochs):
        yield (next(iterator) for _ in range(batches))


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
        return _epochs(dataset, -(-count // batch_size), epochs)

    return build


def tutorial(images: np.ndarray, labels: np.ndarray):
    """The classic: per-example cast and one-hot, a 1024-element shuffle, batch 64, no prefetch."""

    def per_example(image, label):
        return tf.cast(image, tf.float32) / 255.0, tf.one_hot(label, 10)

    def build(epochs: int):
        dataset = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int64)))
        dataset = dataset.map(per_example).shuffle(1024).batch(64)
        return (dataset for _ in range(epochs))

    return build


def tfds_like(tfrecord_dir: Path, batch_size: int):
    """What tfds does by default: interleave shards, parse_single_example per record, batch."""
    manifest, files = split_shards(tfrecord_dir, "train")
    compression = "GZIP" if manifest.get("compression") == "gzip" else ""
    png = manifest.get("encoding") == "png"
    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
    }

    def parse(record):
        parsed = tf.io.parse_single_example(record, spec)
        if png:
            image = tf.io.decode_png(parsed["image"], channels=1)
        else:
            image = tf.reshape(tf.io.decode_raw(parsed["image"], tf.uint8), [28, 28, 1])
        return tf.cast(image, tf.float32) / 255.0, parsed["label"]

    def build(epochs: int):
        for _ in range(epochs):
            dataset = tf.data.Dataset.from_tensor_slices(files).interleave(
                lambda f: tf.data.TFRecordDataset(f, compression_type=compression),
                cycle_length=16,
                num_parallel_calls=tf.data.AUTOTUNE,
            )
            dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
            yield dataset.prefetch(tf.data.AUTOTUNE)

    return build


def ceiling(count: int, batch_size: int):
    """Iterating batches that already exist: the cost of tf.data and the loop alone (one
    iterator over all epochs, with our options, as ours has)."""
    batch = (tf.zeros((batch_size, 28, 28, 1)), tf.zeros(batch_size, tf.int32))

    def build(epochs: int):
        full, rest = divmod(count, batch_size)  # an epoch's batches, the last one short as ours
        epoch = tf.data.Dataset.from_tensors(batch).repeat(full)
        if rest:
            epoch = epoch.concatenate(tf.data.Dataset.from_tensors(tuple(t[:rest] for t in batch)))
        dataset = epoch.repeat(epochs).prefetch(tf.data.AUTOTUNE)
        return _epochs(
            dataset.with_options(tf_options(PipelineOptions())), full + bool(rest), epochs
        )

    return build


def _time_epochs(build, epochs: int) -> tuple[list[float], list[int]]:
    """Seconds and examples of each epoch; the first epoch's time includes building."""
    seconds, examples = [], []
    gc.collect()  # untimed: the previous run's garbage is not this run's cost
    started = time.perf_counter()
    for epoch in build(epochs):
        examples.append(sum(int(labels.shape[0]) for _, labels in epoch))
        seconds.append(time.perf_counter() - started)
        started += seconds[-1]
    return seconds, examples


def _result(name: str, batch_size: int, runs: list[list[float]], examples: list[int]) -> dict:
    first = statistics.median(examples[0] / seconds[0] for seconds in runs)
    later = [sum(examples[1:]) / sum(seconds[1:]) for seconds in runs if len(seconds) > 1]
    return {
        "name": name,
        "batch_size": batch_size,
        "epoch_seconds": runs,
        "epoch_examples": examples,
        "examples_per_second_first_epoch": round(first),
        "examples_per_second_later_epochs": round(statistics.median(later)) if later else None,
        "batches_per_second_first_epoch": round(first / batch_size, 1),
    }


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
        builds = {}
        if compare:
            tfrecords = Path(source) if fmt == "tfrecord" else Path(scratch) / "tfrecord"
            if fmt == "png":  # as IDX files, which to_tfrecord reads
                source_idx = Path(scratch)
                mnist_data.write_idx(
                    source_idx / "train-images-idx3-ubyte.gz", images, compresslevel=1
                )
                mnist_data.write_idx(
                    source_idx / "train-labels-idx1-ubyte.gz", labels.astype(np.uint8)
                )
            if fmt != "tfrecord":
                idx = source_idx if fmt == "png" else source
                mnist_data.to_tfrecord(idx, tfrecords, splits=["train"], progress=False)
            builds = {
                ("tutorial (map per example, shuffle 1024, batch 64)", 64): tutorial(
                    images, labels
                ),
                ("tfds-like (parse_single_example per record)", batch_size): tfds_like(
                    tfrecords, batch_size
                ),
                ("ceiling (pre-made batches)", batch_size): ceiling(len(labels), batch_size),
            }
        name = f"ours ({fmt}{', service' if service else ''})"
        builds[name, batch_size] = ours(
            source, fmt, batch_size, service, options, len(labels), service_timeout
        )
        runs, examples = {key: [] for key in builds}, {}
        for _ in range(repeat):
            for key, build in builds.items():
                seconds, examples[key] = _time_epochs(build, epochs)
                runs[key].append(seconds)
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
        "results": [_result(*key, runs[key], examples[key]) for key in builds],
    }


def format_report(report: dict) -> str:
    """A table; with baselines, our ratios to each of them."""
    *baselines, ours_row = report["results"]
    lines = [
        f"bench pipeline: {report['source']} ({report['format']}), {report['examples']} examples, "
        f"batch {report['batch_size']}, {report['epochs']} epochs, median of {report['repeat']} "
        f"runs, peak RSS {report['peak_rss_mb']} MB",
        f"{'pipeline':52} {'epoch 1 ex/s':>13} {'later ex/s':>12} {'ours/this (ep1, later)':>24}",
    ]
    ours_first, ours_later = (
        ours_row["examples_per_second_first_epoch"],
        ours_row["examples_per_second_later_epochs"],
    )
    for row in report["results"]:
        first, later = (
            row["examples_per_second_first_epoch"],
            row["examples_per_second_later_epochs"],
        )
        ratio = ""
        if row is not ours_row:
            later_ratio = f"{ours_later / later:8.2f}x" if later and ours_later else f"{'-':>9s}"
            ratio = f"{ours_first / first:8.2f}x {later_ratio}"
        later_text = f"{later:12,d}" if later else f"{'-':>12s}"  # one epoch has no later ones
        lines.append(f"{row['name']:52s} {first:13,d} {later_text} {ratio:>24s}")
    lines.append("options: " + ", ".join(f"{k}={v}" for k, v in report["options"].items()))
    return "\n".join(lines)
