"""The reference training run: the epoch loop with a checkpoint after each epoch, resumable,
and what a run leaves (metrics, TensorBoard scalars, charts, SavedModel, summary)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mnist_data.fs import write_json_atomic
from mnist_data.sources.source import Source, resolve_source
from pipelines.training import run_dir as rd
from pipelines.training import setup, step
from pipelines.training.config import TrainConfig, TrainError
from pipelines.training.setup import State


def train(
    config: TrainConfig,
    data: str | os.PathLike | Source,
    out: str | os.PathLike,
    *,
    format: str | None = None,
    resume: bool = False,
    progress: bool = True,
    on_epoch: Callable[[dict], Any] | None = None,
) -> dict:
    """Train `config` on `data` into run directory `out`; return the summary."""
    import tensorflow as tf

    out = Path(out)
    with rd.claimed(out):
        source = resolve_source(data)  # a run in use is refused before any download
        latest = tf.train.latest_checkpoint(str(out / rd.CHECKPOINTS))
        done = int(latest.rsplit("-", 1)[1]) if latest else 0  # checkpoints are numbered by epoch
        rd.check_start(config, out, source, resume, done)  # before the data is read
        if resume and not latest and list((out / rd.CHECKPOINTS).glob("ckpt-*.index")):
            raise TrainError(
                f"{out / rd.CHECKPOINTS / 'checkpoint'}: missing or damaged, so the run's "
                "checkpoints cannot be found; starting over would overwrite them"
            )
        setup.use_op_threads(config.op_threads)  # in effect only if TensorFlow has not started
        state = step.create_state(config, source, format)
        rd.check_classes(out, resume, state.classes)
        write_json_atomic(out / rd.CONFIG, rd.record(config, source, format, state.classes))
        manager = tf.train.CheckpointManager(state.checkpoint, str(out / rd.CHECKPOINTS), 2)
        history: list[dict] = []
        if resume and latest:
            step.restore(state, latest, partial=False)
            history = rd.read_history(out, int(state.epoch.numpy()))
        writer = tf.summary.create_file_writer(str(out / rd.TENSORBOARD))
        while int(state.epoch.numpy()) < config.epochs and step.steps_left(state) > 0:
            record = _run_epoch(state, int(state.epoch.numpy()), progress)
            history.append(record)
            _summarise(writer, record)
            state.epoch.assign(record["epoch"])
            write_json_atomic(out / rd.METRICS, {"epochs": history})
            manager.save(checkpoint_number=record["epoch"])
            if on_epoch is not None:
                on_epoch(record)
        writer.close()
        _write_outputs(state, out, history, rd.shown_names(state.classes))
        summary = _summary(config, history, state.device) | {"data": rd.portable_data(source)}
        write_json_atomic(out / rd.SUMMARY, summary)
        return summary


def _run_epoch(state: State, epoch: int, progress: bool) -> dict:
    """Train and evaluate one epoch; print its line; return its record."""
    from tqdm import tqdm

    bar = tqdm(
        total=state.steps_per_epoch,
        desc=f"epoch {epoch + 1}/{state.config.epochs}",
        unit="step",
        disable=not (progress and sys.stderr.isatty()),  # no carriage returns into a log
        leave=False,
    )
    started = time.perf_counter()
    loss, train_acc, examples = step.train_epoch(state, epoch, bar.update)
    seconds = time.perf_counter() - started
    bar.close()
    test_loss, test_acc = step.evaluate(state)
    print(
        f"epoch {epoch + 1:3d}  loss {loss:.4f}  train {train_acc:.4f}  test {test_acc:.4f}  "
        f"{seconds:6.1f} s  {examples / seconds:9.0f} ex/s",
        flush=True,
    )
    record = dict(epoch=epoch + 1, step=int(state.optimizer.iterations.numpy()), loss=loss)
    record |= dict(train_accuracy=train_acc, test_loss=test_loss, test_accuracy=test_acc)
    return record | dict(seconds=seconds, examples_per_second=examples / seconds)


def _write_outputs(state: State, out: Path, history: list[dict], names: Any) -> None:
    """The charts and the SavedModel of a finished run."""
    from pipelines.training import reports
    from pipelines.training.export import export_saved_model

    title = f"{state.config.model} / {state.config.preset}"
    reports.save_png(reports.curves_figure(history, title), out / rd.CURVES)
    step.sync_eval_model(state)
    images, labels = state.test[0][:64], state.test[1][:64]
    predicted = np.argmax(state.eval_model(images, training=False), -1)
    pixels = np.round(images.numpy().reshape(-1, 28, 28) * 255).astype(np.uint8)
    figure = reports.predictions_figure(pixels, labels.numpy(), predicted, names)
    reports.save_png(figure, out / rd.PREDICTIONS)
    export_saved_model(state.eval_model, out / rd.SAVED_MODEL)


def _summarise(writer: Any, record: dict) -> None:
    """TensorBoard scalars via the core op (tf.summary.scalar needs the tensorboard package)."""
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    scalars = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
    ).SerializeToString()
    with writer.as_default(step=record["epoch"]):
        for name in ("loss", "train_accuracy", "test_loss", "test_accuracy", "examples_per_second"):
            tf.summary.write(name, tf.constant(record[name], tf.float32), metadata=scalars)
    writer.flush()


def _summary(config: TrainConfig, history: list[dict], device: str) -> dict:
    last = history[-1] if history else {}
    seconds = sum(r["seconds"] for r in history)
    examples = sum(r["examples_per_second"] * r["seconds"] for r in history)
    summary = dict(model=config.model, preset=config.preset, epochs=len(history))
    summary |= dict(steps=last.get("step", 0), batch_size=config.batch_size)
    summary |= {key: last.get(key) for key in ("test_accuracy", "train_accuracy", "loss")}
    summary |= dict(train_seconds=seconds, examples_per_second=seconds and examples / seconds)
    return summary | dict(device=device, xla=config.xla, seed=config.seed)
