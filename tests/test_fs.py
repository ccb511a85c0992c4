"""The one atomic-write helper: nothing partial ever carries the final name."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnist_data.fs import atomic_path, write_bytes_atomic


def test_atomic_path_removes_a_failed_directory_output(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="export failed"):
        with atomic_path(tmp_path / "model", durable=False) as tmp:
            tmp.mkdir()
            (tmp / "half-written").write_bytes(b"x")
            raise RuntimeError("export failed")
    assert list(tmp_path.iterdir()) == []


def test_write_replaces_whole_and_failure_keeps_the_old_file(tmp_path: Path) -> None:
    target = write_bytes_atomic(tmp_path / "f", b"old")
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise ValueError("boom")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f"]
    write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"new"


def test_stale_temporaries_are_swept_from_subfolders_only_when_asked(tmp_path: Path) -> None:
    from mnist_data.fs import remove_stale_temps, temp_name_for

    (tmp_path / "3").mkdir()
    kept = [tmp_path / "3" / "00001.png", tmp_path / ".hidden-but-ours"]
    for path in kept:
        path.write_bytes(b"x")
    top, nested = (
        temp_name_for(tmp_path / "manifest.json"),
        temp_name_for(tmp_path / "3" / "00002.png"),
    )
    folder = temp_name_for(tmp_path / "model")
    top.write_bytes(b"half")
    nested.write_bytes(b"half")
    folder.mkdir()
    (folder / "variables").write_bytes(b"half")
    assert remove_stale_temps(tmp_path) == 2 and nested.exists()
    assert remove_stale_temps(tmp_path, recursive=True) == 1
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == sorted(kept)


def test_an_error_names_the_final_file_not_its_temporary(tmp_path: Path) -> None:
    import numpy as np

    from mnist_data import write_idx

    target = tmp_path / "missing-folder" / "labels-idx1-ubyte.gz"
    with pytest.raises(FileNotFoundError) as info:
        write_idx(target, np.zeros(3, np.uint8))
    assert info.value.filename == str(target) and str(target) in str(info.value)
    assert " -> " not in str(info.value)


def test_a_write_error_without_a_file_name_is_given_the_final_one(tmp_path: Path) -> None:
    import errno

    target = tmp_path / "out.bin"
    with pytest.raises(OSError) as info:
        with atomic_path(target):
            raise OSError(errno.ENOSPC, "No space left on device")  # as a full disk reports a write
    assert str(info.value) == f"[Errno 28] No space left on device: '{target}'"
    with pytest.raises(OSError) as info:
        with atomic_path(target):
            raise OSError("encoder error -2")  # no errno: passed on as it is
    assert str(info.value) == "encoder error -2" and list(tmp_path.iterdir()) == []
