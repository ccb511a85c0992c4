"""tf.data cache files (cache="FOLDER"), each set under a lock the OS drops when its holder dies:
the next sweeps a killed writer's leftovers (which block tf.data); while one lives, others read."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from pathlib import Path

import tensorflow as tf

from mnist_data.conversion.verify import png_listing
from mnist_data.fs import locked
from mnist_data.sources.source import Source
from pipelines.input.readers import shard_paths

_HELD: dict[str, contextlib.ExitStack] = {}  # prefix -> its lock, held until the process ends


def cached(chunks: tf.data.Dataset, folder: Path, source: Source, split: str):
    """`chunks` through cache files in `folder`; uncached while another process writes them."""
    prefix = cache_prefix(folder, source, split)
    if prefix in _HELD or os.path.exists(prefix + ".index"):  # ours, or complete: anyone reads
        return chunks.cache(prefix)
    leftovers = list(folder.glob(Path(prefix).name + "_*"))  # tf.data's lockfile, partial files
    try:
        (held := contextlib.ExitStack()).enter_context(locked(prefix + ".lock", BlockingIOError()))
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


def cache_prefix(folder: Path, source: Source, split: str) -> str:
    """The split's cache name in `folder`, keyed by the manifest and the size and time of each file
    read: another source, split or version of the files never reads these."""
    folder.mkdir(parents=True, exist_ok=True)
    if source.kind == "png":
        files = [str(source.path / f"{split}.csv"), *png_listing(source, split)[0]]
    else:
        files = shard_paths(source, split)
    digest = hashlib.sha256(json.dumps(source.manifest, sort_keys=True).encode())
    for name in files:
        with contextlib.suppress(OSError):  # reading the split will name a missing file
            state = os.stat(name)
            relative = os.path.relpath(name, source.path)  # however the source's path is spelled
            digest.update(f"{relative}:{state.st_size}:{state.st_mtime_ns}\n".encode())
    return str(folder / f"{split}-{digest.hexdigest()[:16]}")
