"""The IDX codec on generated files of every dtype, the real files, and bad input."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnist_data import IdxError, read_idx, write_idx
from mnist_data.formats.idx import DTYPES, encode_idx, gzip_compress

NATIVE_DTYPES = [dt.newbyteorder("=") for dt in DTYPES.values()]


def sample_array(dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(0)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


@pytest.mark.parametrize("dtype", NATIVE_DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4), (2, 1, 3, 2, 2), (0, 28, 28)])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip_every_dtype_and_shape(tmp_path: Path, dtype, shape, suffix) -> None:
    array = sample_array(dtype, shape)
    path = write_idx(tmp_path / f"a.idx{suffix}", array)
    decoded = read_idx(path)
    assert decoded.dtype == dtype and decoded.dtype.isnative
    assert decoded.shape == shape
    np.testing.assert_array_equal(decoded, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")


def test_header_is_big_endian_as_specified() -> None:
    blob = encode_idx(np.array([[1, 2, 3]], dtype=np.int16))
    assert blob == bytes([0, 0, 0x0B, 2, 0, 0, 0, 1, 0, 0, 0, 3, 0, 1, 0, 2, 0, 3])


def test_gzip_detected_by_magic_not_name(tmp_path: Path) -> None:
    array = np.arange(10, dtype=np.uint8)
    misleading = tmp_path / "plain.idx"
    misleading.write_bytes(gzip_compress(encode_idx(array)))
    np.testing.assert_array_equal(read_idx(misleading), array)
    also = tmp_path / "raw.gz"
    also.write_bytes(encode_idx(array))
    np.testing.assert_array_equal(read_idx(also), array)


def test_gzip_output_is_deterministic(tmp_path: Path) -> None:
    array = sample_array(np.dtype("u1"), (50, 28, 28))
    first = write_idx(tmp_path / "a.gz", array).read_bytes()
    second = write_idx(tmp_path / "b.gz", array).read_bytes()
    assert first == second
    assert first[4:8] == b"\0\0\0\0"  # gzip mtime


def test_reads_bytes_and_multi_member_gzip() -> None:
    blob = encode_idx(np.arange(1000, dtype=np.int32))
    two_members = gzip.compress(blob[:500], mtime=0) + gzip.compress(blob[500:], mtime=0)
    np.testing.assert_array_equal(read_idx(two_members), np.arange(1000, dtype=np.int32))
    header_split = (
        gzip.compress(b"", mtime=0)
        + gzip.compress(blob[:3], mtime=0)
        + gzip.compress(blob[3:], mtime=0)
    )
    np.testing.assert_array_equal(read_idx(header_split), np.arange(1000, dtype=np.int32))
    np.testing.assert_array_equal(read_idx(blob), np.arange(1000, dtype=np.int32))


@pytest.mark.parametrize(
    "name",
    [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ],
)
def test_real_sample_files_reencode_exactly(sample_dir: Path, name: str) -> None:
    path = sample_dir / name
    decoded = read_idx(path)
    assert encode_idx(decoded) == gzip.decompress(path.read_bytes()) and decoded.flags.writeable
    assert decoded.dtype == np.uint8 and len(decoded) in (1600, 400)


def test_real_fashion_train_images_reencode_exactly(fashion_dir: Path) -> None:
    path = fashion_dir / "train-images-idx3-ubyte.gz"
    decoded = read_idx(path)
    assert decoded.shape == (60000, 28, 28)
    assert encode_idx(decoded) == gzip.decompress(path.read_bytes())


# ---- bad input: every failure is an IdxError naming the file and what is wrong ----

GOOD = encode_idx(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))


def corrupt_cases() -> dict[str, tuple[bytes, str]]:
    huge = bytes([0, 0, 8, 3]) + np.array([10**6, 10**3, 10**3], dtype=">u4").tobytes()
    gz = gzip_compress(GOOD * 50 + b"")
    flipped = bytearray(gzip_compress(GOOD))
    flipped[-6] ^= 0xFF  # inside the CRC32
    return {
        "empty": (b"", "empty"),
        "bad magic": (b"\x01\x00" + GOOD[2:], "magic"),
        "unknown type": (bytes([0, 0, 0x0A]) + GOOD[3:], "type code 0x0A"),
        "zero dims": (bytes([0, 0, 8, 0]), "0 dimensions"),
        "short header": (GOOD[:6], "truncated IDX header"),
        "payload short": (GOOD[:-1], "needs 40 bytes, found 39"),
        "payload long": (GOOD + b"\0", "needs 40 bytes, found 41"),
        "gzip payload long": (
            gzip_compress(GOOD + b"\0"),
            "needs 40 bytes, found more",
        ),
        "huge claim raw": (huge + b"\0" * 10, "needs 1000000000016 bytes"),
        "huge claim gzip": (gzip_compress(huge + b"\0" * 1000), "more than a"),
        "gzip truncated": (gz[: len(gz) // 2], "truncated gzip"),
        "gzip crc": (bytes(flipped), "gzip"),
        "gzip garbage": (b"\x1f\x8b\x08\x00" + b"\xff" * 40, "gzip"),
        "gzip trailing": (gzip_compress(GOOD) + b"junk", "trailing"),
        "gzip header only": (b"\x1f\x8b", "gzip"),
    }


@pytest.mark.parametrize("case", list(corrupt_cases()))
def test_bad_input_raises_idx_error_naming_file(tmp_path: Path, case: str) -> None:
    blob, expected = corrupt_cases()[case]
    path = tmp_path / "bad-file-idx3-ubyte.gz"
    path.write_bytes(blob)
    with pytest.raises(IdxError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message
    assert expected in message
    assert isinstance(info.value, ValueError)


def test_huge_gzip_claim_fails_without_inflating(tmp_path: Path) -> None:
    # 2 MB of zeros claimed as 10**12 items: must fail on the header check alone
    header = bytes([0, 0, 8, 1]) + np.array([10**9], dtype=">u4").tobytes()
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip_compress(header + bytes(2_000_000)))
    with pytest.raises(IdxError, match="more than a"):
        read_idx(path)


def test_a_claim_past_free_memory_is_an_idx_error(tmp_path: Path) -> None:
    import resource
    import subprocess
    import sys

    count = 3_000_000  # 2.35 GB of pixels, within what a 2.5 MB stream could inflate to
    payload = np.random.default_rng(0).integers(0, 256, 2_500_000, np.uint8).tobytes()
    blob = bytearray(
        gzip.compress(b"\x00\x00\x08\x03" + np.array([count, 28, 28], ">u4").tobytes() + payload, 0)
    )
    blob[-4:] = ((16 + count * 784) % 2**32).to_bytes(
        4, "little"
    )  # the trailer agrees with the header
    path = tmp_path / "forged-idx3-ubyte.gz"
    path.write_bytes(bytes(blob))
    limit = 1 << 31  # address space: less than the claim
    info = subprocess.run(
        [sys.executable, "-m", "mnist_data_cli", "info", str(path)],
        capture_output=True,
        text=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)),
    )
    assert info.returncode == 1 and info.stderr.strip().splitlines()[-1] == (
        f"mnist-data: error: {path}: IDX header declares shape ({count}, 28, 28), 2.2 GiB: "
        "more memory than is free"
    )


def test_directory_and_unwritable_dtype(tmp_path: Path) -> None:
    with pytest.raises(IdxError, match="directory"):
        read_idx(tmp_path)
    with pytest.raises(IdxError, match="cannot encode dtype bool"):
        write_idx(tmp_path / "x.idx", np.zeros(3, dtype=bool))
    assert not list(tmp_path.iterdir())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), compress=st.booleans())
def test_fuzz_mutated_files_only_raise_idx_error(data: st.DataObject, compress: bool) -> None:
    dtype = data.draw(st.sampled_from(NATIVE_DTYPES))
    shape = tuple(data.draw(st.lists(st.integers(0, 4), min_size=1, max_size=3)))
    blob = bytearray(encode_idx(sample_array(dtype, shape)))
    if compress:
        blob = bytearray(gzip_compress(bytes(blob)))
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["flip", "truncate", "append", "set"]))
        if action == "flip" and blob:
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] ^= data.draw(st.integers(1, 255))
        elif action == "truncate":
            del blob[data.draw(st.integers(0, len(blob))) :]
        elif action == "append":
            blob += data.draw(st.binary(min_size=1, max_size=16))
        elif action == "set" and len(blob) > 8:
            i = data.draw(st.integers(0, min(len(blob), 12) - 1))
            blob[i] = data.draw(st.integers(0, 255))
    try:
        result = read_idx(bytes(blob))
    except IdxError:
        return
    assert isinstance(result, np.ndarray)
    assert result.nbytes <= max(len(blob), 1) * 1100


def test_zlib_error_is_not_leaked_for_bad_deflate_block() -> None:
    good = gzip_compress(GOOD)
    broken = good[:10] + b"\xff\xff\xff" + good[13:]
    with pytest.raises(IdxError, match="corrupt gzip stream"):
        read_idx(broken)


@pytest.mark.parametrize("backend", ["libdeflate-into-array", "zlib"])
def test_every_inflate_backend_decodes_and_checks(
    backend: str, monkeypatch, sample_dir: Path
) -> None:
    import mnist_data.formats.inflate as inflate

    if backend == "zlib":
        monkeypatch.setattr(inflate, "LIBDEFLATE", None)
    path = sample_dir / "t10k-images-idx3-ubyte.gz"
    decoded = read_idx(path)
    assert encode_idx(decoded) == gzip.decompress(path.read_bytes())
    truncated = path.read_bytes()[:-100]
    with pytest.raises(IdxError, match="truncated gzip"):
        read_idx(truncated)


@pytest.mark.parametrize("compress", [False, True])
def test_result_is_writable_for_every_input_kind(tmp_path: Path, compress: bool) -> None:
    blob = encode_idx(np.arange(12, dtype=np.uint8).reshape(3, 4))
    if compress:
        blob = gzip_compress(blob)
    (tmp_path / "f").write_bytes(blob)
    for decoded in (read_idx(blob), read_idx(tmp_path / "f")):
        decoded[0, 0] = 99
        assert decoded[0, 0] == 99


def test_a_huge_file_is_judged_by_its_header_before_it_is_read(tmp_path) -> None:
    huge = 64 << 30  # sparse: more than this machine could read into memory
    for name, start, says in (
        ("foreign", b"NOTIDX", "bad IDX magic"),
        ("lying-idx1-ubyte", bytes([0, 0, 0x08, 1, 0, 0, 0, 5]), "needs 13 bytes, found"),
    ):
        path = tmp_path / name
        with open(path, "wb") as handle:
            handle.write(start)
            handle.truncate(huge)
        with pytest.raises(IdxError, match=f"{path}: .*{says}"):
            read_idx(path)


def test_many_small_gzip_members_across_input_windows(tmp_path) -> None:
    import zlib

    def member(chunk: bytes) -> bytes:
        compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
        return compressor.compress(chunk) + compressor.flush()

    values = (np.arange(6000) * 7 % 256).astype(np.uint8)
    raw = encode_idx(values)
    path = (
        tmp_path / "members-idx1-ubyte.gz"
    )  # a member per byte: about 130 KB, past two 64 KiB windows
    path.write_bytes(member(raw[:5]) + b"".join(member(raw[i : i + 1]) for i in range(5, len(raw))))
    np.testing.assert_array_equal(read_idx(path), values)
    path.write_bytes(path.read_bytes()[:-7])  # the last member cut short
    with pytest.raises(IdxError, match="truncated gzip stream|corrupt gzip stream"):
        read_idx(path)


def test_xz_files_are_read_and_never_inflated_past_their_header() -> None:
    import lzma

    from mnist_data.formats.idx import encode_idx

    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    assert np.array_equal(read_idx(lzma.compress(encode_idx(images))), images)
    claim = encode_idx(images[:1])  # a header of one image, then 5 MB of zeros
    with pytest.raises(IdxError, match="declares uint8 \\(1, 28, 28\\), which needs 800 bytes"):
        read_idx(lzma.compress(claim + bytes(5 << 20)), "bomb.xz")
    with pytest.raises(IdxError, match="cut.xz: the xz stream is cut short"):
        read_idx(lzma.compress(encode_idx(images))[:-30], "cut.xz")
