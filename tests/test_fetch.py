"""Downloads from a real HTTP server on 127.0.0.1 serving the real sample files."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

import mnist_data.sources.catalog as catalog
from mnist_data import FetchError, fetch
from mnist_data.sources.fetch import part_path
from mnist_data_cli import main

NAMES = [f.name for f in catalog.CATALOG["mnist-sample"].files]


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """An empty download folder."""
    (tmp_path / "data").mkdir()
    return tmp_path / "data"


@pytest.fixture
def served_catalog(monkeypatch: pytest.MonkeyPatch, sample_dir: Path, tmp_path: Path):
    """A catalog entry 'mnist' whose checksums are those of the sample files being served."""
    root = tmp_path / "www"
    root.mkdir()
    for name in NAMES:
        shutil.copy(sample_dir / name, root / name)
    entry = dataclasses.replace(
        catalog.CATALOG["mnist"], files=catalog.CATALOG["mnist-sample"].files
    )
    monkeypatch.setitem(catalog.CATALOG, "mnist", entry)
    return root


def test_fetches_verifies_and_skips_present(
    served_catalog: Path, file_server, tmp_path: Path
) -> None:
    server = file_server(served_catalog)
    target = tmp_path / "data"
    fetch("mnist", target, mirrors=[server.url], progress=False)
    for name in NAMES:
        assert (target / name).read_bytes() == (served_catalog / name).read_bytes()
    assert not [p for p in target.iterdir() if p.name.startswith(".")]
    asked = len(server.requests)
    fetch("mnist", target, mirrors=[server.url], progress=False)
    assert len(server.requests) == asked  # all present and valid: nothing downloaded


def test_falls_over_to_next_mirror_on_404_and_corruption(
    served_catalog: Path, file_server, tmp_path: Path
) -> None:
    missing = file_server(tmp_path)  # serves nothing: every file 404s
    corrupt = file_server(served_catalog)
    corrupt.behaviour = {name: "corrupt" for name in NAMES}
    good = file_server(served_catalog)
    target = tmp_path / "data"
    fetch("mnist", target, mirrors=[missing.url, corrupt.url, good.url], progress=False)
    assert sorted(p.name for p in target.iterdir()) == sorted(NAMES)
    assert len(missing.requests) == 4 and len(corrupt.requests) == 4


def test_all_mirrors_failing_names_files_and_directory(
    served_catalog: Path, file_server, tmp_path: Path
) -> None:
    corrupt = file_server(served_catalog)
    corrupt.behaviour = {name: "corrupt" for name in NAMES}
    target = tmp_path / "data"
    with pytest.raises(FetchError) as info:
        fetch("mnist", target, mirrors=[corrupt.url, "http://127.0.0.1:9/"], progress=False)
    message = str(info.value)
    assert (
        "checksum mismatch" in message
        and "train-images-idx3-ubyte.gz" in message
        and str(target) in message
    )
    (target / "train-images-idx3-ubyte.gz").write_bytes(b"a copy recompressed elsewhere")
    with pytest.raises(FetchError) as info:
        fetch("mnist", target, mirrors=[corrupt.url], progress=False)
    message = str(info.value)
    assert f"{target / 'train-images-idx3-ubyte.gz'} is there but its md5 is " in message
    assert (
        "Offline?" not in message
    )  # the mirror answered: the advice to place the files would mislead


@pytest.mark.parametrize(
    "mode, asked",  # a resume answered from byte 0 as if from the asked one starts over
    [("drop-once", [None, "bytes="]), ("drop-then-misrange", [None, "bytes=", None])],
)
def test_a_cut_download_resumes_with_range(
    served_catalog: Path, file_server, tmp_path: Path, mode: str, asked: list
) -> None:
    name = "train-images-idx3-ubyte.gz"
    server = file_server(served_catalog)
    server.behaviour = {name: mode}
    fetch("mnist", tmp_path / "data", mirrors=[server.url], progress=False, splits=["train"])
    assert [ranged and ranged[:6] for n, ranged in server.requests if n == name] == asked
    assert (tmp_path / "data" / name).read_bytes() == (served_catalog / name).read_bytes()


@pytest.mark.parametrize("kept", [1000, None])  # a cut run's bytes; all of them, not renamed
def test_part_file_from_an_earlier_run_is_resumed(
    served_catalog: Path, file_server, target: Path, kept: int | None
) -> None:
    server = file_server(served_catalog)
    name = "train-images-idx3-ubyte.gz"
    body = (served_catalog / name).read_bytes()
    kept = kept or len(body)  # the server answers a resume past the end with 416
    part_path(target / name).write_bytes(body[:kept])
    fetch("mnist", target, mirrors=[server.url], splits=["train"], progress=False)
    assert (name, f"bytes={kept}-") in server.requests
    assert (target / name).read_bytes() == body and not part_path(target / name).exists()


def test_a_foreign_part_file_is_dropped_and_the_file_fetched_whole(
    served_catalog: Path, file_server, target: Path
) -> None:
    server = file_server(served_catalog)
    name = "train-images-idx3-ubyte.gz"
    part_path(target / name).write_bytes(bytes(range(256)) * 20)  # not the start of this file
    fetch("mnist", target, mirrors=[server.url], splits=["train"], progress=False)
    assert [r for r in server.requests if r[0] == name] == [(name, "bytes=5120-"), (name, None)]
    assert (target / name).read_bytes() == (served_catalog / name).read_bytes()


def test_a_second_fetcher_waits_and_takes_the_first_ones_file(
    served_catalog: Path, file_server, target: Path, capsys
) -> None:
    import fcntl
    import os
    import threading

    server = file_server(served_catalog)
    held = os.open(target, os.O_RDONLY | os.O_DIRECTORY)  # as a fetch in another process holds it
    fcntl.flock(held, fcntl.LOCK_EX)
    second = threading.Thread(
        target=fetch,
        args=("mnist", target),
        kwargs=dict(mirrors=[server.url], splits=["test"], progress=False),
    )
    second.start()
    second.join(0.5)
    assert second.is_alive() and server.requests == []  # waiting, not downloading alongside
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(served_catalog / name, target / name)  # what the first one published
    os.close(held)
    second.join(10)
    assert not second.is_alive() and server.requests == []
    assert f"mnist-data: waiting for another process using {target}" in capsys.readouterr().err


def test_bad_mirror_urls_and_redirect_loops_are_one_line(
    served_catalog: Path, file_server, tmp_path: Path
) -> None:
    with pytest.raises(FetchError, match=r"mirror 'http://\[::1': not a URL"):
        fetch("mnist", tmp_path / "data", mirrors=["http://[::1"], progress=False)
    server = file_server(served_catalog)
    server.behaviour["train-images-idx3-ubyte.gz"] = "redirect-loop"
    with pytest.raises(FetchError, match="HTTP 302") as failed:
        fetch("mnist", tmp_path / "data", mirrors=[server.url], splits=["train"], progress=False)
    assert "\n" not in str(failed.value)


def test_server_ignoring_range_restarts_from_zero(
    served_catalog: Path, file_server, target: Path
) -> None:
    server = file_server(served_catalog)
    server.honour_range = False
    name = "train-labels-idx1-ubyte.gz"
    part_path(target / name).write_bytes(b"garbage that must not stay")
    fetch("mnist", target, mirrors=[server.url], splits=["train"], progress=False)
    assert (target / name).read_bytes() == (served_catalog / name).read_bytes()


def test_cli_offline_prints_one_clear_line(served_catalog: Path, tmp_path: Path, capsys) -> None:
    code = main(
        [
            "fetch",
            "--dataset",
            "mnist",
            "--data-dir",
            str(tmp_path / "d"),
            "--mirror",
            "http://127.0.0.1:9/",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code != 0
    assert err.startswith("mnist-data: error: could not download") and err.count("\n") == 1
    assert (
        "Traceback" not in err
        and str(tmp_path / "d") in err
        and "Offline? Place the published files" in err
    )
    with pytest.raises(FetchError, match="mirror 'example.invalid/x': not a URL"):
        fetch("mnist", tmp_path / "e", mirrors=["example.invalid/x"], progress=False)


def test_a_damaged_file_already_there_is_downloaded_again(
    served_catalog: Path, file_server, target: Path
) -> None:
    server = file_server(served_catalog)
    name = "t10k-labels-idx1-ubyte.gz"
    (target / name).write_bytes(b"not the published file")
    fetch("mnist", target, mirrors=[server.url], splits=["test"], progress=False)
    assert (target / name).read_bytes() == (served_catalog / name).read_bytes()
    assert (name, None) in server.requests


def test_load_downloads_a_missing_catalog_dataset(
    served_catalog: Path, file_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mnist_data

    server = file_server(served_catalog)
    monkeypatch.setitem(
        catalog.CATALOG,
        "mnist",
        dataclasses.replace(catalog.CATALOG["mnist"], mirrors=(server.url,)),
    )
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("MNIST_DATA_CACHE", str(tmp_path / "cache"))
    images, labels = mnist_data.load("mnist", "test")
    expected = mnist_data.load("mnist-sample", "test")
    assert (images == expected[0]).all() and (labels == expected[1]).all()
    assert sorted(
        p.name for p in (tmp_path / "cache" / "mnist").iterdir() if p.suffix == ".gz"
    ) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_a_download_that_cannot_be_stored_is_the_os_error_naming_the_file(
    served_catalog: Path, file_server, target: Path
) -> None:
    server = file_server(served_catalog)
    blocked = part_path(target / "t10k-labels-idx1-ubyte.gz")
    blocked.mkdir()  # the partial download's name is taken by a folder
    with pytest.raises(IsADirectoryError) as info:
        fetch("mnist", target, mirrors=[server.url, server.url], splits=["test"], progress=False)
    assert info.value.filename == str(blocked)


def test_a_mirror_that_sends_too_much_gives_way_to_the_next(
    served_catalog: Path, file_server, tmp_path: Path
) -> None:
    good, endless = file_server(served_catalog), file_server(served_catalog)
    endless.behaviour = {name: "endless" for name in NAMES}
    target = tmp_path / "data"
    with pytest.raises(FetchError, match="sent more than the"):
        fetch("mnist", target, mirrors=[endless.url], progress=False, splits=["test"])
    assert all(p.stat().st_size <= 1 << 20 for p in target.glob(".*.part"))  # no disk filled
    assert fetch("mnist", target, mirrors=[endless.url, good.url], progress=False) == target
    for name in NAMES:
        assert (target / name).read_bytes() == (served_catalog / name).read_bytes()


def test_fetch_takes_a_source(served_catalog: Path, file_server, tmp_path: Path) -> None:
    from mnist_data import resolve_source

    server = file_server(served_catalog)
    source = resolve_source("mnist", tmp_path / "data", mirrors=[server.url])
    assert source.path == tmp_path / "data" and not source.fallback
    assert fetch(source, tmp_path / "again", mirrors=[server.url], progress=False).is_dir()
