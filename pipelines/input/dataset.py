"""`make_dataset` over IDX, TFRecord or PNG: a split in memory batched by a stateless shuffle,
or streamed (cache=False), or streamed once into tf.data cache files (cache="FOLDER")."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from mnist_data.checks import check_whole
from mnist_data.errors import DatasetError
from mnist_data.sources.load import class_count
from mnist_data.sources.source import Source
from pipelines.input.cache import cached
from pipelines.input.options import PipelineOptions, tf_options
from pipelines.input.readers import file_chunks, read_arrays, source_for
from pipelines.input.service import dispatcher_target, distributed

SHUFFLE_BUFFER = 70_000  # a whole MNIST-sized split: a full shuffle of each epoch


def check_numbers(batch_size: int, epochs: int | None, seed: int = 0) -> None:
    """The one check of the numbers a pipeline takes, from Python or from the command line."""
    check_whole("batch_size", batch_size, 1, error=DatasetError)
    if epochs is not None:  # None: forever
        check_whole("epochs", epochs, 1, error=DatasetError)
    check_whole("seed", seed, 0, 2**63 - 1, DatasetError)


def make_dataset(
    source: str | os.PathLike | Source,
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
    num_classes: int | None = None,
    normalize: bool = True,
    service: str | None = None,
    processing_mode: str = "distributed_epoch",
    service_timeout: float | None = 60.0,
    options: PipelineOptions = PipelineOptions(),
) -> tf.data.Dataset:
    """Batches of (images, labels): float32 [B, 28, 28, 1] in [0, 1] (or [B, 784] with `flatten`;
    uint8 without `normalize`) and int32 [B] (or float32 one-hot [B, C]); `epochs=None`: forever.
    `service="grpc://host:port"`: tf.data service workers make the batches (docs/tfdata-service.md);
    a dispatcher or batch later than `service_timeout` seconds (None or 0: never) is an error."""
    seed = int(np.random.default_rng().integers(2**31)) if seed is None else seed
    check_numbers(batch_size, epochs, seed)
    source = source_for(source, split, format)
    what = f"{source.path}: the {split} split"
    if service and not isinstance(cache, bool):  # a folder, as str or Path
        raise DatasetError(f"{what}: cache={cache!r} does not combine with service=")
    service = service and dispatcher_target(service, service_timeout)
    batching = (batch_size, epochs, shuffle, int(seed), drop_remainder)
    in_memory = source.kind == "idx" or cache is True  # service workers get it in the graph
    images, labels = read_arrays(source, split, options=options) if in_memory else (None, [])
    finish = _finisher(flatten, one_hot, num_classes or class_count(source, [labels]), normalize)
    if in_memory:
        # Service workers send uint8 batches (4x fewer bytes on the wire); else finish is fused.
        fused, finish = (None, finish) if service else (finish, None)
        batches = _from_arrays(images, labels, batching, fused, options, what)
    else:
        records = source.manifest["splits"][split]["records"]
        _check_fits(batch_size, drop_remainder, records, what)
        # No count check for the service: under distributed_epoch a worker reads some shards.
        chunks = file_chunks(source, split, options, None if service else records)
        if cache:  # a folder: decoded chunks go to (or come from) tf.data's cache files in it
            chunks = cached(chunks, Path(cache), source, split)
        batches = _from_stream(chunks, batching)
    if service:
        batches = distributed(batches, processing_mode, service, service_timeout or None)
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
) -> tf.data.Dataset:
    """`make_dataset`'s batches over a split in memory: a trainer reads it once for every epoch."""
    check_numbers(batch_size, epochs, seed)
    batching = (batch_size, epochs, shuffle, seed, drop_remainder)
    finish = _finisher(False, False, None, True)
    return _finish(_from_arrays(images, labels, batching, finish), PipelineOptions())


def _check_fits(batch_size: int, drop: bool, count: int, what: str) -> None:
    if drop and 0 < count < batch_size:
        raise DatasetError(
            f"{what}: batch_size {batch_size} with drop_remainder exceeds its {count} examples"
        )


def _finish(batches: tf.data.Dataset, options: PipelineOptions, finish=None) -> tf.data.Dataset:
    """The per-batch `finish` map (unless fused already), prefetch, options."""
    if finish:
        batches = batches.map(
            finish, num_parallel_calls=options.parallel_calls, deterministic=options.deterministic
        )
    return batches.prefetch(options.prefetch).with_options(tf_options(options))


def _finisher(flatten: bool, one_hot: bool, num_classes: int | None, normalize: bool):
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
            says = f"a label does not fit one_hot with num_classes={num_classes}:"
            fits = tf.debugging.Assert(
                tf.reduce_all(labels < num_classes), [says, tf.reduce_max(labels)]
            )
            with tf.control_dependencies([fits]):
                labels = tf.one_hot(labels, num_classes, dtype=tf.float32)
        return images, labels

    return finish


def host_tensor(array: np.ndarray) -> tf.Tensor:
    """A tensor over `array`'s memory (DLPack) if it can: a 47 MB copy costs 20-150 ms on a VM."""
    flags = array.flags
    if flags.c_contiguous and flags.writeable and array.ctypes.data % 64 == 0 and array.size:
        try:
            return tf.experimental.dlpack.from_dlpack(array.__dlpack__())
        except (BufferError, TypeError, ValueError, tf.errors.OpError):
            pass
    return tf.constant(array)


def _from_arrays(images, labels, batching, finish, options=PipelineOptions(), what="arrays"):
    """Batch `step` from `step` alone by stateless `index_shuffle`: a full shuffle, no buffer."""
    batch_size, epochs, shuffle, seed, drop = batching
    count = len(labels)
    _check_fits(batch_size, drop, count, what)
    per_epoch = count // batch_size if drop else -(-count // batch_size)
    images_t, labels_t = host_tensor(np.asarray(images)), host_tensor(np.asarray(labels))
    seed_t = tf.constant(seed, tf.int64)

    def batch_at(step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        epoch, position = step // per_epoch, step % per_epoch
        picked = tf.range(position * batch_size, tf.minimum((position + 1) * batch_size, count))
        if shuffle:
            key = tf.stack([seed_t, epoch])
            picked = tf.random.experimental.index_shuffle(picked, key, count - 1)
        batch = (tf.gather(images_t, picked), tf.gather(labels_t, picked))
        return finish(*batch) if finish else batch

    forever = epochs is None and per_epoch  # an empty split has no batch to repeat
    steps = (
        tf.data.Dataset.counter() if forever else tf.data.Dataset.range(per_epoch * (epochs or 0))
    )
    # Nothing in batch_at needs AutoGraph; converting it would cost ~40 ms on the first call.
    return steps.map(
        tf.autograph.experimental.do_not_convert(batch_at),
        num_parallel_calls=options.parallel_calls,
        deterministic=options.deterministic,
    )


def _from_stream(chunks, batching):
    """Parsed chunks into batches per epoch, shuffled through a buffer (with cache=False)."""
    batch_size, epochs, shuffle, seed, drop_remainder = batching
    examples = chunks.unbatch().map(lambda image, label, index: (image, label))
    if shuffle:  # before repeat, so that no example crosses into another epoch
        examples = examples.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    return examples.batch(batch_size, drop_remainder=drop_remainder).repeat(epochs)
