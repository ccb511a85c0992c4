"""A folder of tf.data cache files for streamed splits (`make_dataset(cache="FOLDER")`).

tf.data will not write a set while a killed writer's lockfile is there, so each set also has a
lock the OS drops when its holder dies: the next holder sweeps the leftovers, and keeps the lock
until it ends; while a live process holds it, others read the source files.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from pathlib import Path

import tensorflow as tf

from mnist_data.fs import locked
from mnist_data.sources.source import MANIFEST
from pipelines.input.readers import png_listing, split_shards

_HELD: dict[str, contextlib.ExitStack] = {}  # prefix -> its lock, held until the process ends


def cached(chunks: tf.data.Dataset, folder: Path, source: Path, split: str, fmt: str):
    """`chunks` written to, or read from, their cache files in `folder`; `chunks` themselves,
    with a warning, while another process writes those files."""
    prefix = cache_prefix(folder, source, split, fmt)
    if prefix in _HELD or os.path.exists(prefix + ".index"):  # ours, or complete: anyone reads
        return chunks.cache(prefix)
    leftovers = list(folder.glob(Path(prefix).name + "_*"))  # tf.data's lockfile, partial files
    held = contextlib.ExitStack()
    try:
        held.enter_context(locked(prefix + ".lock", busy=BlockingIOError()))
    except BlockingIOError:  # a live process holds it: writing now if it left a lockfile
        if leftovers:
            warnings.warn(
                f"{folder}: another process is writing the {split} split's cache there; "
                "this one reads the files directly",
                stacklevel=3,
            )
            return chunks
        return chunks.cache(prefix)
    for stale in leftovers:
        stale.unlink(missing_ok=True)
    _HELD[prefix] = held
    return chunks.cache(prefix)


def cache_prefix(folder: Path, source: Path, split: str, fmt: str) -> str:
    """Where in `folder` tf.data keeps one split's decoded chunks: a name keyed by the split, the
    source's manifest, and the size and time of every file the split is read from (a PNG tree's
    listing too), so another source, split or version of the files never reads these."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest, files = split_shards(source, split)
    if fmt == "png":
        files = [str(source / f"{split}.csv"), *png_listing(source, split, manifest)[0]]
    digest = hashlib.sha256((source / MANIFEST).read_bytes() + fmt.encode())
    for name in files:
        with contextlib.suppress(OSError):  # reading the split will name a missing file
            state = os.stat(name)
            relative = os.path.relpath(name, source)  # however the source's path is spelled
            digest.update(f"{relative}:{state.st_size}:{state.st_mtime_ns}\n".encode())
    return str(folder / f"{split}-{digest.hexdigest()[:16]}")
