"""Reading a split of any source: whole into arrays, or as decoded chunks of what the converters
write (TFRecord shards, PNG trees); and, when it fails, which file is at fault."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import struct

import numpy as np
import tensorflow as tf

import mnist_data
from mnist_data.conversion.verify import read_listing
from mnist_data.errors import DatasetError
from mnist_data.formats.png import END as PNG_END
from mnist_data.formats.png import SIGNATURE as PNG_SIGNATURE
from mnist_data.formats.tfrecord_read import check_shard_files, read_tfrecord_split
from mnist_data.sources.source import Source
from pipelines import FORMATS
from pipelines.input.options import PipelineOptions

PARSE_CHUNK = 1024  # records batched inside each shard before parsing


def source_for(source: str | os.PathLike | Source, split: str, format: str | None = None) -> Source:
    """The Source holding `split`; a `format` it is not is refused before anything is read."""
    if format not in (None, *FORMATS):
        raise DatasetError(f"unknown format {format!r}: expected one of {', '.join(FORMATS)}")
    resolved = mnist_data.resolve_source(source, splits=[split])
    if resolved.kind == "idx" and format not in (None, "idx"):
        raise DatasetError(
            f"{os.fspath(resolved)}: format {format!r} reads a directory written by to-{format} "
            "(with its manifest.json); for a dataset name or IDX files use format 'idx'"
        )
    if format not in (None, resolved.kind):
        raise DatasetError(f"{resolved.path}: holds {resolved.kind} output, not {format}")
    splits = resolved.manifest["splits"] if resolved.manifest else {split: None}
    if split not in splits:
        raise DatasetError(
            f"{resolved.path}: no split {split!r} in manifest.json (has {', '.join(splits)})"
        )
    return resolved


def shard_paths(source: Source, split: str) -> list[str]:
    shards = source.manifest["splits"][split]["shards"]
    return [str(source.path / shard["file"]) for shard in shards]


def read_arrays(
    source: str | os.PathLike | Source,
    split: str = "train",
    *,
    format: str | None = None,
    options: PipelineOptions = PipelineOptions(),
) -> tuple[np.ndarray, np.ndarray]:
    """The whole split in source order: uint8 images [N, H, W] and integer labels [N]."""
    source = source_for(source, split, format)
    if source.kind == "idx":
        return mnist_data.load(source, split)
    if source.kind == "tfrecord" and source.manifest.get("encoding") == "raw":
        return read_tfrecord_split(source.path, split)
    if source.kind == "tfrecord":
        check_shard_files(source.path, split)
    chunks = file_chunks(source, split, dataclasses.replace(options, deterministic=False))
    try:  # chunks arrive in any order: sorted back by source index
        parts = [tuple(tensor.numpy() for tensor in chunk) for chunk in chunks]
    except tf.errors.OpError as exc:  # TensorFlow names no file: find the culprit and name it
        raise DatasetError(unreadable(source, split, tf_reason(exc))) from None
    if not parts:
        return np.zeros((0, 28, 28), np.uint8), np.zeros((0,), np.int64)
    images, labels, index = (np.concatenate(column) for column in zip(*parts))
    expected = source.manifest["splits"][split]["records"]
    if len(labels) != expected:  # shards cut at a record boundary read without error
        found = f"{len(labels)} examples, manifest says {expected}"
        raise DatasetError(unreadable(source, split, found))
    order = np.argsort(index, kind="stable")  # shards copied or replaced: see check_shard_files
    return images[order], labels[order]


def file_chunks(
    source: Source, split: str, options: PipelineOptions, records: int | None = None
) -> tf.data.Dataset:
    """Decoded (images, labels, index) chunks; with `records`, a pass of another length fails."""
    read = _tfrecord_chunks if source.kind == "tfrecord" else _png_chunks
    chunks = read(source, split, options)
    if records is None:
        return chunks
    counted = chunks.unbatch().apply(tf.data.experimental.assert_cardinality(records))
    return counted.batch(PARSE_CHUNK)


def _tfrecord_chunks(source: Source, split: str, options: PipelineOptions) -> tf.data.Dataset:
    """Parsed chunks, shards in parallel; deterministic: each shard whole, in manifest order."""
    manifest = source.manifest
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

    records = tf.data.Dataset.from_tensor_slices(shard_paths(source, split)).interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type=compression).batch(PARSE_CHUNK),
        cycle_length=options.interleave_cycle,
        block_length=max(1, -(-longest // PARSE_CHUNK)),
        num_parallel_calls=options.parallel_calls,
        deterministic=options.deterministic,
    )
    return records.map(
        parse, num_parallel_calls=options.parallel_calls, deterministic=options.deterministic
    )


def png_listing(source: Source, split: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Paths, labels and source indices from OUT/<split>.csv, checked against the manifest."""
    listing, numbered = source.path / f"{split}.csv", read_listing(source.path, split)
    expected = source.manifest["splits"][split]["records"]
    classes = len(source.manifest.get("classes", []))
    if len(numbered) != expected:
        raise DatasetError(f"{listing}: {len(numbered)} rows, manifest says {expected}")
    files, labels, index = [], np.zeros(expected, np.int64), np.zeros(expected, np.int64)
    for i, (line, row) in enumerate(numbered):
        try:
            files.append(str(source.path / row["file"]))
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
    if not np.array_equal(np.sort(index), np.arange(expected)):
        raise DatasetError(
            f"{listing}: its indices are not 0..{expected - 1}, each once (a row copied?)"
        )
    return files, labels, index


def _png_chunks(source: Source, split: str, options: PipelineOptions) -> tf.data.Dataset:
    """Decoded (images, labels, index) chunks of a PNG tree, in the listing's index order."""
    files, labels, index = png_listing(source, split)
    order = np.argsort(index, kind="stable")
    paths = tf.constant([files[i] for i in order], tf.string)  # strings, even if none
    image = source.manifest.get("image", {"height": 28, "width": 28})
    height, width = image["height"], image["width"]
    head = PNG_SIGNATURE + b"\0\0\0\rIHDR" + struct.pack(">II", width, height)

    def decode(path: tf.Tensor, label: tf.Tensor, position: tf.Tensor):
        # Checked here so that a streamed tree's bad file is named in the error (decode_png names
        # none): its header, and the IEND chunk at its end, which a file cut short lacks.
        blob = tf.io.read_file(path)
        tail = tf.maximum(tf.strings.length(blob) - len(PNG_END), 0)
        whole = tf.logical_and(
            tf.equal(tf.strings.substr(blob, 0, len(head)), head),
            tf.equal(tf.strings.substr(blob, tail, len(PNG_END)), PNG_END),
        )
        says = f"not a {width}x{height} PNG file, or one cut short:"
        with tf.control_dependencies([tf.debugging.Assert(whole, [says, path])]):
            pixels = tf.io.decode_png(blob, channels=1)[..., 0]
        pixels.set_shape([height, width])  # checked above; flatten and Keras need it known
        return pixels, label, position

    examples = tf.data.Dataset.from_tensor_slices((paths, labels[order], index[order]))
    examples = examples.map(
        decode, num_parallel_calls=options.parallel_calls, deterministic=options.deterministic
    )
    return examples.batch(PARSE_CHUNK)


def unreadable(source: Source, split: str, reason: str) -> str:
    """Why a split failed to read: the first problem `verify` finds in its files, else `reason`."""
    directory = source.path
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
