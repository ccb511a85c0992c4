"""`load`: a dataset name, IDX directory or Source in, checked (images, labels) arrays out."""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from mnist_data.errors import DatasetError
from mnist_data.sources.cache import read_data_file, read_idx_cached
from mnist_data.sources.catalog import (
    ALL_SPLITS,
    CATALOG,
    SPLITS,
    STANDARD_SPLITS,
    user_cache_dir,
)
from mnist_data.sources.files import DataFile, Member, SplitFiles, digest, size
from mnist_data.sources.source import Source, files_in, resolve_source, split_files

SourceSpec = str | os.PathLike | Source
PathSpec = str | os.PathLike | None


def resolve(source: SourceSpec, split: str, data_dir: PathSpec = None, **kw: bool) -> SplitFiles:
    """The IDX files of one split; `kw` (download, fallback) as for `resolve_source`."""
    return split_files(resolve_source(source, data_dir, splits=[split], **kw), split)


def load(
    source: SourceSpec = "mnist", split: str = "train", data_dir: PathSpec = None, **options: Any
) -> tuple[np.ndarray, ...]:
    """Images uint8 [N, 28, 28] and labels uint8 [N] of one split, the way a person reads them;
    `options` as for load_splits (extra=True adds QMNIST's int32 [N, 8] label table)."""
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
    extra: bool = False,
) -> dict[str, tuple[np.ndarray, ...]]:
    """Several splits of a catalog name, IDX directory or Source, decoded in parallel and cached
    as memory-mapped .npy unless not `cache`; not `fallback`: no sample for a missing MNIST."""
    splits = [splits] if isinstance(splits, str) else list(splits)
    source = resolve_source(source, data_dir, splits=splits, download=download, fallback=fallback)
    files = {split: split_files(source, split) for split in splits}
    cache_dir = user_cache_dir() / "decoded" if cache else None
    paths = list(dict.fromkeys(path for found in files.values() for path in found))
    transposed = {found.images for found in files.values()} if _transposed(source) else set()
    with ThreadPoolExecutor(max_workers=min(len(paths), os.cpu_count() or 1)) as pool:
        read = pool.map(lambda f: read_idx_cached(f, cache_dir, f in transposed), paths)
        arrays = dict(zip(paths, read))
    result, classes = {}, num_classes or class_count(source)  # a folder's: all its splits'
    for split, found in files.items():
        images, table = arrays[found.images], arrays[found.labels]
        images, labels, table = _as_read(source, split, found, images, table)
        labels = _class_labels(source, found.labels, labels, classes)
        if extra and table is None:
            raise DatasetError(f"{found.labels}: class labels only; extra=True is for qmnist's")
        result[split] = (images, labels, table) if extra else (images, labels)
    return result


def _as_read(source: Source, split: str, found: SplitFiles, images, table) -> tuple:
    """A split's images (upright) and class labels, and the whole label table if it has one."""
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetError(f"{found.images}: expected 3-d uint8 IDX data, found {_kind(images)}")
    if not (table.ndim == 1 and table.dtype == np.uint8) and not (
        table.ndim == 2 and table.dtype.kind == "i" and table.shape[1]
    ):
        raise DatasetError(f"{found.labels}: expected 1-d uint8 IDX labels, found {_kind(table)}")
    if len(images) != len(table):
        raise DatasetError(
            f"{found.images.parent}: {found.images.name} holds {len(images)} images but "
            f"{found.labels.name} holds {len(table)} labels"
        )
    if source.dataset:
        rows = slice(*source.dataset.splits[split][2:])
        images, table = images[rows], table[rows]
    return images, table if table.ndim == 1 else table[:, 0], table if table.ndim == 2 else None


def _class_labels(source: Source, path: DataFile, labels: np.ndarray, classes: int) -> np.ndarray:
    """Labels as class indices 0..classes-1 (through the mapping file, if any), checked."""
    if source.label_values:  # EMNIST letters: stored as 1..26
        lookup = np.full(256, -1, np.int16)
        lookup[list(source.label_values)] = np.arange(len(source.label_values))
        mapped = lookup[labels]
        bad = np.flatnonzero(mapped < 0)[:1]
        if len(bad):
            raise DatasetError(
                f"{path}: label {int(labels[bad[0]])} at index {int(bad[0])} is not one of the "
                f"labels {min(source.label_values)}..{max(source.label_values)} of "
                f"{source.dataset.mapping.rsplit('/', 1)[-1]}"
            )
        labels = mapped
    if len(labels) and (int(labels.max()) >= classes or int(labels.min()) < 0):
        bad = int(np.argmax((labels >= classes) | (labels < 0)))
        raise DatasetError(
            f"{path}: label {int(labels[bad])} at index {bad} is out of range: "
            f"expected 0..{classes - 1}"
        )
    return labels.astype(np.uint8, copy=False)


def _transposed(source: Source) -> bool:
    return bool(source.dataset and source.dataset.transposed)


def _kind(array: np.ndarray) -> str:
    return f"{array.dtype} {array.shape}"


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
    label + 1) over the `labels` at hand and, in a folder of IDX files, every split's (so that
    the test split alone counts as many as train)."""
    if source.classes:
        return len(source.classes)
    if source.kind == "idx":
        found = (files_in(source.path, split, source.dataset) for split in SPLITS)
        labels = [*labels, *(read_data_file(files.labels) for files in found if files)]
    return max([10, *(int(np.max(y)) + 1 for y in labels if len(y))])


def class_list(source: Source, count: int) -> list[str]:
    """Names of `count` classes: the source's class names, else the labels as text "0".."N-1"."""
    names = list(source.classes or ())
    return names if len(names) == count else [str(label) for label in range(count)]


def describe_file(path: DataFile, array: np.ndarray | None = None) -> dict:
    """Shape, dtype, MD5, catalog match and (for integer vectors) the count of each value."""
    array = read_data_file(path) if array is None else array
    md5 = digest(path, "md5")
    match = [f"{d.name}/{f.name}" for d in CATALOG.values() for f in d.files if f.md5 == md5]
    summary = {
        "file": str(path),
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "bytes": size(path),
        "md5": md5,
        "catalog_match": match[0] if match else None,
    }
    if isinstance(path, Member):  # the catalog holds the MD5 of its archive, not its members'
        summary["archive"] = str(path.archive)
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
    """Summarise a catalog dataset, a directory of IDX files, one IDX file, or a converter's
    output (from its manifest) (`info`)."""
    name = os.fspath(source)
    if Path(name).is_file():
        return {"source": name, "files": [describe_file(Path(name))]}
    resolved = resolve_source(source, data_dir, download=False)
    if resolved.manifest:
        return {"source": name, **describe_output(resolved)}
    layout = resolved.dataset.splits if resolved.dataset else STANDARD_SPLITS
    splits = [s for s, names in layout.items() if names[2:] == (0, None)]  # not row ranges
    splits = [s for s in splits if s in SPLITS or files_in(resolved.path, s, resolved.dataset)]
    arrays = load_splits(resolved, splits, num_classes=num_classes)  # checked as loaded
    files = [
        {"split": split, **describe_file(path, array)}
        for split in splits
        for path, array in zip(split_files(resolved, split), (arrays[split][0], None))
    ]  # the labels as the file holds them (QMNIST's table, EMNIST letters' 1..26)
    return {"source": name, "files": files}


def describe_output(source: Source) -> dict:
    """A converter's output as its manifest records it: format, records per split, classes."""
    manifest = source.manifest
    summary = {"format": manifest["format"]}
    summary |= {key: manifest[key] for key in ("encoding", "compression") if key in manifest}
    origin = manifest.get("source")
    summary["converted_from"] = origin.get("name") if isinstance(origin, dict) else None
    splits = manifest["splits"]
    summary["splits"] = {s: splits[s]["records"] for s in ALL_SPLITS if s in splits}
    summary["classes"] = list(source.classes) if source.classes else None  # v1 held folders
    return summary
