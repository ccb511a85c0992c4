"""`load`: a dataset name, IDX directory or Source in, checked (images, labels) arrays out."""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from mnist_data.errors import DatasetError
from mnist_data.formats.idx import read_idx
from mnist_data.fs import file_digest
from mnist_data.sources.cache import read_idx_cached
from mnist_data.sources.catalog import CATALOG, SPLITS, user_cache_dir
from mnist_data.sources.source import Source, SplitFiles, resolve_source, split_files

SourceSpec = str | os.PathLike | Source
PathSpec = str | os.PathLike | None


def resolve(source: SourceSpec, split: str, data_dir: PathSpec = None, **kw: bool) -> SplitFiles:
    """The IDX files of one split; `kw` (download, fallback) as for `resolve_source`."""
    return split_files(resolve_source(source, data_dir, splits=[split], **kw), split)


def load(
    source: SourceSpec = "mnist", split: str = "train", data_dir: PathSpec = None, **options: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [N, 28, 28] and labels uint8 [N] of one split of a catalog name, IDX directory
    or Source; `options` (download, cache, num_classes, fallback) as for load_splits."""
    return load_splits(source, [split], data_dir, **options)[split]


def load_splits(
    source: SourceSpec = "mnist",
    splits: Iterable[str] = SPLITS,
    data_dir: PathSpec = None,
    *,
    download: bool = True,
    cache: bool = True,
    num_classes: int | None = None,
    fallback: bool = True,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Several splits at once, decoded concurrently (inflate releases the GIL) and cached as
    memory-mapped .npy (`cache=False`: decode every time). `fallback=False` refuses the sample
    in place of an unavailable MNIST."""
    splits = [splits] if isinstance(splits, str) else list(splits)
    source = resolve_source(source, data_dir, splits=splits, download=download, fallback=fallback)
    files = {split: split_files(source, split) for split in splits}
    cache_dir = user_cache_dir() / "decoded" if cache else None
    paths = [path for found in files.values() for path in found]
    with ThreadPoolExecutor(max_workers=min(len(paths), os.cpu_count() or 1)) as pool:
        arrays = iter(pool.map(lambda path: read_idx_cached(path, cache_dir), paths))
    classes = num_classes or (len(source.classes) if source.classes else 10)
    result = {}
    for split, found in files.items():
        result[split] = next(arrays), next(arrays)
        check_pair(*result[split], found, classes)
    return result


def check_pair(images: np.ndarray, labels: np.ndarray, files: SplitFiles, num_classes: int) -> None:
    """Images and labels must agree in count, have the expected types and valid labels."""
    for path, array, ndim in ((files.images, images, 3), (files.labels, labels, 1)):
        if array.ndim != ndim or array.dtype != np.uint8:
            found = f"{array.dtype} {array.shape}"
            raise DatasetError(f"{path}: expected {ndim}-d uint8 IDX data, found {found}")
    if len(images) != len(labels):
        raise DatasetError(
            f"{files.images.parent}: {files.images.name} holds {len(images)} images but "
            f"{files.labels.name} holds {len(labels)} labels"
        )
    if len(labels) and int(labels.max()) >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise DatasetError(
            f"{files.labels}: label {int(labels[bad])} at index {bad} is out of range: "
            f"expected 0..{num_classes - 1}"
        )


def class_names(source: SourceSpec) -> tuple[str, ...] | None:
    """Class names of a catalog dataset, or of the one a converter's output was made from; None
    for a plain directory of IDX files. Never downloads."""
    if isinstance(source, Source):
        return source.classes
    name = os.fspath(source)
    if name in CATALOG:
        return CATALOG[name].classes
    try:
        return resolve_source(name).classes
    except DatasetError:  # gone, or its manifest is damaged: no names known
        return None


def describe_file(path: Path, array: np.ndarray | None = None) -> dict:
    """Shape, dtype, MD5, catalog match and (for integer vectors) the count of each value."""
    array = read_idx(path) if array is None else array
    md5 = file_digest(path, "md5")
    match = [
        f"{d.name}/{f.name}" for d in CATALOG.values() for f in d.files.values() if f.md5 == md5
    ]
    summary = {
        "file": str(path),
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "bytes": path.stat().st_size,
        "md5": md5,
        "catalog_match": match[0] if match else None,
    }
    if array.ndim == 1 and array.dtype.kind in "ui" and len(array) and array.min() >= 0:
        values, counts = np.unique(array, return_counts=True)  # sparse: labels may be huge numbers
        summary["per_class"] = (
            dict(zip(values.tolist(), counts.tolist()))
            if values[-1] >= 256
            else np.bincount(array).tolist()
        )
    return summary


def describe(
    source: SourceSpec, data_dir: PathSpec = None, *, num_classes: int | None = None
) -> dict:
    """Summarise a catalog dataset, a directory of the four IDX files, or one IDX file, for
    `mnist-data info`. `num_classes` admits labels up to num_classes - 1."""
    name = os.fspath(source)
    if Path(name).is_file():
        return {"source": name, "files": [describe_file(Path(name))]}
    resolved = resolve_source(source, data_dir, download=False)
    arrays = load_splits(resolved, SPLITS, num_classes=num_classes)
    files = [
        {"split": split, **describe_file(path, array)}
        for split in SPLITS
        for path, array in zip(split_files(resolved, split), arrays[split])
    ]
    return {"source": name, "files": files}
