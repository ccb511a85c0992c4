"""Gzip inflate: libdeflate (from the `deflate` wheel, through ctypes, GIL released) straight
into a numpy buffer, 65 ms against zlib's 174 ms on Fashion-MNIST's train images; else zlib."""

from __future__ import annotations

import ctypes
import zlib

import numpy as np

from mnist_data.errors import IdxError

GZIP_MAGIC = b"\x1f\x8b"
MEMBER_WINDOW = 1 << 16
_P, _SIZE = ctypes.c_void_p, ctypes.c_size_t
_SIGNATURES = {  # name: (result type, argument types)
    "libdeflate_alloc_decompressor": (_P, []),
    "libdeflate_free_decompressor": (None, [_P]),
    "libdeflate_gzip_decompress_ex": (
        ctypes.c_int,
        [_P, ctypes.c_char_p, _SIZE, _P, _SIZE, ctypes.POINTER(_SIZE), ctypes.POINTER(_SIZE)],
    ),
    "libdeflate_alloc_compressor": (_P, [ctypes.c_int]),
    "libdeflate_free_compressor": (None, [_P]),
    "libdeflate_zlib_compress_bound": (_SIZE, [_P, _SIZE]),
    "libdeflate_zlib_compress": (_SIZE, [_P, _P, _SIZE, _P, _SIZE]),
}


def _load_libdeflate() -> ctypes.CDLL | None:
    try:
        import deflate._deflate as extension

        lib = ctypes.CDLL(extension.__file__)
        for name, (result, arguments) in _SIGNATURES.items():
            function = getattr(lib, name)
            function.restype, function.argtypes = result, arguments
        return lib
    except (ImportError, OSError, AttributeError):
        return None


LIBDEFLATE = _load_libdeflate()


def inflate_exact(data: bytes, size: int, name: str) -> np.ndarray | bytearray:
    """Inflate a gzip stream that should hold exactly `size` bytes (never more than size + 1)."""
    if LIBDEFLATE is not None and int.from_bytes(data[-4:], "little") == size % 2**32:
        out = np.empty(size, dtype=np.uint8)
        consumed, produced = ctypes.c_size_t(), ctypes.c_size_t()
        decompressor = LIBDEFLATE.libdeflate_alloc_decompressor()
        if decompressor:
            try:
                status = LIBDEFLATE.libdeflate_gzip_decompress_ex(
                    decompressor, data, len(data), out.ctypes.data, size, consumed, produced
                )
            finally:
                LIBDEFLATE.libdeflate_free_decompressor(decompressor)
            if status == 0 and consumed.value == len(data) and produced.value == size:
                return out
    return inflate_members(data, size + 1, name)


def inflate_members(data: bytes | memoryview, limit: int, name: str) -> bytearray:
    """Inflate every gzip member in turn with zlib, at most `limit` bytes; the input goes in
    windows, as zlib copies what a member leaves over (many small members were quadratic)."""
    parts: list[bytes] = []
    produced = offset = 0
    view = memoryview(data)
    while offset < len(view) and produced < limit:
        if bytes(view[offset : offset + 2]) != GZIP_MAGIC:
            raise IdxError(
                f"{name}: {len(view) - offset} bytes of trailing garbage after the gzip stream"
            )
        inflater = zlib.decompressobj(31)
        while not inflater.eof and produced < limit:
            if offset >= len(view):
                raise IdxError(
                    f"{name}: truncated gzip stream: it ends after {produced} inflated bytes"
                )
            window = view[offset : offset + MEMBER_WINDOW]
            try:
                chunk = inflater.decompress(window, limit - produced)
            except zlib.error as exc:
                raise IdxError(f"{name}: corrupt gzip stream: {exc}") from None
            parts.append(chunk)
            produced += len(chunk)
            offset += len(window) - len(inflater.unused_data) - len(inflater.unconsumed_tail)
    return bytearray().join(parts)  # past the limit: more than declared, the caller reports it
