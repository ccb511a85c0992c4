"""A run directory: its files, its lock, what it records of its data, and whether a resume
continues it."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mnist_data import fs
from mnist_data.sources.catalog import CATALOG, SPLITS
from mnist_data.sources.files import digest
from mnist_data.sources.source import MANIFEST, Source, resolve_source, split_files
from pipelines.training.config import TrainConfig, TrainError, config_from_dict, get_config

CONFIG, METRICS, SUMMARY, CHECKPOINTS = "config.json", "metrics.json", "summary.json", "checkpoints"
CURVES, PREDICTIONS, TENSORBOARD = "curves.png", "predictions.png", "tensorboard"
SAVED_MODEL, LOCK_FILE = "saved_model", ".mnist-data-train.lock"
EPOCH_KEYS = {"epoch", "step", "loss", "train_accuracy", "test_loss", "test_accuracy"}
EPOCH_KEYS |= {"seconds", "examples_per_second"}


def epochs(count: int) -> str:
    return f"{count} epoch{'s' * (count != 1)}"


@contextlib.contextmanager
def claimed(out: Path) -> Iterator[None]:
    """Hold `out`'s lock while a run writes in it; remove what a start that failed made."""
    if out.exists() and not out.is_dir():
        raise TrainError(f"{out}: not a directory; --out names the run directory to create")
    if out.is_dir() and not (out / CONFIG).is_file():
        if any(not fs.is_temp_name(p) and p.name != LOCK_FILE for p in out.iterdir()):
            raise TrainError(
                f"{out} holds other files but no training run; choose a new or empty directory"
            )
    created = fs.first_missing_folder(out)  # the first folder this run makes
    out.mkdir(parents=True, exist_ok=True)
    with fs.locked(out / LOCK_FILE, TrainError(f"{out} is in use by another training run")):
        try:
            yield
        except BaseException:
            if created is not None and not (out / CONFIG).exists():
                # Only folders left empty above it: another run may have put its own beside it.
                shutil.rmtree(out, ignore_errors=True)
                fs.remove_empty_folders(out.parent, created)
            raise


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
    """Config, data and format of a run into `out`: the run's own on `resume`, else the preset's;
    non-None `overrides`, `preset`, `data` and `format` win."""
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


def recorded(run_dir: Path) -> dict:
    """RUN_DIR/config.json as a table, or a TrainError naming it."""
    path = run_dir / CONFIG
    if not path.is_file():
        raise TrainError(f"{path}: missing, {run_dir} is not a training run directory")
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TrainError(f"{path}: not readable ({exc})") from None
    kinds = {"data": str, "format": str, "classes": list}
    if not isinstance(values, dict) or not all(
        isinstance(values.get(key), (kind, type(None))) for key, kind in kinds.items()
    ):
        raise TrainError(f"{path}: not a run configuration mnist-data wrote")
    return values


def run_data(run_dir: Path) -> tuple[str | Source, str | None]:
    """The data (and format) a run was trained on, from its config.json: a dataset name found
    in a `data_dir` is looked for there again."""
    values = recorded(run_dir)
    if not values.get("data"):
        raise TrainError(f"{run_dir / CONFIG}: the run does not record its data; give --data")
    if not data_exists(values["data"]):
        raise TrainError(
            f"{run_dir}: the run's data {values['data']} is no longer there; give --data"
        )
    if isinstance(values.get("data_dir"), str):
        return resolve_source(values["data"], values["data_dir"]), values.get("format")
    return values["data"], values.get("format")


def load_run_config(run_dir: Path) -> TrainConfig:
    values = recorded(run_dir)
    try:
        return config_from_dict(values)
    except (ValueError, TypeError) as exc:  # TrainError (a ValueError) included: name the file
        raise TrainError(f"{run_dir / CONFIG}: not a usable run configuration ({exc})") from None


def run_classes(run_dir: Path) -> list[str]:
    """The names of the classes a run's model answers with (a run that records none: 0..9)."""
    names = recorded(run_dir).get("classes")
    return [str(name) for name in names] if names else [str(label) for label in range(10)]


def shown_names(names: list[str]) -> list[str] | None:
    """Class names worth showing: None for the digits."""
    return None if all(name.isdigit() for name in names) else names


def data_exists(data: str) -> bool:
    return data in CATALOG or Path(data).exists()


def portable_data(source: Source) -> str:
    """The data as a run records it: its catalog name (the sample's, if it stood in), or path."""
    return source.name or str(source.path.resolve())


def data_fingerprint(source: Source) -> str:
    """A digest of the data's files now: the files at a recorded path can be replaced."""
    hasher = hashlib.sha256()
    if source.manifest is not None:
        for name in (MANIFEST, *(f"{split}.csv" for split in SPLITS)):
            if (source.path / name).is_file():
                hasher.update(name.encode() + b"\0" + (source.path / name).read_bytes())
    else:
        files = {p.name: digest(p) for split in SPLITS for p in split_files(source, split)}
        hasher.update(json.dumps(files, sort_keys=True).encode())
    return hasher.hexdigest()[:16]


def check_unchanged(run_dir: Path, source: Source, advice: str) -> None:
    """TrainError if the run's data no longer holds what it held when the run started."""
    fingerprint = recorded(run_dir).get("data_fingerprint")
    if fingerprint and fingerprint != data_fingerprint(source):
        raise TrainError(
            f"{os.fspath(source)}: its files changed since the run in {run_dir} started on them; "
            f"{advice}"
        )


def check_start(
    config: TrainConfig, out: Path, source: Source, resume: bool, checkpointed: int
) -> None:
    """Refuse to overwrite an earlier run unless resuming, and a resume that would not continue
    it: same data, and only the run's length may change, not under a schedule that spans it."""
    if (out / CONFIG).is_file() and not resume:
        raise TrainError(
            f"{out}: already holds a training run; pass --resume or choose another --out"
        )
    if not (resume and (out / CONFIG).is_file()):
        return
    if config.epochs < checkpointed:
        raise TrainError(
            f"{out}: {epochs(checkpointed)} are done already; --epochs {config.epochs} would end "
            "the run before its checkpoint"
        )
    before, now = dataclasses.asdict(load_run_config(out)), dataclasses.asdict(config)
    data_before = recorded(out).get("data")
    if data_before is not None and data_exists(data_before):  # else taken at the word of `data`
        before["data"], now["data"] = data_before, portable_data(source)
    changed = [name for name in now if before[name] != now[name]]
    length_only = set(changed) <= {"epochs", "max_steps"}
    if changed and (not length_only or before["schedule"] == "cosine"):
        described = "; ".join(f"{name} {before[name]!r} -> {now[name]!r}" for name in changed)
        raise TrainError(
            f"{out}: resuming would not continue its run ({described}"
            f"{', under a cosine schedule that spans the planned run' * length_only}); "
            "resume with the run's own settings and data or choose another --out"
        )
    if "data" in now:
        check_unchanged(out, source, "resuming would train on other examples: choose another --out")


def check_classes(out: Path, resume: bool, classes: list) -> None:
    """A resume on data of another class count (its own data gone, say) would train another
    model: refused, once the data's count is known."""
    before = len(run_classes(out)) if resume and (out / CONFIG).is_file() else len(classes)
    if before != len(classes):
        raise TrainError(
            f"{out}: resuming would not continue its run (classes {before} -> {len(classes)}); "
            "resume with the run's own data or choose another --out"
        )


def record(config: TrainConfig, source: Source, format: str | None, classes: list) -> dict:
    """What RUN_DIR/config.json holds: the config, the data as recorded, its fingerprint, and
    the names of the model's classes."""
    data = dict(
        data=portable_data(source), format=format, data_fingerprint=data_fingerprint(source)
    )
    where = {"data_dir": source.data_dir} if source.data_dir else {}
    return dataclasses.asdict(config) | data | where | dict(classes=classes)


def read_history(out: Path, done: int) -> list[dict]:
    """The metrics of the `done` epochs a checkpoint holds (metrics.json may be one ahead)."""
    try:
        history = json.loads((out / METRICS).read_text())["epochs"][:done]
        if len(history) == done and all(EPOCH_KEYS <= record.keys() for record in history):
            return history
    except (OSError, ValueError, LookupError, TypeError, AttributeError):
        pass
    raise TrainError(f"{out / METRICS}: does not hold the {epochs(done)} the checkpoint has done")
