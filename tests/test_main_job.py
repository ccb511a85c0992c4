"""The main job's own decisions (which data, where its output goes, how it fails); the stages it
runs are the package's, tested with the package."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "main_job.py"


@pytest.fixture(scope="module")
def main_job():
    spec = importlib.util.spec_from_file_location("main_job", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mnist_already_on_disk_is_used_without_a_download(
    main_job, tmp_path, sample_dir, monkeypatch
):
    shutil.copytree(sample_dir, tmp_path / "mnist")
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path))

    def no_network(*args, **kwargs):
        raise AssertionError("fetched although MNIST was on disk")

    monkeypatch.setattr(main_job.mnist_data, "fetch", no_network)
    assert main_job.pick_source() == "mnist"


def test_each_source_gets_its_own_work_folder(main_job, tmp_path):
    work = tmp_path / "work"
    (tmp_path / "a" / "fashion").mkdir(parents=True)
    (tmp_path / "b" / "fashion").mkdir(parents=True)
    folders = {
        main_job.work_folder(work, name)
        for name in (
            "fashion-mnist",
            str(tmp_path / "a" / "fashion"),
            str(tmp_path / "b" / "fashion"),
        )
    }
    assert len(folders) == 3 and work / "fashion-mnist" in folders
    assert all(folder.parent == work for folder in folders)


def test_a_source_that_cannot_be_read_is_one_line(main_job, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        sys, "argv", ["main_job.py", "--source", str(tmp_path / "nothing"), "--work", str(tmp_path)]
    )
    assert main_job.main() == 1
    err = capsys.readouterr().err
    assert err.startswith("main job: error: ") and err.count("\n") == 1 and "nothing" in err
