"""Raw TFRecord splits read into numpy without TensorFlow (whose reader made a first epoch 2.1x
as long): equal-length records are rows of a uint8 array matching the writer's template
(`raw_layout`), so pixels, labels and indices come out as column slices."""

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
from mnist_data.sources.source import Source, read_manifest


def read_tfrecord_split(source: str | Path | Source, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [N, H, W] and labels int64 [N] of a raw TFRecord split, in source order;
    DatasetError naming the shard that is missing, damaged, or not `to_tfrecord`'s."""
    directory, manifest = Path(source), getattr(source, "manifest", None)
    manifest = manifest or read_manifest(directory)  # a Source's, read when it was resolved
    if manifest.get("format") != "tfrecord" or manifest.get("encoding") != "raw":
        raise DatasetError(f"{directory}: not a raw-encoded TFRecord directory of to-tfrecord")
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

    def read_one(number: int) -> None:
        shard, position = shards[number], starts[number]
        path = directory / shard["file"]
        data = _checked_bytes(path, shard, gzipped)
        try:
            runs = [
                _decode_run(rows, first, height * width, path.name)
                for first, _, rows in record_runs(data)
            ]
        except RecordDamage as exc:
            raise DatasetError(f"{path}: {exc}") from None
        count = sum(len(index) for *_, index in runs)
        if count != shard["records"]:
            raise DatasetError(f"{path}: {count} records, manifest.json says {shard['records']}")
        for pixels, run_labels, index in runs:
            rows = slice(position, position + len(index))
            if not np.array_equal(index, np.arange(rows.start, rows.stop)):
                raise DatasetError(f"{path}: records are not those of index {rows.start} on")
            images[rows], labels[rows] = pixels.reshape(-1, height, width), run_labels
            position = rows.stop

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(read_one, range(len(shards))))
    return images, labels


def check_shard_files(source: str | Path | Source, split: str) -> None:
    """DatasetError naming the first shard of `split` that differs from the manifest."""
    directory, manifest = Path(source), getattr(source, "manifest", None)
    for shard in (manifest or read_manifest(directory))["splits"][split]["shards"]:
        _checked_bytes(directory / shard["file"], shard, gzipped=False)


def aligned_empty(shape: tuple[int, ...], alignment: int = 4096) -> np.ndarray:
    """An uninitialised uint8 array aligned so that TensorFlow adopts it without a copy."""
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
