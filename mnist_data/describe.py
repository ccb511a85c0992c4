"""`describe`: what a dataset, IDX directory or single IDX file holds, for `mnist-data info`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mnist_data.catalog import CATALOG, SPLITS
from mnist_data.errors import DatasetError
from mnist_data.fetch import md5_of
from mnist_data.formats.idx import read_idx
from mnist_data.load import load_splits, resolve
from mnist_data.manifest import MANIFEST


def catalog_match(md5: str) -> str | None:
    """'dataset/file' whose published MD5 is `md5`, if any."""
    for dataset in CATALOG.values():
        for remote in dataset.files.values():
            if remote.md5 == md5:
                return f"{dataset.name}/{remote.name}"
    return None


def describe_file(path: Path, array: np.ndarray | None = None) -> dict:
    """Shape, dtype, MD5, catalog match and (for integer vectors) the count of each value."""
    array = read_idx(path) if array is None else array
    md5 = md5_of(path)
    summary = {
        "file": str(path),
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "bytes": path.stat().st_size,
        "md5": md5,
        "catalog_match": catalog_match(md5),
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
    source: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    *,
    num_classes: int | None = None,
) -> dict:
    """Summarise a catalog dataset, a directory of the four IDX files, or one IDX file.

    `num_classes` admits labels up to num_classes - 1 (default: the catalog's count, else 10).
    """
    if Path(source).is_file():
        return {"source": os.fspath(source), "files": [describe_file(Path(source))]}
    if (Path(source) / MANIFEST).is_file():
        raise DatasetError(
            f"{source} holds converted output (see its manifest.json); info describes IDX data: "
            f"`mnist-data verify {source}` checks converted output"
        )
    arrays = load_splits(source, SPLITS, data_dir, download=False, num_classes=num_classes)
    files = []
    for split, (images, labels) in arrays.items():
        found = resolve(source, split, data_dir, download=False)
        files.append({"split": split, **describe_file(found.images, images)})
        files.append({"split": split, **describe_file(found.labels, labels)})
    return {"source": os.fspath(source), "files": files}
