"""The contact sheet: every tile is a real image of its row's class, the right way up, for IDX
data, TFRecord and PNG conversions; and `mnist-data info --grid`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mnist_data
import pipelines
from mnist_data_cli import main
from pipelines.input.sheet import BACKGROUND, GAP, HEADER, MARGIN, SCALE, SPLIT_GAP

TILE = 28 * SCALE


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sample as raw TFRecords, gzipped PNG-encoded TFRecords and a PNG tree."""
    root = tmp_path_factory.mktemp("converted")
    mnist_data.to_tfrecord("mnist-sample", root / "raw", progress=False)
    mnist_data.to_tfrecord(
        "mnist-sample", root / "pnggz", encoding="png", compression="gzip", progress=False
    )
    mnist_data.to_png("mnist-sample", root / "png", progress=False)
    return {name: root / name for name in ("raw", "pnggz", "png")}


def tiles(path: Path, rows: int, per_class: int, splits: int):
    """(block, row, column, 28x28 pixels) of every slot, found from the sheet's size: the grid
    sits at the bottom right. Each tile must be its pixels scaled up by nearest neighbour."""
    sheet = np.asarray(Image.open(path))
    pitch = TILE + GAP
    block = per_class * pitch - GAP
    grid_w, grid_h = splits * (block + SPLIT_GAP) - SPLIT_GAP, rows * pitch - GAP
    assert sheet.shape[0] == HEADER + grid_h + MARGIN and sheet.shape[1] >= grid_w + 2 * MARGIN
    left = sheet.shape[1] - MARGIN - grid_w
    for number in range(splits):
        for row in range(rows):
            for column in range(per_class):
                y, x = HEADER + row * pitch, left + number * (block + SPLIT_GAP) + column * pitch
                big = sheet[y : y + TILE, x : x + TILE]
                small = big[::SCALE, ::SCALE]
                assert np.array_equal(big, small.repeat(SCALE, 0).repeat(SCALE, 1))
                yield number, row, column, small


def check_sheet(path: Path, truth: dict, rows: int, per_class: int) -> None:
    """Slot c of row r in a split's block holds one of that split's images of class r if the
    class has more than c of them, else nothing; a row's tiles are distinct examples."""
    splits = list(truth)
    of_class = {
        (split, label): [image.tobytes() for image in images[labels == label]]
        for split, (images, labels) in truth.items()
        for label in range(rows)
    }
    drawn: dict[tuple, list[bytes]] = {}
    for number, row, column, tile in tiles(path, rows, per_class, len(splits)):
        known = of_class[splits[number], row]
        if column < len(known):
            assert tile.tobytes() in known, (splits[number], row, column)
            drawn.setdefault((number, row), []).append(tile.tobytes())
        else:
            assert (tile == BACKGROUND).all(), (splits[number], row, column)
    assert all(len(set(row)) == len(row) for row in drawn.values())


def sample_truth() -> dict:
    return {split: mnist_data.load("mnist-sample", split) for split in ("train", "test")}


@pytest.mark.parametrize("kind", ["idx", "raw", "pnggz", "png"])
def test_every_tile_is_an_image_of_its_rows_class(kind: str, converted, tmp_path: Path) -> None:
    source = "mnist-sample" if kind == "idx" else converted[kind]
    out = pipelines.contact_sheet(source, tmp_path / "sheet.png", per_class=4)
    assert out == tmp_path / "sheet.png"
    check_sheet(out, sample_truth(), rows=10, per_class=4)


def test_size_follows_rows_and_per_class_and_the_choice_is_the_seeds(tmp_path: Path) -> None:
    sizes = {}
    for per_class in (5, 10):
        path = pipelines.contact_sheet(
            "mnist-sample", tmp_path / f"{per_class}.png", per_class=per_class
        )
        sizes[per_class] = Image.open(path).size
    assert sizes[10][0] - sizes[5][0] == 2 * 5 * (TILE + GAP)  # two splits, five more columns
    assert sizes[10][1] == sizes[5][1] == HEADER + 10 * (TILE + GAP) - GAP + MARGIN
    again = pipelines.contact_sheet("mnist-sample", tmp_path / "again.png", per_class=10)
    other = pipelines.contact_sheet("mnist-sample", tmp_path / "other.png", per_class=10, seed=1)
    assert again.read_bytes() == (tmp_path / "10.png").read_bytes() != other.read_bytes()


def test_fashion_mnist(fashion_dir: Path, tmp_path: Path) -> None:
    out = pipelines.contact_sheet("fashion-mnist", tmp_path / "fashion.png", per_class=3)
    truth = {split: mnist_data.load(fashion_dir, split) for split in ("train", "test")}
    check_sheet(out, truth, rows=10, per_class=3)


def test_unnamed_classes_past_ten_few_examples_and_a_missing_split(tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), np.uint8)
    labels = np.array([0, 0, 12, 1, 0], np.uint8)
    mnist_data.write_idx(tmp_path / "train-images-idx3-ubyte", images)
    mnist_data.write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    out = pipelines.contact_sheet(tmp_path, tmp_path / "sheet.png", per_class=2)
    check_sheet(out, {"train": (images, labels)}, rows=13, per_class=2)


def test_the_command_draws_the_sheet_and_refuses_what_the_function_does(
    converted, tmp_path: Path, capsys
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = tmp_path / "sub" / "grid.png"
    command = [sys.executable, "-m", "mnist_data_cli", "info", str(converted["raw"])]
    done = subprocess.run(
        [*command, "--grid", str(out), "--per-class", "3"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0 and done.stderr == ""  # TensorFlow's start-up lines kept away
    assert "tfrecord (encoding raw, compression none), converted from mnist-sample" in done.stdout
    assert "train 1,600 records" in done.stdout and f"contact sheet: {out}" in done.stdout
    check_sheet(out, sample_truth(), rows=10, per_class=3)
    says = "per_class must be a whole number >= 1, got 0"
    assert (
        main(["info", "mnist-sample", "--grid", str(tmp_path / "no.png"), "--per-class", "0"]) == 1
    )
    assert capsys.readouterr().err == f"mnist-data: error: {says}\n"
    with pytest.raises(mnist_data.DatasetError, match=says):
        pipelines.contact_sheet("mnist-sample", tmp_path / "no.png", per_class=0)
    assert not (tmp_path / "no.png").exists()
