"""The catalog of MNIST-like datasets, as data: files, sizes, checksums, mirrors, classes."""

from __future__ import annotations

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


def _files(*sizes_and_md5s: tuple[int, str]) -> dict[tuple[str, str], RemoteFile]:
    """The four files, given as (size, md5) in the order of STANDARD_STEMS."""
    return {
        key: RemoteFile(stem + ".gz", size, md5)
        for (key, stem), (size, md5) in zip(STANDARD_STEMS.items(), sizes_and_md5s)
    }


DIGITS = tuple(str(d) for d in range(10))
FASHION = "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot"

CATALOG: dict[str, Dataset] = {
    "mnist": Dataset(
        name="mnist",
        title="MNIST handwritten digits (LeCun, Cortes, Burges)",
        files=_files(
            (9912422, "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
            (28881, "d53e105ee54ea40749a09fcbcd1e9432"),
            (1648877, "9fb629c4189551a2d022fa330f9573f3"),
            (4542, "ec29112dd5afa0611ce80d1b7f02629c"),
        ),
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        classes=DIGITS,
        system_dirs=(Path("/usr/share/datasets/mnist"),),
    ),
    "fashion-mnist": Dataset(
        name="fashion-mnist",
        title="Fashion-MNIST (Zalando Research)",
        files=_files(
            (26421880, "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            (29515, "25c81989df183df01b3e8a0aad5dffbe"),
            (4422102, "bef4ecab320f06d8554ea6380940ec79"),
            (5148, "bb300cfdad3c16e7a12a480ee83cd310"),
        ),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        classes=tuple(FASHION.split(",")),
        system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
    ),
    "kmnist": Dataset(
        name="kmnist",
        title="Kuzushiji-MNIST (ROIS-DS CODH)",
        files=_files(
            (18165135, "bdb82020997e1d708af4cf47b453dcf7"),
            (29497, "e144d726b3acfaa3e44228e80efcd344"),
            (3041136, "5c965bf0a639b31b8f53240b1b52f4d7"),
            (5120, "7320c461ea6c1c855c0b718fb2a4b134"),
        ),
        mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
        classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
        system_dirs=(Path("/usr/share/datasets/kmnist"),),
    ),
    "mnist-sample": Dataset(
        name="mnist-sample",
        title="2,000 real MNIST digits embedded in the package (1,600 train, 400 test)",
        files=_files(
            (261457, "d50836f913d9ac4fbac025f8218dead7"),
            (854, "711d5cadb659ca31605653e087d101c4"),
            (65248, "5618a6b415178f0ccebb01097f1e17bd"),
            (248, "0c148cd64fc4226c2ed350580c2d59cb"),
        ),
        mirrors=(),
        classes=DIGITS,
        embedded_dir=SAMPLE_DIR,
    ),
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
