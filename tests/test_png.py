"""to_png: Keras reads the tree with the right labels, pixels round-trip, names, listings."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mnist_data
from mnist_data import ConvertError, to_png
from mnist_data.formats.png import encode_gray_pngs


def test_keras_reads_the_tree_with_the_right_labels(tmp_path: Path) -> None:
    import keras

    to_png("mnist-sample", tmp_path / "png", splits=["test"], progress=False)
    dataset = keras.utils.image_dataset_from_directory(
        tmp_path / "png" / "test",
        color_mode="grayscale",
        image_size=(28, 28),
        shuffle=False,
        batch_size=400,
    )
    images, labels = next(iter(dataset))
    assert dataset.class_names == [str(d) for d in range(10)]
    want_images, want_labels = mnist_data.load("mnist-sample", "test")
    # Keras lists files folder by folder; put both sides in that order.
    order = np.lexsort((np.arange(400), want_labels))
    np.testing.assert_array_equal(labels.numpy(), want_labels[order])
    np.testing.assert_array_equal(images.numpy()[..., 0].astype(np.uint8), want_images[order])


def test_pixels_round_trip_exactly_and_listing_is_complete(tmp_path: Path) -> None:
    out = tmp_path / "png"
    summary = to_png("mnist-sample", out, workers=2, progress=False)
    assert summary["files"] == 2000
    for split in ("train", "test"):
        images, labels = mnist_data.load("mnist-sample", split)
        with open(out / f"{split}.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == len(labels)
        for row in rows[::97]:
            index = int(row["index"])
            assert int(row["label"]) == labels[index]
            assert row["file"] == f"{split}/{labels[index]}/{index:05d}.png"
            with Image.open(out / row["file"]) as image:
                assert image.mode == "L"
                np.testing.assert_array_equal(np.array(image), images[index])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "png" and manifest["splits"]["test"]["records"] == 400


def test_class_names_as_folders(tmp_path: Path, sample_dir: Path, monkeypatch) -> None:
    import dataclasses

    import mnist_data.sources.catalog as catalog

    fashion_like = dataclasses.replace(
        catalog.CATALOG["mnist-sample"], classes=catalog.CATALOG["fashion-mnist"].classes
    )
    monkeypatch.setitem(catalog.CATALOG, "mnist-sample", fashion_like)
    to_png("mnist-sample", tmp_path / "png", splits=["test"], labels_as="names", progress=False)
    folders = sorted(p.name for p in (tmp_path / "png" / "test").iterdir())
    assert "T-shirt-top" in folders and "Ankle_boot" in folders and len(folders) == 10
    with pytest.raises(ConvertError, match="no class names"):
        to_png(sample_dir, tmp_path / "other", labels_as="names", progress=False)


def test_encoder_matches_pillow_decoding_for_odd_sizes() -> None:
    import io

    images = np.random.default_rng(0).integers(0, 256, size=(5, 3, 17), dtype=np.uint8)
    for blob, image in zip(encode_gray_pngs(images, 9), images):
        np.testing.assert_array_equal(np.array(Image.open(io.BytesIO(blob))), image)


def test_keras_labels_of_name_folders_map_back_through_the_manifest(
    tmp_path: Path, monkeypatch
) -> None:
    """Keras numbers folders alphabetically; the documented mapping gives the dataset labels."""
    import dataclasses

    import keras

    import mnist_data.sources.catalog as catalog

    fashion_like = dataclasses.replace(
        catalog.CATALOG["mnist-sample"], classes=catalog.CATALOG["fashion-mnist"].classes
    )
    monkeypatch.setitem(catalog.CATALOG, "mnist-sample", fashion_like)
    out = tmp_path / "png"
    to_png("mnist-sample", out, splits=["test"], labels_as="names", progress=False)
    dataset = keras.utils.image_dataset_from_directory(
        out / "test", color_mode="grayscale", image_size=(28, 28), shuffle=False, batch_size=400
    )
    images, keras_labels = next(iter(dataset))
    folders = json.loads((out / "manifest.json").read_text())["folders"]
    assert (
        dataset.class_names == sorted(folders) != folders
    )  # alphabetical order is not the dataset's
    labels = np.array([folders.index(dataset.class_names[k]) for k in keras_labels.numpy()])
    want_images, want_labels = mnist_data.load("mnist-sample", "test")
    pixels = images.numpy()[..., 0].astype(np.uint8)
    for image, label in zip(pixels, labels):  # each image Keras read carries its own dataset label
        matches = np.flatnonzero((want_images == image).all(axis=(1, 2)))
        assert len(matches) and label in want_labels[matches]
    np.testing.assert_array_equal(
        np.bincount(labels, minlength=10), np.bincount(want_labels, minlength=10)
    )


def test_sets_with_more_classes_convert_with_as_many_as_their_labels_need(tmp_path: Path) -> None:
    from mnist_data import DatasetError, to_tfrecord, write_idx
    from mnist_data.formats.tfrecord_read import read_tfrecord_split

    rng = np.random.default_rng(1)
    letters = tmp_path / "letters"  # an EMNIST-letters-like set without names: 26 classes
    letters.mkdir()
    for prefix, count in (("train", 260), ("t10k", 52)):
        write_idx(
            letters / f"{prefix}-images-idx3-ubyte.gz",
            rng.integers(0, 256, (count, 28, 28), np.uint8),
        )
        write_idx(
            letters / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(count) % 26).astype(np.uint8)
        )
    with pytest.raises(DatasetError, match="out of range: expected 0..9"):
        to_png(letters, tmp_path / "refused", num_classes=10, progress=False)
    to_png(letters, tmp_path / "png", progress=False)
    folders = sorted(
        p.name for p in (tmp_path / "png" / "train").iterdir()
    )  # Keras' order of the classes
    assert folders == [f"{label:02d}" for label in range(26)]
    manifest = json.loads((tmp_path / "png" / "manifest.json").read_text())
    assert manifest["folders"] == folders
    assert manifest["classes"] == [str(label) for label in range(26)]
    assert all(
        p.parent.name == f"{int(p.stem) % 26:02d}"
        for p in (tmp_path / "png" / "train").rglob("*.png")
    )
    run_file = tmp_path / "png" / ".mnist-data-run.json"
    identity = json.loads(run_file.read_text())
    del identity["options"][
        "digit_width"
    ]  # as a tree of unpadded folders, written before, records it
    run_file.write_text(json.dumps(identity))
    with pytest.raises(ConvertError, match=r"different run \(options.digit_width added\)"):
        to_png(letters, tmp_path / "png", progress=False)
    to_tfrecord(letters, tmp_path / "tfr", splits=["test"], num_classes=30, progress=False)
    manifest = json.loads((tmp_path / "tfr" / "manifest.json").read_text())
    assert manifest["classes"] == [str(label) for label in range(30)]
    np.testing.assert_array_equal(
        read_tfrecord_split(tmp_path / "tfr", "test")[1], np.arange(52) % 26
    )


def test_a_file_size_limit_stops_the_export_naming_the_file_and_leaves_no_cut_png(
    tmp_path: Path,
) -> None:
    import resource
    import subprocess
    import sys

    from mnist_data import write_idx
    from mnist_data.fs import is_temp_name

    noisy = tmp_path / "noisy"  # 40x40 noise: PNGs of about 1.7 kB, past a 1 kB file size limit
    noisy.mkdir()
    rng = np.random.default_rng(3)
    for prefix in ("train", "t10k"):
        write_idx(
            noisy / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (12, 40, 40), np.uint8)
        )
        write_idx(noisy / f"{prefix}-labels-idx1-ubyte.gz", np.arange(12, dtype=np.uint8) % 10)
    out = tmp_path / "png"
    limited = subprocess.run(
        [
            sys.executable,
            "-m",
            "mnist_data_cli",
            "to-png",
            str(noisy),
            str(out),
            "--workers",
            "1",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024)),
    )
    assert limited.returncode == 1, limited.stderr
    assert (
        f"mnist-data: error: {out}/train/" in limited.stderr
        and ".png: File too large" in limited.stderr
    )
    for png in out.rglob("*.png"):  # nothing under a final name is cut short
        with Image.open(png) as image:
            image.load()
    assert not (out / "manifest.json").exists()
    assert not [
        p for p in out.rglob("*") if is_temp_name(p)
    ]  # the cut file's temporary went with it
    assert to_png(noisy, out, progress=False)["files"] == 24 and mnist_data.verify(out).ok


def test_a_rerun_restores_a_file_deleted_from_a_finished_chunk(tmp_path: Path) -> None:
    out = tmp_path / "png"
    first = to_png("mnist-sample", out, splits=["test"], progress=False)
    victim = sorted((out / "test" / "4").iterdir())[0]
    kept = victim.read_bytes()
    again = to_png("mnist-sample", out, splits=["test"], progress=False)
    assert (
        again["resumed_files"] == again["resumed_examples"] == 400
        and again["bytes"] == first["bytes"]
    )
    assert again["examples_per_second"] == 0  # nothing converted: the kept files do not count
    victim.unlink()
    restored = to_png("mnist-sample", out, splits=["test"], progress=False)
    assert restored["resumed_files"] == 0 and victim.read_bytes() == kept


def test_a_log_gets_no_progress_bar(tmp_path: Path) -> None:
    import subprocess
    import sys

    command = [sys.executable, "-m", "mnist_data_cli", "to-png", "mnist-sample", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True)  # stderr is not a terminal
    assert done.returncode == 0 and "\r" not in done.stderr and "to-png: 2000 files" in done.stdout
