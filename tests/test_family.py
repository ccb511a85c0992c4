"""EMNIST and QMNIST in their published layouts (built from the sample), served from a real
HTTP server on loopback with the catalog pointed at them, or placed in a directory."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from family import (
    EMNIST_SPLITS,
    emnist_arrays,
    emnist_members,
    emnist_zip,
    extract_split,
    letter_l,
    published,
    qmnist_files,
    write_zip,
)

import mnist_data
import mnist_data.sources.catalog as catalog
from mnist_data import DatasetError, IdxError

EMNIST = [name for name in catalog.CATALOG if name.startswith("emnist-")]
QMNIST_NAMES = [
    "qmnist-train-images-idx3-ubyte.gz",
    "qmnist-train-labels-idx2-int.gz",
    "qmnist-test-images-idx3-ubyte.gz",
    "qmnist-test-labels-idx2-int.gz",
    "xnist-images-idx3-ubyte.xz",
    "xnist-labels-idx2-int.xz",
]


def serve_as_catalog(monkeypatch, server, root: Path, names: list[str], files: list[str]) -> None:
    """Point the catalog entries `names` at `server`, with the served files' sizes and MD5s."""
    for name in names:
        entry = catalog.CATALOG[name]
        changed = dataclasses.replace(entry, files=published(root, files), mirrors=(server.url,))
        monkeypatch.setitem(catalog.CATALOG, name, changed)


@pytest.fixture
def served_emnist(monkeypatch, file_server, tmp_path: Path):
    root = tmp_path / "www"
    root.mkdir()
    emnist_zip(root / "gzip.zip")
    server = file_server(root)
    serve_as_catalog(monkeypatch, server, root, EMNIST, ["gzip.zip"])
    return server


def test_one_download_of_the_zip_serves_every_split_upright_with_its_names(
    served_emnist, isolated_cache: Path
) -> None:
    images, labels = mnist_data.load("emnist-letters", "train")
    stored_images, stored_labels = emnist_arrays("letters", "train")
    assert np.array_equal(images, stored_images) and images.flags.c_contiguous
    assert np.array_equal(labels, stored_labels - 1)  # 1..26 as stored, 0..25 as loaded
    assert (images[0] == letter_l()).all()  # the L stands upright: stroke left, foot at bottom
    assert images[0][4:24, 8].all() and images[0][22, 7:21].all() and not images[0][5, 12:].any()
    names = mnist_data.class_names("emnist-letters")
    assert len(names) == 26 and names[labels[0]] == "Ll"
    balanced = mnist_data.resolve_source("emnist-balanced")
    assert len(balanced.classes) == 47 and balanced.classes[36:39] == ("a", "b", "d")
    assert int(mnist_data.load(balanced, "test")[1].max()) == 46
    assert [name for name, _ in served_emnist.requests] == ["gzip.zip"]  # one download for all
    assert [p.name for p in (isolated_cache / "emnist").iterdir()] == ["gzip.zip"]  # not extracted


def test_a_download_cut_midway_through_the_zip_resumes(served_emnist, isolated_cache) -> None:
    served_emnist.behaviour = {"gzip.zip": "drop-once"}
    mnist_data.load("emnist-letters", "test")
    ranges = [ranged for name, ranged in served_emnist.requests if name == "gzip.zip"]
    assert ranges[0] is None and ranges[1].startswith("bytes=") and len(ranges) == 2
    whole = served_emnist.root / "gzip.zip"
    assert (isolated_cache / "emnist" / "gzip.zip").read_bytes() == whole.read_bytes()


def test_a_directory_of_one_splits_files_or_the_zip_is_a_source(tmp_path: Path) -> None:
    (tmp_path / "zip").mkdir()
    archive = emnist_zip(tmp_path / "zip" / "gzip.zip")
    extracted = extract_split(archive, "letters", tmp_path / "letters")
    expected = mnist_data.load("emnist-letters", "train", data_dir=archive.parent)
    for source in (extracted, mnist_data.resolve_source("emnist-letters", archive.parent)):
        images, labels = mnist_data.load(source, "train")
        assert np.array_equal(images, expected[0]) and np.array_equal(labels, expected[1])
        assert mnist_data.class_names(source)[labels[0]] == "Ll"
    from mnist_data.sources.load import describe

    files = describe("emnist-letters", archive.parent)["files"]
    assert files[0]["archive"] == str(archive) and files[0]["shape"] == [1600, 28, 28]
    with zipfile.ZipFile(archive) as opened:  # the member's own size, not the archive's
        assert files[0]["bytes"] == opened.getinfo(files[0]["file"].split(":")[-1]).file_size
    with pytest.raises(
        DatasetError, match="several datasets .*emnist-letters.*: name one.*--data-dir"
    ):
        mnist_data.load(archive.parent, "train")  # the zip holds several: name one


def member_error(tmp_path: Path, members: dict[str, bytes]) -> str:
    directory = tmp_path / "bad"
    directory.mkdir()
    write_zip(directory / "gzip.zip", members)
    with pytest.raises((DatasetError, IdxError)) as caught:
        mnist_data.load("emnist-letters", "train", data_dir=directory)
    assert not [p for p in tmp_path.rglob("*") if p.parent == tmp_path and p.name != "bad"]
    return str(caught.value)


def test_a_member_missing_is_named(tmp_path: Path) -> None:
    members = emnist_members("letters")
    del members["gzip/emnist-letters-train-labels-idx1-ubyte.gz"]
    message = member_error(tmp_path, members)
    assert "gzip.zip: no member gzip/emnist-letters-train-labels-idx1-ubyte.gz" in message


def test_a_member_climbing_out_of_the_folder_is_refused_and_nothing_written(tmp_path) -> None:
    members = emnist_members("letters") | {"../../escaped.txt": b"outside"}
    message = member_error(tmp_path, members)
    assert "gzip.zip: member '../../escaped.txt' climbs out of its folder" in message
    assert not list(tmp_path.parent.rglob("escaped.txt"))


def test_a_corrupt_member_is_named(tmp_path: Path) -> None:
    members = emnist_members("letters")
    name = "gzip/emnist-letters-train-images-idx3-ubyte.gz"
    data = bytearray(members[name])
    data[40:60] = bytes(20)  # inside the deflate stream
    message = member_error(tmp_path, members | {name: bytes(data)})
    assert f"gzip.zip:{name}" in message


def test_a_member_damaged_inside_the_zip_is_named(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    directory.mkdir()
    archive = emnist_zip(directory / "gzip.zip", ("letters",))
    name = "gzip/emnist-letters-train-labels-idx1-ubyte.gz"
    with zipfile.ZipFile(archive) as opened:
        info = opened.getinfo(name)
    blob = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len(name) + len(info.extra)
    blob[start + 10 : start + 30] = bytes(20)  # the member's data, past its local header
    archive.write_bytes(bytes(blob))
    with pytest.raises(DatasetError, match=f"gzip.zip:{name}: damaged in its archive"):
        mnist_data.load("emnist-letters", "train", data_dir=directory)


def test_labels_past_the_mapping_name_the_file(tmp_path: Path) -> None:
    members = emnist_members("letters")
    mapping = "gzip/emnist-letters-mapping.txt"
    lines = members[mapping].decode().splitlines(keepends=True)
    message = member_error(tmp_path, members | {mapping: "".join(lines[:20]).encode()})
    assert "emnist-letters-train-labels-idx1-ubyte.gz: label 21 at index 20 is not one" in message
    assert "labels 1..20 of emnist-letters-mapping.txt" in message


@pytest.fixture
def served_qmnist(monkeypatch, file_server, tmp_path: Path):
    root = qmnist_files(tmp_path / "www")
    server = file_server(root)
    serve_as_catalog(monkeypatch, server, root, ["qmnist"], QMNIST_NAMES)
    return server


def test_qmnist_splits_and_its_full_label_table(served_qmnist) -> None:
    images, labels = mnist_data.load("qmnist", "train")
    sample = mnist_data.load("mnist-sample", "train")
    assert np.array_equal(images, sample[0]) and np.array_equal(labels, sample[1])
    assert labels.dtype == np.uint8
    _, labels, table = mnist_data.load("qmnist", "test", extra=True)
    assert table.shape == (12_000, 8) and table.dtype == np.int32
    assert np.array_equal(table[:, 0], labels) and table[:, 2].min() >= 2100  # writer ids
    first, rest = mnist_data.load("qmnist", "test10k"), mnist_data.load("qmnist", "test50k")
    assert len(first[1]) == 10_000 and len(rest[1]) == 2_000
    assert np.array_equal(np.concatenate([first[1], rest[1]]), labels)
    assert [name for name, _ in served_qmnist.requests] == QMNIST_NAMES[:4]  # not xnist
    nist = mnist_data.load("qmnist", "nist")  # xz-compressed, fetched when asked for
    assert np.array_equal(nist[0], sample[0])
    with pytest.raises(DatasetError, match="class labels only; extra=True is for qmnist"):
        mnist_data.load("mnist-sample", "test", extra=True)


def test_a_directory_of_qmnist_files_is_a_source(tmp_path: Path) -> None:
    directory = qmnist_files(tmp_path / "q")
    source = mnist_data.resolve_source(directory)
    assert source.dataset.name == "qmnist" and os.fspath(source) == str(directory)
    assert len(mnist_data.load(directory, "test10k")[0]) == 10_000
    with pytest.raises(DatasetError, match="unknown split 'valid': expected one of train, test"):
        mnist_data.load(directory, "valid")


def test_the_cli_names_the_broken_file_in_one_line(tmp_path: Path) -> None:
    directory = extract_split(emnist_zip(tmp_path / "gzip.zip"), "letters", tmp_path / "l")
    (directory / "emnist-letters-mapping.txt").write_text("1 65 97\nnot a line\n")
    done = subprocess.run(
        [sys.executable, "-m", "mnist_data_cli", "info", str(directory)],
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert f"{directory / 'emnist-letters-mapping.txt'}: line 2 is not a label" in done.stderr


def test_every_emnist_split_is_in_the_catalog() -> None:
    counts = {name: len(catalog.CATALOG[name].classes) for name in EMNIST}
    assert counts == {
        "emnist-byclass": 62,
        "emnist-bymerge": 47,
        "emnist-balanced": 47,
        "emnist-letters": 26,
        "emnist-digits": 10,
        "emnist-mnist": 10,
    }
    zips = {catalog.CATALOG[name].remote_files(["train"])[0] for name in EMNIST}
    assert zips == {catalog.RemoteFile("gzip.zip", 561_753_746, "58c8d27c78d21e728a6bc7b3cc06412e")}
    assert set(EMNIST_SPLITS) < {name.split("-", 1)[1] for name in EMNIST}


def test_converters_and_pipelines_take_either_directory(tmp_path: Path) -> None:
    from mnist_data_cli import main
    from pipelines import make_dataset

    archive = emnist_zip(tmp_path / "gzip.zip")
    extracted = extract_split(archive, "letters", tmp_path / "letters")
    out = tmp_path / "png"
    argv = ["to-png", "emnist-letters", str(out), "--data-dir", str(tmp_path), "--quiet"]
    assert main([*argv, "--labels-as", "names"]) == 0
    assert (out / "train" / "Ll" / "00000.png").is_file()  # the L, in its letter's folder
    assert main(["to-tfrecord", str(extracted), str(tmp_path / "tfr"), "--quiet"]) == 0
    expected = mnist_data.load(extracted, "test")
    for source in (extracted, tmp_path / "tfr", out):
        images, labels = next(iter(make_dataset(source, "test", batch_size=4000, shuffle=False)))
        assert np.array_equal(labels.numpy(), expected[1])
        assert np.array_equal(np.rint(images.numpy()[..., 0] * 255), expected[0])


def test_the_contact_sheet_shows_both_splits_upright(tmp_path: Path) -> None:
    from test_sheet import check_sheet

    from pipelines import contact_sheet

    extracted = extract_split(emnist_zip(tmp_path / "gzip.zip"), "letters", tmp_path / "l")
    truth = {split: mnist_data.load(extracted, split) for split in ("train", "test")}
    check_sheet(contact_sheet(extracted, tmp_path / "sheet.png"), truth, rows=26, per_class=10)
    qmnist = qmnist_files(tmp_path / "q")
    truth = {split: mnist_data.load(qmnist, split) for split in ("train", "test")}
    check_sheet(contact_sheet(qmnist, tmp_path / "q.png", per_class=3), truth, 10, 3)


def test_lenet_trains_47_ways_on_emnist_balanced_and_predict_names_characters(
    served_emnist, tmp_path: Path
) -> None:
    from PIL import Image

    from mnist_data_cli import main
    from pipelines.training.export import predict

    run = tmp_path / "run"
    argv = ["train", "lenet", "--data", "emnist-balanced", "--epochs", "1", "--out", str(run)]
    assert main([*argv, "--batch-size", "400", "--quiet"]) == 0
    classes = catalog.CATALOG["emnist-balanced"].classes
    Image.fromarray(letter_l()).save(tmp_path / "l.png")
    (answer,) = predict(run, [tmp_path / "l.png"], top=47)
    assert len(answer["predictions"]) == 47
    assert {guess["name"] for guess in answer["predictions"]} == set(classes)  # all named
    assert main(["evaluate", str(run)]) == 0


def test_folders_of_names_differing_only_in_case_carry_their_number() -> None:
    from mnist_data.conversion.png import folder_names

    folders = folder_names("emnist-balanced", "names", 47)
    assert folders[10] == "10-A" and folders[36] == "36-a" and folders[0] == "00-0"
    assert folder_names("emnist-letters", "names", 26)[:2] == ["Aa", "Bb"]


def test_a_run_on_a_data_dir_evaluates_from_it_again(monkeypatch, tmp_path: Path) -> None:
    from mnist_data_cli import main

    emnist_zip(tmp_path / "gzip.zip")
    letters = dataclasses.replace(
        catalog.CATALOG["emnist-letters"], mirrors=("http://127.0.0.1:9/",)
    )
    monkeypatch.setitem(catalog.CATALOG, "emnist-letters", letters)  # no download can happen
    run, given = str(tmp_path / "run"), ["--data", "emnist-letters", "--data-dir", str(tmp_path)]
    assert main(["train", "softmax", *given, "--epochs", "1", "--out", run, "--quiet"]) == 0
    assert main(["evaluate", run]) == 0  # the run knows where its data is
    with pytest.raises(DatasetError, match="not found locally"):
        mnist_data.load("emnist-letters", "test", download=False)
    with pytest.raises(DatasetError, match="label 11 at index 0 is out of range: expected 0..4"):
        mnist_data.load("emnist-letters", "train", tmp_path, num_classes=5)


def test_info_and_the_sheet_show_every_converted_split(tmp_path: Path, capsys) -> None:
    from mnist_data_cli import main

    out = tmp_path / "tfr"
    mnist_data.to_tfrecord(qmnist_files(tmp_path / "q"), out, splits=["nist"], progress=False)
    assert main(["info", str(out), "--grid", str(tmp_path / "g.png"), "--per-class", "2"]) == 0
    text = capsys.readouterr().out
    assert "nist  1,600 records" in text and "train" not in text.replace("records", "")
