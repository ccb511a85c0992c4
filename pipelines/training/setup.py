"""A run's `State` and what sets it up: TensorFlow's threads and devices, the data, the
optimizer."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from mnist_data.checks import check_whole
from mnist_data.errors import DatasetError
from mnist_data.sources.load import class_count, class_list
from mnist_data.sources.source import Source
from pipelines.training.config import TrainConfig, TrainError


def use_op_threads(count: int | None) -> bool:
    """Run TF's ops on `count` threads (tiny ops step faster on one); whether in effect."""
    import tensorflow as tf

    threads = tf.config.threading
    if count is not None:  # TensorFlow aborts the process on a negative count
        check_whole("op_threads", count, 0, 1024, TrainError)
    if not count:
        return False
    try:
        threads.set_inter_op_parallelism_threads(count)
        threads.set_intra_op_parallelism_threads(count)
    except RuntimeError:  # TensorFlow has started: its pools stay as they are
        pass
    pools = threads.get_inter_op_parallelism_threads(), threads.get_intra_op_parallelism_threads()
    return pools == (count, count)


def local_devices() -> tuple[Any, str]:
    """The distribution strategy (Mirrored across several GPUs) and a description of the device."""
    import tensorflow as tf

    threads = tf.config.threading.get_intra_op_parallelism_threads()
    host = f"{os.cpu_count()} cores" + (
        f", ops on {threads} thread{'s' * (threads > 1)}" if threads else ""
    )
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return tf.distribute.get_strategy(), f"CPU ({host})"
    name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    return strategy, f"{len(gpus)} x {name} (host: {host})"


def as_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[Any, Any]:
    """A split as the models take it (as make_dataset hands it): float32 [N,H,W,1], int32."""
    import tensorflow as tf

    pixels = tf.cast(tf.constant(images[..., None]), tf.float32) * (1.0 / 255.0)
    return pixels, tf.cast(tf.constant(labels), tf.int32)


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> Any:
    """The preset's optimizer and LR schedule (per-epoch staircase, or cosine over the run)."""
    import keras

    schedules = keras.optimizers.schedules
    rate: Any = config.learning_rate
    if config.schedule == "staircase":
        rate = schedules.ExponentialDecay(rate, steps_per_epoch, config.decay_rate, staircase=True)
    elif config.schedule == "cosine":
        total = config.max_steps or config.epochs * steps_per_epoch
        rate = schedules.CosineDecay(rate, max(total, 1))
    return (keras.optimizers.Adam if config.optimizer == "adam" else keras.optimizers.SGD)(rate)


def check_examples(data: Any, split: str, shape: tuple, labels: Any, classes: int) -> None:
    """DatasetError for images the models cannot take or labels past their `classes` outputs."""
    if tuple(shape) != (28, 28):
        raise DatasetError(
            f"{data}: {split} images are {'x'.join(map(str, shape))}; "
            "the reference models take 28x28"
        )
    top = int(np.max(labels)) if len(labels) else 0
    if top >= classes:
        raise DatasetError(
            f"{data}: {split} labels go up to {top}; the model has {classes} outputs "
            f"(classes 0..{classes - 1})"
        )


@dataclass(eq=False)
class State:
    """A run's data, model, optimizer, weight averages and epoch counter, and compiled loops."""

    config: TrainConfig
    strategy: Any
    device: str
    dtype: str | None
    test: tuple  # images, labels as tensors
    train: tuple | None  # images, labels as arrays (None: evaluation only)
    resident: tuple | None  # the train split as device tensors, when resident
    steps_per_epoch: int
    classes: list[str]  # the names of the model's outputs
    model: Any = None
    eval_model: Any = None
    optimizer: Any = None
    ema: list | None = None
    epoch: Any = None
    checkpoint: Any = None
    step: Any = None
    eval: Any = None
    run_steps: Any = None
    run_resident_steps: Any = None

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync


def read_data(
    config: TrainConfig, source: Source, format: str | None, need_train: bool, classes: list | None
) -> tuple:
    """The test split as tensors, the train split as arrays (None if not `need_train`), and the
    names of the model's classes: `classes`, else the data's."""
    from pipelines.input.readers import read_arrays

    name, splits = os.fspath(source), ("test", "train")[: 1 + need_train]
    arrays = {split: read_arrays(source, split, format=format) for split in splits}
    seen = [labels for _, labels in arrays.values()]
    classes = classes or class_list(source, class_count(source, seen))
    for split, (images, labels) in arrays.items():
        check_examples(name, split, images.shape[1:3], labels, len(classes))
    if not len(arrays["test"][1]):
        raise TrainError(
            f"{name}: the test split, on which a run reports its accuracy, holds no examples"
        )
    train = arrays.get("train")
    if train and len(train[1]) < config.batch_size:
        raise TrainError(
            f"{name}: batch size {config.batch_size} exceeds the {len(train[1])} training examples"
        )
    return as_tensors(*arrays["test"]), train, classes
