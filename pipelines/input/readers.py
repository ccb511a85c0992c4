"""Reading a split of any source: whole into arrays, or as decoded chunks of what the converters
write (TFRecord shards, PNG trees); and, when it fails, which file is at fault."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import os
import re
from pathlib import Path

import numpy as np
import tensorflow as tf

import mnist_data
from mnist_data.errors import DatasetError
from mnist_data.formats.png import END as PNG_END
from mnist_data.formats.png import SIGNATURE as PNG_SIGNATURE
from mnist_data.formats.tfrecord_read import check_shard_files, read_tfrecord_split
from mnist_data.sources.source import MANIFEST, read_manifest
from pipelines import FORMATS
from pipelines.input.options import PipelineOptions

PARSE_CHUNK = 1024  # records batched inside each shard before parsing


def detect_format(source: str | os.PathLike, format: str | None = None) -> str:
    """'tfrecord' or 'png' from OUT/manifest.json, else 'idx' (a dataset name or IDX files); a
    `format` the source cannot have is refused before anything is read."""
    manifest = Path(source) / MANIFEST
    found = read_manifest(Path(source)).get("format") if manifest.is_file() else "idx"
    if found not in FORMATS:
        raise DatasetError(f"{manifest}: unknown format {found!r}: expected 'tfrecord' or 'png'")
    if format not in (None, *FORMATS):
        raise DatasetError(f"unknown format {format!r}: expected one of {', '.join(FORMATS)}")
    if found == "idx" and format not in (None, "idx"):
        raise DatasetError(
            f"{source}: format {format!r} reads a directory written by to-{format} "
            "(with its manifest.json); for a dataset name or IDX files use format 'idx'"
        )
    if format not in (None, "idx", found):
        raise DatasetError(f"{source}: holds {found} output, not {format}")
    return format or found


def read_arrays(
    source: str | os.PathLike,
    split: str = "train",
    *,
    format: str | None = None,
    options: PipelineOptions = PipelineOptions(),
) -> tuple[np.ndarray, np.ndarray]:
    """The whole split in source order: uint8 images [N, H, W] and integer labels [N]. Raw
    TFRecords are decoded by mnist_data, PNGs by a parallel tf.data reader."""
    fmt = detect_format(source, format)
    if fmt == "idx":
        return mnist_data.load(source, split)
    directory = Path(source)
    manifest = split_shards(directory, split)[0]  # a split the manifest lacks is named
    if fmt == "tfrecord" and manifest.get("encoding") == "raw":
        return read_tfrecord_split(source, split)
    if fmt == "tfrecord":
        check_shard_files(source, split)
    chunks = file_chunks(directory, split, fmt, dataclasses.replace(options, deterministic=False))
    try:
        images, labels = materialize(chunks)
    except tf.errors.OpError as exc:  # TensorFlow names no file: find the culprit and name it
        raise DatasetError(unreadable(directory, split, tf_reason(exc))) from None
    expected = manifest["splits"][split]["records"]
    if len(labels) != expected:  # shards cut at a record boundary read without error
        found = f"{len(labels)} examples, manifest says {expected}"
        raise DatasetError(unreadable(directory, split, found))
    return images, labels


def file_chunks(
    directory: Path, split: str, fmt: str, options: PipelineOptions, records: int | None = None
) -> tf.data.Dataset:
    """Decoded (images, labels, index) chunks of a split; with `records`, a pass of any other
    length is an error, so a damaged split is never taken (nor cached) for a whole one."""
    chunks = (_tfrecord_chunks if fmt == "tfrecord" else _png_chunks)(directory, split, options)
    if records is None:
        return chunks
    counted = chunks.unbatch().apply(tf.data.experimental.assert_cardinality(records))
    return counted.batch(PARSE_CHUNK)


def split_shards(directory: Path, split: str) -> tuple[dict, list[str]]:
    """The manifest of a converted directory and the paths of `split`'s shards."""
    manifest = read_manifest(directory)
    splits = manifest.get("splits", {})
    if split not in splits:
        raise DatasetError(
            f"{directory}: no split {split!r} in manifest.json (has {', '.join(splits)})"
        )
    return manifest, [str(directory / shard["file"]) for shard in splits[split].get("shards", [])]


def _tfrecord_chunks(directory: Path, split: str, options: PipelineOptions) -> tf.data.Dataset:
    """Parsed uint8 chunks, shards read in parallel; in source order with deterministic options
    (a block as long as the longest shard: each shard whole, in the manifest's order)."""
    manifest, files = split_shards(directory, split)
    longest = max([shard["records"] for shard in manifest["splits"][split]["shards"]], default=0)
    compression = "GZIP" if manifest.get("compression") == "gzip" else ""
    height, width = manifest["image"]["height"], manifest["image"]["width"]
    png = manifest.get("encoding") == "png"
    spec = {name: tf.io.FixedLenFeature([], tf.int64) for name in ("label", "index")}
    spec["image"] = tf.io.FixedLenFeature([], tf.string)

    def parse(records: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        parsed = tf.io.parse_example(records, spec)
        if png:
            images = tf.map_fn(
                lambda b: tf.io.decode_png(b, channels=1)[..., 0],
                parsed["image"],
                fn_output_signature=tf.TensorSpec([height, width], tf.uint8),
            )
        else:
            images = tf.reshape(tf.io.decode_raw(parsed["image"], tf.uint8), [-1, height, width])
        return images, parsed["label"], parsed["index"]

    records = tf.data.Dataset.from_tensor_slices(files).interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type=compression).batch(PARSE_CHUNK),
        cycle_length=options.interleave_cycle,
        block_length=max(1, -(-longest // PARSE_CHUNK)),
        num_parallel_calls=options.parallel_calls,
        deterministic=options.deterministic,
    )
    return records.map(
        parse, num_parallel_calls=options.parallel_calls, deterministic=options.deterministic
    )


def png_listing(
    directory: Path, split: str, manifest: dict
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Paths, labels and source indices from OUT/<split>.csv, checked against the manifest."""
    listing = directory / f"{split}.csv"
    reader = csv.DictReader(listing.read_text().splitlines())  # OSError names a missing one
    numbered = [(reader.line_num, row) for row in reader]  # blank lines are skipped, not counted
    expected, classes = manifest["splits"][split]["records"], len(manifest.get("classes", [])) or 10
    if len(numbered) != expected:
        raise DatasetError(f"{listing}: {len(numbered)} rows, manifest says {expected}")
    files, labels, index = [], np.zeros(expected, np.int64), np.zeros(expected, np.int64)
    for i, (line, row) in enumerate(numbered):
        try:
            files.append(str(directory / row["file"]))
            labels[i], index[i] = int(row["label"]), int(row["index"])
        except (KeyError, TypeError, ValueError, OverflowError):
            raise DatasetError(
                f"{listing}: line {line}: not a row of file, label and index: {row}"
            ) from None
        if not 0 <= labels[i] < classes:
            raise DatasetError(
                f"{listing}: line {line}: label {labels[i]} is not one of the "
                f"{classes} classes of the manifest"
            )
    _check_indices(np.sort(index), str(listing))
    return files, labels, index


def _png_chunks(directory: Path, split: str, options: PipelineOptions) -> tf.data.Dataset:
    """Decoded (images, labels, index) chunks of a PNG tree, in the listing's index order."""
    manifest = split_shards(directory, split)[0]  # a split the manifest lacks is named as such
    files, labels, index = png_listing(directory, split, manifest)
    order = np.argsort(index, kind="stable")
    paths = tf.constant([files[i] for i in order], tf.string)  # strings, even if none
    image = manifest.get("image", {})
    static = [image.get("height", 28), image.get("width", 28)]

    def decode(path: tf.Tensor, label: tf.Tensor, position: tf.Tensor):
        # Checked here so that a streamed tree's bad file is named in the error (decode_png names
        # none), not lost in a batch op; a file cut short lacks the IEND chunk at its end.
        blob = tf.io.read_file(path)
        tail = tf.maximum(tf.strings.length(blob) - len(PNG_END), 0)
        whole = tf.logical_and(
            tf.equal(tf.strings.substr(blob, 0, 8), PNG_SIGNATURE),
            tf.equal(tf.strings.substr(blob, tail, len(PNG_END)), PNG_END),
        )
        whole = tf.debugging.Assert(whole, ["not a PNG file, or one cut short:", path])
        with tf.control_dependencies([whole]):
            pixels = tf.io.decode_png(blob, channels=1)[..., 0]
        right_size = tf.debugging.Assert(
            tf.reduce_all(tf.equal(tf.shape(pixels), static)),
            ["a PNG whose size differs from the manifest's:", path, tf.shape(pixels)],
        )
        with tf.control_dependencies([right_size]):
            pixels = tf.identity(pixels)
        pixels.set_shape(static)  # checked above; later stages (flatten, Keras) need it known
        return pixels, label, position

    examples = tf.data.Dataset.from_tensor_slices((paths, labels[order], index[order]))
    examples = examples.map(
        decode, num_parallel_calls=options.parallel_calls, deterministic=options.deterministic
    )
    return examples.batch(PARSE_CHUNK)


def unreadable(directory: Path, split: str, reason: str) -> str:
    """Why a split failed to read: the first problem `verify` finds in the split's files (a
    damaged shard; a PNG missing, cut short or of another size), else `reason`."""
    with contextlib.suppress(mnist_data.MnistDataError):
        for problem in mnist_data.verify(directory).problems:
            if problem.startswith((f"{split}-", f"{split}/")):
                return f"{directory / problem} (mnist-data verify {directory} checks every file)"
    return f"{directory}: cannot read the {split} split: {reason}"


def tf_reason(exc: Exception) -> str:
    """TensorFlow's error message without the function and op names it wraps around it."""
    reason = str(getattr(exc, "message", exc)).strip().splitlines()[0]
    reason = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", reason)
    return re.sub(r"\s*\[Op:\w+\]( name:.*)?$", "", reason)


def materialize(chunks: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Every (images, labels, index) chunk, arriving in any order, as arrays in source order."""
    parts = [(images.numpy(), labels.numpy(), index.numpy()) for images, labels, index in chunks]
    if not parts:
        return np.zeros((0, 28, 28), np.uint8), np.zeros((0,), np.int64)
    images, labels, index = (np.concatenate(column) for column in zip(*parts))
    order = np.argsort(index, kind="stable")  # shards copied or replaced: see check_shard_files
    return images[order], labels[order]


def _check_indices(ordered: np.ndarray, where: str) -> None:
    """DatasetError unless sorted source indices are exactly 0..N-1 (none twice, none outside)."""
    count = len(ordered)
    wrong = np.flatnonzero(ordered != np.arange(count))
    if not len(wrong):
        return
    first = int(wrong[0])
    if ordered[0] < 0 or ordered[-1] >= count:
        problem = f"has source indices outside 0..{count - 1}"
    elif ordered[first] == ordered[first - 1]:
        problem = f"holds source index {int(ordered[first])} twice"
    else:
        problem = f"lacks source index {first}"
    raise DatasetError(f"{where} {problem} (a shard or row copied or replaced?)")
