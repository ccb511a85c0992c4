"""`make_dataset`: one tf.data entry point over IDX arrays, TFRecord shards or PNG trees.

By default (`cache=True`) a split is read once into memory, whatever its source, and each batch
is one map call: pick the batch's indices from a stateless per-epoch permutation, gather them,
cast and scale them, so a full-epoch shuffle costs no per-element work. With `cache=False`,
TFRecord and PNG sources are streamed from their files every epoch; with `cache="FOLDER"` they
are streamed once and their decoded chunks kept in tf.data cache files in FOLDER, which later
epochs and later processes read instead of the source.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

import mnist_data
from mnist_data.checks import is_whole
from mnist_data.errors import DatasetError
from mnist_data.manifest import MANIFEST, read_manifest
from mnist_data.tfrecord_read import check_shard_files, read_tfrecord_split
from pipelines import FORMATS
from pipelines.input.options import PipelineOptions, tf_options
from pipelines.input.readers import (
    file_chunks,
    materialize,
    split_shards,
    tf_reason,
    unreadable,
    writable_cache_prefix,
)
from pipelines.input.service import dispatcher_target, with_deadline

SHUFFLE_BUFFER = 70_000  # a whole MNIST-sized split: a full shuffle of each epoch


def detect_format(source: str | os.PathLike) -> str:
    """'tfrecord' or 'png' from OUT/manifest.json, else 'idx' (dataset name or IDX dir)."""
    manifest = Path(source) / MANIFEST
    if not manifest.is_file():
        return "idx"
    fmt = read_manifest(Path(source)).get("format")
    if fmt not in ("tfrecord", "png"):
        raise DatasetError(f"{manifest}: unknown format {fmt!r}: expected 'tfrecord' or 'png'")
    return fmt


def _checked_format(source: str | os.PathLike, format: str | None) -> str:
    """The source's format, refusing a format it cannot have before anything is read."""
    fmt = format or detect_format(source)
    if fmt not in FORMATS:
        raise DatasetError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt != "idx" and not (Path(source) / MANIFEST).is_file():
        raise DatasetError(
            f"{source}: format {fmt!r} reads a directory written by to-{fmt} "
            "(with its manifest.json); for a dataset name or IDX files use format 'idx'"
        )
    if format and fmt != "idx" and detect_format(source) != fmt:
        raise DatasetError(
            f"{source}: holds {detect_format(source)} output, not {fmt} (see its manifest.json)"
        )
    return fmt


def check_numbers(batch_size: int, epochs: int | None, seed: int = 0) -> None:
    """The one check of the numbers a pipeline takes, from Python or from the command line."""
    if not is_whole(batch_size, 1):
        raise DatasetError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    if epochs is not None and not is_whole(epochs, 1):
        raise DatasetError(f"epochs must be a whole number >= 1 or None (forever), got {epochs!r}")
    if not (is_whole(seed, 0) and seed < 2**63):
        raise DatasetError(f"seed must be a whole number in 0..2**63-1, got {seed!r}")


def make_dataset(
    source: str | os.PathLike,
    split: str = "train",
    batch_size: int = 256,
    *,
    format: str | None = None,
    epochs: int | None = 1,
    shuffle: bool = True,
    seed: int | None = None,
    cache: bool | str | os.PathLike = True,
    flatten: bool = False,
    one_hot: bool = False,
    drop_remainder: bool = False,
    num_classes: int = 10,
    normalize: bool = True,
    service: str | None = None,
    processing_mode: str = "distributed_epoch",
    service_timeout: float | None = 60.0,
    options: PipelineOptions = PipelineOptions(),
) -> tf.data.Dataset:
    """Batches of (images, labels): float32 [B, 28, 28, 1] in [0, 1] (or [B, 784] with
    `flatten`; uint8 with normalize=False) and int32 [B] (or float32 one-hot [B, C]).

    One pass by default; `epochs=None` repeats forever, reshuffling every epoch. With
    `service="grpc://host:port"` the uint8 batches are produced by tf.data service workers (see
    docs/tfdata-service.md) and finished here, on the consumer; a dispatcher that does not answer,
    or a batch that does not come, within `service_timeout` seconds is an error (None: wait as
    TensorFlow does, forever, and save the check's cost per batch).
    """
    seed = int(np.random.default_rng().integers(2**31)) if seed is None else seed
    check_numbers(batch_size, epochs, seed)
    fmt = _checked_format(source, format)
    finish = _finisher(flatten, one_hot, num_classes, normalize)
    if service:
        if not isinstance(cache, bool):  # a folder, as str or Path
            raise DatasetError(
                f"{source}: cache={cache!r} does not combine with service=: use cache=True "
                "(the split travels to the workers in the graph) "
                "or cache=False (they stream the files)"
            )
        service = dispatcher_target(service, service_timeout)
    batching = (batch_size, epochs, shuffle, int(seed), drop_remainder)
    if fmt == "idx" or cache is True:  # in memory: service workers get the split in the graph
        images, labels = read_arrays(source, split, format=fmt, options=options)
        # Service workers send uint8 batches (4x fewer bytes on the wire); else finish is fused.
        fused = _as_uint8 if service else finish
        classes = num_classes if one_hot else None
        batches = _from_arrays(images, labels, *batching, fused, options, classes, split)
        finish = finish if service else None
    else:
        records = split_shards(Path(source), split)[0]["splits"][split]["records"]
        _check_fits(batch_size, drop_remainder, records, f"{source}: ", split)
        # No count check for the service: under distributed_epoch a worker reads some shards.
        chunks = file_chunks(Path(source), split, fmt, options, None if service else records)
        if cache:  # a folder: decoded chunks go to (or come from) tf.data's cache files in it
            prefix = writable_cache_prefix(Path(cache), Path(source), split, fmt)
            if prefix is None:
                warnings.warn(
                    f"{cache}: another process is writing the {split} split's cache there; "
                    "this one reads the files directly",
                    stacklevel=2,
                )
            else:
                chunks = chunks.cache(prefix)
        batches = _from_stream(chunks, *batching)
    if service:
        batches = batches.apply(tf.data.experimental.service.distribute(processing_mode, service))
        if service_timeout is not None:
            batches = with_deadline(batches, service, service_timeout)
    return _finish(batches, options, finish)


def dataset_from_arrays(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int = 256,
    *,
    epochs: int | None = 1,
    shuffle: bool = True,
    seed: int = 0,
    drop_remainder: bool = False,
    flatten: bool = False,
    one_hot: bool = False,
    num_classes: int = 10,
    normalize: bool = True,
    options: PipelineOptions = PipelineOptions(),
) -> tf.data.Dataset:
    """`make_dataset`'s batches over a split already in memory (e.g. from `read_arrays`).

    Why: a trainer reads its split once and builds each epoch's dataset from it, rather than
    decoding a PNG tree or TFRecords again every epoch.
    """
    check_numbers(batch_size, epochs, seed)
    finish = _finisher(flatten, one_hot, num_classes, normalize)
    batching = (batch_size, epochs, shuffle, seed, drop_remainder)
    classes = num_classes if one_hot else None
    return _finish(_from_arrays(images, labels, *batching, finish, options, classes), options)


def _check_fits(batch_size: int, drop: bool, count: int, where: str = "", split: str = "") -> None:
    if drop and 0 < count < batch_size:
        raise DatasetError(
            f"{where}batch_size {batch_size} with drop_remainder exceeds the {count} "
            f"{split + ' ' if split else ''}examples: no batch would come out"
        )


def read_arrays(
    source: str | os.PathLike,
    split: str = "train",
    *,
    format: str | None = None,
    options: PipelineOptions = PipelineOptions(),
) -> tuple[np.ndarray, np.ndarray]:
    """The whole split in memory, in source order: uint8 images [N, H, W] and integer labels [N].

    Raw TFRecords are decoded by mnist_data without TensorFlow; PNG-encoded TFRecords and PNG
    trees by a parallel tf.data reader.
    """
    fmt = _checked_format(source, format)
    if fmt == "idx":
        return mnist_data.load(source, split)
    directory = Path(source)
    manifest = split_shards(directory, split)[0]  # a split the manifest lacks is named as such
    if fmt == "tfrecord" and manifest.get("encoding") == "raw":
        return read_tfrecord_split(source, split)
    if fmt == "tfrecord":
        check_shard_files(source, split)
    chunks = file_chunks(directory, split, fmt, dataclasses.replace(options, deterministic=False))
    try:
        images, labels = materialize(chunks, f"{source}: the {split} split")
    except tf.errors.OpError as exc:  # TensorFlow names no file: find the culprit and name it
        raise DatasetError(unreadable(directory, split, fmt, tf_reason(exc))) from None
    expected = manifest["splits"][split]["records"]
    if len(labels) != expected:  # shards cut at a record boundary read without error
        found = f"{len(labels)} examples, manifest says {expected}"
        raise DatasetError(unreadable(directory, split, fmt, found))
    return images, labels


def _finish(batches: tf.data.Dataset, options: PipelineOptions, finish=None) -> tf.data.Dataset:
    """The common tail: the per-batch `finish` map (unless already fused), prefetch, options."""
    if finish is not None:
        batches = batches.map(
            finish, num_parallel_calls=options.parallel_calls, deterministic=options.deterministic
        )
    return batches.prefetch(options.prefetch).with_options(tf_options(options))


def _as_uint8(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return images, labels


def _finisher(flatten: bool, one_hot: bool, num_classes: int, normalize: bool):
    """The per-batch transform from uint8 [B, H, W] and integer labels to model inputs."""

    def finish(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        if normalize:
            images = tf.cast(images, tf.float32) * (1.0 / 255.0)
        if flatten:  # 784 for MNIST; any H x W for other sets
            pixels = images.shape[1] * images.shape[2] if None not in images.shape[1:] else -1
            images = tf.reshape(images, [tf.shape(images)[0], pixels])
        else:
            images = tf.expand_dims(images, -1)
        labels = tf.cast(labels, tf.int32)
        if one_hot:  # a label past the columns would become a row of zeros: stop instead
            fits = tf.debugging.Assert(
                tf.reduce_all(labels < num_classes),
                [
                    f"a label does not fit one_hot with num_classes={num_classes}:",
                    tf.reduce_max(labels),
                ],
            )
            with tf.control_dependencies([fits]):
                labels = tf.one_hot(labels, num_classes, dtype=tf.float32)
        return images, labels

    return finish


def host_tensor(array: np.ndarray) -> tf.Tensor:
    """A tensor over `array`'s own memory when TensorFlow can adopt it, else a copy.

    Why: copying a 47 MB split costs 20-150 ms of page faults on a VM; DLPack hands TensorFlow
    the buffer instead (it must be writable, C-contiguous and 64-byte aligned).
    """
    flags = array.flags
    if flags.c_contiguous and flags.writeable and array.ctypes.data % 64 == 0 and array.size:
        try:
            return tf.experimental.dlpack.from_dlpack(array.__dlpack__())
        except (BufferError, TypeError, ValueError, tf.errors.OpError):
            pass
    return tf.constant(array)


def _from_arrays(
    images, labels, batch_size, epochs, shuffle, seed, drop, finish, options, classes, split=""
):
    """Batch number `step` of the stream, computed from `step` alone.

    Its epoch's permutation comes from `index_shuffle` (a stateless bijection of 0..N-1 per
    seed), so a full shuffle costs a few operations per batch: no shuffle buffer, no per-epoch
    state, and any worker of the tf.data service can make any batch.
    """
    count = len(labels)
    _check_fits(batch_size, drop, count, split=split)
    if classes and count and int(np.max(labels)) >= classes:
        raise DatasetError(
            f"labels go up to {int(np.max(labels))}, but one_hot has num_classes={classes}"
        )
    per_epoch = count // batch_size if drop else -(-count // batch_size)
    images_t, labels_t = host_tensor(np.asarray(images)), host_tensor(np.asarray(labels))
    seed_t = tf.constant(seed, tf.int64)

    def batch_at(step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        epoch, position = step // per_epoch, step % per_epoch
        picked = tf.range(position * batch_size, tf.minimum((position + 1) * batch_size, count))
        if shuffle:
            key = tf.stack([seed_t, epoch])
            picked = tf.random.experimental.index_shuffle(picked, key, count - 1)
        return finish(tf.gather(images_t, picked), tf.gather(labels_t, picked))

    if per_epoch == 0:
        steps = tf.data.Dataset.range(0)
    else:
        steps = (
            tf.data.Dataset.counter()
            if epochs is None
            else tf.data.Dataset.range(per_epoch * epochs)
        )
    # Nothing in batch_at needs AutoGraph; converting it would cost ~40 ms on the first call.
    return steps.map(
        tf.autograph.experimental.do_not_convert(batch_at),
        num_parallel_calls=options.parallel_calls,
        deterministic=options.deterministic,
    )


def _from_stream(chunks, batch_size, epochs, shuffle, seed, drop_remainder):
    """Parsed chunks into batches per epoch, shuffled through a buffer (with cache=False)."""
    examples = chunks.unbatch().map(lambda image, label, index: (image, label))
    if shuffle:  # before repeat, so that no example crosses into another epoch
        examples = examples.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    return examples.batch(batch_size, drop_remainder=drop_remainder).repeat(epochs)
