"""The state of one training run (model, optimizer, EMA, checkpoint) and its compiled step loops.

Kept apart from train.py so that the benchmark drives exactly the loop training uses.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

import pipelines
from mnist_data.errors import DatasetError
from pipelines.config import TrainConfig, TrainError
from pipelines.models import CLASSES, build_model, kernels


def use_op_threads(count: int | None) -> bool:
    """Run TensorFlow's ops on `count` threads (inter- and intra-op) for the rest of the process.

    Why: a model of tiny ops steps faster on one thread than on several, and leaves the other
    cores to tf.data. TensorFlow fixes its thread pools when it starts, so this takes effect
    only before its first op (a command line calls it first); returns whether it is in effect.
    """
    import tensorflow as tf

    threading = tf.config.threading
    if not count:
        return False
    if (
        threading.get_inter_op_parallelism_threads()
        == threading.get_intra_op_parallelism_threads()
        == count
    ):
        return True
    try:
        threading.set_inter_op_parallelism_threads(count)
        threading.set_intra_op_parallelism_threads(count)
    except RuntimeError:  # TensorFlow has started: its pools stay as they are
        return False
    return True


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


def set_op_determinism(enabled: bool) -> None:
    """Turn op determinism on or off for the process. XLA has no deterministic kernels for some
    gradients (MaxPoolGrad), so XLA runs switch it off; TF exports only the switch-on half."""
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config

    if enabled:
        tf.config.experimental.enable_op_determinism()
    else:
        tf_config.disable_op_determinism()


def as_tensors(dataset: Any, what: str = "the dataset") -> tuple[Any, Any]:
    """Concatenate every batch of a finite dataset into two tensors (images, labels); TrainError
    naming `what` if it holds no example."""
    import tensorflow as tf

    batches = list(dataset)
    if not batches:
        raise TrainError(f"{what} holds no examples")
    images, labels = zip(*batches)
    return tf.concat(images, 0), tf.concat(labels, 0)


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> Any:
    """The preset's optimizer and LR schedule (per-epoch staircase, or cosine over the run)."""
    import keras

    total = config.max_steps or config.epochs * steps_per_epoch
    rate: Any = config.learning_rate
    if config.schedule == "staircase":
        rate = keras.optimizers.schedules.ExponentialDecay(
            config.learning_rate, steps_per_epoch, config.decay_rate, staircase=True
        )
    elif config.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(config.learning_rate, max(total, 1))
    if config.optimizer == "adam":
        return keras.optimizers.Adam(rate)
    return keras.optimizers.SGD(rate)


def _check_digit_shape(data: Any, split: str, shape: tuple) -> None:
    if tuple(shape) != (28, 28):
        raise DatasetError(
            f"{data}: {split} images are {'x'.join(map(str, shape))}; "
            "the reference models take 28x28"
        )


def _check_classes(data: Any, split: str, labels: Any) -> None:
    """DatasetError for labels the models' 10 outputs cannot stand for (sets with more classes,
    converted with --num-classes): they would train on NaN losses, not fail."""
    top = int(np.max(labels)) if len(labels) else 0
    if top >= CLASSES:
        raise DatasetError(
            f"{data}: {split} labels go up to {top}; the reference models have {CLASSES} outputs "
            f"(classes 0..{CLASSES - 1})"
        )


class Trainer:
    """Model, optimizer, averaged weights and epoch counter of a run, plus its compiled loops."""

    def __init__(
        self,
        config: TrainConfig,
        data: str | os.PathLike,
        format: str | None = None,
        *,
        need_train: bool = True,
    ) -> None:
        import keras
        import tensorflow as tf

        self.config, self.data, self.format = config, data, format
        keras.utils.set_random_seed(config.seed)
        set_op_determinism(config.deterministic and not config.xla)
        self.strategy, self.device = local_devices()
        on_gpu = bool(tf.config.list_physical_devices("GPU"))
        mixed = on_gpu if config.mixed_precision is None else config.mixed_precision
        self.dtype = dtype = "mixed_bfloat16" if mixed else None
        single = self.strategy.num_replicas_in_sync == 1
        self.resident = single and (on_gpu if config.resident is None else config.resident)
        self.global_batch = config.batch_size
        # Stacked batches are sliced on one replica only; several replicas take one batch a time.
        self.fetch = (
            max(1, min(config.batches_per_fetch, config.steps_per_call))
            if self.strategy.num_replicas_in_sync == 1
            else 1
        )
        self.test_images, self.test_labels = as_tensors(
            pipelines.make_dataset(
                data, "test", config.eval_batch_size, format=format, shuffle=False
            ),
            f"{data}: the test split, on which a run reports its accuracy,",
        )
        _check_digit_shape(data, "test", tuple(self.test_images.shape[1:3]))
        _check_classes(data, "test", self.test_labels.numpy())
        self.steps_per_epoch = 1
        if need_train:
            self._prepare_train_data()
            self.fetch = min(
                self.fetch, max(1, self.steps_per_epoch)
            )  # every epoch fills an element
        with self.strategy.scope():
            self.model = build_model(config.model, config.preset, dtype=dtype)
            self.eval_model = build_model(config.model, config.preset, dtype=dtype)
            self.optimizer = make_optimizer(config, self.steps_per_epoch)
            self.optimizer.build(self.model.trainable_variables)
            self.ema = [tf.Variable(v, trainable=False) for v in self.model.trainable_variables]
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        # Keras does not track dropout's seed-generator state for tf.train.Checkpoint; without it a
        # resumed run would draw different dropout masks than an uninterrupted one.
        self.checkpoint = tf.train.Checkpoint(
            model=self.model,
            optimizer=self.optimizer,
            ema=self.ema,
            epoch=self.epoch,
            state=list(self.model.non_trainable_variables),
        )
        self._step = tf.function(self._replica_step, jit_compile=config.xla)
        self._eval = tf.function(self._eval_batch, jit_compile=config.xla)
        self.run_steps = tf.function(self._steps_from_iterator)
        self.run_resident_steps = tf.function(self._steps_resident)

    # -- data ---------------------------------------------------------------------------------
    def train_dataset(self, epoch: int) -> Any:
        """This epoch's batches, `self.fetch` stacked per element (the last element may hold fewer
        and a remainder); the seed depends on the epoch so a resumed run sees the same order."""
        from pipelines.input.dataset import dataset_from_arrays

        return dataset_from_arrays(
            *self.train_arrays,
            self.global_batch * self.fetch,
            shuffle=True,
            seed=self.config.seed * 1009 + epoch,
            drop_remainder=self.fetch == 1,
        )

    def _prepare_train_data(self) -> None:
        """Read the train split once; every epoch's dataset is built from these arrays."""
        from pipelines.input.dataset import dataset_from_arrays, read_arrays

        self.train_arrays = read_arrays(self.data, "train", format=self.format)
        count = len(self.train_arrays[1])
        _check_digit_shape(self.data, "train", self.train_arrays[0].shape[1:3])
        _check_classes(self.data, "train", self.train_arrays[1])
        self.steps_per_epoch = count // self.global_batch
        if self.steps_per_epoch == 0:
            raise TrainError(
                f"{self.data}: batch size {self.global_batch} exceeds the {count} training examples"
            )
        if self.resident:
            self.train_images, self.train_labels = as_tensors(
                dataset_from_arrays(*self.train_arrays, 10_000, shuffle=False)
            )

    def _replica_step(self, images: Any, labels: Any) -> tuple[Any, Any]:
        import tensorflow as tf

        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            logits = tf.cast(self.model(images, training=True), tf.float32)
            per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=labels, logits=logits
            )
            loss = tf.reduce_sum(per_example) / self.global_batch
            if self.config.l2:
                penalty = tf.add_n(
                    [tf.nn.l2_loss(tf.cast(k, tf.float32)) for k in kernels(self.model)]
                )
                loss += self.config.l2 * penalty / self.strategy.num_replicas_in_sync
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        if self.strategy.num_replicas_in_sync == 1:  # inside the compiled step, where XLA fuses it
            self._update_averages()
        hits = tf.equal(tf.argmax(logits, -1, output_type=tf.int32), tf.cast(labels, tf.int32))
        return tf.reduce_sum(per_example), tf.reduce_sum(tf.cast(hits, tf.float32))

    def one_step(self, images: Any, labels: Any) -> tuple[Any, Any]:
        """One step on every replica plus the EMA update; summed loss and hits (in tf.function)."""
        import tensorflow as tf

        loss, hits = self.strategy.run(self._step, (images, labels))
        loss = self.strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
        hits = self.strategy.reduce(tf.distribute.ReduceOp.SUM, hits, axis=None)
        if self.strategy.num_replicas_in_sync > 1:  # mirrored averages are updated across replicas
            self._update_averages()
        return loss, hits

    def _update_averages(self) -> None:
        """The moving averages of the weights, decay tied to the global step the classic way."""
        import tensorflow as tf

        if self.config.ema_decay is None:
            return
        step = tf.cast(self.optimizer.iterations, tf.float32)
        decay = tf.minimum(self.config.ema_decay, (1.0 + step) / (10.0 + step))
        for average, value in zip(self.ema, self.model.trainable_variables):
            average.assign(decay * average + (1.0 - decay) * tf.cast(value, average.dtype))

    def _steps_from_iterator(
        self, iterator: Any, fetches: Any, room: Any, limit: Any
    ) -> tuple[Any, Any, Any]:
        """Train on the batches of `fetches` pipeline elements, at most `limit` steps.

        Each element stacks `self.fetch` batches; `room` is how many full batches the epoch
        still holds (its last element may hold fewer than `fetch`, plus a remainder that is
        skipped). Plain next(): callers ask for no more elements than the epoch holds.
        """
        import tensorflow as tf

        size = self.global_batch
        done, loss_sum, hit_sum = tf.constant(0), tf.constant(0.0), tf.constant(0.0)
        for _ in tf.range(fetches):
            images, labels = next(iterator)
            if self.fetch == 1:
                loss, hits = self.one_step(images, labels)
                done, loss_sum, hit_sum = done + 1, loss_sum + loss, hit_sum + hits
            else:
                for j in tf.range(tf.minimum(self.fetch, tf.minimum(room, limit) - done)):
                    loss, hits = self.one_step(
                        images[j * size : (j + 1) * size], labels[j * size : (j + 1) * size]
                    )
                    done, loss_sum, hit_sum = done + 1, loss_sum + loss, hit_sum + hits
        return done, loss_sum, hit_sum

    def _steps_resident(self, order: Any, first: Any, steps: Any) -> tuple[Any, Any, Any]:
        import tensorflow as tf

        done, loss_sum, hit_sum = tf.constant(0), tf.constant(0.0), tf.constant(0.0)
        size = self.global_batch
        for i in tf.range(first, first + steps):
            index = order[i * size : (i + 1) * size]
            loss, hits = self.one_step(
                tf.gather(self.train_images, index), tf.gather(self.train_labels, index)
            )
            done, loss_sum, hit_sum = done + 1, loss_sum + loss, hit_sum + hits
        return done, loss_sum, hit_sum

    def finished(self) -> bool:
        step = int(self.optimizer.iterations.numpy())
        return self.config.max_steps is not None and step >= self.config.max_steps

    def _chunk(self) -> int:
        step = int(self.optimizer.iterations.numpy())
        left = self.config.max_steps - step if self.config.max_steps else 1 << 30
        return max(0, min(self.config.steps_per_call, left))

    def train_epoch(
        self, epoch: int, on_steps: Callable[[int], Any] = lambda n: None
    ) -> tuple[float, float, int]:
        """Run one epoch (or until max_steps); return mean loss, train accuracy, examples seen."""
        import tensorflow as tf

        steps = loss_sum = hit_sum = 0.0
        if self.resident:
            n = int(self.train_images.shape[0])
            keys = tf.random.stateless_uniform([n], seed=[self.config.seed, epoch])
            order = tf.argsort(keys)
            while steps < self.steps_per_epoch and self._chunk():
                k = min(self._chunk(), self.steps_per_epoch - int(steps))
                done, loss, hits = self.run_resident_steps(
                    order, tf.constant(int(steps)), tf.constant(k)
                )
                steps, loss_sum, hit_sum = (
                    steps + int(done),
                    loss_sum + float(loss),
                    hit_sum + float(hits),
                )
                on_steps(int(done))
        else:
            iterator = iter(
                self.strategy.experimental_distribute_dataset(self.train_dataset(epoch))
            )
            per_call = max(
                self.fetch, self.config.steps_per_call // self.fetch * self.fetch
            )  # whole elements
            while steps < self.steps_per_epoch and self._chunk():
                k = min(per_call, self._chunk(), self.steps_per_epoch - int(steps))
                done, loss, hits = self.run_steps(
                    iterator,
                    tf.constant(-(-k // self.fetch)),
                    tf.constant(self.steps_per_epoch - int(steps)),
                    tf.constant(k),
                )
                steps, loss_sum, hit_sum = (
                    steps + int(done),
                    loss_sum + float(loss),
                    hit_sum + float(hits),
                )
                on_steps(int(done))
        examples = int(steps) * self.global_batch
        return loss_sum / max(examples, 1), hit_sum / max(examples, 1), examples

    # -- evaluation ---------------------------------------------------------------------------
    def sync_eval_model(self) -> None:
        """Load the weights evaluation uses (the moving averages, when the preset keeps them)."""
        source = self.ema if self.config.ema_decay is not None else self.model.trainable_variables
        for target, value in zip(self.eval_model.trainable_variables, source):
            target.assign(value)

    def _eval_batch(self, images: Any, labels: Any) -> tuple[Any, Any]:
        import tensorflow as tf

        logits = tf.cast(self.eval_model(images, training=False), tf.float32)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        hits = tf.equal(tf.argmax(logits, -1, output_type=tf.int32), tf.cast(labels, tf.int32))
        return tf.reduce_sum(loss), tf.reduce_sum(tf.cast(hits, tf.float32))

    def evaluate(self) -> tuple[float, float]:
        """Mean loss and accuracy on the whole test split, with the evaluation weights."""
        self.sync_eval_model()
        n, size = int(self.test_images.shape[0]), self.config.eval_batch_size
        loss_sum = hit_sum = 0.0
        for start in range(0, n, size):
            loss, hits = self._eval(
                self.test_images[start : start + size], self.test_labels[start : start + size]
            )
            loss_sum, hit_sum = loss_sum + float(loss), hit_sum + float(hits)
        return loss_sum / n, hit_sum / n

    def sample_predictions(self, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The first `count` test digits as uint8, their labels, and the predicted probabilities."""
        import tensorflow as tf

        self.sync_eval_model()
        images = self.test_images[:count]
        probabilities = tf.nn.softmax(tf.cast(self.eval_model(images, training=False), tf.float32))
        pixels = np.round(images.numpy().reshape(-1, 28, 28) * 255).astype(np.uint8)
        return pixels, self.test_labels[:count].numpy(), probabilities.numpy()
