"""`to_tfrecord`: IDX splits to sharded TFRecord files of tf.train.Example, in parallel.

Each shard is a contiguous range of the split, encoded in a worker thread and written
under a temporary name, then renamed: a shard under its final name is always complete,
so a resumed run only encodes the shards that are missing, or whose records no longer
pass their CRCs. Output is deterministic:
the same input and options give byte-identical shards (gzip with mtime 0).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from google_crc32c import value as crc32c

from mnist_data.checks import is_whole
from mnist_data.conversion import (
    RunSummary,
    check_summary_path,
    check_workers,
    claimed_output,
    describe_source,
    image_size,
    publish_manifest,
    requested_splits,
    worker_pool,
)
from mnist_data.errors import ConvertError, DatasetError
from mnist_data.fs import write_bytes_atomic
from mnist_data.idx import gzip_compress
from mnist_data.pngcodec import encode_gray_pngs
from mnist_data.sources.catalog import SPLITS
from mnist_data.sources.load import load_splits
from mnist_data.sources.source import read_manifest
from mnist_data.tfrecord import count_records, encode_example, encode_raw_records, frame

ENCODINGS = ("raw", "png")
COMPRESSIONS = ("none", "gzip")
DEFAULT_SHARD_SIZE = 10_000
FEATURE_SPEC = {"image": "bytes", "label": "int64", "index": "int64"}


def shard_name(split: str, i: int, n: int, compression: str) -> str:
    return f"{split}-{i:05d}-of-{n:05d}.tfrecord" + (".gz" if compression == "gzip" else "")


def shard_bounds(count: int, shards: int | None, shard_size: int | None) -> list[tuple[int, int]]:
    """Contiguous [start, stop) ranges: `shards` of them, or as many as `shard_size` needs."""
    if shards is not None and shard_size is not None:
        raise ConvertError("give either shards or shard_size, not both")
    for name, value in (("shards", shards), ("shard_size", shard_size)):
        if value is not None and not is_whole(value, 1):
            raise ConvertError(f"{name} must be a whole number, at least 1, found {value!r}")
    n = shards if shards is not None else max(1, -(-count // (shard_size or DEFAULT_SHARD_SIZE)))
    if n > max(count, 1):
        raise ConvertError(f"{n} shards for {count} records: at most one shard per record")
    edges = np.linspace(0, count, n + 1).round().astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def encode_shard(
    images: np.ndarray,
    labels: np.ndarray,
    start: int,
    encoding: str,
    compression: str,
    compress_level: int,
) -> bytes:
    """The bytes of one shard file: framed Examples for images[i], labels[i], index start + i."""
    if encoding == "raw":
        blob = encode_raw_records(images, labels, start)
        return gzip_compress(blob) if compression == "gzip" else blob
    payloads = encode_gray_pngs(images, compress_level)
    blob = b"".join(
        frame(encode_example(payload, label, start + offset))
        for offset, (payload, label) in enumerate(zip(payloads, labels.tolist()))
    )
    return gzip_compress(blob) if compression == "gzip" else blob


def _write_shard(
    path: str,
    images: np.ndarray,
    labels: np.ndarray,
    start: int,
    encoding: str,
    compression: str,
    compress_level: int,
) -> dict:
    blob = encode_shard(images, labels, start, encoding, compression, compress_level)
    write_bytes_atomic(path, blob)  # fsync'd: a kill or power cut leaves no empty shard behind
    return _shard_entry(Path(path).name, len(labels), blob)


def _shard_entry(name: str, records: int, blob: bytes) -> dict:
    """The manifest's line for one shard; crc32c lets readers check a whole shard in ~1 ms."""
    return {
        "file": name,
        "records": records,
        "bytes": len(blob),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "crc32c": crc32c(blob),
    }


def _intact(path: Path, records: int, compression: str) -> bool:
    """Whether a shard left by an earlier run holds all its records, each CRC intact."""
    return path.is_file() and count_records(path, compression == "gzip") == (records, None)


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
    json_path: str | os.PathLike | None = None,
) -> dict:
    """Convert the splits of `source` into TFRecord shards and OUT/manifest.json; returns a summary.

    `num_classes` admits labels up to num_classes - 1 (default: the catalog's count, else 10).
    """
    compression = compression or "none"
    if encoding not in ENCODINGS:
        raise ConvertError(f"unknown encoding {encoding!r}: expected one of {', '.join(ENCODINGS)}")
    if not (is_whole(compress_level, 0) and compress_level <= 9):
        raise ConvertError(f"compress_level must be 0..9, found {compress_level!r}")
    compress_level = int(compress_level)
    if compression not in COMPRESSIONS:
        raise ConvertError(
            f"unknown compression {compression!r}: expected one of {', '.join(COMPRESSIONS)}"
        )
    out = Path(out)
    splits = requested_splits(splits)
    check_summary_path(out, json_path)
    arrays = load_splits(source, splits, fallback=False, num_classes=num_classes)
    check_workers(workers)
    for _, labels in arrays.values():  # refuse impossible sharding before anything is written
        shard_bounds(len(labels), shards, shard_size)
    shards, shard_size = (
        None if n is None else int(n) for n in (shards, shard_size)
    )  # NumPy's too
    options = {
        "encoding": encoding,
        "compression": compression,
        "shards": shards,
        "shard_size": shard_size,
        "compress_level": compress_level if encoding == "png" else None,
        "splits": list(splits),
    }
    identity = {"kind": "tfrecord", "source": describe_source(source, splits), "options": options}
    manifest = {
        "format": "tfrecord",
        "version": 1,
        "source": identity["source"],
        "options": options,
        "encoding": encoding,
        "compression": compression,
        "image": image_size(source, arrays),
        "feature_spec": FEATURE_SPEC,
        "splits": {},
    }
    with claimed_output(out, identity, overwrite), worker_pool(workers) as pool:
        summary = RunSummary("to-tfrecord", str(out))
        for split, (images, labels) in arrays.items():
            manifest["splits"][split] = _convert_split(
                pool,
                out,
                split,
                images,
                labels,
                shards,
                shard_size,
                encoding,
                compression,
                compress_level,
                progress,
                summary,
            )
        result = summary.finish()
        publish_manifest(out, manifest, result, json_path)
    return result


def _published_checksums(out: Path, split: str) -> dict[str, str]:
    """SHA-256 of each shard of `split` as a finished earlier run of the same conversion
    published it: a shard swapped for another valid one since must not be kept on a rerun."""
    try:
        shards = read_manifest(out)["splits"][split]["shards"]
    except (DatasetError, KeyError):
        return {}
    return {shard["file"]: shard["sha256"] for shard in shards}


def _convert_split(
    pool,
    out,
    split,
    images,
    labels,
    shards,
    shard_size,
    encoding,
    compression,
    compress_level,
    progress,
    summary,
) -> dict:
    from tqdm import tqdm

    bounds = shard_bounds(len(labels), shards, shard_size)
    names = [shard_name(split, i, len(bounds), compression) for i in range(len(bounds))]
    entries: dict[str, dict] = {}
    pending = {}
    published = _published_checksums(out, split)
    for name, (start, stop) in zip(names, bounds):
        path = out / name
        kept = (
            _shard_entry(name, stop - start, path.read_bytes())
            if _intact(path, stop - start, compression)
            else None
        )
        if (
            kept and published.get(name, kept["sha256"]) == kept["sha256"]
        ):  # ours, unless damaged or replaced since
            entries[name] = kept
            summary.resumed_files += 1
            summary.resumed_examples += stop - start
        else:
            pending[name] = pool.submit(
                _write_shard,
                str(path),
                images[start:stop],
                labels[start:stop],
                start,
                encoding,
                compression,
                compress_level,
            )
    with tqdm(
        total=len(labels), desc=f"to-tfrecord {split}", unit="ex", disable=not progress, leave=False
    ) as bar:
        bar.update(sum(e["records"] for e in entries.values()))
        for name, future in pending.items():
            entries[name] = future.result()
            bar.update(entries[name]["records"])
    shard_list = [entries[name] for name in names]
    summary.examples += len(labels)
    summary.files += len(shard_list)
    summary.bytes += sum(e["bytes"] for e in shard_list)
    return {"records": len(labels), "shards": shard_list}
