"""`load`: a dataset name or IDX directory in, checked (images, labels) arrays out."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from mnist_data.catalog import CATALOG, SPLITS, check_split
from mnist_data.decoded_cache import read_idx_cached
from mnist_data.errors import DatasetError, FetchError
from mnist_data.fetch import fetch
from mnist_data.locate import SplitFiles, locate, user_cache_dir
from mnist_data.manifest import MANIFEST, read_manifest

FALLBACK_DATASET = "mnist-sample"
DEFAULT_NUM_CLASSES = 10


def resolve(
    source: str | os.PathLike,
    split: str,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    fallback: bool = True,
) -> SplitFiles:
    """The files of one split: found locally, else downloaded, else (for MNIST, with `fallback`)
    the embedded sample."""
    found = locate(source, split, data_dir)
    if found is not None:
        return found
    name = os.fspath(source)
    failure = None
    if download:
        try:
            fetch(name, data_dir, splits=[split])
            found = locate(source, split, data_dir)
        except FetchError as exc:
            failure = exc
    if found is not None:
        return found
    if name == "mnist" and fallback:
        why = "could not be downloaded" if download else "downloading is off"
        warnings.warn(
            f"MNIST's {split} split is not available locally and {why}: using the embedded "
            "2,000-digit sample (mnist-sample) instead, for every split loaded with it",
            stacklevel=_first_outside_package(),
        )
        return locate(FALLBACK_DATASET, split)
    hint = f": {failure}" if failure else f"; run `mnist-data fetch --dataset {name}`"
    raise DatasetError(f"dataset {name!r} ({split}) was not found locally{hint}")


def _first_outside_package() -> int:
    """The warnings stacklevel of the caller's first frame outside this package, so a warning
    names the user's line however deep inside the package it was raised."""
    package, frame, level = os.path.dirname(__file__) + os.sep, sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def load(
    source: str | os.PathLike = "mnist",
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    cache: bool = True,
    num_classes: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [N, 28, 28] and labels uint8 [N] of one split.

    `source` is a catalog name (see `mnist_data.CATALOG`) or a directory holding the
    four standard IDX files. Decoded arrays are cached as memory-mapped .npy files in
    the user cache dir (``cache=False`` decodes every time).
    """
    return load_splits(
        source, [split], data_dir, download=download, cache=cache, num_classes=num_classes
    )[split]


def load_splits(
    source: str | os.PathLike = "mnist",
    splits: Iterable[str] = SPLITS,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    cache: bool = True,
    num_classes: int | None = None,
    fallback: bool = True,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Several splits at once; their files are decoded concurrently (inflate releases the GIL).

    `fallback=False` refuses to stand the embedded sample in for an unavailable MNIST.
    """
    splits = [splits] if isinstance(splits, str) else list(splits)  # "train" means ["train"]
    files = {
        split: resolve(source, check_split(split), data_dir, download=download, fallback=fallback)
        for split in splits
    }
    if (
        fallback
        and os.fspath(source) == "mnist"
        and len({found.dataset.name if found.dataset else None for found in files.values()}) > 1
    ):
        # Some splits of MNIST are here, others not: the sample stands in for all, never a mix.
        files = {split: locate(FALLBACK_DATASET, split) for split in splits}
    cache_dir = user_cache_dir() / "decoded" if cache else None
    paths = [path for f in files.values() for path in (f.images, f.labels)]
    with ThreadPoolExecutor(max_workers=min(len(paths), os.cpu_count() or 1)) as pool:
        arrays = list(pool.map(lambda p: read_idx_cached(p, cache_dir), paths))
    result = {}
    for i, (split, found) in enumerate(files.items()):
        images, labels = arrays[2 * i], arrays[2 * i + 1]
        classes = num_classes or (
            found.dataset.num_classes if found.dataset else DEFAULT_NUM_CLASSES
        )
        check_pair(images, labels, found, classes)
        result[split] = (images, labels)
    return result


def check_pair(images: np.ndarray, labels: np.ndarray, files: SplitFiles, num_classes: int) -> None:
    """Images and labels must agree in count, have the expected types and valid labels."""
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetError(
            f"{files.images}: expected uint8 images [N, H, W], found {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DatasetError(
            f"{files.labels}: expected uint8 labels [N], found {labels.dtype} {labels.shape}"
        )
    if len(images) != len(labels):
        raise DatasetError(
            f"{files.directory}: {files.images.name} holds {len(images)} images but "
            f"{files.labels.name} holds {len(labels)} labels"
        )
    if len(labels) and int(labels.max()) >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise DatasetError(
            f"{files.labels}: label {int(labels[bad])} at index {bad} is out of range: "
            f"expected 0..{num_classes - 1}"
        )


def class_names(source: str | os.PathLike) -> tuple[str, ...] | None:
    """Class names of a catalog dataset, or of the catalog dataset a converter's output was made
    from (its manifest names the source); None for a plain directory of IDX files."""
    spec = CATALOG.get(os.fspath(source))
    if spec is None and os.path.isfile(os.path.join(source, MANIFEST)):
        try:
            origin = read_manifest(source).get("source", {})
        except DatasetError:
            return None
        name = origin.get("name") if isinstance(origin, dict) else None
        spec = CATALOG.get(name) if isinstance(name, str) else None
    return spec.classes if spec else None
