"""The TFRecord container and tf.train.Example wire format, written and read without TensorFlow.

Records are framed as: uint64 length, masked CRC32C of the length, payload, masked CRC32C
of the payload (little-endian). Each payload is a serialized tf.train.Example with the
features `image` (bytes), `index` (int64) and `label` (int64); building those few bytes
directly is what lets the converter skip one protobuf object per image.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO, Iterator

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
    features = (_entry(_IMAGE_KEY, _field(1, _field(1, image)))
                + _entry(_INDEX_KEY, _int64_feature(index))
                + _entry(_LABEL_KEY, _int64_feature(label)))
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
    """Yield each payload, checking both CRCs; yield one RecordDamage and stop at the first fault."""
    index = offset = 0
    while True:
        header = stream.read(HEADER.size)
        if not header:
            return
        if len(header) < HEADER.size + 0 or len(header_crc := stream.read(CRC.size)) < CRC.size:
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
