"""Where a dataset's files are: explicit directory, env var, user cache, system, embedded.

Looking never touches the network; fetching is a separate step (fetch.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from mnist_data.sources.catalog import ROLES, STANDARD_STEMS, Dataset, get_dataset

DATA_DIR_ENV = "MNIST_DATA_DIR"
CACHE_DIR_ENV = "MNIST_DATA_CACHE"


class SplitFiles(NamedTuple):
    """The two IDX files of one split."""

    images: Path
    labels: Path


def user_cache_dir() -> Path:
    """The per-user cache root: $MNIST_DATA_CACHE, else $XDG_CACHE_HOME/mnist-data."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mnist-data"


def files_in(directory: Path, split: str) -> SplitFiles | None:
    """The split's files in `directory` (gzipped or raw, dashed or dotted), or None if either
    is missing."""
    found = []
    for role in ROLES:
        stem = STANDARD_STEMS[(split, role)]
        dotted = stem.replace("-idx", ".idx")
        names = (f"{stem}.gz", stem, dotted, f"{dotted}.gz")
        found.append(next((directory / n for n in names if (directory / n).is_file()), None))
    return None if None in found else SplitFiles(*found)


def search_dirs(dataset: Dataset, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Directories searched for `dataset`, in order of precedence."""
    dirs = [Path(data_dir)] if data_dir is not None else []
    if os.environ.get(DATA_DIR_ENV):
        dirs.append(Path(os.environ[DATA_DIR_ENV]) / dataset.name)
    dirs += [user_cache_dir() / dataset.name, *dataset.system_dirs]
    return dirs + ([dataset.embedded_dir] if dataset.embedded_dir else [])


def locate(name: str, split: str, data_dir: str | os.PathLike | None = None) -> SplitFiles | None:
    """A catalog dataset's files of one split, from the first directory holding them, or None."""
    dirs = search_dirs(get_dataset(name), data_dir)
    return next(filter(None, (files_in(directory, split) for directory in dirs)), None)
