"""The compiled step, the epoch loop and evaluation over a run's `State`. One call of a compiled
loop runs `steps_per_call` steps, on one pipeline element stacking that many batches or on the
split resident on the device."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from mnist_data.sources.source import Source
from pipelines.training import setup
from pipelines.training.config import TrainConfig, TrainError
from pipelines.training.models import build_model, kernels
from pipelines.training.setup import State


def create_state(
    config: TrainConfig,
    source: Source,
    format: str | None = None,
    *,
    need_train: bool = True,
    classes: list[str] | None = None,
) -> State:
    """Read the data, build the models (one output for each of `classes`, by default the data's)
    and optimizer, and compile the step and loops."""
    import keras
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config

    keras.utils.set_random_seed(config.seed)
    # XLA has no deterministic kernels for some gradients (MaxPoolGrad); TF exports only "enable"
    determinism = config.deterministic and not config.xla
    (tf_config.enable_op_determinism if determinism else tf_config.disable_op_determinism)()
    strategy, device = setup.local_devices()
    on_gpu = bool(tf.config.list_physical_devices("GPU"))
    mixed = on_gpu if config.mixed_precision is None else config.mixed_precision
    single = strategy.num_replicas_in_sync == 1
    test, train, classes = setup.read_data(config, source, format, need_train, classes)
    steps = len(train[1]) // config.batch_size if train else 1
    resident = None
    if train and single and (on_gpu if config.resident is None else config.resident):
        resident = setup.as_tensors(*train)
    dtype = "mixed_bfloat16" if mixed else None
    state = State(config, strategy, device, dtype, test, train, resident, steps, classes)
    with strategy.scope():
        state.model = build_model(config.model, config.preset, len(classes), dtype=dtype)
        state.eval_model = build_model(config.model, config.preset, len(classes), dtype=dtype)
        state.optimizer = setup.make_optimizer(config, steps)
        state.optimizer.build(state.model.trainable_variables)
        state.ema = [tf.Variable(v, trainable=False) for v in state.model.trainable_variables]
        state.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    # Keras does not track dropout's seed-generator state for tf.train.Checkpoint; without it a
    # resumed run would draw different dropout masks than an uninterrupted one.
    variables = dict(model=state.model, optimizer=state.optimizer, ema=state.ema)
    variables |= dict(epoch=state.epoch, state=list(state.model.non_trainable_variables))
    state.checkpoint = tf.train.Checkpoint(**variables)
    state.step = tf.function(functools.partial(_replica_step, state), jit_compile=config.xla)
    state.eval = tf.function(functools.partial(_eval_batch, state), jit_compile=config.xla)
    state.run_steps = tf.function(functools.partial(_steps_on_element, state))
    state.run_resident_steps = tf.function(functools.partial(_steps_resident, state))
    return state


def _replica_step(state: State, images: Any, labels: Any) -> tuple[Any, Any]:
    import tensorflow as tf

    variables = state.model.trainable_variables
    with tf.GradientTape() as tape:
        logits = tf.cast(state.model(images, training=True), tf.float32)
        per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        loss = tf.reduce_sum(per_example) / state.config.batch_size
        if state.config.l2:
            penalty = tf.add_n(
                [tf.nn.l2_loss(tf.cast(k, tf.float32)) for k in kernels(state.model)]
            )
            loss += state.config.l2 * penalty / state.replicas
    state.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    if state.replicas == 1:  # inside the compiled step, where XLA fuses it
        update_averages(state)
    return tf.reduce_sum(per_example), _hits(logits, labels)


def _hits(logits: Any, labels: Any) -> Any:
    import tensorflow as tf

    hits = tf.equal(tf.argmax(logits, -1, output_type=tf.int32), tf.cast(labels, tf.int32))
    return tf.reduce_sum(tf.cast(hits, tf.float32))


def one_step(state: State, images: Any, labels: Any) -> tuple[Any, Any]:
    """One step on a batch (replica r on its r-th share) plus the EMA update; summed loss and
    hits (in tf.function)."""
    import tensorflow as tf

    strategy, count, size = state.strategy, state.replicas, state.config.batch_size

    def share(rows: Any) -> Any:  # replica r takes the r-th share, as even as the size allows
        def of_replica(context: Any) -> Any:
            r = context.replica_id_in_sync_group
            with tf.device(rows.device):  # sliced where the batch is, copied share by share
                return rows[size * r // count : size * (r + 1) // count]

        return strategy.experimental_distribute_values_from_function(of_replica)

    if count > 1:
        images, labels = share(images), share(labels)
    loss, hits = strategy.run(state.step, (images, labels))
    loss = strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
    hits = strategy.reduce(tf.distribute.ReduceOp.SUM, hits, axis=None)
    if count > 1:  # mirrored averages are updated across replicas
        update_averages(state)
    return loss, hits


def update_averages(state: State) -> None:
    """The moving averages of the weights, decay tied to the global step the classic way."""
    import tensorflow as tf

    if state.config.ema_decay is None:
        return
    step = tf.cast(state.optimizer.iterations, tf.float32)
    decay = tf.minimum(state.config.ema_decay, (1.0 + step) / (10.0 + step))
    for average, value in zip(state.ema, state.model.trainable_variables):
        average.assign(decay * average + (1.0 - decay) * tf.cast(value, average.dtype))


def _steps_on_element(state: State, images: Any, labels: Any, steps: Any) -> tuple[Any, Any]:
    """Train on the first `steps` of the batches stacked in one pipeline element. Taking the
    element as an argument, not from an iterator inside the loop, keeps tf.data's hand-over
    (about 100 us on a CPU) out of the steps: one per call."""
    import tensorflow as tf

    size, loss_sum, hit_sum = state.config.batch_size, tf.constant(0.0), tf.constant(0.0)
    for index in tf.range(steps):
        with tf.device("/cpu:0"):  # where the element is: no device copies all of it
            rows = slice(index * size, (index + 1) * size)
            batch = images[rows], labels[rows]
        loss, hits = one_step(state, *batch)
        loss_sum, hit_sum = loss_sum + loss, hit_sum + hits
    return loss_sum, hit_sum


def _steps_resident(state: State, order: Any, first: Any, steps: Any) -> tuple[Any, Any]:
    """Train `steps` batches of the resident split, taken in `order` from batch `first` on."""
    import tensorflow as tf

    size, (images, labels) = state.config.batch_size, state.resident
    loss_sum, hit_sum = tf.constant(0.0), tf.constant(0.0)
    for i in tf.range(first, first + steps):
        index = order[i * size : (i + 1) * size]
        loss, hits = one_step(state, tf.gather(images, index), tf.gather(labels, index))
        loss_sum, hit_sum = loss_sum + loss, hit_sum + hits
    return loss_sum, hit_sum


def steps_left(state: State) -> int:
    """Steps until max_steps (a large number without one); 0 or less once it is reached."""
    done = int(state.optimizer.iterations.numpy())
    return state.config.max_steps - done if state.config.max_steps else 1 << 62


def train_epoch(
    state: State, epoch: int, on_steps: Callable[[int], Any] = lambda n: None
) -> tuple[float, float, int]:
    """Run one epoch (or until max_steps); mean loss, train accuracy, examples seen."""
    import tensorflow as tf

    from pipelines.input.dataset import dataset_from_arrays

    config, total, per_call = state.config, state.steps_per_epoch, state.config.steps_per_call
    if state.resident:
        keys = tf.random.stateless_uniform([len(state.train[1])], seed=[config.seed, epoch])
        order = tf.argsort(keys)

        def call(done: int, k: int) -> Any:
            return state.run_resident_steps(order, tf.constant(done), tf.constant(k))
    else:  # an element per call, stacking its batches; the epoch's last holds the remainder
        batches = dataset_from_arrays(
            *state.train,
            config.batch_size * per_call,
            shuffle=True,
            seed=config.seed * 1009 + epoch,
        )
        iterator = iter(batches)

        def call(done: int, k: int) -> Any:
            return state.run_steps(*next(iterator), tf.constant(k))

    steps, loss_sum, hit_sum = 0, 0.0, 0.0
    while steps < total and steps_left(state) > 0:
        k = min(per_call, steps_left(state), total - steps)
        loss, hits = call(steps, k)
        steps, loss_sum, hit_sum = steps + k, loss_sum + float(loss), hit_sum + float(hits)
        on_steps(k)
    examples = steps * config.batch_size
    return loss_sum / max(examples, 1), hit_sum / max(examples, 1), examples


def sync_eval_model(state: State) -> None:
    """Load the weights evaluation uses (the moving averages, when the preset keeps them)."""
    source = state.ema if state.config.ema_decay is not None else state.model.trainable_variables
    for target, value in zip(state.eval_model.trainable_variables, source):
        target.assign(value)


def _eval_batch(state: State, images: Any, labels: Any) -> tuple[Any, Any]:
    import tensorflow as tf

    logits = tf.cast(state.eval_model(images, training=False), tf.float32)
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return tf.reduce_sum(loss), _hits(logits, labels)


def evaluate(state: State) -> tuple[float, float]:
    """Mean loss and accuracy on the whole test split, with the evaluation weights."""
    sync_eval_model(state)
    (images, labels), size = state.test, state.config.eval_batch_size
    loss_sum = hit_sum = 0.0
    for start in range(0, int(images.shape[0]), size):
        loss, hits = state.eval(images[start : start + size], labels[start : start + size])
        loss_sum, hit_sum = loss_sum + float(loss), hit_sum + float(hits)
    return loss_sum / int(images.shape[0]), hit_sum / int(images.shape[0])


def restore(state: State, checkpoint: str, *, partial: bool) -> None:
    """Load `checkpoint` into `state`; TrainError naming it if damaged or another model's."""
    import tensorflow as tf

    try:
        status = state.checkpoint.restore(checkpoint)
        status.expect_partial() if partial else status.assert_existing_objects_matched()
    except (tf.errors.OpError, ValueError, IndexError, AssertionError) as exc:
        why = " ".join(str(getattr(exc, "message", exc)).split())[:300]
        raise TrainError(
            f"{checkpoint}: cannot restore this run's checkpoint, damaged or another model's "
            f"({why})"
        ) from None
