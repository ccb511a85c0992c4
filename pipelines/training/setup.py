"""A run's `State` and what sets it up: TensorFlow's threads and devices, the data, the
optimizer."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

import pipelines
from mnist_data.errors import DatasetError
from mnist_data.sources.source import Source
from pipelines.training.config import TrainConfig, TrainError
from pipelines.training.models import CLASSES


def use_op_threads(count: int | None) -> bool:
    """Run TensorFlow's ops on `count` threads; whether in effect (only before TF's first op).
    Why: a model of tiny ops steps faster on one thread, and leaves the other cores to tf.data."""
    import tensorflow as tf

    threads = tf.config.threading
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


def as_tensors(dataset: Any, what: str = "the dataset") -> tuple[Any, Any]:
    """Every batch of a finite dataset as two tensors; TrainError naming `what` if empty."""
    import tensorflow as tf

    batches = list(dataset)
    if not batches:
        raise TrainError(f"{what} holds no examples")
    images, labels = zip(*batches)
    return tf.concat(images, 0), tf.concat(labels, 0)


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


def check_examples(data: Any, split: str, shape: tuple, labels: Any) -> None:
    """DatasetError for images the models cannot take, or labels past their 10 outputs (sets
    converted with --num-classes would train on NaN losses, not fail)."""
    if tuple(shape) != (28, 28):
        raise DatasetError(
            f"{data}: {split} images are {'x'.join(map(str, shape))}; "
            "the reference models take 28x28"
        )
    top = int(np.max(labels)) if len(labels) else 0
    if top >= CLASSES:
        raise DatasetError(
            f"{data}: {split} labels go up to {top}; the reference models have {CLASSES} outputs "
            f"(classes 0..{CLASSES - 1})"
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
    fetch: int  # batches the pipeline hands over stacked in one element
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


def read_data(config: TrainConfig, source: Source, format: str | None, need_train: bool) -> tuple:
    """The test split as tensors, and the train split as arrays (None if not `need_train`)."""
    from pipelines.input.readers import read_arrays

    name = os.fspath(source)
    test = as_tensors(
        pipelines.make_dataset(
            source, "test", config.eval_batch_size, format=format, shuffle=False
        ),
        f"{name}: the test split, on which a run reports its accuracy,",
    )
    check_examples(name, "test", test[0].shape[1:3], test[1].numpy())
    if not need_train:
        return test, None
    train = read_arrays(source, "train", format=format)
    check_examples(name, "train", train[0].shape[1:3], train[1])
    if len(train[1]) < config.batch_size:
        raise TrainError(
            f"{name}: batch size {config.batch_size} exceeds the {len(train[1])} training examples"
        )
    return test, train
