"""The catalog of MNIST-like datasets (catalog.json: files, sizes, checksums, mirrors, classes)
and where their files are looked for."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from mnist_data.errors import DatasetError

SPLITS = ("train", "test")
ROLES = ("images", "labels")
STANDARD_STEMS = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample"


@dataclass(frozen=True)
class RemoteFile:
    """One published file: its name on the mirrors, byte size and MD5."""

    name: str
    size: int
    md5: str


@dataclass(frozen=True)
class Dataset:
    """A dataset in the standard four-file IDX layout, with where to find it."""

    name: str
    title: str
    files: dict[tuple[str, str], RemoteFile]
    mirrors: tuple[str, ...]
    classes: tuple[str, ...]
    system_dirs: tuple[Path, ...] = ()
    embedded_dir: Path | None = None


def _dataset(name: str, entry: dict) -> Dataset:
    """A Dataset from its entry in catalog.json."""
    stems = {stem + ".gz": key for key, stem in STANDARD_STEMS.items()}
    files = {stems[f]: RemoteFile(f, *size_md5) for f, size_md5 in entry["files"].items()}
    mirrors, classes = tuple(entry["mirrors"]), tuple(entry["classes"])
    system_dirs = tuple(Path(d) for d in entry.get("system_dirs", ()))
    embedded = SAMPLE_DIR if entry.get("embedded") else None
    return Dataset(name, entry["title"], files, mirrors, classes, system_dirs, embedded)


CATALOG: dict[str, Dataset] = {
    name: _dataset(name, entry)
    for name, entry in json.loads(Path(__file__).with_name("catalog.json").read_text()).items()
}


def get_dataset(name: str) -> Dataset:
    """Look a dataset up by name, with a clear error listing the known ones."""
    if name not in CATALOG:
        raise DatasetError(f"unknown dataset {name!r}: expected one of {', '.join(CATALOG)}")
    return CATALOG[name]


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    return split


def user_cache_dir() -> Path:
    """The per-user cache root: $MNIST_DATA_CACHE, else $XDG_CACHE_HOME/mnist-data."""
    if os.environ.get("MNIST_DATA_CACHE"):
        return Path(os.environ["MNIST_DATA_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mnist-data"


def search_dirs(dataset: Dataset, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Directories searched for `dataset`, in order of precedence."""
    dirs = [Path(data_dir)] if data_dir is not None else []
    if os.environ.get("MNIST_DATA_DIR"):
        dirs.append(Path(os.environ["MNIST_DATA_DIR"]) / dataset.name)
    dirs += [user_cache_dir() / dataset.name, *dataset.system_dirs]
    return dirs + ([dataset.embedded_dir] if dataset.embedded_dir else [])
