"""`to_tfrecord`: IDX splits to TFRecord shards of tf.train.Example, each a contiguous range
written atomically by a worker thread; a resumed run encodes only shards missing, damaged or
differing from the manifest. The same input and options give byte-identical shards."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
from google_crc32c import value as crc32c

from mnist_data.checks import check_whole
from mnist_data.conversion.png import check_choice, check_compress_level
from mnist_data.conversion.run import convert, load_source, wait_all
from mnist_data.errors import ConvertError, DatasetError
from mnist_data.formats.idx import gzip_compress
from mnist_data.formats.png import encode_gray_pngs
from mnist_data.formats.tfrecord import count_records, encode_example, encode_raw_records, frame
from mnist_data.fs import write_bytes_atomic
from mnist_data.sources.catalog import SPLITS
from mnist_data.sources.source import read_manifest

ENCODINGS = ("raw", "png")
COMPRESSIONS = ("none", "gzip")
DEFAULT_SHARD_SIZE = 10_000
FEATURE_SPEC = {"image": "bytes", "label": "int64", "index": "int64"}


def shard_bounds(count: int, shards: int | None, shard_size: int | None) -> list[tuple[int, int]]:
    """Contiguous [start, stop) ranges: `shards` of them, or as many as `shard_size` needs."""
    if shards is not None and shard_size is not None:
        raise ConvertError("give either shards or shard_size, not both")
    for name, value in (("shards", shards), ("shard_size", shard_size)):
        if value is not None:
            check_whole(name, value, 1, error=ConvertError)
    n = shards if shards is not None else max(1, -(-count // (shard_size or DEFAULT_SHARD_SIZE)))
    if n > max(count, 1):
        raise ConvertError(f"{n} shards for {count} records: at most one shard per record")
    edges = np.linspace(0, count, n + 1).round().astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def to_tfrecord(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    splits: Sequence[str] = SPLITS,
    encoding: str = "raw",
    compression: str | None = None,
    shards: int | None = None,
    shard_size: int | None = None,
    workers: int | None = None,
    compress_level: int = 1,
    num_classes: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Convert the splits of `source` into TFRecord shards and OUT/manifest.json; returns a summary.
    `num_classes`: labels are 0..num_classes - 1 (default: as many as the source has classes)."""
    compression = (compression or "none").lower()  # TensorFlow spells it "GZIP"
    check_choice("encoding", encoding, ENCODINGS)
    check_choice("compression", compression, COMPRESSIONS)
    compress_level = check_compress_level(compress_level)
    source, arrays, classes = load_source(source, splits, workers, num_classes)
    for _, labels in arrays.values():  # refuse impossible sharding before anything is written
        shard_bounds(len(labels), shards, shard_size)
    shards, shard_size = (None if n is None else int(n) for n in (shards, shard_size))  # NumPy's
    options = {
        "encoding": encoding,
        "compression": compression,
        "shards": shards,
        "shard_size": shard_size,
        "compress_level": compress_level if encoding == "png" else None,
        "splits": list(arrays),
    }
    extra = {"encoding": encoding, "compression": compression, "feature_spec": FEATURE_SPEC}
    extra["classes"] = classes
    split_writer = partial(_convert_split, Path(out), options, progress)
    return convert(
        "tfrecord", source, out, arrays, options, extra, split_writer, workers, overwrite
    )


def _convert_split(out, options, progress, pool, split, images, labels, counts) -> dict:
    bounds = shard_bounds(len(labels), options["shards"], options["shard_size"])
    suffix = ".tfrecord.gz" if options["compression"] == "gzip" else ".tfrecord"
    names = [f"{split}-{i:05d}-of-{len(bounds):05d}{suffix}" for i in range(len(bounds))]
    try:  # what a finished earlier run published: a shard swapped since must not be kept
        published = {s["file"]: s["sha256"] for s in read_manifest(out)["splits"][split]["shards"]}
    except (DatasetError, KeyError):
        published = {}
    entries, jobs = {}, []
    for name, (start, stop) in zip(names, bounds):
        path = out / name
        kept = None
        if path.is_file() and count_records(path, suffix.endswith(".gz")) == (stop - start, None):
            kept = _shard_entry(name, stop - start, path.read_bytes())
        if kept and published.get(name, kept["sha256"]) == kept["sha256"]:
            entries[name] = kept
            counts.update(resumed_files=1, resumed_examples=stop - start)
        else:
            shard = (images[start:stop], labels[start:stop], start)
            jobs.append((stop - start, pool.submit(_write_shard, path, *shard, options)))
    done = sum(entry["records"] for entry in entries.values())
    for entry in wait_all(jobs, len(labels), done, f"to-tfrecord {split}", progress):
        entries[entry["file"]] = entry
    shard_list = [entries[name] for name in names]
    counts.update(examples=len(labels), files=len(shard_list))
    counts["bytes"] += sum(entry["bytes"] for entry in shard_list)
    return {"records": len(labels), "shards": shard_list}


def _write_shard(path: Path, images, labels, start: int, options: dict) -> dict:
    """Encode and write one shard: framed Examples for images[i], labels[i], index start + i."""
    if options["encoding"] == "raw":
        blob = encode_raw_records(images, labels, start)
    else:
        pngs = encode_gray_pngs(images, options["compress_level"])
        blob = b"".join(
            frame(encode_example(png, label, start + i))
            for i, (png, label) in enumerate(zip(pngs, labels.tolist()))
        )
    if options["compression"] == "gzip":
        blob = gzip_compress(blob)
    write_bytes_atomic(path, blob)  # fsync'd: a kill or power cut leaves no empty shard behind
    return _shard_entry(path.name, len(labels), blob)


def _shard_entry(name: str, records: int, blob: bytes) -> dict:
    """The manifest's line for one shard; crc32c lets readers check a whole shard in ~1 ms."""
    return {
        "file": name,
        "records": records,
        "bytes": len(blob),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "crc32c": crc32c(blob),
    }
