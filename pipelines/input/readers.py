"""Decoded chunks of what the converters write (TFRecord shards, PNG trees); which file is at
fault when a split fails to read; and a folder of tf.data cache files for streamed splits."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import re
from pathlib import Path

import numpy as np
import tensorflow as tf

import mnist_data
from mnist_data.errors import DatasetError
from mnist_data.fs import locked
from mnist_data.manifest import MANIFEST, read_manifest
from pipelines.input.options import PipelineOptions

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the empty IEND chunk that ends every PNG
PARSE_CHUNK = 1024  # records batched inside each shard before parsing
_HELD: dict[str, contextlib.ExitStack] = {}  # cache prefix -> its lock, held until the process ends


def file_chunks(
    directory: Path, split: str, fmt: str, options: PipelineOptions, records: int | None = None
) -> tf.data.Dataset:
    """Decoded (images, labels, index) chunks of a split. With `records`, a pass that yields any
    other number of examples ends in an error, so a damaged split is never taken for a whole one
    (nor finalised as such in a tf.data cache downstream)."""
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
    """Parsed uint8 chunks: shards read in parallel, records batched before parsing. With
    deterministic options they come in source order: each shard's chunks whole, in the manifest's
    order (a block as long as the longest shard), while later shards are read ahead."""
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
    try:
        text = listing.read_text()
    except OSError as exc:
        raise DatasetError(f"{listing}: cannot read the PNG listing: {exc.strerror}") from None
    reader = csv.DictReader(text.splitlines())
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


def unreadable(directory: Path, split: str, fmt: str, reason: str) -> str:
    """Why a split failed to read: the first shard of the split that `verify` finds damaged, or
    the first PNG of a tree that is missing, not a PNG or not of the manifest's size; else
    `reason`, with the split it concerns."""
    if fmt == "tfrecord":
        with contextlib.suppress(mnist_data.MnistDataError):
            damaged = [
                p for p in mnist_data.verify(directory).problems if p.startswith(f"{split}-")
            ]
            if damaged:
                return (
                    f"{directory / damaged[0]} (mnist-data verify {directory} checks every shard)"
                )
    if fmt == "png":
        from PIL import Image, UnidentifiedImageError

        manifest = read_manifest(directory)
        image = manifest.get("image", {})
        expected = (image.get("width", 28), image.get("height", 28))
        for path in png_listing(directory, split, manifest)[0]:
            try:
                with Image.open(path) as png:
                    if png.format != "PNG" or png.size != expected:
                        found = f"a {png.size[0]}x{png.size[1]} {png.format}"
                        return f"{path}: {found} image, expected a {expected[0]}x{expected[1]} PNG"
                    png.load()  # the pixels too: a file cut short or a damaged chunk fails here
            except FileNotFoundError:
                return f"{path}: listed in {directory / (split + '.csv')} but missing"
            except (UnidentifiedImageError, OSError) as error:
                return f"{path}: not a readable PNG ({error})"
    return f"{directory}: cannot read the {split} split: {reason}"


def tf_reason(exc: Exception) -> str:
    """TensorFlow's error message without the function and op names it wraps around it."""
    reason = str(getattr(exc, "message", exc)).strip().splitlines()[0]
    reason = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", reason)
    return re.sub(r"\s*\[Op:\w+\]( name:.*)?$", "", reason)


def materialize(chunks: tf.data.Dataset, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Every (images, labels, index) chunk, arriving in any order, as arrays in source order;
    DatasetError naming `where` unless the indices are 0..N-1, each once."""
    parts = [(images.numpy(), labels.numpy(), index.numpy()) for images, labels, index in chunks]
    if not parts:
        return np.zeros((0, 28, 28), np.uint8), np.zeros((0,), np.int64)
    images, labels, index = (np.concatenate(column) for column in zip(*parts))
    order = np.argsort(index, kind="stable")
    _check_indices(index[order], where)
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


def cache_prefix(folder: Path, source: Path, split: str, fmt: str) -> str:
    """Where in `folder` tf.data keeps one split's decoded chunks: a name keyed by the split, the
    source's manifest, and the size and time of every file the split is read from (a PNG tree's
    listing too), so another source, split or version of the files never reads these."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest, files = split_shards(source, split)
    if fmt == "png":
        files = [str(source / f"{split}.csv"), *png_listing(source, split, manifest)[0]]
    digest = hashlib.sha256((source / MANIFEST).read_bytes() + fmt.encode())
    for name in files:
        with contextlib.suppress(OSError):  # reading the split will name a missing file
            state = os.stat(name)
            relative = os.path.relpath(name, source)  # however the source's path is spelled
            digest.update(f"{relative}:{state.st_size}:{state.st_mtime_ns}\n".encode())
    return str(folder / f"{split}-{digest.hexdigest()[:16]}")


def writable_cache_prefix(folder: Path, source: Path, split: str, fmt: str) -> str | None:
    """`cache_prefix` once this process may use its files: the set is complete, or this process
    holds its lock; None while another live process writes the set.

    Why: tf.data refuses to write a set while a lockfile of an earlier writer is there, and a
    killed writer leaves its lockfile for good. Whoever holds this lock (the OS releases it when
    its process dies) sweeps what a dead writer left, and keeps it until it ends: tf.data says
    nothing when it stops writing."""
    prefix = cache_prefix(folder, source, split, fmt)
    if prefix in _HELD or os.path.exists(prefix + ".index"):  # ours, or complete: anyone reads
        return prefix
    leftovers = list(folder.glob(Path(prefix).name + "_*"))  # tf.data's lockfile, partial files
    held = contextlib.ExitStack()
    try:
        held.enter_context(locked(prefix + ".lock", busy=BlockingIOError()))
    except BlockingIOError:  # a live process holds it: writing now if it left a lockfile
        return None if leftovers else prefix
    for stale in leftovers:
        stale.unlink(missing_ok=True)
    _HELD[prefix] = held
    return prefix
