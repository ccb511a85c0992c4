"""TFRecord framing (uint64 length, its masked CRC32C, payload, the payload's) and the
tf.train.Example of one image (`image`, `index`, `label`), built as bytes without TensorFlow."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from google_crc32c import value as crc32c

HEADER = struct.Struct("<Q")
CRC = struct.Struct("<I")
FRAME = HEADER.size + 2 * CRC.size  # bytes of framing around each payload
PAYLOAD = HEADER.size + CRC.size  # where a payload starts within its record


class RecordDamage(ValueError):
    """Where a TFRecord stream stops being valid: 'record N (byte B): problem'."""


def masked_crc(data: bytes | np.ndarray) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return bytes([number << 3 | 2]) + varint(len(payload)) + payload


def _int64_entry(key: bytes, value: int) -> bytes:
    """One feature map entry holding a single int64 (a packed Int64List)."""
    return _field(1, _field(1, key) + _field(2, _field(3, _field(1, varint(value)))))


def encode_example(image: bytes, label: int, index: int) -> bytes:
    """The serialized tf.train.Example of one image (features in key order)."""
    image_entry = _field(1, _field(1, b"image") + _field(2, _field(1, _field(1, image))))
    return _field(1, image_entry + _int64_entry(b"index", index) + _int64_entry(b"label", label))


def frame(payload: bytes) -> bytes:
    """One TFRecord: header, header CRC, payload, payload CRC."""
    header = HEADER.pack(len(payload))
    return header + CRC.pack(masked_crc(header)) + payload + CRC.pack(masked_crc(payload))


def raw_layout(
    pixels: int, index_width: int, label_width: int
) -> tuple[np.ndarray, slice, slice, slice]:
    """A framed raw record with index and label varints of the given widths, and the spans of
    its pixels, index and label: every such record differs from it only there and in its CRC."""
    index, label = (1 << 7 * (width - 1) for width in (index_width, label_width))
    record = frame(encode_example(bytes(pixels), label, index))
    index_stop = len(record) - CRC.size - len(_int64_entry(b"label", label))
    image_stop = index_stop - len(_int64_entry(b"index", index))
    return (
        np.frombuffer(record, np.uint8),
        slice(image_stop - pixels, image_stop),
        slice(index_stop - index_width, index_stop),
        slice(len(record) - CRC.size - label_width, len(record) - CRC.size),
    )


def encode_raw_records(images: np.ndarray, labels: np.ndarray, start: int) -> bytes:
    """Framed Examples of raw images, byte-identical to `frame(encode_example(...))` per record,
    built as rows of a template per run of indices of one varint width."""
    if len(images) == 0:
        return b""  # an empty split is one empty shard
    images = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1)
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) and (labels.min() < 0 or labels.max() > 127):
        return b"".join(
            frame(encode_example(image.tobytes(), int(label), start + i))
            for i, (image, label) in enumerate(zip(images, labels.tolist()))
        )
    parts, low, stop = [], start, start + len(labels)
    while low < stop:
        width = len(varint(low))
        high = min(stop, 1 << (7 * width))
        template, image, index, label = raw_layout(images.shape[1], width, 1)
        rows = np.tile(template, (high - low, 1))
        rows[:, image] = images[low - start : high - start]
        values = np.arange(low, high, dtype=np.int64)
        for byte in range(width):
            rows[:, index.start + byte] = (values >> (7 * byte)) & 0x7F | (byte < width - 1) << 7
        rows[:, label] = labels[low - start : high - start, None]
        crcs = [masked_crc(row[PAYLOAD : -CRC.size]) for row in rows]
        rows[:, -CRC.size :] = np.array(crcs, "<u4").view(np.uint8).reshape(-1, CRC.size)
        parts.append(rows.tobytes())
        low = high
    return b"".join(parts)


def record_runs(data: np.ndarray) -> Iterator[tuple[int, int, np.ndarray]]:
    """(first record's number, its byte offset, rows) per run of equal-length records, one a
    row, each run's length CRC checked; RecordDamage at the first record the framing breaks."""
    position = record = 0
    while position < len(data):
        at = f"record {record} (byte {position})"
        if len(data) - position < FRAME:
            raise RecordDamage(f"{at}: truncated record header")
        header, crc = data[position : position + HEADER.size], data[position + HEADER.size :]
        if int(crc[: CRC.size].view("<u4")[0]) != masked_crc(header):
            raise RecordDamage(f"{at}: length CRC mismatch")
        length = int(header.view("<u8")[0])
        stride = length + FRAME
        fits = (len(data) - position) // stride
        if fits == 0:
            raise RecordDamage(f"{at}: truncated record: expected {length} payload bytes")
        headers = np.ndarray((fits,), "<u8", data, position, (stride,))
        mismatch = np.flatnonzero(headers != length)
        count = int(mismatch[0]) if len(mismatch) else fits
        yield record, position, data[position : position + count * stride].reshape(count, stride)
        position += count * stride
        record += count


def count_records(path: Path, gzipped: bool) -> tuple[int, str | None]:
    """How many records of a shard read back intact (both CRCs checked), and the first fault."""
    count, problem = 0, None
    try:
        data = Path(path).read_bytes()
        if gzipped:
            inflater = zlib.decompressobj(31)
            data = inflater.decompress(data)
            problem = None if inflater.eof else "truncated gzip stream"
        for first, offset, rows in record_runs(np.frombuffer(data, np.uint8)):
            for i, row in enumerate(rows):
                at = f"record {first + i} (byte {offset + i * rows.shape[1]})"
                if (row[HEADER.size : PAYLOAD] != rows[0, HEADER.size : PAYLOAD]).any():
                    raise RecordDamage(f"{at}: length CRC mismatch")
                if int(row[-CRC.size :].view("<u4")[0]) != masked_crc(row[PAYLOAD : -CRC.size]):
                    raise RecordDamage(f"{at}: data CRC mismatch")
                count += 1
    except RecordDamage as exc:
        return count, problem or str(exc)
    except (OSError, zlib.error) as exc:
        return count, f"after record {count}: {exc}"
    return count, problem
