"""`load`: resolution order, checks across files, the decoded cache."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from mnist_data import (
    DatasetError,
    class_names,
    load,
    load_splits,
    read_idx,
    resolve_source,
    to_png,
    write_idx,
)
from mnist_data.sources.cache import cache_entry
from mnist_data.sources.load import class_count, class_list, describe, describe_file


def copy_sample(sample_dir: Path, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for path in sample_dir.glob("*.gz"):
        shutil.copy(path, target / path.name)
    return target


def test_embedded_sample_has_the_documented_sizes() -> None:
    splits = load_splits("mnist-sample")
    assert splits["train"][0].shape == (1600, 28, 28) and splits["test"][0].shape == (400, 28, 28)
    for images, labels in splits.values():
        assert images.dtype == np.uint8 and labels.dtype == np.uint8
        assert set(np.unique(labels)) == set(range(10))


def test_directory_source_with_raw_and_gz_files(tmp_path: Path, sample_dir: Path) -> None:
    directory = tmp_path / "raw"
    directory.mkdir()
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        write_idx(directory / name, read_idx(sample_dir / f"{name}.gz"))
    images, labels = load(directory, "test")
    expected_images, expected_labels = load("mnist-sample", "test")
    np.testing.assert_array_equal(images, expected_images)
    np.testing.assert_array_equal(labels, expected_labels)
    with pytest.raises(DatasetError, match="no train split here"):
        load(directory, "train")


def test_resolution_order_data_dir_then_env(tmp_path: Path, sample_dir: Path, monkeypatch) -> None:
    explicit = copy_sample(sample_dir, tmp_path / "explicit")
    labels = read_idx(sample_dir / "t10k-labels-idx1-ubyte.gz").copy()
    labels[0] = (labels[0] + 1) % 10
    write_idx(explicit / "t10k-labels-idx1-ubyte.gz", labels)
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path / "root"))
    copy_sample(sample_dir, tmp_path / "root" / "kmnist")
    assert load("kmnist", "test", data_dir=explicit)[1][0] == labels[0]
    np.testing.assert_array_equal(
        load("kmnist", "test")[1], read_idx(sample_dir / "t10k-labels-idx1-ubyte.gz")
    )


def test_missing_dataset_without_network_is_clear(monkeypatch) -> None:
    with pytest.raises(DatasetError, match="kmnist"):
        load("kmnist", "test", download=False)
    with pytest.raises(DatasetError, match="neither a known dataset"):
        load("no-such-thing")


def test_mnist_falls_back_to_sample_with_warning(monkeypatch) -> None:
    with pytest.warns(
        UserWarning, match="not available locally and downloading is off: using the embedded"
    ) as caught:
        images, _ = load("mnist", "test", download=False)
    assert len(images) == 400
    assert caught[0].filename == __file__  # the warning names the caller's line, not the package's


def test_count_mismatch_and_label_range(tmp_path: Path, sample_dir: Path) -> None:
    directory = copy_sample(sample_dir, tmp_path / "d")
    labels = read_idx(sample_dir / "t10k-labels-idx1-ubyte.gz")
    write_idx(directory / "t10k-labels-idx1-ubyte.gz", labels[:-1])
    with pytest.raises(
        DatasetError, match="400 images but t10k-labels-idx1-ubyte.gz holds 399 labels"
    ):
        load(directory, "test")
    bad = labels.copy()
    bad[7] = 12
    write_idx(directory / "t10k-labels-idx1-ubyte.gz", bad)
    with pytest.raises(DatasetError, match="label 12 at index 7 is out of range: expected 0..9"):
        load(directory, "test", num_classes=10)
    with pytest.raises(DatasetError, match="label 12 at index 7 is out of range: expected 0..9"):
        load("mnist-sample", "test", data_dir=directory)  # the catalog's: past its ten names


def test_a_sources_class_count_is_its_names_else_its_largest_label_plus_one(sample_dir) -> None:
    sample, unnamed = resolve_source("mnist-sample"), resolve_source(sample_dir)
    labels = [np.array([3, 46], np.uint8), np.array([], np.uint8)]
    assert (class_count(sample, labels), class_count(unnamed, labels)) == (10, 47)
    assert class_count(unnamed) == class_count(unnamed, [np.array([2])]) == 10  # at least 10
    assert class_list(unnamed, 12) == [str(label) for label in range(12)]
    assert class_list(sample, 10) == list("0123456789") and class_list(sample, 12)[-1] == "11"


def test_cache_is_used_then_invalidated_when_source_changes(
    tmp_path: Path, sample_dir: Path, isolated_cache: Path
) -> None:
    directory = copy_sample(sample_dir, tmp_path / "d")
    labels_path = directory / "t10k-labels-idx1-ubyte.gz"
    first = load(directory, "test")[1]
    entry, _ = cache_entry(labels_path, isolated_cache / "decoded")
    assert entry.exists()
    warm = load(directory, "test")[1]
    assert isinstance(warm, np.memmap)
    np.testing.assert_array_equal(warm, first)
    del warm  # its mapping must not outlive the file's truncation below
    whole = entry.read_bytes()
    for damaged in (whole[:-100], b"not an npy file"):  # a cache entry cut short or overwritten
        entry.write_bytes(damaged)
        np.testing.assert_array_equal(load(directory, "test")[1], first)
        assert entry.read_bytes() == whole  # decoded again and stored again
    changed = first.copy()
    changed[:5] = 9
    time.sleep(0.01)
    write_idx(labels_path, changed)
    os.utime(labels_path, ns=(time.time_ns(), time.time_ns()))
    np.testing.assert_array_equal(load(directory, "test")[1], changed)
    assert len(list((isolated_cache / "decoded").glob("*t10k-labels*"))) == 1


def test_cache_disabled_and_unwritable(tmp_path: Path, sample_dir: Path, monkeypatch) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("MNIST_DATA_CACHE", str(blocker))
    images, _ = load("mnist-sample", "test")
    assert images.shape == (400, 28, 28)
    assert not isinstance(load("mnist-sample", "test", cache=False)[0], np.memmap)


def test_fashion_mnist_from_system(fashion_dir: Path) -> None:
    splits = load_splits("fashion-mnist")
    assert splits["train"][0].shape == (60000, 28, 28) and splits["test"][1].shape == (10000,)


def test_mnist_source_falls_back_once_unless_refused() -> None:
    with pytest.warns(UserWarning, match="embedded 2,000-digit sample") as caught:
        source = resolve_source("mnist", download=False)
    assert len(caught) == 1 and source.fallback and source.dataset.name == "mnist-sample"
    assert resolve_source(source) is source and os.fspath(source) == "mnist-sample"
    with pytest.raises(DatasetError, match="dataset 'mnist' \\(test\\) was not found locally"):
        resolve_source("mnist", splits=["test"], download=False, fallback=False)


def test_a_source_is_resolved_once_and_converted_output_is_refused_as_idx(tmp_path: Path) -> None:
    source = resolve_source("mnist-sample")
    assert (source.kind, source.classes, source.fallback) == ("idx", tuple("0123456789"), False)
    np.testing.assert_array_equal(load(source, "test")[1], load("mnist-sample", "test")[1])
    assert class_names(source) == class_names("mnist-sample") == source.classes
    out = tmp_path / "png"
    to_png(source, out, splits=["test"], progress=False)
    converted = resolve_source(out)
    assert converted.kind == "png" and converted.manifest["format"] == "png"
    assert converted.classes == source.classes and class_names(out) == source.classes
    for wrong in (lambda: load(out, "test"), lambda: to_png(out, tmp_path)):
        with pytest.raises(DatasetError, match=f"{out} holds converted output \\(png; see"):
            wrong()
    summary = describe(out)  # `info` on converted output: its manifest
    assert summary["format"] == "png" and summary["converted_from"] == "mnist-sample"
    assert summary["splits"] == {"test": 400} and summary["classes"] == list(source.classes)


def test_describe_counts_sparse_label_values_without_a_huge_table(tmp_path) -> None:
    path = write_idx(tmp_path / "odd-labels-idx1-ubyte", np.array([0, 2_000_000_000, 0], np.int32))
    assert describe_file(path)["per_class"] == {0: 2, 2_000_000_000: 1}


def test_mnist_splits_never_mix_real_files_and_the_sample(
    tmp_path: Path, sample_dir: Path, monkeypatch
) -> None:
    (tmp_path / "mnist").mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):  # only train is here
        shutil.copy(sample_dir / name, tmp_path / "mnist" / name)
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path))
    assert load("mnist", "train", download=False)[1].shape == (1600,)  # found on its own
    with pytest.warns(
        UserWarning, match="MNIST's test split is not available locally and downloading is off"
    ):
        splits = load_splits("mnist", download=False)
    sample = load_splits("mnist-sample")
    for split in ("train", "test"):
        np.testing.assert_array_equal(splits[split][1], sample[split][1])


def test_an_unwritable_download_place_falls_back_to_the_sample(tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MNIST_DATA_CACHE", str(blocker))
    with pytest.warns(UserWarning, match="could not be downloaded"):
        assert load("mnist", "test")[1].shape == (400,)


def test_a_killed_writers_temporaries_leave_the_decoded_cache(
    tmp_path: Path, sample_dir: Path, isolated_cache: Path
) -> None:
    import subprocess
    import sys

    directory = copy_sample(sample_dir, tmp_path / "d")
    labels_path = directory / "t10k-labels-idx1-ubyte.gz"
    entry, prefix = cache_entry(labels_path, isolated_cache / "decoded")
    entry.parent.mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    left = (
        entry.parent / f".{entry.name}.tmp-{int(dead.stdout)}-0a1b2c3d"
    )  # a writer killed mid-way
    live = entry.parent / f".{entry.name}.tmp-{os.getpid()}-0a1b2c3d"  # one writing right now
    left.write_bytes(bytes(1000))
    live.write_bytes(bytes(1000))
    load(directory, "test")
    assert entry.exists() and not left.exists() and live.exists()
