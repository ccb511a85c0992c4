"""`mnist-data bench pipeline`: input throughput with a consumer that does no model work; epoch 1
(building, reading) apart from later ones; with `compare`, common pipelines and a ceiling too."""

from __future__ import annotations

import gc
import os
import resource
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import tensorflow as tf

import mnist_data
from mnist_data.checks import check_whole
from mnist_data.errors import DatasetError
from mnist_data.sources.source import Source
from pipelines.input.dataset import make_dataset
from pipelines.input.options import PipelineOptions, tf_options
from pipelines.input.readers import read_arrays, shard_paths, source_for


def _epochs(dataset: tf.data.Dataset, batches: int, epochs: int):
    """One iterator over all epochs, handed out epoch by epoch."""
    iterator = iter(dataset)
    for _ in range(epochs):
        yield (next(iterator) for _ in range(batches))


def ours(source: Source, batch_size: int, count: int, **settings):
    """make_dataset over a train split of `count` examples, with `settings` (service, ...)."""

    def build(epochs: int):
        dataset = make_dataset(source, "train", batch_size, epochs=epochs, seed=0, **settings)
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


def tfds_like(tfrecords: Source, batch_size: int):
    """What tfds does by default: interleave shards, parse_single_example per record, batch."""
    files = shard_paths(tfrecords, "train")
    compression = "GZIP" if tfrecords.manifest.get("compression") == "gzip" else ""
    png = tfrecords.manifest.get("encoding") == "png"
    feature = tf.io.FixedLenFeature
    spec = {"image": feature([], tf.string), "label": feature([], tf.int64)}

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
    """Batches that already exist: the cost of tf.data and the loop alone."""
    batch = (tf.zeros((batch_size, 28, 28, 1)), tf.zeros(batch_size, tf.int32))
    options = tf_options(PipelineOptions())  # ours

    def build(epochs: int):
        full, rest = divmod(count, batch_size)  # an epoch's batches, the last one short as ours
        epoch = tf.data.Dataset.from_tensors(batch).repeat(full)
        if rest:
            epoch = epoch.concatenate(tf.data.Dataset.from_tensors(tuple(t[:rest] for t in batch)))
        dataset = epoch.repeat(epochs).prefetch(tf.data.AUTOTUNE).with_options(options)
        return _epochs(dataset, full + bool(rest), epochs)

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


def _result(name: str, batch_size: int, runs: list[tuple[list[float], list[int]]]) -> dict:
    examples = runs[-1][1]
    first = statistics.median(examples[0] / seconds[0] for seconds, _ in runs)
    later = [sum(examples[1:]) / sum(seconds[1:]) for seconds, _ in runs if len(seconds) > 1]
    return {
        "name": name,
        "batch_size": batch_size,
        "epoch_seconds": [seconds for seconds, _ in runs],
        "epoch_examples": examples,
        "examples_per_second_first_epoch": round(first),
        "examples_per_second_later_epochs": round(statistics.median(later)) if later else None,
        "batches_per_second_first_epoch": round(first / batch_size, 1),
    }


def _as_tfrecords(source: Source, images, labels, scratch: Path) -> Source:
    """The train split as TFRecords for the tfds-like baseline: the source, or a conversion."""
    if source.kind == "tfrecord":
        return source
    (scratch / "idx").mkdir()
    mnist_data.write_idx(scratch / "idx/train-images-idx3-ubyte.gz", images, compresslevel=1)
    mnist_data.write_idx(scratch / "idx/train-labels-idx1-ubyte.gz", labels.astype(np.uint8))
    mnist_data.to_tfrecord(scratch / "idx", scratch / "tfr", splits=["train"], progress=False)
    return mnist_data.resolve_source(scratch / "tfr")


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
    """Throughput of ours (and baselines): median of `repeat` turns, as machines are noisy."""
    for name, value in (("batch_size", batch_size), ("epochs", epochs), ("repeat", repeat)):
        check_whole(name, value, 1, error=DatasetError)
    options = options or PipelineOptions()
    source = source_for(source, "train", fmt)
    images, labels = read_arrays(source, "train")
    if not len(labels):
        raise DatasetError(f"{source.path}: the train split holds no examples to measure")
    settings = dict(service=service, service_timeout=service_timeout, options=options)
    name = f"ours ({source.kind}{', service' if service else ''})"
    builds = [(name, batch_size, ours(source, batch_size, len(labels), **settings))]
    with tempfile.TemporaryDirectory() as scratch:
        if compare:
            tfrecords = _as_tfrecords(source, images, labels, Path(scratch))
            builds[:0] = [
                ("tutorial (map per example, shuffle 1024)", 64, tutorial(images, labels)),
                ("tfds-like (parse per record)", batch_size, tfds_like(tfrecords, batch_size)),
                ("ceiling (pre-made batches)", batch_size, ceiling(len(labels), batch_size)),
            ]
        runs = [[] for _ in builds]
        for _ in range(repeat):
            for (_, _, build), run in zip(builds, runs):
                run.append(_time_epochs(build, epochs))
    return {
        "source": os.fspath(source),
        "format": source.kind,
        "batch_size": batch_size,
        "epochs": epochs,
        "repeat": repeat,
        "examples": len(labels),
        "options": asdict(options),
        "service": service,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "results": [_result(name, size, run) for (name, size, _), run in zip(builds, runs)],
    }


def format_report(report: dict) -> str:
    """A table; with baselines, our ratios to each of them."""
    rows = report["results"]
    rates = [
        (r["examples_per_second_first_epoch"], r["examples_per_second_later_epochs"]) for r in rows
    ]
    lines = [
        f"bench pipeline: {report['source']} ({report['format']}), {report['examples']} examples, "
        f"batch {report['batch_size']}, {report['epochs']} epochs, median of {report['repeat']} "
        f"runs, peak RSS {report['peak_rss_mb']} MB",
        f"{'pipeline':52} {'epoch 1 ex/s':>13} {'later ex/s':>12} {'ours/this (ep1, later)':>24}",
    ]
    for row, (first, later) in zip(rows, rates):
        line = f"{row['name']:52} {first:13,d} " + (f"{later:12,d}" if later else f"{'-':>12}")
        if row is not rows[-1]:  # one epoch has no later rate
            ratio = f"{rates[-1][1] / later:8.2f}x" if later and rates[-1][1] else f"{'-':>9}"
            line += f" {rates[-1][0] / first:14.2f}x {ratio}"
        lines.append(line)
    lines.append("options: " + ", ".join(f"{k}={v}" for k, v in report["options"].items()))
    return "\n".join(lines)
