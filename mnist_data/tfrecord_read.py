"""Raw-encoded TFRecord splits written by `to_tfrecord`, read into numpy arrays without TensorFlow.

A raw shard holds records of a few lengths. A run of records of one length is the rows of a
uint8 array, and every row has the layout of the run's first record: only the pixels, the two
varints and the data CRC differ. So the first record of a run is parsed as a protobuf, every
other row is checked against it with a few column comparisons, and pixels, labels and indices
come out as column slices: no per-record Python, no protobuf objects. The shard's checksum in
the manifest stands in for the per-record CRCs that `verify` checks one by one.
Why not TensorFlow's reader: it made the first epoch of Fashion-MNIST 2.1-2.3x as long (about
half a second more), handing out records one by one (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import hashlib
import mmap
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from google_crc32c import value as crc32c

from mnist_data.errors import DatasetError
from mnist_data.idx import MAX_DEFLATE_RATIO
from mnist_data.inflate import inflate_exact
from mnist_data.sources.source import read_manifest
from mnist_data.tfrecord import CRC, HEADER, masked_crc

FRAME = HEADER.size + 2 * CRC.size  # bytes of framing around each payload
PAYLOAD = HEADER.size + CRC.size  # where a payload starts within its record
FEATURES = ("image", "index", "label")


@dataclass(frozen=True)
class Layout:
    """Where a record's pixels and its index and label varints lie, as offsets in the record."""

    image: tuple[int, int]
    index: tuple[int, int]
    label: tuple[int, int]


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
    if split not in manifest.get("splits", {}):
        raise DatasetError(
            f"{directory}: no split {split!r} in manifest.json "
            f"(has {', '.join(manifest.get('splits', {}))})"
        )
    height, width = manifest["image"]["height"], manifest["image"]["width"]
    shards = manifest["splits"][split]["shards"]
    ratio = MAX_DEFLATE_RATIO if manifest.get("compression") == "gzip" else 1
    for shard in shards:  # checked before the split is allocated from these counts
        if shard["records"] * height * width > shard["bytes"] * ratio:
            raise DatasetError(
                f"{directory / shard['file']}: manifest.json says {shard['records']} records, "
                f"more than its {shard['bytes']} bytes can hold"
            )
    starts = np.cumsum([0] + [shard["records"] for shard in shards]).tolist()
    total = starts[-1]
    images = aligned_empty((total, height, width))
    labels = np.empty(total, np.int64)
    seen = np.zeros(total, bool)
    gzipped = manifest.get("compression") == "gzip"

    def read_one(number: int) -> None:
        shard, path = shards[number], directory / shards[number]["file"]
        data = _checked_bytes(path, shard, gzipped)
        position = starts[number]
        for pixels, run_labels, index in decode_raw_runs(data, height * width, path.name):
            if index.min() < 0 or index.max() >= total:
                raise DatasetError(f"{path}: record index outside 0..{total - 1}")
            rows: slice | np.ndarray = index  # anywhere; the writer's order is a plain copy:
            if (
                index[0] == position
                and index[-1] == position + len(index) - 1
                and np.array_equal(index, np.arange(position, position + len(index)))
            ):
                rows = slice(position, position + len(index))
            images[rows] = pixels.reshape(-1, height, width)
            labels[rows] = run_labels
            seen[rows] = True
            position += len(index)
        if position - starts[number] != shard["records"]:
            raise DatasetError(
                f"{path}: {position - starts[number]} records, "
                f"manifest.json says {shard['records']}"
            )

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(read_one, range(len(shards))))
    if not seen.all():
        raise DatasetError(
            f"{directory}: split {split!r} lacks the records of index "
            f"{int(np.flatnonzero(~seen)[0])} (an index appears twice)"
        )
    return images, labels


def check_shard_files(directory: str | Path, split: str) -> None:
    """DatasetError naming the first shard of `split` whose bytes differ from the checksum in
    the manifest. Why: a reader that decodes records itself (PNG-encoded shards, through
    TensorFlow) would otherwise take a copied or foreign shard of the same length for its own."""
    directory = Path(directory)
    for shard in read_manifest(directory)["splits"][split]["shards"]:
        _checked_bytes(directory / shard["file"], shard, gzipped=False)


def aligned_empty(
    shape: tuple[int, ...], dtype: type = np.uint8, alignment: int = 4096
) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on an `alignment` boundary.

    Why: TensorFlow can then adopt the buffer without copying it (via DLPack).
    """
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.empty(size + alignment, np.uint8)
    skip = -raw.ctypes.data % alignment
    return raw[skip : skip + size].view(dtype).reshape(shape)


def _checked_bytes(path: Path, shard: dict, gzipped: bool) -> np.ndarray:
    """The shard's (inflated) bytes, after checking the file against its manifest checksum.

    The file is memory-mapped, not read: no copy, and no fresh pages to fault in.
    """
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            data = (
                np.frombuffer(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ), np.uint8)
                if size
                else np.zeros(0, np.uint8)
            )
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if size != shard["bytes"]:
        raise DatasetError(
            f"{path}: size {size} bytes, manifest.json says {shard['bytes']} "
            "(cut short, damaged or replaced)"
        )
    if "crc32c" in shard:
        ok = crc32c(data) == shard["crc32c"]
    else:
        ok = hashlib.sha256(data).hexdigest() == shard.get("sha256")
    if not ok:
        raise DatasetError(
            f"{path}: contents differ from the checksum in manifest.json "
            "(damaged or replaced; `mnist-data verify` names the record)"
        )
    if not gzipped:
        return data
    inflated = inflate_exact(data.tobytes(), int(data[-4:].view("<u4")[0]), str(path))
    return np.frombuffer(inflated, np.uint8)


def decode_raw_runs(
    data: np.ndarray, pixels: int, name: str
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per run of equal-length records in `data`: pixels uint8 [n, pixels] (a view), labels
    int64 [n] and indices int64 [n]."""
    for first, rows in _runs(data, name):
        yield _decode_run(rows, first, pixels, name)


def _runs(data: np.ndarray, name: str) -> Iterator[tuple[int, np.ndarray]]:
    """(number of the first record, rows) for each run of equal-length records."""
    position = record = 0
    while position < len(data):
        if len(data) - position < FRAME:
            raise DatasetError(
                f"{name}: record {record} (byte {position}): truncated record header"
            )
        length = int(data[position : position + HEADER.size].view("<u8")[0])
        stride = length + FRAME
        fits = (len(data) - position) // stride
        if fits == 0:
            raise DatasetError(
                f"{name}: record {record} (byte {position}): truncated record: "
                f"expected {length} payload bytes"
            )
        headers = np.ndarray((fits,), "<u8", data, position, (stride,))
        mismatch = np.flatnonzero(headers != length)
        count = int(mismatch[0]) if len(mismatch) else fits
        yield record, data[position : position + count * stride].reshape(count, stride)
        position += count * stride
        record += count


def _decode_run(
    rows: np.ndarray, first: int, pixels: int, name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    header = rows[0, : HEADER.size].tobytes()
    if int(rows[0, HEADER.size : PAYLOAD].view("<u4")[0]) != masked_crc(header):
        raise DatasetError(f"{name}: record {first}: length CRC mismatch")
    layout = parse_layout(rows[0, PAYLOAD : -CRC.size].tobytes(), pixels, f"{name}: record {first}")
    cuts = [0] + [
        edge for span in sorted([layout.image, layout.index, layout.label]) for edge in span
    ]
    cuts.append(rows.shape[1] - CRC.size)  # the data CRC differs too; the shard checksum covers it
    for start, stop in zip(cuts[0::2], cuts[1::2]):  # every column but the variable ones
        block = rows[:, start:stop]
        if (block != block[0]).any():
            differs = int(np.flatnonzero((block != block[0]).any(axis=1))[0])
            raise DatasetError(
                f"{name}: record {first + differs} is not laid out like record {first} "
                "(not a raw record written by to-tfrecord)"
            )
    image = rows[:, layout.image[0] : layout.image[1]]
    index = _varints(rows[:, layout.index[0] : layout.index[1]], first, name)
    label = _varints(rows[:, layout.label[0] : layout.label[1]], first, name)
    return image, label, index


def _varints(columns: np.ndarray, first: int, name: str) -> np.ndarray:
    """Decode one varint per row, each `columns.shape[1]` bytes long."""
    continues = columns >= 0x80
    if not continues[:, :-1].all() or continues[:, -1].any():
        bad = int(np.flatnonzero(~continues[:, :-1].all(axis=1) | continues[:, -1])[0])
        raise DatasetError(f"{name}: record {first + bad}: malformed varint")
    values = np.zeros(len(columns), np.int64)
    for byte in range(columns.shape[1]):
        values |= (columns[:, byte] & 0x7F).astype(np.int64) << (7 * byte)
    return values


def parse_layout(payload: bytes, pixels: int, where: str) -> Layout:
    """Find the pixels and the two varints in one serialized tf.train.Example.

    It must hold exactly the features image (one bytes value of `pixels` bytes), index and
    label (one int64 each); offsets in the result count from the start of the record.
    """
    spans: dict[str, tuple[int, int]] = {}
    for number, start, stop in _fields(payload, 0, len(payload), where):
        if number != 1:
            raise DatasetError(f"{where}: not a tf.train.Example")
        for entry, entry_start, entry_stop in _fields(payload, start, stop, where):
            key, value = _map_entry(payload, entry_start, entry_stop, where)
            if entry != 1 or key not in FEATURES or key in spans:
                raise DatasetError(f"{where}: unexpected feature {key!r}")
            spans[key] = _single_value(payload, value, where, key, 1 if key == "image" else 3)
    if sorted(spans) != sorted(FEATURES):
        raise DatasetError(f"{where}: features {sorted(spans)}, expected {list(FEATURES)}")
    if spans["image"][1] - spans["image"][0] != pixels:
        raise DatasetError(
            f"{where}: image of {spans['image'][1] - spans['image'][0]} bytes, expected {pixels}"
        )
    return Layout(
        **{key: (start + PAYLOAD, stop + PAYLOAD) for key, (start, stop) in spans.items()}
    )


def _map_entry(buffer: bytes, start: int, stop: int, where: str) -> tuple[str, tuple[int, int]]:
    fields = {number: (a, b) for number, a, b in _fields(buffer, start, stop, where)}
    if set(fields) != {1, 2}:
        raise DatasetError(f"{where}: malformed feature map entry")
    return buffer[slice(*fields[1])].decode("utf-8", "replace"), fields[2]


def _single_value(
    buffer: bytes, span: tuple[int, int], where: str, key: str, kind: int
) -> tuple[int, int]:
    """The span of the one value of a Feature holding a bytes (kind 1) or int64 list (kind 3)."""
    lists = list(_fields(buffer, *span, where))
    if len(lists) != 1 or lists[0][0] != kind:
        raise DatasetError(
            f"{where}: feature {key!r} is not a single {'bytes' if kind == 1 else 'int64'} value"
        )
    values = list(_fields(buffer, lists[0][1], lists[0][2], where, packed_varints=kind == 3))
    if len(values) != 1 or values[0][0] != 1:
        raise DatasetError(f"{where}: feature {key!r} holds {len(values)} values, expected 1")
    return values[0][1], values[0][2]


def _fields(buffer: bytes, start: int, stop: int, where: str, packed_varints: bool = False):
    """(field number, start, stop) of each length-delimited or varint field in buffer[start:stop].

    With `packed_varints`, a length-delimited field 1 is a packed list whose varints are
    yielded one by one as field 1.
    """
    position = start
    while position < stop:
        key, position = _read_varint(buffer, position, stop, where)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, end = _read_varint(buffer, position, stop, where)
        elif wire == 2:
            length, position = _read_varint(buffer, position, stop, where)
            end = position + length
            if end > stop:
                raise DatasetError(f"{where}: field {number} runs past its message")
            if packed_varints and number == 1:
                while position < end:
                    _, after = _read_varint(buffer, position, end, where)
                    yield 1, position, after
                    position = after
                continue
        else:
            raise DatasetError(f"{where}: unexpected protobuf wire type {wire}")
        yield number, position, end
        position = end


def _read_varint(buffer: bytes, position: int, stop: int, where: str) -> tuple[int, int]:
    value = shift = 0
    while position < stop and shift < 64:
        byte = buffer[position]
        value |= (byte & 0x7F) << shift
        position += 1
        if not byte & 0x80:
            return value, position
        shift += 7
    raise DatasetError(f"{where}: truncated or overlong varint")
