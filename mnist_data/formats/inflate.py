"""Gzip inflate for IDX payloads: libdeflate straight into a numpy buffer when possible.

Measured on Fashion-MNIST's 26 MB train images (docs/BENCHMARKS.md): zlib 174 ms,
libdeflate via the `deflate` package 81 ms, libdeflate into a preallocated numpy buffer
65 ms (numpy asks the kernel for huge pages, so the 47 MB output does not page-fault
4 KiB at a time). The libdeflate symbols come from the `deflate` wheel's own extension
and are called through ctypes, which releases the GIL (the `deflate` API does not), so
several files inflate, and PNGs compress (pngcodec), in parallel on threads. If the
symbols are not there, the `deflate` API and then zlib take over.
"""

from __future__ import annotations

import ctypes
import zlib

import numpy as np

from mnist_data.errors import IdxError

GZIP_MAGIC = b"\x1f\x8b"
LIBDEFLATE_SUCCESS = 0


def _load_libdeflate() -> ctypes.CDLL | None:
    try:
        import deflate._deflate as extension

        lib = ctypes.CDLL(extension.__file__)
        lib.libdeflate_alloc_decompressor.restype = ctypes.c_void_p
        lib.libdeflate_free_decompressor.argtypes = [ctypes.c_void_p]
        lib.libdeflate_gzip_decompress_ex.restype = ctypes.c_int
        lib.libdeflate_gzip_decompress_ex.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.POINTER(ctypes.c_size_t),
            ctypes.POINTER(ctypes.c_size_t),
        ]
        lib.libdeflate_alloc_compressor.restype = ctypes.c_void_p
        lib.libdeflate_alloc_compressor.argtypes = [ctypes.c_int]
        lib.libdeflate_free_compressor.argtypes = [ctypes.c_void_p]
        lib.libdeflate_zlib_compress_bound.restype = ctypes.c_size_t
        lib.libdeflate_zlib_compress_bound.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        lib.libdeflate_zlib_compress.restype = ctypes.c_size_t
        lib.libdeflate_zlib_compress.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_void_p,
            ctypes.c_size_t,
        ]
        return lib
    except (ImportError, OSError, AttributeError):
        return None


LIBDEFLATE = _load_libdeflate()
try:
    import deflate as _deflate_api
except ImportError:  # pragma: no cover - only where the wheel is missing
    _deflate_api = None


def inflate_exact(data: bytes, size: int, name: str) -> np.ndarray | bytearray:
    """Inflate a gzip stream that should hold exactly `size` bytes.

    Fast paths assume a single gzip member whose trailer agrees with `size`; anything
    else goes to the streaming inflater, which handles several members and reports
    precisely what is wrong. Never produces more than size + 1 bytes.
    """
    trailer_size = int.from_bytes(data[-4:], "little")
    if trailer_size == size % 2**32:
        if LIBDEFLATE is not None:
            out = _libdeflate_into_array(data, size)
            if out is not None:
                return out
        elif _deflate_api is not None:
            try:
                return _deflate_api.gzip_decompress(data)
            except _deflate_api.DeflateError:
                pass
    return inflate_members(data, size + 1, name)


def _libdeflate_into_array(data: bytes, size: int) -> np.ndarray | None:
    out = np.empty(size, dtype=np.uint8)
    consumed, produced = ctypes.c_size_t(), ctypes.c_size_t()
    decompressor = LIBDEFLATE.libdeflate_alloc_decompressor()
    if not decompressor:
        return None
    try:
        status = LIBDEFLATE.libdeflate_gzip_decompress_ex(
            decompressor,
            data,
            len(data),
            out.ctypes.data,
            size,
            ctypes.byref(consumed),
            ctypes.byref(produced),
        )
    finally:
        LIBDEFLATE.libdeflate_free_decompressor(decompressor)
    if status != LIBDEFLATE_SUCCESS or consumed.value != len(data) or produced.value != size:
        return None
    return out


MEMBER_WINDOW = 1 << 16


def inflate_members(data: bytes | memoryview, limit: int, name: str) -> bytearray:
    """Inflate every gzip member in turn with zlib, never producing more than `limit` bytes.

    The input goes in windows of MEMBER_WINDOW bytes: zlib copies what a member leaves over,
    and handing it all the rest each time made a file of many small members quadratic.
    """
    parts: list[bytes] = []
    produced = offset = 0
    view = memoryview(data)
    while offset < len(view):
        if bytes(view[offset : offset + 2]) != GZIP_MAGIC:
            raise IdxError(
                f"{name}: {len(view) - offset} bytes of trailing garbage after the gzip stream"
            )
        inflater = zlib.decompressobj(31)
        while not inflater.eof:
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
            if produced >= limit:
                return bytearray().join(
                    parts
                )  # more than the header declares: the caller's check reports it
            offset += len(window) - len(inflater.unused_data) - len(inflater.unconsumed_tail)
    return bytearray().join(parts)
