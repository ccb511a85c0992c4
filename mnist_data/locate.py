"""Where a dataset's files are: explicit directory, env var, user cache, system, embedded.

Resolution never touches the network; fetching is a separate step (fetch.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mnist_data.catalog import CATALOG, ROLES, STANDARD_STEMS, Dataset, check_split
from mnist_data.errors import DatasetError

DATA_DIR_ENV = "MNIST_DATA_DIR"
CACHE_DIR_ENV = "MNIST_DATA_CACHE"


@dataclass(frozen=True)
class SplitFiles:
    """The two IDX files of one split, and the dataset they belong to (if known)."""

    images: Path
    labels: Path
    dataset: Dataset | None

    @property
    def directory(self) -> Path:
        return self.images.parent


def user_cache_dir() -> Path:
    """The per-user cache root: $MNIST_DATA_CACHE, else $XDG_CACHE_HOME/mnist-data."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mnist-data"


def candidate_files(directory: Path, split: str, role: str) -> list[Path]:
    """The names a split's file goes by: gzipped, raw, and the dotted raw variant."""
    stem = STANDARD_STEMS[(split, role)]
    dotted = stem.replace("-idx", ".idx")
    return [
        directory / f"{stem}.gz",
        directory / stem,
        directory / dotted,
        directory / f"{dotted}.gz",
    ]


def files_in(directory: Path, split: str, dataset: Dataset | None = None) -> SplitFiles | None:
    """The split's files in `directory`, or None if either is missing."""
    found = {}
    for role in ROLES:
        found[role] = next(
            (p for p in candidate_files(directory, split, role) if p.is_file()), None
        )
        if found[role] is None:
            return None
    return SplitFiles(found["images"], found["labels"], dataset)


def search_dirs(dataset: Dataset, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Directories searched for `dataset`, in order of precedence."""
    dirs = []
    if data_dir is not None:
        dirs.append(Path(data_dir))
    if os.environ.get(DATA_DIR_ENV):
        dirs.append(Path(os.environ[DATA_DIR_ENV]) / dataset.name)
    dirs.append(user_cache_dir() / dataset.name)
    dirs.extend(dataset.system_dirs)
    if dataset.embedded_dir is not None:
        dirs.append(dataset.embedded_dir)
    return dirs


def locate(
    source: str | os.PathLike, split: str, data_dir: str | os.PathLike | None = None
) -> SplitFiles | None:
    """Find a split's files for a dataset name or a directory; None if a dataset lacks them here."""
    check_split(split)
    name = os.fspath(source)
    if name in CATALOG:
        dataset = CATALOG[name]
        for directory in search_dirs(dataset, data_dir):
            found = files_in(directory, split, dataset)
            if found is not None:
                return found
        return None
    directory = Path(name)
    if not directory.is_dir():
        raise DatasetError(
            f"{name!r} is neither a known dataset ({', '.join(CATALOG)}) nor a directory"
        )
    found = files_in(directory, split)
    if found is None:
        wanted = " and ".join(STANDARD_STEMS[(split, role)] + "[.gz]" for role in ROLES)
        raise DatasetError(f"{directory}: no {split} split here: expected {wanted}")
    return found
