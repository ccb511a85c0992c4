"""Raw-encoded TFRecord splits written by `to_tfrecord`, read into numpy arrays without TensorFlow.

A run of equal-length records is the rows of a uint8 array that must equal the writer's template
(`raw_layout`) but for pixels, two varints and the data CRC, which the manifest's shard checksum
covers: pixels, labels and indices come out as column slices, with no per-record Python.
TensorFlow's reader made the first epoch of Fashion-MNIST 2.1-2.3x as long (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import hashlib
import itertools
import mmap
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from google_crc32c import value as crc32c

from mnist_data.errors import DatasetError
from mnist_data.formats.inflate import inflate_exact
from mnist_data.formats.tfrecord import CRC, RecordDamage, raw_layout, record_runs
from mnist_data.sources.source import read_manifest


def read_tfrecord_split(directory: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [N, H, W] and labels int64 [N] of a raw TFRecord split, in source order.

    Raises DatasetError naming the shard when a file is missing, fails its manifest checksum,
    or holds anything but the records `to_tfrecord` writes.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest.get("format") != "tfrecord" or manifest.get("encoding") != "raw":
        raise DatasetError(
            f"{directory}: not a raw-encoded TFRecord directory written by to-tfrecord"
        )
    if split not in manifest["splits"]:
        raise DatasetError(
            f"{directory}: no split {split!r} in manifest.json "
            f"(has {', '.join(manifest['splits'])})"
        )
    height, width = manifest["image"]["height"], manifest["image"]["width"]
    shards = manifest["splits"][split]["shards"]
    gzipped = manifest.get("compression") == "gzip"
    starts = np.cumsum([0] + [shard["records"] for shard in shards]).tolist()
    total = starts[-1]
    images, labels = aligned_empty((total, height, width)), np.empty(total, np.int64)
    seen = np.zeros(total, bool)

    def read_one(number: int) -> None:
        path, position = directory / shards[number]["file"], starts[number]
        for pixels, run_labels, index in _shard_runs(path, shards[number], gzipped, height * width):
            if index.min() < 0 or index.max() >= total:
                raise DatasetError(f"{path}: record index outside 0..{total - 1}")
            rows: slice | np.ndarray = index  # anywhere; the writer's order is a plain copy:
            if np.array_equal(index, np.arange(position, position + len(index))):
                rows = slice(position, position + len(index))
            images[rows] = pixels.reshape(-1, height, width)
            labels[rows], seen[rows] = run_labels, True
            position += len(index)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(read_one, range(len(shards))))
    if not seen.all():
        raise DatasetError(
            f"{directory}: split {split!r} lacks the records of index "
            f"{int(np.flatnonzero(~seen)[0])} (an index appears twice)"
        )
    return images, labels


def _shard_runs(path: Path, shard: dict, gzipped: bool, pixels: int) -> list[tuple]:
    """(pixels, labels, indices) per run of records of one shard, checked against its entry."""
    data = _checked_bytes(path, shard, gzipped)
    try:
        runs = [_decode_run(rows, first, pixels, path.name) for first, _, rows in record_runs(data)]
    except RecordDamage as exc:
        raise DatasetError(f"{path}: {exc}") from None
    count = sum(len(index) for *_, index in runs)
    if count != shard["records"]:
        raise DatasetError(f"{path}: {count} records, manifest.json says {shard['records']}")
    return runs


def check_shard_files(directory: str | Path, split: str) -> None:
    """DatasetError naming the first shard of `split` whose bytes differ from the manifest's
    checksum, for readers that decode records themselves (PNG-encoded shards, through TF)."""
    directory = Path(directory)
    for shard in read_manifest(directory)["splits"][split]["shards"]:
        _checked_bytes(directory / shard["file"], shard, gzipped=False)


def aligned_empty(shape: tuple[int, ...], alignment: int = 4096) -> np.ndarray:
    """An uninitialised uint8 array whose data starts on an `alignment` boundary, so that
    TensorFlow can adopt the buffer without copying it (via DLPack)."""
    size = int(np.prod(shape))
    raw = np.empty(size + alignment, np.uint8)
    skip = -raw.ctypes.data % alignment
    return raw[skip : skip + size].reshape(shape)


def _checked_bytes(path: Path, shard: dict, gzipped: bool) -> np.ndarray:
    """The shard's (inflated) bytes, memory-mapped, after checking them against the manifest."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
            data = np.frombuffer(mapped, np.uint8)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) != shard["bytes"]:
        raise DatasetError(
            f"{path}: size {len(data)} bytes, manifest.json says {shard['bytes']} "
            "(cut short, damaged or replaced)"
        )
    checksum = crc32c(data) if "crc32c" in shard else hashlib.sha256(data).hexdigest()
    if checksum != shard.get("crc32c", shard["sha256"]):  # older manifests have no crc32c
        raise DatasetError(
            f"{path}: contents differ from the checksum in manifest.json "
            "(damaged or replaced; `mnist-data verify` names the record)"
        )
    if not gzipped:
        return data
    return np.frombuffer(
        inflate_exact(data.tobytes(), int(data[-4:].view("<u4")[0]), str(path)), np.uint8
    )


def _decode_run(rows: np.ndarray, first: int, pixels: int, name: str):
    for index_width, label_width in itertools.product(range(1, 11), repeat=2):
        template, image, index, label = raw_layout(pixels, index_width, label_width)
        fixed = np.ones(len(template), bool)
        for span in (image, index, label, slice(-CRC.size, None)):
            fixed[span] = False
        if len(template) == rows.shape[1] and (rows[0, fixed] == template[fixed]).all():
            break
    else:
        raise DatasetError(
            f"{name}: record {first}: not a raw record of {pixels} pixels written by to-tfrecord"
        )
    differs = np.flatnonzero((rows[:, fixed] != template[fixed]).any(axis=1))
    if len(differs):
        raise DatasetError(
            f"{name}: record {first + int(differs[0])} is not laid out like record {first} "
            "(not a raw record written by to-tfrecord)"
        )
    return rows[:, image], _varints(rows[:, label]), _varints(rows[:, index])


def _varints(columns: np.ndarray) -> np.ndarray:
    """Decode one varint per row, each `columns.shape[1]` bytes long."""
    values = np.zeros(len(columns), np.int64)
    for byte in range(columns.shape[1]):
        values |= (columns[:, byte] & 0x7F).astype(np.int64) << (7 * byte)
    return values
