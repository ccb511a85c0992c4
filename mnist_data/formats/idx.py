"""The IDX codec: strict reader and deterministic writer. Gzip and xz are told by their magic
bytes, and the header is checked before the payload is allocated (a claim of 10**12 items fails
at once)."""

from __future__ import annotations

import lzma
import os
import zlib
from math import prod
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mnist_data.errors import IdxError
from mnist_data.formats.inflate import GZIP_MAGIC, inflate_exact, inflate_members
from mnist_data.fs import write_bytes_atomic

# Deflate cannot expand data by more than about 1032:1, so a header that needs more
# than this many bytes per compressed byte is a lie we can reject before inflating.
MAX_DEFLATE_RATIO = 1032
MAX_HEADER_SIZE = 4 + 4 * 255
XZ_MAGIC = b"\xfd7zXZ\x00"

_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
DTYPES = {code: np.dtype(name) for code, name in _TYPES.items()}  # the type byte's table
TYPE_CODES = {(dt.kind, dt.itemsize): code for code, dt in DTYPES.items()}

Source = str | os.PathLike | bytes | bytearray | memoryview


class IdxHeader(NamedTuple):
    """What the first 4 + 4*ndim bytes of an IDX stream declare."""

    dtype: np.dtype
    shape: tuple[int, ...]

    @property
    def total_size(self) -> int:
        return 4 + 4 * len(self.shape) + prod(self.shape) * self.dtype.itemsize


def parse_header(head: bytes | memoryview, name: str) -> IdxHeader:
    """Decode and check the header at the start of `head` (the rest is ignored)."""
    if len(head) < 4:
        raise IdxError(f"{name}: too short for an IDX header: {len(head)} bytes")
    zero0, zero1, code, ndim = bytes(head[:4])
    if zero0 or zero1:
        raise IdxError(f"{name}: bad IDX magic: expected 00 00, found {zero0:02x} {zero1:02x}")
    if code not in DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in DTYPES)
        raise IdxError(f"{name}: unknown IDX type code 0x{code:02X}: expected one of {known}")
    if ndim < 1:
        raise IdxError(f"{name}: IDX header declares 0 dimensions: expected at least 1")
    if len(head) < 4 + 4 * ndim:
        raise IdxError(f"{name}: truncated IDX header: {ndim} dimensions need {4 + 4 * ndim} bytes")
    shape = tuple(int(d) for d in np.frombuffer(bytes(head[4 : 4 + 4 * ndim]), dtype=">u4"))
    return IdxHeader(DTYPES[code], shape)


def read_idx(source: Source, name: str | None = None) -> np.ndarray:
    """Decode an IDX file (path) or IDX bytes (called `name` in errors), gzipped, xz-compressed
    or not, into a writable native array."""
    found, data = _read_source(source)
    name = name or found
    if not data:
        raise IdxError(f"{name}: file is empty: expected an IDX header")
    if data[:2] == GZIP_MAGIC:
        header, raw = _inflate_idx(data, name)
    elif data[:6] == XZ_MAGIC:
        header, raw = _unxz_idx(data, name)
    else:
        header = parse_header(data[:MAX_HEADER_SIZE], name)
        _check_length(header, len(data), name)
        raw = bytearray(data)  # a private, writable copy
    offset, count = 4 + 4 * len(header.shape), prod(header.shape)
    array = np.frombuffer(raw, dtype=header.dtype, count=count, offset=offset)
    return array.astype(header.dtype.newbyteorder("="), copy=False).reshape(header.shape)


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compresslevel: int = 6) -> Path:
    """Write `array` as IDX to `path`, gzipped (mtime 0, so deterministic) if it ends in .gz."""
    path = Path(path)
    blob = encode_idx(array, name=str(path))
    if path.name.endswith(".gz"):
        blob = gzip_compress(blob, compresslevel)
    return write_bytes_atomic(path, blob)


def encode_idx(array: np.ndarray, name: str = "<array>") -> bytes:
    """The uncompressed IDX bytes of `array`."""
    array = np.asarray(array)
    code = TYPE_CODES.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        supported = ", ".join(str(dt.newbyteorder("=")) for dt in DTYPES.values())
        raise IdxError(
            f"{name}: cannot encode dtype {array.dtype} as IDX: supported are {supported}"
        )
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = np.ascontiguousarray(array, dtype=DTYPES[code]).tobytes()
    return header + payload


def gzip_compress(data: bytes, compresslevel: int = 6) -> bytes:
    """Gzip `data` deterministically (mtime 0, no file name in the header)."""
    compressor = zlib.compressobj(compresslevel, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


def _read_source(source: Source) -> tuple[str, bytes]:
    """The name and bytes of `source`; a raw file's header is checked against its size first."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>", bytes(source)
    name = os.fspath(source)
    try:
        with open(name, "rb") as handle:
            start = handle.read(MAX_HEADER_SIZE)
            if start and start[:2] != GZIP_MAGIC and start[:6] != XZ_MAGIC:
                _check_length(parse_header(start, name), os.fstat(handle.fileno()).st_size, name)
            return name, start + handle.read()
    except IsADirectoryError:
        raise IdxError(f"{name}: is a directory, expected an IDX file") from None


def _check_length(header: IdxHeader, found: int, name: str, inflated: bool = False) -> None:
    if found != header.total_size:
        found_text = "more" if inflated and found > header.total_size else found
        raise IdxError(
            f"{name}: IDX length mismatch: header declares {header.dtype.newbyteorder('=')} "
            f"{header.shape}, which needs {header.total_size} bytes, found {found_text}"
        )


def _inflate_idx(data: bytes, name: str) -> tuple[IdxHeader, np.ndarray | bytearray]:
    """Inflate a gzipped IDX stream after checking its header against the gzip size."""
    head = bytes(inflate_members(data, MAX_HEADER_SIZE, name))
    header = parse_header(head, name)
    if header.total_size > len(data) * MAX_DEFLATE_RATIO + MAX_HEADER_SIZE:
        raise IdxError(
            f"{name}: IDX header declares shape {header.shape} ({header.total_size} bytes), "
            f"more than a {len(data)}-byte gzip stream can hold"
        )
    try:
        raw = inflate_exact(data, header.total_size, name)
    except MemoryError:  # a header within the deflate bound can still ask for too much
        size = f"{header.total_size / 2**30:.1f} GiB"
        raise IdxError(
            f"{name}: IDX header declares shape {header.shape}, {size}: more memory than is free"
        ) from None
    _check_length(header, len(raw), name, inflated=True)
    return header, raw


def _unxz_idx(data: bytes, name: str) -> tuple[IdxHeader, bytearray]:
    """Decompress an xz IDX stream no further than its header declares (plus one byte, to tell
    a longer stream)."""
    stream = lzma.LZMADecompressor()
    try:
        raw = bytearray(stream.decompress(data, MAX_HEADER_SIZE))
        header = parse_header(raw, name)
        raw += stream.decompress(b"", header.total_size + 1 - len(raw))
    except lzma.LZMAError as exc:
        raise IdxError(f"{name}: not a whole xz stream ({exc})") from None
    except MemoryError:
        raise IdxError(f"{name}: IDX header declares shape {header.shape}: no memory") from None
    _check_length(header, len(raw), name, inflated=True)
    if not stream.eof:
        raise IdxError(f"{name}: the xz stream is cut short")
    return header, raw
