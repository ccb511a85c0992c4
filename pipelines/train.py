"""The reference training loop: compiled multi-step calls, checkpoints every epoch, resumable.

One call of the compiled loop runs `steps_per_call` steps (from a tf.data iterator, or from
tensors resident on the device), so Python runs once per K steps, not once per step.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mnist_data.fs import (
    first_missing_folder,
    is_temp_name,
    locked,
    remove_empty_folders,
    write_json_atomic,
)
from pipelines.config import TrainConfig, TrainError, config_from_dict, get_config
from pipelines.trainer_parts import Trainer, use_op_threads

CHECKPOINTS = "checkpoints"
LOCK_FILE = ".mnist-data-train.lock"
CONFIG, METRICS, SUMMARY = "config.json", "metrics.json", "summary.json"
CURVES, PREDICTIONS, TENSORBOARD, SAVED_MODEL = (
    "curves.png",
    "predictions.png",
    "tensorboard",
    "saved_model",
)
EPOCH_KEYS = {
    "epoch",
    "step",
    "loss",
    "train_accuracy",
    "test_loss",
    "test_accuracy",
    "seconds",
    "examples_per_second",
}
RUN_FILES = (
    CONFIG,
    METRICS,
    SUMMARY,
    CURVES,
    PREDICTIONS,
    TENSORBOARD,
    SAVED_MODEL,
    CHECKPOINTS,
    LOCK_FILE,
)


def train(
    config: TrainConfig,
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    format: str | None = None,
    resume: bool = False,
    json_path: str | os.PathLike | None = None,
    progress: bool = True,
    on_epoch: Callable[[dict], Any] | None = None,
) -> dict:
    """Train `config` on `data` into run directory `out`; return the final summary.

    Writes RUN_DIR/{config.json, metrics.json, checkpoints/, tensorboard/, curves.png,
    predictions.png, saved_model/, summary.json}. With `resume`, continues from the last checkpoint
    (same config as saved).
    `on_epoch(record)` is called after each epoch's checkpoint is written. One run at a time may
    use RUN_DIR: a second is refused while the first holds its lock.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise TrainError(f"{out}: not a directory; --out names the run directory to create")
    if (
        out.is_dir()
        and not (out / CONFIG).is_file()
        and any(not is_temp_name(p) and p.name != LOCK_FILE for p in out.iterdir())
    ):
        raise TrainError(
            f"{out} holds other files but no training run; choose a new or empty directory"
        )
    created = first_missing_folder(out)  # the first folder this run makes
    out.mkdir(parents=True, exist_ok=True)
    with locked(out / LOCK_FILE, TrainError(f"{out} is in use by another training run")):
        try:
            return _train(config, data, out, format, resume, json_path, progress, on_epoch)
        except BaseException:
            if created is not None and not (out / CONFIG).exists():
                _remove_failed_start(out, created)
            raise


def _remove_failed_start(out: Path, created: Path) -> None:
    """Remove the run directory a failed start made (it holds the lock: no other run writes in it)
    and the folders above it that it made, as long as they are empty: another run may have put
    its own directory beside this one since."""
    shutil.rmtree(out, ignore_errors=True)
    remove_empty_folders(out.parent, created)


def resolve_run(
    out: str | os.PathLike,
    model: str,
    preset: str | None = None,
    *,
    resume: bool = False,
    data: str | os.PathLike | None = None,
    format: str | None = None,
    **overrides: Any,
) -> tuple[TrainConfig, str | os.PathLike, str | None]:
    """The config, data and format a run into `out` trains with: on `resume` of a recorded run,
    the run's own settings and data; else the preset's (modern by default). Non-None
    `overrides` (epochs, batch_size, seed, ...), `preset`, `data` and `format` win either way."""
    if resume and (Path(out) / CONFIG).is_file():
        config = load_run_config(Path(out)).replace(model=model, preset=preset, **overrides)
        if data is None:
            data, recorded_format = run_data(Path(out))
            format = format or recorded_format
    else:
        config = get_config(model, preset or "modern", **overrides)
    if data is None:
        raise TrainError(
            "--data is required (on --resume of a recorded run it defaults to the run's)"
        )
    return config, data, format


def _train(
    config: TrainConfig,
    data: str | os.PathLike,
    out: Path,
    format: str | None,
    resume: bool,
    json_path: str | os.PathLike | None,
    progress: bool,
    on_epoch: Callable[[dict], Any] | None,
) -> dict:
    import tensorflow as tf
    from tqdm import tqdm

    from pipelines import reports

    config = _settle_run_dir(config, out, resume)
    _check_resumed_data(out, data, format, resume)
    use_op_threads(config.op_threads)  # in effect only if TensorFlow has not started yet
    trainer = Trainer(config, data, format)
    recorded = {
        **dataclasses.asdict(config),
        "data": _portable(data),
        "format": format,  # evaluate's default
        "data_fingerprint": data_fingerprint(data),
    }
    write_json_atomic(out / CONFIG, recorded)
    manager = tf.train.CheckpointManager(trainer.checkpoint, str(out / CHECKPOINTS), max_to_keep=2)
    history: list[dict] = []
    if resume and not manager.latest_checkpoint and list((out / CHECKPOINTS).glob("ckpt-*.index")):
        raise TrainError(
            f"{out / CHECKPOINTS / 'checkpoint'}: missing or damaged, so the run's checkpoints "
            "cannot be found; starting over would overwrite them (train into another --out)"
        )
    if resume and manager.latest_checkpoint:
        _restore(trainer, manager.latest_checkpoint, partial=False)
        # metrics.json is written just before each checkpoint: drop an epoch it has ahead of it
        done = int(trainer.epoch.numpy())
        try:
            history = json.loads((out / METRICS).read_text())["epochs"][:done]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TrainError(
                f"{out / METRICS}: not readable as this run's metrics ({exc})"
            ) from None
        if len(history) != done or not all(
            isinstance(r, dict) and EPOCH_KEYS <= r.keys() for r in history
        ):
            raise TrainError(
                f"{out / METRICS}: does not hold the {done} epochs the checkpoint has done, "
                f"each with {', '.join(sorted(EPOCH_KEYS))}"
            )
    writer = tf.summary.create_file_writer(str(out / TENSORBOARD))
    while int(trainer.epoch.numpy()) < config.epochs and not trainer.finished():
        epoch = int(trainer.epoch.numpy())
        bar = tqdm(
            total=trainer.steps_per_epoch,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            unit="step",
            disable=not progress,
            leave=False,
        )
        started = time.perf_counter()
        loss, train_acc, examples = trainer.train_epoch(epoch, bar.update)
        seconds = time.perf_counter() - started
        bar.close()
        test_loss, test_acc = trainer.evaluate()
        record = {
            "epoch": epoch + 1,
            "step": int(trainer.optimizer.iterations.numpy()),
            "loss": loss,
            "train_accuracy": train_acc,
            "test_loss": test_loss,
            "test_accuracy": test_acc,
            "seconds": seconds,
            "examples_per_second": examples / seconds,
        }
        history.append(record)
        _summarise(writer, record)
        trainer.epoch.assign(epoch + 1)
        write_json_atomic(out / METRICS, {"epochs": history})
        manager.save(checkpoint_number=epoch + 1)
        print(
            f"epoch {epoch + 1:3d}  loss {loss:.4f}  train {train_acc:.4f}  test {test_acc:.4f}  "
            f"{seconds:6.1f} s  {record['examples_per_second']:9.0f} ex/s",
            flush=True,
        )
        if on_epoch is not None:
            on_epoch(record)
    writer.close()
    summary = {**_summary(config, history, trainer.device), "data": _portable(data)}
    images, labels, probabilities = trainer.sample_predictions(64)
    title = f"{config.model} / {config.preset}"
    reports.save_png(reports.curves_figure(history, title), out / CURVES)
    reports.save_png(
        reports.predictions_figure(
            images, labels, probabilities.argmax(-1), class_names_of_run(out)
        ),
        out / PREDICTIONS,
    )
    reports.export_saved_model(trainer.eval_model, out / SAVED_MODEL)
    write_json_atomic(out / SUMMARY, summary)
    if json_path:
        write_json_atomic(json_path, summary)
    return summary


def evaluate(
    run_dir: str | os.PathLike, data: str | os.PathLike | None = None, *, format: str | None = None
) -> dict:
    """Restore RUN_DIR's latest checkpoint and measure test accuracy as training did, on `data`
    (default: the data the run was trained on)."""
    import tensorflow as tf

    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    if data is None:
        data, recorded_format = run_data(run_dir)
        format = format or recorded_format
        _check_unchanged(run_dir, data, f"give --data {data} to evaluate on them as they are now")
    latest = tf.train.latest_checkpoint(str(run_dir / CHECKPOINTS))
    if latest is None:
        raise TrainError(f"{run_dir / CHECKPOINTS}: no checkpoint to evaluate")
    trainer = Trainer(config, data, format, need_train=False)
    _restore(trainer, latest, partial=True)
    test_loss, test_acc = trainer.evaluate()
    return {
        "run_dir": str(run_dir),
        "data": _portable(data),
        "model": config.model,
        "preset": config.preset,
        "epochs": int(trainer.epoch.numpy()),
        "checkpoint": latest,
        "test_loss": test_loss,
        "test_accuracy": test_acc,
        "device": trainer.device,
    }


def predict(
    run_dir: str | os.PathLike, images: list[str | os.PathLike], top: int = 1
) -> list[dict]:
    """Per image file, in the order given: `{"image", "predictions": [{"class", "probability",
    "name"?}]}` with its `top` likeliest classes (named for a dataset with class names), or
    `{"image", "error"}` for a file that cannot be read, so one bad file costs no other answers."""
    from pipelines.reports import read_digit

    serve = _serving(run_dir)
    names = class_names_of_run(Path(run_dir))
    digits, answers = [], []
    for path in images:
        try:
            digits.append(read_digit(path))
            answers.append({"image": os.fspath(path)})
        except TrainError as exc:
            answers.append({"image": os.fspath(path), "error": str(exc)})
    readable = iter(_probabilities(serve, digits))
    for answer in answers:
        if "error" not in answer:
            chances = next(readable)
            answer["predictions"] = [
                {
                    "class": int(c),
                    "probability": float(chances[c]),
                    **({"name": names[c]} if names else {}),
                }
                for c in chances.argsort()[::-1][:top]
            ]
    return answers


def class_probabilities(run_dir: str | os.PathLike, images: list[str | os.PathLike]) -> Any:
    """Every class's probability for each image file [N, classes], using RUN_DIR/saved_model;
    an unreadable file raises TrainError naming it."""
    from pipelines.reports import read_digit

    serve = _serving(run_dir)
    return _probabilities(serve, [read_digit(p) for p in images])


def _serving(run_dir: str | os.PathLike) -> Any:
    """RUN_DIR's SavedModel serving function, or a TrainError saying why there is none."""
    import tensorflow as tf

    path = Path(run_dir) / SAVED_MODEL
    if not path.is_dir():
        if tf.train.latest_checkpoint(str(Path(run_dir) / CHECKPOINTS)):
            raise TrainError(
                f"{path}: no SavedModel yet: the run stopped before its end; finish it with "
                f"`mnist-data train MODEL --data SRC --out {run_dir} --resume`"
            )
        raise TrainError(f"{path}: no SavedModel (train first)")
    try:
        return tf.saved_model.load(str(path)).signatures["serving_default"]
    except (
        Exception
    ) as exc:  # TensorFlow's errors for a damaged model are of many kinds, none names it
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainError(f"{path}: not a readable SavedModel (damaged?): {detail}") from None


def _probabilities(serve: Any, digits: list) -> Any:
    import numpy as np
    import tensorflow as tf

    batch = (
        np.stack(digits) if digits else np.zeros((0, 28, 28), np.uint8)
    )  # the model answers an empty batch
    return serve(images=tf.constant(batch))["probabilities"].numpy()


def class_names_of_run(run_dir: Path) -> tuple[str, ...] | None:
    """The class names of the catalog dataset a run was trained on, when they are not digits."""
    import mnist_data

    try:
        data, _ = run_data(run_dir)
    except (OSError, ValueError):
        return None
    names = mnist_data.class_names(data)
    return None if names is None or all(name.isdigit() for name in names) else names


def _data_exists(data: str) -> bool:
    from mnist_data.sources.catalog import CATALOG

    return data in CATALOG or Path(data).exists()


def _portable(data: str | os.PathLike) -> str:
    """A catalog name as is (names win over same-named folders, as when loading), or the embedded
    sample's name when `mnist` was not to be had and the sample stood in for it (so a later
    download cannot switch a resumed run's data); a directory as an absolute path, valid from
    any working directory."""
    from mnist_data.sources.catalog import CATALOG
    from mnist_data.sources.source import FALLBACK_DATASET, locate

    if os.fspath(data) == "mnist" and locate("mnist", "train") is None:
        return FALLBACK_DATASET
    if os.fspath(data) in CATALOG or not Path(data).exists():
        return os.fspath(data)
    return str(Path(data).resolve())


def _restore(trainer: Trainer, checkpoint: str, *, partial: bool) -> None:
    """Load `checkpoint` into the trainer; TrainError naming it if damaged or another model's."""
    import tensorflow as tf

    try:
        status = trainer.checkpoint.restore(checkpoint)
        status.expect_partial() if partial else status.assert_existing_objects_matched()
    except (tf.errors.OpError, ValueError, IndexError, AssertionError) as exc:
        reason = " ".join(str(getattr(exc, "message", exc)).split())[:300]
        raise TrainError(
            f"{checkpoint}: cannot restore this run's checkpoint, damaged or another model's "
            f"({reason})"
        ) from None


def _recorded(run_dir: Path) -> dict:
    """RUN_DIR/config.json as a table, or a TrainError naming it."""
    path = run_dir / CONFIG
    try:
        recorded = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TrainError(f"{path}: not readable ({exc})") from None
    if not isinstance(recorded, dict) or not all(
        isinstance(recorded.get(key), (str, type(None))) for key in ("data", "format")
    ):
        raise TrainError(f"{path}: not a run configuration mnist-data wrote")
    return recorded


def run_data(run_dir: Path) -> tuple[str, str | None]:
    """The data (and format) a run was trained on, from its config.json."""
    recorded = _recorded(run_dir)
    if not recorded.get("data"):
        raise TrainError(f"{run_dir / CONFIG}: the run does not record its data; give --data")
    if not _data_exists(recorded["data"]):
        raise TrainError(
            f"{run_dir}: the run's data {recorded['data']} is no longer there; give --data"
        )
    return recorded["data"], recorded.get("format")


def load_run_config(run_dir: Path) -> TrainConfig:
    path = run_dir / CONFIG
    if not path.is_file():
        raise TrainError(f"{path}: missing, {run_dir} is not a training run directory")
    recorded = _recorded(run_dir)
    try:
        return config_from_dict(recorded)
    except (ValueError, TypeError) as exc:  # TrainError (a ValueError) included: name the file
        raise TrainError(f"{path}: not a usable run configuration ({exc})") from None


def _epochs_checkpointed(out: Path) -> int:
    """The epoch of RUN_DIR's latest checkpoint (they are numbered by epoch), 0 if none."""
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(str(out / CHECKPOINTS))
    return int(latest.rsplit("-", 1)[1]) if latest else 0


def _settle_run_dir(config: TrainConfig, out: Path, resume: bool) -> TrainConfig:
    """Refuse to overwrite an earlier run unless resuming, and refuse a resume that would not
    continue it: only the run's length may change, and not under a schedule that spans it."""
    saved = out / CONFIG
    if saved.is_file() and not resume:
        raise TrainError(
            f"{out}: already holds a training run; pass --resume or choose another --out"
        )
    if not (resume and saved.is_file()):
        return config
    previous = load_run_config(out)
    done = _epochs_checkpointed(out)
    if config.epochs < done:
        raise TrainError(
            f"{out}: {done} epochs are done already; --epochs {config.epochs} would end the run "
            "before its checkpoint"
        )
    changed = [
        field.name
        for field in dataclasses.fields(TrainConfig)
        if getattr(previous, field.name) != getattr(config, field.name)
    ]
    length_only = set(changed) <= {"epochs", "max_steps"}
    if changed and (not length_only or previous.schedule == "cosine"):
        described = "; ".join(
            f"{name} {getattr(previous, name)!r} -> {getattr(config, name)!r}" for name in changed
        )
        raise TrainError(
            f"{out}: resuming would not continue its run ({described}"
            f"{', under a cosine schedule that spans the planned run' * length_only}); "
            "resume with the run's own settings or choose another --out"
        )
    return config


def data_fingerprint(data: str | os.PathLike) -> str:
    """A digest of what `data`'s files hold now: a converted directory's manifest (its shards'
    checksums) and listings, or the SHA-256 of each IDX file. Why: a run records its data by
    path, and the files at a path can be replaced (a reconversion, new IDX files) under it."""
    import hashlib

    from mnist_data.conversion.run import describe_source
    from mnist_data.sources.catalog import CATALOG, SPLITS
    from mnist_data.sources.source import MANIFEST

    data = _portable(data)  # the embedded sample, where it stood in for an MNIST that is not here
    digest = hashlib.sha256()
    directory = Path(data)
    if os.fspath(data) not in CATALOG and (directory / MANIFEST).is_file():
        for name in (MANIFEST, *(f"{split}.csv" for split in SPLITS)):
            if (directory / name).is_file():
                digest.update(name.encode() + b"\0" + (directory / name).read_bytes())
    else:
        digest.update(json.dumps(describe_source(data, SPLITS)["files"], sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _check_unchanged(run_dir: Path, data: str | os.PathLike, advice: str) -> None:
    """TrainError if the run's recorded data no longer holds what it held when the run started."""
    recorded = _recorded(run_dir).get("data_fingerprint")
    if recorded and recorded != data_fingerprint(data):
        raise TrainError(
            f"{data}: its files changed since the run in {run_dir} started on them; {advice}"
        )


def _check_resumed_data(
    out: Path, data: str | os.PathLike, format: str | None, resume: bool
) -> None:
    """A resumed run goes on with the data it started on (runs from before data was recorded
    are taken at their word)."""
    if not (resume and (out / CONFIG).is_file()):
        return
    recorded = _recorded(out)
    if recorded.get("data") is None or not _data_exists(recorded["data"]):
        return  # not recorded, or moved away since: the data given now is taken at its word
    from pipelines.input.dataset import detect_format

    now = (_portable(data), format or detect_format(data))
    before = (recorded["data"], recorded.get("format") or detect_format(recorded["data"]))
    if now != before:
        raise TrainError(
            f"{out}: resuming would not continue its run (data {before[0]!r} -> {now[0]!r}"
            f"{f', format {before[1]!r} -> {now[1]!r}' if before[1] != now[1] else ''}); "
            "resume with the run's data or choose another --out"
        )
    _check_unchanged(out, data, "resuming would train on other examples: choose another --out")


def _summarise(writer: Any, record: dict) -> None:
    """TensorBoard scalars via the core `tf.summary.write` op (tf.summary.scalar needs the
    tensorboard package; this writes the same event records without it)."""
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    scalars = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
    )
    with writer.as_default(step=record["epoch"]):
        for name in ("loss", "train_accuracy", "test_loss", "test_accuracy", "examples_per_second"):
            tf.summary.write(
                name, tf.constant(record[name], tf.float32), metadata=scalars.SerializeToString()
            )
    writer.flush()


def _summary(config: TrainConfig, history: list[dict], device: str) -> dict:
    last = history[-1] if history else {}
    seconds = sum(r["seconds"] for r in history)
    examples = sum(r["examples_per_second"] * r["seconds"] for r in history)
    return {
        "model": config.model,
        "preset": config.preset,
        "epochs": len(history),
        "steps": last.get("step", 0),
        "batch_size": config.batch_size,
        "test_accuracy": last.get("test_accuracy"),
        "train_accuracy": last.get("train_accuracy"),
        "loss": last.get("loss"),
        "train_seconds": seconds,
        "examples_per_second": examples / seconds if seconds else None,
        "device": device,
        "xla": config.xla,
        "seed": config.seed,
    }
