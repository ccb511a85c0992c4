"""A folder of tf.data cache files (`make_dataset(cache="FOLDER")`): which files hold a split,
and which process may write them.

tf.data's own file cache refuses to start while a lockfile of an earlier writer is there,
and a writer that is killed leaves its lockfile behind for good. Here each set of files has
a lock the OS releases when its process dies: whoever takes it may sweep what a dead writer
left, and while a live process holds it, others read the source files instead.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

from mnist_data.errors import DatasetError
from mnist_data.sources.source import MANIFEST
from pipelines.file_readers import png_listing, split_shards

_HELD: dict[str, int] = {}  # prefix -> descriptor of its lock, held until this process ends


def cache_prefix(folder: Path, source: Path, split: str, fmt: str) -> str:
    """Where in `folder` tf.data keeps one split's decoded chunks: a name keyed by the split,
    the source's manifest, and the size and modification time of every file the split is read
    from (and a PNG tree's listing), so another source, split or version of the files, a
    relabelled listing or a replaced shard, never reads these."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(
            f"{folder}: cannot make the cache folder: {exc.strerror or exc}"
        ) from None
    manifest, files = split_shards(source, split)
    if fmt == "png":
        listing = source / f"{split}.csv"
        files = [str(listing), *png_listing(source, split, manifest)[0]]
    digest = hashlib.sha256((source / MANIFEST).read_bytes() + fmt.encode())
    for name in files:
        try:
            state = os.stat(name)
        except OSError:  # reading the split will name it
            continue
        relative = os.path.relpath(name, source)  # however the source's path is spelled
        digest.update(f"{relative}:{state.st_size}:{state.st_mtime_ns}\n".encode())
    return str(folder / f"{split}-{digest.hexdigest()[:16]}")


def writable_cache_prefix(folder: Path, source: Path, split: str, fmt: str) -> str | None:
    """`cache_prefix`, once this process may read or write its files: the set is complete, or
    this process holds its lock (sweeping what a killed writer left). None while another live
    process is writing the set; the lock of one that holds it but is not writing is no bar.

    A process keeps the lock until it ends: tf.data says nothing when it stops writing."""
    prefix = cache_prefix(folder, source, split, fmt)
    if prefix in _HELD or os.path.exists(
        prefix + ".index"
    ):  # ours, or complete: any number may read
        return prefix
    try:
        held = os.open(prefix + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DatasetError(
            f"{folder}: cannot write in the cache folder: {exc.strerror or exc}"
        ) from None
    leftovers = list(
        Path(folder).glob(Path(prefix).name + "_*")
    )  # tf.data's lockfile and partial files
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # held by a live process: writing now if tf.data's lockfile is there
        os.close(held)
        return None if leftovers else prefix
    except OSError:  # no flock on this file system: tf.data's own lockfile is the only guard
        os.close(held)
        return prefix
    for stale in leftovers:  # what a writer killed before it finished left behind
        stale.unlink(missing_ok=True)
    _HELD[prefix] = held
    return prefix
