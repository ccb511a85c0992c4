"""Small copies of EMNIST and QMNIST in their published layouts, built from the embedded
sample: EMNIST's gzip.zip (transposed images, mapping files) and QMNIST's files."""

from __future__ import annotations

import hashlib
import lzma
import zipfile
from pathlib import Path

import numpy as np

from mnist_data import load, write_idx
from mnist_data.formats.idx import encode_idx, gzip_compress
from mnist_data.sources.catalog import CATALOG, RemoteFile

EMNIST_SPLITS = ("letters", "balanced")


def letter_l() -> np.ndarray:
    """A hand-drawn capital L as a person reads it: a stroke down the left, a foot at the bottom."""
    image = np.zeros((28, 28), np.uint8)
    image[4:24, 7:10] = 255
    image[21:24, 7:21] = 255
    return image


def emnist_arrays(split: str, part: str) -> tuple[np.ndarray, np.ndarray]:
    """Upright images and stored labels of one EMNIST split: the sample's digits, relabelled so
    that every class occurs (letters: stored 1..26); the first letters image is an L (12)."""
    images, _ = load("mnist-sample", "train" if part == "train" else "test")
    count = len(CATALOG[f"emnist-{split}"].classes)
    labels = (np.arange(len(images)) % count).astype(np.uint8)
    if split == "letters":
        images, labels = images.copy(), labels + 1
        images[0], labels[0] = letter_l(), 12
    return images, labels


def mapping_text(split: str) -> str:
    """The mapping file as published: a label and the ASCII codes of its characters a line."""
    first = 1 if split == "letters" else 0
    classes = CATALOG[f"emnist-{split}"].classes
    return "".join(
        f"{first + i} {' '.join(str(ord(c)) for c in name)}\n" for i, name in enumerate(classes)
    )


def emnist_members(split: str) -> dict[str, bytes]:
    """The zip members of one split, under their published names: images stored transposed."""
    members = {f"gzip/emnist-{split}-mapping.txt": mapping_text(split).encode()}
    for part in ("train", "test"):
        images, labels = emnist_arrays(split, part)
        stem = f"gzip/emnist-{split}-{part}"
        members[f"{stem}-images-idx3-ubyte.gz"] = gzip_compress(
            encode_idx(images.transpose(0, 2, 1))
        )
        members[f"{stem}-labels-idx1-ubyte.gz"] = gzip_compress(encode_idx(labels))
    return members


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def emnist_zip(path: Path, splits: tuple[str, ...] = EMNIST_SPLITS) -> Path:
    """gzip.zip holding `splits` in the published layout."""
    return write_zip(path, {k: v for s in splits for k, v in emnist_members(s).items()})


def extract_split(archive: Path, split: str, directory: Path) -> Path:
    """One split's members as a user extracts them: flat, under their own names."""
    directory.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as opened:
        for name in opened.namelist():
            if f"emnist-{split}-" in name:
                (directory / Path(name).name).write_bytes(opened.read(name))
    return directory


def qmnist_table(labels: np.ndarray) -> np.ndarray:
    """QMNIST's int32 [N, 8] label table: class, series, writer, index, NIST class, ..."""
    count = len(labels)
    rows = np.arange(count)
    columns = [
        labels,
        rows % 3,
        2100 + rows % 500,
        rows % 150,
        30 + labels,
        rows,
        0 * rows,
        0 * rows,
    ]
    return np.stack(columns, axis=1).astype(np.int32)


def qmnist_files(directory: Path) -> Path:
    """qmnist-{train,test}-* (the test file 12,000 rows: test10k and test50k both non-empty)
    and xnist-* (xz) in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    train, test = load("mnist-sample", "train"), load("mnist-sample", "test")
    test = tuple(np.concatenate([array] * 30) for array in test)
    for part, (images, labels) in (("train", train), ("test", test)):
        write_idx(directory / f"qmnist-{part}-images-idx3-ubyte.gz", images)
        write_idx(directory / f"qmnist-{part}-labels-idx2-int.gz", qmnist_table(labels))
    images, labels = train
    (directory / "xnist-images-idx3-ubyte.xz").write_bytes(lzma.compress(encode_idx(images)))
    table = encode_idx(qmnist_table(labels))
    (directory / "xnist-labels-idx2-int.xz").write_bytes(lzma.compress(table))
    return directory


def published(root: Path, names: list[str]) -> tuple[RemoteFile, ...]:
    """Catalog records (size, MD5) of the files in `root`, as if these were the published ones."""
    return tuple(
        RemoteFile(
            name, (root / name).stat().st_size, hashlib.md5((root / name).read_bytes()).hexdigest()
        )
        for name in names
    )
