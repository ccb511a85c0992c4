"""Decoded IDX files cached as memory-mapped .npy (a ~0.1 s inflate becomes a ~0.1 ms open),
keyed by path, size and mtime so that a changed file is decoded again."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from pathlib import Path

import numpy as np

from mnist_data.formats.idx import read_idx
from mnist_data.fs import TEMP_MARKER, atomic_path
from mnist_data.sources.files import DataFile, Member, read_bytes

# numpy parses a .npy header with `ast`, which CPython 3.11 cannot do in two threads at once
# (a spurious "AST constructor recursion depth mismatch"): the cache's files open one at a time.
_HEADERS = threading.Lock()


def cache_entry(source: DataFile, cache_dir: Path, variant: str = "") -> tuple[Path, str]:
    """The .npy path for `source` as it is now, and the prefix shared by all its versions."""
    file = (source.archive if isinstance(source, Member) else source).resolve()
    stat = file.stat()
    where = f"{file}:{source.member}" if isinstance(source, Member) else str(file)
    where = hashlib.sha1(where.encode()).hexdigest()[:12]
    version = f"{stat.st_size}:{stat.st_mtime_ns}{variant}"
    version = hashlib.sha1(version.encode()).hexdigest()[:12]
    prefix = f"{where}-{source.name}-"
    return cache_dir / f"{prefix}{version}.npy", prefix


def read_data_file(source: DataFile, transposed: bool = False) -> np.ndarray:
    """read_idx of a file or of an archive member; images stored `transposed` made upright."""
    if isinstance(source, Member):
        array = read_idx(read_bytes(source), str(source))
    else:
        array = read_idx(source)
    if transposed and array.ndim == 3:
        return np.ascontiguousarray(array.transpose(0, 2, 1))
    return array


def read_idx_cached(
    source: DataFile, cache_dir: str | Path | None, transposed: bool = False
) -> np.ndarray:
    """read_data_file, served from (and stored into) `cache_dir` when one is given."""
    if cache_dir is None:
        return read_data_file(source, transposed)
    entry, prefix = cache_entry(source, Path(cache_dir), " upright" if transposed else "")
    with contextlib.suppress(ValueError, OSError), _HEADERS:
        return np.load(entry, mmap_mode="c", allow_pickle=False)
    array = read_data_file(source, transposed)
    with contextlib.suppress(OSError):
        _store(array, entry, prefix)
    return array


def _store(array: np.ndarray, entry: Path, prefix: str) -> None:
    """Store `entry`, removing older versions and the temporaries of dead (not live) writers."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    for stale in entry.parent.glob(f"{prefix}*.npy"):
        stale.unlink(missing_ok=True)
    for temporary in entry.parent.glob(f".{prefix}*{TEMP_MARKER}*"):
        pid = temporary.name.rsplit(TEMP_MARKER, 1)[1].split("-", 1)[0]
        try:
            os.kill(int(pid), 0)
        except (ValueError, OverflowError, ProcessLookupError):
            temporary.unlink(missing_ok=True)
        except PermissionError:  # alive, another user's
            pass
    with atomic_path(entry, durable=False) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array, allow_pickle=False)
