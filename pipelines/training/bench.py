"""Training throughput of one model fed several ways, in one process: (a) our pipeline into our
compiled loop, (b) one synthetic batch reused, (b') distinct synthetic batches beyond the caches,
(c) Keras `model.fit`, (d) the split resident on the device. Headline ratios: (a)/(b'), (a)/(d),
(a)/(c). Methods alternate round by round and the best round counts: the machines are noisy."""

from __future__ import annotations

import gc
import math
import os
import time
from collections.abc import Callable
from typing import Any

from mnist_data.checks import check_whole
from mnist_data.sources.source import resolve_source
from pipelines.training import setup, step
from pipelines.training.config import TrainError, get_config
from pipelines.training.models import build_model
from pipelines.training.setup import State

FRESH_BYTES = 96 << 20  # distinct synthetic batches for (b'): more than the last-level caches hold
# Targets of the headline ratios (a)/(b') and (a)/(d) on a 2-core CPU, and of (a)/(c) per model.
TARGETS = {"synthetic_fresh": 0.85, "resident": 0.95}
KERAS_FIT_TARGETS = {"softmax": 5.0, "mlp": 1.5, "lenet": 1.2}


def _keras_fit(state: State, dataset: Any) -> Callable[[int], Any]:
    """(c): Keras fit with the preset's model and optimizer (no L2, no averages)."""
    import keras

    config = state.config
    model = build_model(config.model, config.preset, len(state.classes), dtype=state.dtype)
    optimizer = setup.make_optimizer(config, state.steps_per_epoch)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    # The stream shuffles; fit's result is ready when it returns.
    return lambda k: model.fit(dataset, epochs=1, steps_per_epoch=k, verbose=0, shuffle=False)


def _chunked(call: Callable[[int], Any], per_call: int) -> Callable[[int], None]:
    """`steps -> None` running `call` on at most `per_call` steps at a time, waiting for each."""

    def run(steps: int) -> None:
        for start in range(0, steps, per_call):
            float(call(min(per_call, steps - start)))  # float() waits for the result

    return run


def _synthetic(state: State, batches: int, per_call: int) -> Callable[[int], Any]:
    """(b) and (b'): the loop over `batches` random batches held in memory, taken in turn."""
    import tensorflow as tf

    size = state.config.batch_size
    images = tf.random.uniform([batches * size, 28, 28, 1])
    labels = tf.random.uniform([batches * size], 0, 10, tf.int32)

    def add_step(total: Any, i: Any) -> Any:
        rows = slice((i % batches) * size, (i % batches + 1) * size)
        return total + step.one_step(state, images[rows], labels[rows])[0]

    loop = tf.function(lambda n: tf.foldl(add_step, tf.range(n), tf.constant(0.0)))
    return _chunked(lambda k: loop(tf.constant(k)), per_call)


def _resident(resident: State, per_call: int) -> Callable[[int], Any]:
    """(d): the loop over the split resident on the device, walking a shuffled order."""
    import tensorflow as tf

    count, size = len(resident.train[1]), resident.config.batch_size
    order = tf.argsort(tf.random.stateless_uniform([count], seed=[resident.config.seed, 0]))
    order = tf.tile(order, [1 + math.ceil(per_call * size / count)])  # a call may run past the end
    position = [0]

    def run(k: int) -> Any:
        first, position[0] = position[0], (position[0] + k) % max(1, count // size)
        return resident.run_resident_steps(order, tf.constant(first), tf.constant(k))[1]

    return _chunked(run, per_call)


def _best_seconds(
    methods: dict[str, Callable[[int], Any]], steps: int, repeat: int, warm_up: int
) -> dict[str, float]:
    """Each method's best time for `steps` over `repeat` rounds, after a warm-up round."""
    best = {name: math.inf for name in methods}
    for round in range(repeat + 1):
        for name, run in methods.items():
            gc.collect()  # untimed: frees fit's done iterators, whose prefetch threads steal cores
            started = time.perf_counter()
            run(steps if round else warm_up)
            if round:
                best[name] = min(best[name], time.perf_counter() - started)
    return best


def bench_train(
    model: str,
    data: str | os.PathLike = "mnist-sample",
    *,
    batch_size: int = 128,
    steps: int = 400,
    repeat: int = 3,
    format: str | None = None,
    xla: bool | None = None,
) -> dict:
    """Images/s of each method and the headline ratios, with the modern preset's step."""
    import tensorflow as tf

    import pipelines

    for name, value in (("steps", steps), ("repeat", repeat)):
        check_whole(name, value, 1, error=TrainError)
    # calls of at most 96 steps, as even as `steps` allows: each takes a whole element
    per_call, source = -(-steps // -(-steps // 96)), resolve_source(data)
    config = get_config(
        model, "modern", batch_size=batch_size, resident=False, steps_per_call=per_call, xla=xla
    )
    state = step.create_state(config, source, format)
    per_call = min(per_call, state.steps_per_epoch)  # an element holds at most an epoch
    kw = dict(format=format, epochs=None, shuffle=True, seed=config.seed, drop_remainder=True)
    # an element of per_call batches a call, as the trainer takes steps_per_call; every
    # method runs calls of the same size
    iterator = iter(pipelines.make_dataset(source, "train", batch_size * per_call, **kw))
    methods: dict[str, Callable[[int], Any]] = {
        "pipeline": _chunked(
            lambda k: state.run_steps(*next(iterator), tf.constant(k))[1], per_call
        ),
        "synthetic": _synthetic(state, 1, per_call),
        "synthetic_fresh": _synthetic(
            state, max(2, FRESH_BYTES // (batch_size * 784 * 4)), per_call
        ),
        "keras_fit": _keras_fit(state, pipelines.make_dataset(source, "train", batch_size, **kw)),
    }
    if state.replicas == 1:  # a split is resident on one device only
        methods["resident"] = _resident(
            step.create_state(config.replace(resident=True), source, format), per_call
        )
    best = _best_seconds(methods, steps, repeat, warm_up=per_call)
    result: dict[str, Any] = dict(model=model, data=os.fspath(data), batch_size=batch_size)
    result |= dict(steps=steps, repeat=repeat, xla=config.xla, device=state.device)
    result |= {f"{name}_images_per_second": steps * batch_size / t for name, t in best.items()}
    result |= {f"pipeline_vs_{name}": t / best["pipeline"] for name, t in list(best.items())[1:]}
    targets = {**TARGETS, "keras_fit": KERAS_FIT_TARGETS[model]}  # (a)/(b) has none: see above
    headline = {f"pipeline_vs_{name}": t for name, t in targets.items() if name in methods}
    return result | dict(headline_targets=headline)


def format_report(result: dict) -> str:
    """Images/s per method, the headline ratios against their targets, and (a)/(b) apart."""
    lines = [
        f"{result['model']}, batch {result['batch_size']}, {result['steps']} steps x best of "
        f"{result['repeat']}, {result['data']}, {result['device']}"
        + (", XLA" if result.get("xla") else "")
    ]
    for name in ("pipeline", "synthetic", "synthetic_fresh", "keras_fit", "resident"):
        if f"{name}_images_per_second" in result:
            lines.append(f"  {name:15s} {result[f'{name}_images_per_second']:12,.0f} images/s")
    lines.append("  headline:")
    for key, target in result["headline_targets"].items():
        met = "met" if result[key] >= target else "not met"
        name = "pipeline / " + key.removeprefix("pipeline_vs_").replace("_", " ")
        lines.append(f"  {name:27s} {result[key]:6.3f}  target >= {target:g}, {met}")
    lines.append("  reference only (one batch reused stays in the L2 cache; no fresh input can):")
    lines.append(f"  {'pipeline / synthetic':27s} {result['pipeline_vs_synthetic']:6.3f}")
    return "\n".join(lines)
