"""Decoded IDX files cached as memory-mapped .npy (a ~0.1 s inflate becomes a ~0.1 ms open),
keyed by path, size and mtime so that a changed file is decoded again."""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import numpy as np

from mnist_data.formats.idx import read_idx
from mnist_data.fs import TEMP_MARKER, atomic_path


def cache_entry(source: Path, cache_dir: Path) -> tuple[Path, str]:
    """The .npy path for `source` as it is now, and the prefix shared by all its versions."""
    source = source.resolve()
    stat = source.stat()
    where = hashlib.sha1(str(source).encode()).hexdigest()[:12]
    version = hashlib.sha1(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    prefix = f"{where}-{source.name}-"
    return cache_dir / f"{prefix}{version}.npy", prefix


def read_idx_cached(source: str | Path, cache_dir: str | Path | None) -> np.ndarray:
    """read_idx, served from (and stored into) `cache_dir` when one is given."""
    if cache_dir is None:
        return read_idx(source)
    entry, prefix = cache_entry(Path(source), Path(cache_dir))
    with contextlib.suppress(ValueError, OSError):
        return np.load(entry, mmap_mode="c", allow_pickle=False)
    array = read_idx(source)
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
