"""make_dataset yields exactly the examples of `load`, once each per epoch, in every format."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import mnist_data
import pipelines
from pipelines.input.dataset import dataset_from_arrays
from pipelines.input.options import PipelineOptions
from pipelines.input.readers import tf_reason


def collect(dataset) -> tuple[np.ndarray, np.ndarray]:
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    return np.concatenate(images), np.concatenate(labels)


def as_uint8(images: np.ndarray) -> np.ndarray:
    return np.rint(images.reshape(len(images), 28, 28) * 255).astype(np.uint8)


def assert_same_examples(
    images: np.ndarray, labels: np.ndarray, source: str = "mnist-sample", split: str = "test"
) -> None:
    """Same multiset of (pixels, label) pairs as load(): each example exactly once."""
    want_images, want_labels = mnist_data.load(source, split)
    assert len(images) == len(want_images)

    def keyed(imgs, labs):
        rows = np.concatenate(
            [imgs.reshape(len(imgs), -1), labs.reshape(-1, 1).astype(np.uint8)], axis=1
        )
        return rows[np.lexsort(rows.T[::-1])]

    np.testing.assert_array_equal(keyed(as_uint8(images), labels), keyed(want_images, want_labels))


def test_in_memory_unshuffled_is_load_in_order() -> None:
    images, labels = collect(pipelines.make_dataset("mnist-sample", "test", 64, shuffle=False))
    want_images, want_labels = mnist_data.load("mnist-sample", "test")
    assert images.shape == (400, 28, 28, 1) and images.dtype == np.float32
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(as_uint8(images), want_images)
    np.testing.assert_array_equal(labels, want_labels)


def test_shuffled_epochs_are_distinct_permutations_and_seeded() -> None:
    dataset = pipelines.make_dataset("mnist-sample", "test", 100, epochs=2, seed=5)
    images, labels = collect(dataset)
    first, second = (images[:400], labels[:400]), (images[400:], labels[400:])
    assert_same_examples(*first)
    assert_same_examples(*second)
    assert not np.array_equal(first[1], second[1])
    again = collect(pipelines.make_dataset("mnist-sample", "test", 100, epochs=2, seed=5))[1]
    np.testing.assert_array_equal(again, labels)


def test_flatten_one_hot_and_drop_remainder() -> None:
    dataset = pipelines.make_dataset(
        "mnist-sample", "test", 128, flatten=True, one_hot=True, drop_remainder=True
    )
    shapes = [(x.shape, y.shape) for x, y in dataset]
    assert shapes == [((128, 784), (128, 10))] * 3
    assert dataset.element_spec[0].shape.as_list()[1:] == [784]  # static: a Keras Input can take it


def test_flatten_takes_the_images_own_size(tmp_path) -> None:
    source = tmp_path / "idx"
    source.mkdir()
    images = np.arange(6 * 32 * 20, dtype=np.uint32).astype(np.uint8).reshape(6, 32, 20)
    for prefix in ("train", "t10k"):
        mnist_data.write_idx(source / f"{prefix}-images-idx3-ubyte.gz", images)
        mnist_data.write_idx(
            source / f"{prefix}-labels-idx1-ubyte.gz", np.arange(6, dtype=np.uint8)
        )
    mnist_data.to_png(source, tmp_path / "png", progress=False)
    for data, cache in ((source, True), (tmp_path / "png", True), (tmp_path / "png", False)):
        dataset = pipelines.make_dataset(
            data, "test", 4, shuffle=False, cache=cache, flatten=True, normalize=False
        )
        assert dataset.element_spec[0].shape.as_list()[1:] == [
            640
        ]  # static, streamed too: Keras can build on it
        flat, labels = collect(dataset)
        np.testing.assert_array_equal(flat, images.reshape(6, 640))  # in source order, streamed too


def test_forever_repeats() -> None:
    dataset = pipelines.make_dataset("mnist-sample", "test", 300, epochs=None)
    assert sum(1 for _ in dataset.take(10)) == 10


def test_batches_that_cannot_be_made_are_refused(converted) -> None:
    with pytest.raises(
        tf.errors.InvalidArgumentError, match="does not fit one_hot with num_classes=5"
    ):
        collect(pipelines.make_dataset("mnist-sample", one_hot=True, num_classes=5))
    with pytest.raises(
        mnist_data.DatasetError,
        match="the train split: batch_size 5000 with drop_remainder exceeds its 1600 examples",
    ):
        pipelines.make_dataset("mnist-sample", batch_size=5000, drop_remainder=True)
    streamed = pipelines.make_dataset(converted["raw"], one_hot=True, num_classes=5, cache=False)
    with pytest.raises(
        tf.errors.InvalidArgumentError, match="does not fit one_hot with num_classes=5"
    ):
        collect(streamed)
    with pytest.raises(
        mnist_data.DatasetError,
        match="the train split: batch_size 5000 with drop_remainder exceeds its 1600 examples",
    ):
        pipelines.make_dataset(converted["raw"], batch_size=5000, drop_remainder=True, cache=False)


def test_unknown_format_is_a_clear_error() -> None:
    with pytest.raises(mnist_data.DatasetError, match="unknown format"):
        pipelines.make_dataset("mnist-sample", format="parquet")


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("converted")
    mnist_data.to_tfrecord("mnist-sample", root / "raw", shards=3, progress=False)
    mnist_data.to_tfrecord(
        "mnist-sample", root / "pnggz", encoding="png", compression="gzip", shards=2, progress=False
    )
    mnist_data.to_png("mnist-sample", root / "png", progress=False)
    return {name: str(root / name) for name in ("raw", "pnggz", "png")}


@pytest.mark.parametrize("name,fmt", [("raw", "tfrecord"), ("pnggz", "tfrecord"), ("png", "png")])
def test_every_source_yields_the_same_examples(converted, name: str, fmt: str) -> None:
    source = converted[name]
    assert mnist_data.resolve_source(source).kind == fmt
    for split in ("train", "test"):
        images, labels = collect(pipelines.make_dataset(source, split, 128, seed=1))
        assert images.shape[1:] == (28, 28, 1) and labels.dtype == np.int32
        assert_same_examples(images, labels, split=split)
    two_epochs = collect(pipelines.make_dataset(source, "test", 100, epochs=2, seed=2))
    assert_same_examples(two_epochs[0][:400], two_epochs[1][:400])
    assert_same_examples(two_epochs[0][400:], two_epochs[1][400:])
    unshuffled = collect(pipelines.make_dataset(source, "test", 64, shuffle=False))
    np.testing.assert_array_equal(unshuffled[1], mnist_data.load("mnist-sample", "test")[1])
    streamed = collect(pipelines.make_dataset(source, "test", 64, epochs=2, cache=False, seed=3))
    assert_same_examples(streamed[0][:400], streamed[1][:400])
    assert_same_examples(streamed[0][400:], streamed[1][400:])
    serial = PipelineOptions(parallel_calls=1, prefetch=1, private_threadpool=1, interleave_cycle=1)
    for cache in (True, False):  # every stage run one at a time gives the same examples
        assert_same_examples(
            *collect(pipelines.make_dataset(source, "test", 64, cache=cache, options=serial))
        )


def test_uint8_batches_without_normalize_are_the_raw_pixels() -> None:
    images, labels = collect(
        pipelines.make_dataset("mnist-sample", "test", 100, shuffle=False, normalize=False)
    )
    assert images.dtype == np.uint8 and images.shape == (400, 28, 28, 1)
    np.testing.assert_array_equal(images[..., 0], mnist_data.load("mnist-sample", "test")[0])
    flat = next(
        iter(pipelines.make_dataset("mnist-sample", "test", 10, normalize=False, flatten=True))
    )[0]
    assert flat.dtype == tf.uint8 and flat.shape == (10, 784)


def test_a_cache_path_with_the_service_is_refused_before_any_connection(
    converted, tmp_path
) -> None:
    with pytest.raises(mnist_data.DatasetError, match="does not combine with service="):
        pipelines.make_dataset(
            converted["raw"], "test", cache=str(tmp_path / "cache"), service="grpc://127.0.0.1:1"
        )
    for address in ("localhost", "::1:5050"):
        with pytest.raises(mnist_data.DatasetError, match="expected HOST:PORT or grpc://HOST:PORT"):
            pipelines.make_dataset(converted["raw"], "test", service=address)


def test_missing_split_in_manifest_is_clear(converted) -> None:
    with pytest.raises(mnist_data.DatasetError, match="no split 'valid'"):
        pipelines.make_dataset(converted["raw"], "valid")
    with pytest.raises(mnist_data.DatasetError, match="no split 'valid'"):
        pipelines.make_dataset(converted["png"], "valid")
    with pytest.raises(
        mnist_data.DatasetError,
        match="mnist-sample: format 'tfrecord' reads a directory written by",
    ):
        pipelines.make_dataset("mnist-sample", format="tfrecord")
    with pytest.raises(mnist_data.DatasetError, match="holds png output, not tfrecord"):
        pipelines.make_dataset(converted["png"], format="tfrecord")


def test_file_cache_is_written_once_and_read_back(converted, tmp_path) -> None:
    import shutil

    source = tmp_path / "pnggz"
    shutil.copytree(converted["pnggz"], source)
    cache = tmp_path / "cache" / "made-on-demand"
    first = collect(pipelines.make_dataset(source, "test", 100, epochs=2, seed=4, cache=str(cache)))
    assert_same_examples(first[0][:400], first[1][:400])
    assert_same_examples(first[0][400:], first[1][400:])
    for shard in source.glob(
        "test-*"
    ):  # garbage of the same size and time: only the cache can serve the split
        state = shard.stat()
        shard.write_bytes(bytes(state.st_size))
        os.utime(shard, ns=(state.st_atime_ns, state.st_mtime_ns))
    again = collect(pipelines.make_dataset(source, "test", 100, seed=4, cache=str(cache)))
    np.testing.assert_array_equal(again[1], first[1][:400])  # same seed, same order, from the cache
    assert all(
        p.parent == cache for p in cache.parent.rglob("*") if p.is_file()
    )  # inside the folder given
    sets = len(list(cache.glob("test-*.index")))
    for shard in Path(converted["pnggz"]).glob(
        "test-*"
    ):  # the files written anew: a new set of cache files
        shutil.copyfile(shard, source / shard.name)
    assert_same_examples(*collect(pipelines.make_dataset(source, "test", 100, cache=str(cache))))
    assert len(list(cache.glob("test-*.index"))) == sets + 1
    train = collect(pipelines.make_dataset(source, "train", 100, cache=str(cache)))  # another split
    assert len(train[1]) == 1600
    other = collect(
        pipelines.make_dataset(converted["raw"], "test", 100, shuffle=False, cache=str(cache))
    )
    np.testing.assert_array_equal(
        other[1], mnist_data.load("mnist-sample", "test")[1]
    )  # another source


def test_a_broken_png_tree_names_the_file_at_fault(converted, tmp_path) -> None:
    import shutil

    from PIL import Image

    tree = tmp_path / "png"
    shutil.copytree(converted["png"], tree)
    victim = sorted((tree / "test").rglob("*.png"))[5]
    victim.write_bytes(b"not a png at all")  # named as `verify` names it, with its advice
    with pytest.raises(mnist_data.DatasetError, match=f"^{victim}: cannot identify image file"):
        pipelines.make_dataset(tree, "test")
    streamed = pipelines.make_dataset(
        tree, "test", cache=False
    )  # TensorFlow raises, but names the file
    not_whole = f"not a 28x28 PNG file, or one cut short:.*{victim}"
    with pytest.raises(tf.errors.InvalidArgumentError, match=not_whole):
        collect(streamed)
    Image.new("L", (32, 32), 255).save(victim)
    with pytest.raises(mnist_data.DatasetError, match=f"^{victim}: 32x32, expected 28x28"):
        pipelines.make_dataset(tree, "test")
    with pytest.raises(tf.errors.InvalidArgumentError, match=not_whole):
        collect(streamed)
    whole = (Path(converted["png"]) / victim.relative_to(tree)).read_bytes()
    victim.write_bytes(whole[: len(whole) // 2])  # a PNG cut short: its header still reads
    with pytest.raises(mnist_data.DatasetError, match=f"^{victim}: .*truncated"):
        pipelines.make_dataset(tree, "test")
    with pytest.raises(tf.errors.InvalidArgumentError, match=not_whole):
        collect(streamed)
    victim.unlink()
    with pytest.raises(mnist_data.DatasetError, match=f"^{victim}: .*No such file"):
        pipelines.make_dataset(tree, "test")


def test_a_damaged_png_encoded_shard_is_named(tmp_path) -> None:
    out = tmp_path / "tfr"
    mnist_data.to_tfrecord(
        "mnist-sample", out, encoding="png", shards=2, splits="test", progress=False
    )
    victim = out / "test-00001-of-00002.tfrecord"
    blob = bytearray(victim.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    victim.write_bytes(bytes(blob))
    with pytest.raises(
        mnist_data.DatasetError,
        match=f"^{victim}: contents differ from the checksum in manifest.json",
    ):
        pipelines.make_dataset(out, "test")
    with pytest.raises(
        tf.errors.InvalidArgumentError
    ) as raised:  # where verify cannot help: TF's reason, tidied
        tf.io.decode_png(b"not a png")
    assert "{{function_node" in str(raised.value) and "[Op:DecodePng]" in str(raised.value)
    assert tf_reason(raised.value) == raised.value.message.split("}}")[-1].split(" [Op:")[0].strip()
    assert "{{" not in tf_reason(raised.value) and "[Op:" not in tf_reason(raised.value)
    (out / "manifest.json").write_text(
        (out / "manifest.json").read_text().replace('"sha256"', '"sha-256"')
    )
    with pytest.raises(
        mnist_data.DatasetError,
        match="manifest.json: not as mnist-data wrote it: split 'test': "
        "shard test-00000-of-00002.tfrecord has no str 'sha256'",
    ):
        pipelines.make_dataset(out, "test")


def test_a_split_short_of_its_manifest_is_refused_cached_or_streamed(converted, tmp_path) -> None:
    import shutil

    from mnist_data.formats.tfrecord import count_records

    out = tmp_path / "tfr"
    shutil.copytree(converted["pnggz"], out)
    shard = out / "test-00001-of-00002.tfrecord.gz"
    whole = shard.read_bytes()
    short = tmp_path / "short"
    mnist_data.to_tfrecord(
        "mnist-sample",
        short,
        encoding="png",
        compression="gzip",
        shards=4,
        splits="test",
        progress=False,
    )
    shard.write_bytes(
        (short / "test-00003-of-00004.tfrecord.gz").read_bytes()
    )  # whole, but 100 of 200 records
    assert count_records(shard, True) == (100, None)
    with pytest.raises(mnist_data.DatasetError, match=f"^{shard}: size .* manifest.json says"):
        pipelines.make_dataset(out, "test")
    for cache in (False, str(tmp_path / "cache")):
        with pytest.raises(tf.errors.FailedPreconditionError, match="to contain 400 elements"):
            collect(pipelines.make_dataset(out, "test", 64, cache=cache))
    shard.write_bytes(whole)  # repaired: the cache folder holds nothing of the short pass
    assert_same_examples(*collect(pipelines.make_dataset(out, "test", 100, cache=cache)))
    tree = tmp_path / "png"
    shutil.copytree(converted["png"], tree)
    listing = tree / "test.csv"
    lines = listing.read_text().splitlines()
    listing.write_text("\n".join(lines[:1]) + "\n")  # an emptied listing
    with pytest.raises(mnist_data.DatasetError, match=f"{listing}: 0 rows, manifest says 400"):
        pipelines.make_dataset(tree, "test")
    listing.write_text(
        "\n".join(lines[:5] + ["", lines[5].replace(",", ",x", 1)] + lines[6:]) + "\n"
    )
    with pytest.raises(
        mnist_data.DatasetError, match=f"{listing}: line 7: not a row of file, label and index"
    ):
        pipelines.make_dataset(tree, "test")
    file, label, rest = lines[5].split(",", 2)
    listing.write_text("\n".join(lines[:5] + [f"{file},300,{rest}"] + lines[6:]) + "\n")
    with pytest.raises(
        mnist_data.DatasetError, match="line 6: label 300 is not one of the 10 classes"
    ):
        pipelines.make_dataset(tree, "test", cache=False)


def test_dataset_from_arrays_batches_like_make_dataset() -> None:
    images, labels = mnist_data.load("mnist-sample", "test")
    ours = collect(dataset_from_arrays(images, labels, 64, seed=5))
    theirs = collect(pipelines.make_dataset("mnist-sample", "test", 64, seed=5))
    np.testing.assert_array_equal(ours[0], theirs[0])
    np.testing.assert_array_equal(ours[1], theirs[1])


def test_an_empty_split_converts_and_reads_back_empty(tmp_path) -> None:
    images, labels = mnist_data.load("mnist-sample", "train")
    source = tmp_path / "idx"
    source.mkdir()
    for prefix, count in (("train", 100), ("t10k", 0)):
        mnist_data.write_idx(source / f"{prefix}-images-idx3-ubyte.gz", images[:count])
        mnist_data.write_idx(source / f"{prefix}-labels-idx1-ubyte.gz", labels[:count])
    mnist_data.to_tfrecord(source, tmp_path / "tfr", progress=False)
    mnist_data.to_png(source, tmp_path / "png", progress=False)
    only_empty = mnist_data.to_png(source, tmp_path / "png-test", splits="test", progress=False)
    assert only_empty["examples"] == 0 and mnist_data.verify(tmp_path / "png-test").ok
    for out in ("tfr", "png"):
        assert mnist_data.verify(tmp_path / out).ok
        for cache in (True, False):
            assert list(pipelines.make_dataset(tmp_path / out, "test", 10, cache=cache)) == []
            assert (
                collect(pipelines.make_dataset(tmp_path / out, "train", 10, cache=cache))[0].shape[
                    0
                ]
                == 100
            )


def test_copied_shards_and_rows_and_relabelled_listings_are_never_read_as_the_split(
    converted, tmp_path
) -> None:
    import shutil

    out = tmp_path / "tfr"  # PNG-encoded records are decoded by TensorFlow, not by the raw reader
    mnist_data.to_tfrecord(
        "mnist-sample", out, encoding="png", shard_size=100, splits="test", progress=False
    )
    victim = out / "test-00002-of-00004.tfrecord"
    size = victim.stat().st_size
    shutil.copyfile(
        out / "test-00000-of-00004.tfrecord", victim
    )  # same count, another shard's records
    assert victim.stat().st_size > size
    with pytest.raises(
        mnist_data.DatasetError, match=f"^{victim}: size .* manifest.json says {size} "
    ):
        pipelines.make_dataset(out, "test")
    victim.write_bytes(victim.read_bytes()[:size])  # the same size too
    with pytest.raises(
        mnist_data.DatasetError, match=f"^{victim}: contents differ from the checksum"
    ):
        pipelines.make_dataset(out, "test")
    tree = tmp_path / "png"
    shutil.copytree(converted["png"], tree)
    listing = tree / "test.csv"
    header, *rows = listing.read_text().splitlines()
    original = "\n".join([header, *rows]) + "\n"
    listing.write_text(
        "\n".join([header, rows[0], rows[0], *rows[2:]]) + "\n"
    )  # row 0 twice, row 1 gone
    with pytest.raises(
        mnist_data.DatasetError, match=f"^{listing}: its indices are not 0..399, each once"
    ):
        pipelines.make_dataset(tree, "test")
    listing.write_text(original)
    cache = tmp_path / "cache"
    before = collect(pipelines.make_dataset(tree, "test", 400, shuffle=False, cache=str(cache)))[1]
    relabelled = [
        ",".join([f, str((int(label) + 1) % 10), *rest])
        for f, label, *rest in (r.split(",") for r in rows)
    ]
    listing.write_text("\n".join([header, *relabelled]) + "\n")  # a label-cleaning pass
    after = collect(pipelines.make_dataset(tree, "test", 400, shuffle=False, cache=str(cache)))[1]
    np.testing.assert_array_equal(after, (before + 1) % 10)  # not the labels cached before


def test_unshuffled_streams_come_in_source_order(tmp_path, large_idx_dir) -> None:
    for (
        name,
        source,
        kwargs,
    ) in (  # more shards than the interleave's cycle; shards of several parse chunks
        ("raw", "mnist-sample", dict(shard_size=300)),
        ("pnggz", "mnist-sample", dict(encoding="png", compression="gzip", shard_size=300)),
        ("long", large_idx_dir, dict(shards=3, splits="test")),
    ):
        out = tmp_path / name
        mnist_data.to_tfrecord(source, out, progress=False, **kwargs)
        for cache in (False, str(tmp_path / f"cache-{name}")):
            for split in json.loads((out / "manifest.json").read_text())["splits"]:
                images, labels = collect(
                    pipelines.make_dataset(out, split, 512, shuffle=False, cache=cache)
                )
                want_images, want_labels = mnist_data.load(source, split)
                np.testing.assert_array_equal(labels, want_labels)
                np.testing.assert_array_equal(as_uint8(images), want_images)


SLOW_CACHE_WRITER = """
import sys, time
from pipelines import make_dataset
for _ in make_dataset(sys.argv[1], "train", 1, shuffle=False, cache=sys.argv[2]):
    time.sleep(0.02)
"""


def test_a_cache_folder_survives_a_killed_writer_and_a_live_one(converted, tmp_path) -> None:
    import subprocess
    import sys
    import time

    cache = tmp_path / "cache"
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    writer = subprocess.Popen(
        [sys.executable, "-c", SLOW_CACHE_WRITER, converted["raw"], str(cache)], env=env
    )
    try:
        deadline = time.monotonic() + 120
        while not list(
            cache.glob("train-*_0.lockfile")
        ):  # tf.data's own lock: the writer has begun
            assert writer.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        with pytest.warns(
            UserWarning, match="another process is writing the train split's cache there"
        ):
            live = pipelines.make_dataset(
                converted["raw"], "train", 400, shuffle=False, cache=str(cache)
            )
        assert_same_examples(*collect(live), split="train")  # from the files meanwhile
    finally:
        writer.kill()  # as the OS kills a process: its lockfile and partial files stay
        writer.wait()
    assert list(cache.glob("train-*_0.lockfile"))
    again = pipelines.make_dataset(converted["raw"], "train", 400, shuffle=False, cache=str(cache))
    assert_same_examples(*collect(again), split="train")
    assert list(cache.glob("train-*.index")) and not list(
        cache.glob("train-*_0.*")
    )  # complete, swept


def test_settings_tf_data_would_reject_later_are_named_up_front(converted, tmp_path) -> None:
    for field, value, says in (
        ("parallel_calls", 0, "num_parallel_calls must be greater than zero"),
        ("interleave_cycle", 0, "`cycle_length` must be `tf.data.AUTOTUNE` or greater than 0"),
        ("prefetch", -5, "buffer_size must be >= 0"),
    ):  # refused as the pipeline is built, not once it runs
        with pytest.raises(tf.errors.InvalidArgumentError, match=says):
            options = PipelineOptions(**{field: value})
            pipelines.make_dataset(converted["raw"], "test", cache=False, options=options)
    tuned = PipelineOptions(
        parallel_calls=tf.data.AUTOTUNE,
        prefetch=tf.data.AUTOTUNE,
        interleave_cycle=tf.data.AUTOTUNE,
    )
    assert_same_examples(
        *collect(pipelines.make_dataset(converted["raw"], "test", 100, cache=False, options=tuned))
    )
    with pytest.raises(mnist_data.DatasetError, match="epochs must be a whole number >= 1"):
        pipelines.make_dataset("mnist-sample", "test", epochs=0)  # as --epochs 0 is refused
    for seed in (1.5, "3", -1, 2**63):
        with pytest.raises(
            mnist_data.DatasetError, match="seed must be a whole number in 0..9223372036854775807"
        ):
            pipelines.make_dataset("mnist-sample", "test", seed=seed)
    with pytest.raises(mnist_data.DatasetError, match="does not combine with service="):
        pipelines.make_dataset(
            "mnist-sample", "test", cache=tmp_path / "folder", service="localhost:1"
        )


def test_a_cache_folder_serves_a_source_however_its_path_is_spelled(
    converted, tmp_path, monkeypatch
) -> None:
    import shutil

    shutil.copytree(converted["raw"], tmp_path / "tfr")
    monkeypatch.chdir(tmp_path)
    cache = str(tmp_path / "cache")
    for spelling in ("tfr", str(tmp_path / "tfr"), "./tfr/"):
        assert_same_examples(*collect(pipelines.make_dataset(spelling, "test", 100, cache=cache)))
    assert len(list((tmp_path / "cache").glob("test-*.index"))) == 1
