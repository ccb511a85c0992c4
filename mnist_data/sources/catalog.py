"""The catalog of MNIST-like datasets (catalog.json: files, sizes, checksums, mirrors, classes,
and where each split's images and labels are) and where their files are looked for."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from mnist_data.errors import DatasetError

SPLITS = ("train", "test")
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample"


class SplitNames(NamedTuple):
    """A split's images and labels files (or archive members), and the rows of them it takes."""

    images: str
    labels: str
    start: int = 0
    stop: int | None = None


STANDARD_SPLITS = {
    "train": SplitNames("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": SplitNames("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


@dataclass(frozen=True)
class RemoteFile:
    """One published file: its name on the mirrors, byte size (None: not published) and MD5."""

    name: str
    size: int | None
    md5: str


@dataclass(frozen=True)
class Dataset:
    """A catalog entry: what to download, where each split is in it, and how to read it."""

    name: str
    title: str
    files: tuple[RemoteFile, ...]
    splits: dict[str, SplitNames]
    mirrors: tuple[str, ...]
    classes: tuple[str, ...]
    folder: str  # under the cache and $MNIST_DATA_DIR; EMNIST's six splits share one zip
    system_dirs: tuple[Path, ...] = ()
    embedded_dir: Path | None = None
    archive: str | None = None  # a zip whose members are the split files (EMNIST's gzip.zip)
    mapping: str | None = None  # the file giving each label's characters (EMNIST)
    transposed: bool = False  # images stored with rows and columns swapped (EMNIST)

    def remote_files(self, splits: list[str]) -> list[RemoteFile]:
        """The published files that hold `splits`."""
        wanted = {self.archive} | {name for split in splits for name in self.splits[split][:2]}
        return [remote for remote in self.files if remote.name in wanted]


def _datasets(name: str, entry: dict) -> dict[str, Dataset]:
    """The Datasets of an entry of catalog.json: itself, or one per variant ("{variant}")."""
    if "variants" in entry:
        text = json.dumps({k: v for k, v in entry.items() if k != "variants"})
        return {
            key: value
            for variant, changes in entry["variants"].items()
            for key, value in _datasets(
                f"{name}-{variant}", json.loads(text.replace("{variant}", variant)) | changes
            ).items()
        }
    splits = {split: SplitNames(*names) for split, names in entry.get("splits", {}).items()}
    return {
        name: Dataset(
            name,
            entry["title"],
            tuple(RemoteFile(file, *size_md5) for file, size_md5 in entry["files"].items()),
            splits or STANDARD_SPLITS,
            tuple(entry["mirrors"]),
            tuple(entry["classes"]),  # a string: one character a class
            entry.get("folder", name),
            tuple(Path(d) for d in entry.get("system_dirs", ())),
            SAMPLE_DIR if entry.get("embedded") else None,
            entry.get("archive"),
            entry.get("mapping"),
            entry.get("transposed", False),
        )
    }


CATALOG: dict[str, Dataset] = {
    key: dataset
    for name, entry in json.loads(Path(__file__).with_name("catalog.json").read_text()).items()
    for key, dataset in _datasets(name, entry).items()
}
ALL_SPLITS = tuple(dict.fromkeys(split for d in CATALOG.values() for split in d.splits))


def get_dataset(name: str) -> Dataset:
    """Look a dataset up by name, with a clear error listing the known ones."""
    if name not in CATALOG:
        raise DatasetError(f"unknown dataset {name!r}: expected one of {', '.join(CATALOG)}")
    return CATALOG[name]


def check_split(split: str, dataset: Dataset | None = None) -> str:
    known = dataset.splits if dataset else STANDARD_SPLITS
    if split not in known:
        raise DatasetError(f"unknown split {split!r}: expected one of {', '.join(known)}")
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
        dirs.append(Path(os.environ["MNIST_DATA_DIR"]) / dataset.folder)
    dirs += [user_cache_dir() / dataset.folder, *dataset.system_dirs]
    return dirs + ([dataset.embedded_dir] if dataset.embedded_dir else [])
