"""to_tfrecord: plain TensorFlow parses the shards; manifest, determinism, refusing to mix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import mnist_data
from mnist_data import ConvertError, to_png, to_tfrecord
from mnist_data_cli import main


def parse_with_plain_tensorflow(out: Path, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What a reader who knows only the documented feature spec would write."""
    import tensorflow as tf

    manifest = json.loads((out / "manifest.json").read_text())
    files = [str(out / s["file"]) for s in manifest["splits"][split]["shards"]]
    compression = "GZIP" if manifest["compression"] == "gzip" else ""
    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "index": tf.io.FixedLenFeature([], tf.int64),
    }
    images, labels, indices = [], [], []
    for batch in tf.data.TFRecordDataset(files, compression_type=compression).batch(500):
        parsed = tf.io.parse_example(batch, spec)
        for blob in parsed["image"].numpy():
            if manifest["encoding"] == "png":
                images.append(tf.io.decode_png(blob, channels=1).numpy()[..., 0])
            else:
                images.append(np.frombuffer(blob, np.uint8).reshape(28, 28))
        labels.append(parsed["label"].numpy())
        indices.append(parsed["index"].numpy())
    return np.stack(images), np.concatenate(labels), np.concatenate(indices)


@pytest.mark.parametrize("encoding,compression", [("raw", None), ("png", "gzip")])
def test_plain_tensorflow_reads_back_exactly(tmp_path: Path, encoding: str, compression) -> None:
    out = tmp_path / "tfr"
    summary = to_tfrecord(
        "mnist-sample", out, encoding=encoding, compression=compression, shards=3, progress=False
    )
    assert summary["examples"] == 2000 and summary["files"] == 6
    for split in ("train", "test"):
        images, labels, indices = parse_with_plain_tensorflow(out, split)
        want_images, want_labels = mnist_data.load("mnist-sample", split)
        np.testing.assert_array_equal(images[np.argsort(indices)], want_images)
        np.testing.assert_array_equal(labels[np.argsort(indices)], want_labels)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"]["train"]["records"] == 1600
    assert [s["records"] for s in manifest["splits"]["test"]["shards"]] == [133, 134, 133]
    assert manifest["source"]["files"]["train-images-idx3-ubyte.gz"]
    suffix = ".tfrecord.gz" if compression else ".tfrecord"
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(
        ["manifest.json"]
        + [f"{s}-{i:05d}-of-00003{suffix}" for s in ("train", "test") for i in range(3)]
    )


def test_deterministic_and_independent_of_workers(tmp_path: Path) -> None:
    to_tfrecord(
        "mnist-sample",
        tmp_path / "a",
        workers=1,
        shard_size=700,
        compression="gzip",
        progress=False,
    )
    to_tfrecord(
        "mnist-sample",
        tmp_path / "b",
        workers=2,
        shard_size=700,
        compression="gzip",
        progress=False,
    )
    files = sorted(p.name for p in (tmp_path / "a").glob("*.tfrecord.gz"))
    assert len(files) == 4
    for name in files + ["manifest.json"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_refuses_to_mix_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "tfr"
    to_tfrecord("mnist-sample", out, progress=False)
    with pytest.raises(ConvertError, match=r"different run \(.*options.encoding 'raw' -> 'png'"):
        to_tfrecord("mnist-sample", out, encoding="png", progress=False)
    edited, edited_out = tmp_path / "edited", tmp_path / "edited-tfr"
    shutil.copytree(mnist_data.get_dataset("mnist-sample").embedded_dir, edited)
    to_tfrecord(edited, edited_out, progress=False)
    labels = mnist_data.load(edited, "test", cache=False)[1].copy()
    labels[0] = (labels[0] + 1) % 10  # the same path, file names and options; one label changed
    mnist_data.write_idx(edited / "t10k-labels-idx1-ubyte.gz", labels)
    with pytest.raises(
        ConvertError, match=r"different run \(source.files.t10k-labels-idx1-ubyte.gz changed\)"
    ):
        to_tfrecord(edited, edited_out, progress=False)
    to_tfrecord("mnist-sample", out, encoding="png", overwrite=True, progress=False)
    assert json.loads((out / "manifest.json").read_text())["encoding"] == "png"
    stranger = tmp_path / "other"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    for overwrite in (False, True):  # --overwrite clears only what mnist-data wrote
        with pytest.raises(ConvertError, match="not empty and holds no mnist-data output"):
            to_tfrecord("mnist-sample", stranger, overwrite=overwrite, progress=False)
    assert (stranger / "notes.txt").read_text() == "mine"
    (stranger / "manifest.json").write_text('{"name": "my site"}')  # a manifest that is not ours
    for overwrite in (False, True):
        with pytest.raises(ConvertError, match="not empty and holds no mnist-data output"):
            to_tfrecord("mnist-sample", stranger, overwrite=overwrite, progress=False)
    assert (stranger / "notes.txt").read_text() == "mine"
    killed_early = tmp_path / "killed"
    killed_early.mkdir()
    (killed_early / ".mnist-data-run.json.tmp-1-abcd").write_text(
        "{"
    )  # all a kill at the start leaves
    to_tfrecord("mnist-sample", killed_early, progress=False)
    assert not (killed_early / ".mnist-data-run.json.tmp-1-abcd").exists()
    assert sorted(p.name for p in killed_early.iterdir() if not p.name.startswith(".")) == [
        "manifest.json",
        "test-00000-of-00001.tfrecord",
        "train-00000-of-00001.tfrecord",
    ]
    (out / ".mnist-data-run.json").write_text('{"kind": ')
    with pytest.raises(ConvertError, match="corrupt run file"):
        to_tfrecord("mnist-sample", out, encoding="png", progress=False)


def test_overwrite_deletes_only_what_mnist_data_wrote(tmp_path: Path, monkeypatch) -> None:
    import errno
    import fcntl
    import os

    out = tmp_path / "tfr"
    to_tfrecord("mnist-sample", out, progress=False)
    (out / "notes.txt").write_text("mine")
    (out / "models").mkdir()
    (out / "models" / "weights.h5").write_text("w")
    with pytest.raises(
        ConvertError,
        match="clears only mnist-data output, and this directory also holds "
        "models, notes.txt; move them away",
    ):
        to_tfrecord("mnist-sample", out, shards=2, overwrite=True, progress=False)
    assert (out / "notes.txt").read_text() == "mine" and (
        out / "train-00000-of-00001.tfrecord"
    ).exists()
    (out / "notes.txt").unlink()
    shutil.rmtree(out / "models")
    assert to_tfrecord("mnist-sample", out, shards=2, overwrite=True, progress=False)["files"] == 4
    (out / ".mnist-data-run.json").unlink()  # output copied without its hidden run file
    assert to_tfrecord("mnist-sample", out, overwrite=True, progress=False)["files"] == 2
    tree = tmp_path / "png"
    to_png("mnist-sample", tree, splits="test", progress=False)
    (tree / "test" / "3" / "README").write_text("about the threes")  # inside a class folder
    with pytest.raises(ConvertError, match="also holds test/3/README"):
        to_png(
            "mnist-sample",
            tree,
            splits="test",
            labels_as="digits",
            compress_level=6,
            overwrite=True,
            progress=False,
        )
    (tree / "test" / "3" / "README").unlink()

    real_unlink = Path.unlink

    def interrupted(path, *args, **kwargs):  # Ctrl-C as the clearing of the old output goes on
        if path.name == "test.csv":
            raise KeyboardInterrupt
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", interrupted)
    with pytest.raises(KeyboardInterrupt):
        to_png(
            "mnist-sample", tree, splits="test", compress_level=6, overwrite=True, progress=False
        )
    monkeypatch.undo()
    assert not (tree / "manifest.json").exists()  # gone first: what is left is not complete
    assert (tree / ".mnist-data-run.json").exists()  # still ours: the same command completes it
    summary = to_png(
        "mnist-sample", tree, splits="test", compress_level=6, overwrite=True, progress=False
    )
    assert summary["files"] == 400 and mnist_data.verify(tree).ok

    def no_flock(*args):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)  # a file system without flock: the run goes ahead
    assert (
        to_png("mnist-sample", tree, splits="test", compress_level=6, progress=False)[
            "resumed_files"
        ]
        == 400
    )
    monkeypatch.undo()
    held = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)  # as a conversion running into it holds it
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(ConvertError, match="another conversion is writing here"):
            to_png("mnist-sample", tree, splits="test", overwrite=True, progress=False)
    finally:
        os.close(held)
    assert mnist_data.verify(tree).ok


def test_split_sizes_that_differ_are_refused_before_out_exists(tmp_path: Path) -> None:
    source = tmp_path / "idx"
    source.mkdir()
    for prefix, size in (("train", 28), ("t10k", 32)):
        mnist_data.write_idx(
            source / f"{prefix}-images-idx3-ubyte.gz", np.zeros((4, size, size), np.uint8)
        )
        mnist_data.write_idx(
            source / f"{prefix}-labels-idx1-ubyte.gz", np.arange(4, dtype=np.uint8)
        )
    with pytest.raises(
        ConvertError, match=f"{source}: the splits differ in image size .train 28x28, test 32x32."
    ):
        to_tfrecord(source, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_impossible_sharding_and_worker_counts_are_refused(tmp_path: Path) -> None:
    for kwargs, says in (
        (dict(shards=2001), "2001 shards for 1600 records"),
        (dict(shard_size=0), "shard_size must be a whole number >= 1, got 0"),
        (dict(shard_size=2.5), "shard_size must be a whole number >= 1, got 2.5"),
        (dict(compress_level=12), "compress_level must be a whole number in 0..9, got 12"),
        (dict(workers=0), "workers must be a whole number >= 1, got 0"),
        (dict(workers="2"), "workers must be a whole number >= 1, got '2'"),
    ):
        with pytest.raises(ConvertError, match=says):
            to_tfrecord("mnist-sample", tmp_path / "out", progress=False, **kwargs)
    assert not (tmp_path / "out").exists()
    summary = to_tfrecord("mnist-sample", tmp_path / "one", splits="test", progress=False)
    assert summary["examples"] == 400 and not list((tmp_path / "one").glob("train-*"))


def test_resume_rewrites_a_shard_damaged_since_it_was_written(tmp_path: Path) -> None:
    from mnist_data.formats.tfrecord_read import read_tfrecord_split

    out = tmp_path / "tfr"
    to_tfrecord("mnist-sample", out, shards=4, splits=["train"], progress=False)
    (out / "manifest.json").unlink()  # as if killed just before the end
    victim = out / "train-00001-of-00004.tfrecord"
    blob = bytearray(victim.read_bytes())
    blob[100] ^= 0xFF
    victim.write_bytes(bytes(blob))
    summary = to_tfrecord("mnist-sample", out, shards=4, splits=["train"], progress=False)
    assert summary["resumed_files"] == 3 and summary["resumed_examples"] == 1200
    images, labels = read_tfrecord_split(out, "train")
    expected = mnist_data.load("mnist-sample", "train")
    np.testing.assert_array_equal(images, expected[0])
    np.testing.assert_array_equal(labels, expected[1])


def test_bad_source_and_unwritable_out_leave_nothing(tmp_path: Path) -> None:
    source = tmp_path / "idx"
    source.mkdir()
    (source / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8bjunk")
    (source / "t10k-labels-idx1-ubyte.gz").write_bytes(b"junk")
    assert (
        main(["to-tfrecord", str(source), str(tmp_path / "out"), "--splits", "test", "--quiet"])
        == 1
    )
    assert not (tmp_path / "out").exists()
    blocked = tmp_path / "file"
    blocked.write_text("x")
    with pytest.raises(ConvertError, match="cannot write output"):
        to_tfrecord("mnist-sample", blocked / "out", progress=False)


def test_cli_writes_json_summary(tmp_path: Path, capsys) -> None:
    report = tmp_path / "summary.json"
    out = tmp_path / "o"
    assert (
        main(f"to-tfrecord mnist-sample {out} --shard-size 1000 --quiet --json {report}".split())
        == 0
    )
    summary = json.loads(report.read_text())
    assert summary["files"] == 3 and summary["examples"] == 2000 and summary["bytes"] > 1_500_000
    assert "examples/s" in capsys.readouterr().out


@pytest.mark.parametrize("start,count", [(0, 300), (16_300, 200), ((1 << 21) - 2, 4)])
def test_bulk_raw_records_equal_one_example_at_a_time(start: int, count: int) -> None:
    """The numpy record builder gives the plain per-record encoder's bytes, across varint widths."""
    from mnist_data.formats.tfrecord import encode_example, encode_raw_records, frame

    rng = np.random.default_rng(start)
    images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
    for labels in (
        rng.integers(0, 10, count),
        rng.integers(0, 300, count),
    ):  # > 127: two-byte varints
        expected = b"".join(
            frame(encode_example(images[i].tobytes(), int(labels[i]), start + i))
            for i in range(count)
        )
        assert encode_raw_records(images, labels, start) == expected


def test_a_refused_run_names_what_differs_and_nothing_else(tmp_path: Path) -> None:
    from mnist_data.conversion.run import _difference

    files = {"a.gz": "1", "b.gz": "2"}
    before = {
        "kind": "tfrecord",
        "source": {"name": "x", "files": files},
        "options": {"shards": None, "splits": ["train"]},
    }
    other_source = {**before, "source": {"name": "y", "files": {"c.gz": "3"}}}
    assert _difference(before, other_source) == "source.name 'x' -> 'y'"
    one_more = {
        **before,
        "source": {"name": "x", "files": {**files, "c.gz": "3"}},
        "options": {"shards": 2, "splits": ["train"]},
    }
    assert _difference(before, one_more) == "options.shards None -> 2, source.files.c.gz added"


def test_a_rerun_rewrites_a_shard_swapped_for_another_valid_one(tmp_path) -> None:
    import shutil

    import numpy as np

    images, labels = mnist_data.load("mnist-sample", "test")
    other = tmp_path / "relabelled"
    other.mkdir()
    for prefix in ("train", "t10k"):
        mnist_data.write_idx(other / f"{prefix}-images-idx3-ubyte.gz", images)
        mnist_data.write_idx(
            other / f"{prefix}-labels-idx1-ubyte.gz", ((labels + 1) % 10).astype(np.uint8)
        )
    to_tfrecord(other, tmp_path / "a", splits="test", progress=False)
    out = tmp_path / "b"
    to_tfrecord("mnist-sample", out, splits="test", progress=False)
    shard = out / "test-00000-of-00001.tfrecord"
    whole = shard.read_bytes()
    shutil.copyfile(tmp_path / "a" / shard.name, shard)  # same count, every CRC valid, other labels
    assert not mnist_data.verify(out).ok
    summary = to_tfrecord("mnist-sample", out, splits="test", progress=False)
    assert (
        summary["resumed_files"] == 0 and shard.read_bytes() == whole and mnist_data.verify(out).ok
    )
