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
    """Images uint8 [N, 28, 28] and labels uint8 [N] of one split; `options` as for load_splits."""
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
    """Several splits of a catalog name, IDX directory or Source, decoded in parallel and cached
    as memory-mapped .npy unless not `cache`; not `fallback`: no sample for a missing MNIST."""
    splits = [splits] if isinstance(splits, str) else list(splits)
    source = resolve_source(source, data_dir, splits=splits, download=download, fallback=fallback)
    files = {split: split_files(source, split) for split in splits}
    cache_dir = user_cache_dir() / "decoded" if cache else None
    paths = [path for found in files.values() for path in found]
    with ThreadPoolExecutor(max_workers=min(len(paths), os.cpu_count() or 1)) as pool:
        arrays = iter(pool.map(lambda path: read_idx_cached(path, cache_dir), paths))
    result = {}
    for split, found in files.items():
        result[split] = images, labels = next(arrays), next(arrays)
        for path, array, ndim in ((found.images, images, 3), (found.labels, labels, 1)):
            if array.ndim != ndim or array.dtype != np.uint8:
                what = f"{array.dtype} {array.shape}"
                raise DatasetError(f"{path}: expected {ndim}-d uint8 IDX data, found {what}")
        if len(images) != len(labels):
            raise DatasetError(
                f"{found.images.parent}: {found.images.name} holds {len(images)} images but "
                f"{found.labels.name} holds {len(labels)} labels"
            )
        classes = num_classes or class_count(source, [labels])
        if len(labels) and int(labels.max()) >= classes:
            bad = int(np.argmax(labels >= classes))
            raise DatasetError(
                f"{found.labels}: label {int(labels[bad])} at index {bad} is out of range: "
                f"expected 0..{classes - 1}"
            )
    return result


def class_names(source: SourceSpec) -> tuple[str, ...] | None:
    """Class names of a catalog dataset or of a converter's output's source (else None)."""
    if isinstance(source, Source):
        return source.classes
    name = os.fspath(source)
    if name in CATALOG:
        return CATALOG[name].classes
    try:
        return resolve_source(name).classes
    except DatasetError:  # gone, or its manifest is damaged: no names known
        return None


def class_count(source: Source, labels: Iterable[np.ndarray] = ()) -> int:
    """The number of a source's classes: of its class names when known, else max(10, largest
    label + 1) over the `labels` at hand."""
    if source.classes:
        return len(source.classes)
    return max([10, *(int(np.max(y)) + 1 for y in labels if len(y))])


def class_list(source: Source, count: int) -> list[str]:
    """Names of `count` classes: the source's class names, else the labels as text "0".."N-1"."""
    names = list(source.classes or ())
    return names if len(names) == count else [str(label) for label in range(count)]


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
    """Summarise a catalog dataset, a directory of IDX files, or one IDX file (`info`)."""
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
