"""The TFRecord container and tf.train.Example wire format, written and read without TensorFlow.

Records are framed as: uint64 length, masked CRC32C of the length, payload, masked CRC32C
of the payload (little-endian). Each payload is a serialized tf.train.Example with the
features `image` (bytes), `index` (int64) and `label` (int64); building those few bytes
directly is what lets the converter skip one protobuf object per image.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from google_crc32c import value as crc32c

CRC_MASK_DELTA = 0xA282EAD8
HEADER = struct.Struct("<Q")
CRC = struct.Struct("<I")


def masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + CRC_MASK_DELTA) & 0xFFFFFFFF


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return bytes([number << 3 | 2]) + varint(len(payload)) + payload


def _entry(key: bytes, feature: bytes) -> bytes:
    return _field(1, _field(1, key) + _field(2, feature))


def _int64_feature(value: int) -> bytes:
    return _field(3, _field(1, varint(value)))  # Int64List, packed


_IMAGE_KEY, _INDEX_KEY, _LABEL_KEY = b"image", b"index", b"label"


def encode_example(image: bytes, label: int, index: int) -> bytes:
    """The serialized tf.train.Example of one image (features in key order)."""
    features = (
        _entry(_IMAGE_KEY, _field(1, _field(1, image)))
        + _entry(_INDEX_KEY, _int64_feature(index))
        + _entry(_LABEL_KEY, _int64_feature(label))
    )
    return _field(1, features)


def frame(payload: bytes) -> bytes:
    """One TFRecord: header, header CRC, payload, payload CRC."""
    header = HEADER.pack(len(payload))
    return header + CRC.pack(masked_crc(header)) + payload + CRC.pack(masked_crc(payload))


@dataclass(frozen=True)
class RecordDamage:
    """Where a TFRecord stream stops being valid."""

    record: int
    offset: int
    problem: str


def iter_records(stream: BinaryIO) -> Iterator[bytes | RecordDamage]:
    """Yield each payload, both CRCs checked; yield one RecordDamage and stop at the first fault."""
    index = offset = 0
    while True:
        header = stream.read(HEADER.size)
        if not header:
            return
        header_crc = stream.read(CRC.size)
        if len(header) < HEADER.size or len(header_crc) < CRC.size:
            yield RecordDamage(index, offset, "truncated record header")
            return
        if CRC.unpack(header_crc)[0] != masked_crc(header):
            yield RecordDamage(index, offset, "length CRC mismatch")
            return
        (length,) = HEADER.unpack(header)
        payload = stream.read(length)
        payload_crc = stream.read(CRC.size)
        if len(payload) < length or len(payload_crc) < CRC.size:
            yield RecordDamage(index, offset, f"truncated record: expected {length} payload bytes")
            return
        if CRC.unpack(payload_crc)[0] != masked_crc(payload):
            yield RecordDamage(index, offset, "data CRC mismatch")
            return
        yield payload
        index += 1
        offset += HEADER.size + 2 * CRC.size + length


def count_records(path: Path, gzipped: bool) -> tuple[int, str | None]:
    """How many records of a shard read back intact (both CRCs checked), and the first fault."""
    count = 0
    try:
        with gzip.open(path, "rb") if gzipped else open(path, "rb") as stream:
            for item in iter_records(stream):
                if isinstance(item, RecordDamage):
                    return count, f"record {item.record} (byte {item.offset}): {item.problem}"
                count += 1
    except (OSError, EOFError, zlib.error) as exc:
        return count, f"after record {count}: {exc}"
    return count, None


def encode_raw_records(images, labels, start: int) -> bytes:
    """Framed Examples of raw images, built for all records at once with numpy.

    Byte-identical to `frame(encode_example(image.tobytes(), label, start + i))` for each i.
    Within a run of indices whose varints have the same length, every record has the same
    length, the same header and the same bytes but for the image and two varints: those
    records are rows of one uint8 array, and only the data CRC is computed per record.
    """
    import numpy as np

    if len(images) == 0:
        return b""  # an empty split is one empty shard
    images = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1)
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) and (labels.min() < 0 or labels.max() > 127):
        return b"".join(
            frame(encode_example(image.tobytes(), int(label), start + i))
            for i, (image, label) in enumerate(zip(images, labels.tolist()))
        )
    pixels = images.shape[1]
    image_prefix = _entry(_IMAGE_KEY, _field(1, _field(1, bytes(pixels))))[:-pixels]
    parts = []
    stop = start + len(labels)
    low = start
    while low < stop:
        width = len(varint(low))
        high = min(stop, 1 << (7 * width))
        parts.append(
            _raw_run(
                images[low - start : high - start],
                labels[low - start : high - start],
                low,
                width,
                image_prefix,
            )
        )
        low = high
    return b"".join(parts)


def _raw_run(images, labels, first: int, width: int, image_prefix: bytes) -> bytes:
    import numpy as np

    count, pixels = images.shape
    index_prefix = _entry(_INDEX_KEY, _int64_feature(first))[:-width]
    label_prefix = _entry(_LABEL_KEY, _int64_feature(0))[:-1]
    features_length = len(image_prefix) + pixels + len(index_prefix) + width + len(label_prefix) + 1
    head = bytes([1 << 3 | 2]) + varint(features_length)
    length = len(head) + features_length
    header = HEADER.pack(length)
    rows = np.empty((count, HEADER.size + CRC.size + length + CRC.size), dtype=np.uint8)
    column = 0

    def put(constant: bytes) -> None:
        nonlocal column
        rows[:, column : column + len(constant)] = np.frombuffer(constant, dtype=np.uint8)
        column += len(constant)

    put(header + CRC.pack(masked_crc(header)) + head + image_prefix)
    payload_start = HEADER.size + CRC.size
    rows[:, column : column + pixels] = images
    column += pixels
    put(index_prefix)
    values = np.arange(first, first + count, dtype=np.int64)
    for byte in range(width):
        rows[:, column] = ((values >> (7 * byte)) & 0x7F) | (0x80 if byte < width - 1 else 0)
        column += 1
    put(label_prefix)
    rows[:, column] = labels
    column += 1
    crcs = np.fromiter(
        (masked_crc(row[payload_start:column]) for row in rows), dtype="<u4", count=count
    )
    rows[:, column : column + CRC.size] = crcs.view(np.uint8).reshape(count, CRC.size)
    return rows.tobytes()
