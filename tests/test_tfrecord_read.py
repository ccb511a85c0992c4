"""read_tfrecord_split: raw shards back into load()'s arrays, and every way a shard can be wrong."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from google_crc32c import value as crc32c

import mnist_data
from mnist_data import DatasetError
from mnist_data.formats.tfrecord import encode_example, encode_raw_records, frame
from mnist_data.formats.tfrecord_read import read_tfrecord_split


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tfr") / "raw"
    mnist_data.to_tfrecord("mnist-sample", out, shards=3, progress=False)
    return out


def replace_shard(out: Path, number: int, blob: bytes, records: int, split: str = "train") -> None:
    """Swap one shard's bytes and make the manifest agree with them (checksums included)."""
    manifest = json.loads((out / "manifest.json").read_text())
    shard = manifest["splits"][split]["shards"][number]
    (out / shard["file"]).write_bytes(blob)
    shard.update(
        records=records,
        bytes=len(blob),
        sha256=hashlib.sha256(blob).hexdigest(),
        crc32c=crc32c(blob),
    )
    manifest["splits"][split]["records"] = sum(
        entry["records"] for entry in manifest["splits"][split]["shards"]
    )
    (out / "manifest.json").write_text(json.dumps(manifest))


def copy_of(raw_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    out.mkdir()
    for path in raw_dir.iterdir():
        if path.is_file():
            (out / path.name).write_bytes(path.read_bytes())
    return out


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_reads_exactly_what_load_gives(tmp_path: Path, compression: str) -> None:
    out = tmp_path / compression
    mnist_data.to_tfrecord("mnist-sample", out, shards=3, compression=compression, progress=False)
    for split in ("train", "test"):
        images, labels = read_tfrecord_split(out, split)
        want_images, want_labels = mnist_data.load("mnist-sample", split)
        np.testing.assert_array_equal(images, want_images)  # in source order, across varint widths
        np.testing.assert_array_equal(labels, want_labels)
        assert images.ctypes.data % 64 == 0 and images.flags.writeable
    source = mnist_data.resolve_source(out)  # a Source's manifest is not read again
    (out / "manifest.json").unlink()
    np.testing.assert_array_equal(read_tfrecord_split(source, "test")[1], want_labels)


def test_manifest_without_crc32c_is_checked_by_sha256(raw_dir: Path, tmp_path: Path) -> None:
    out = copy_of(raw_dir, tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    for shard in manifest["splits"]["train"]["shards"]:
        del shard["crc32c"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    np.testing.assert_array_equal(
        read_tfrecord_split(out, "train")[1], mnist_data.load("mnist-sample")[1]
    )
    shard = out / manifest["splits"]["train"]["shards"][1]["file"]
    data = bytearray(shard.read_bytes())
    data[500] ^= 1
    shard.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=f"{shard.name}: contents differ from the checksum"):
        read_tfrecord_split(out, "train")


def test_flipped_pixel_fails_the_shard_checksum(raw_dir: Path, tmp_path: Path) -> None:
    out = copy_of(raw_dir, tmp_path)
    shard = sorted(out.glob("train-*"))[2]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x40
    shard.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=f"{shard.name}: contents differ from the checksum"):
        read_tfrecord_split(out, "train")


def test_record_with_another_layout_is_named(raw_dir: Path, tmp_path: Path) -> None:
    out = copy_of(raw_dir, tmp_path)
    image = bytes(784)
    # Same length, other structure: a 2-byte label and 1-byte index against the reverse.
    blob = (
        frame(encode_example(image, 5, 200))
        + frame(encode_example(image, 5, 201))
        + frame(encode_example(image, 200, 5))
    )
    replace_shard(out, 0, blob, 3)
    with pytest.raises(DatasetError, match="record 2 is not laid out like record 0"):
        read_tfrecord_split(out, "train")


def test_foreign_feature_and_truncation_are_named(raw_dir: Path, tmp_path: Path) -> None:
    out = copy_of(raw_dir, tmp_path)
    images, labels = mnist_data.load("mnist-sample")
    good = encode_raw_records(images[:10], labels[:10], 0)
    replace_shard(out, 0, good + frame(encode_example(bytes(100), 1, 10)), 11)
    with pytest.raises(DatasetError, match="record 10: not a raw record of 784 pixels"):
        read_tfrecord_split(out, "train")
    replace_shard(out, 0, good[:-7], 10)
    with pytest.raises(DatasetError, match="record 9 .*truncated record"):
        read_tfrecord_split(out, "train")


def test_misplaced_indices_and_wrong_counts_are_caught(raw_dir: Path, tmp_path: Path) -> None:
    out = copy_of(raw_dir, tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    first, second = (shard["records"] for shard in manifest["splits"]["train"]["shards"][:2])
    images, labels = mnist_data.load("mnist-sample")
    replace_shard(out, 1, encode_raw_records(images[:second], labels[:second], 0), second)
    with pytest.raises(DatasetError, match=f"records are not those of index {first} on"):
        read_tfrecord_split(out, "train")
    replace_shard(out, 1, encode_raw_records(images[:20], labels[:20], 0), 5)
    with pytest.raises(DatasetError, match="20 records, manifest.json says 5"):
        read_tfrecord_split(out, "train")
    replace_shard(out, 1, encode_raw_records(images[:5], labels[:5], 0), second)
    with pytest.raises(DatasetError, match=f"5 records, manifest.json says {second}"):
        read_tfrecord_split(out, "train")


def test_png_encoded_directory_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "png"
    mnist_data.to_tfrecord("mnist-sample", out, encoding="png", splits=["test"], progress=False)
    with pytest.raises(DatasetError, match="not a raw-encoded TFRecord directory"):
        read_tfrecord_split(out, "test")
