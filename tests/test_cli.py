"""The `mnist-data` command: every subcommand has --help; errors are one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mnist_data
from mnist_data_cli import build_parser, main


def subcommand_names() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


@pytest.mark.parametrize("name", subcommand_names())
def test_every_subcommand_has_help(name: str, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main([name, "--help"])
    assert info.value.code == 0
    assert "usage: mnist-data" in capsys.readouterr().out


def test_info_on_sample_writes_json(tmp_path: Path, capsys) -> None:
    out = tmp_path / "info.json"
    assert main(["info", "mnist-sample", "--json", str(out)]) == 0
    files = {Path(f["file"]).name: f for f in json.loads(out.read_text())["files"]}
    labels = files["train-labels-idx1-ubyte.gz"]
    assert labels["shape"] == [1600] and sum(labels["per_class"]) == 1600
    assert labels["catalog_match"] == "mnist-sample/train-labels-idx1-ubyte.gz"
    assert files["t10k-images-idx3-ubyte.gz"]["shape"] == [400, 28, 28]
    assert files["t10k-images-idx3-ubyte.gz"]["dtype"] == "uint8"
    assert "(400, 28, 28)" in capsys.readouterr().out


def test_info_on_a_single_file(sample_dir: Path, capsys) -> None:
    assert main(["info", str(sample_dir / "t10k-labels-idx1-ubyte.gz")]) == 0
    out = capsys.readouterr().out
    assert (
        "uint8 (400,)" in out and "per class:" in out and "0c148cd64fc4226c2ed350580c2d59cb" in out
    )


def test_debug_flag_shows_the_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"\x01\x02")
    with pytest.raises(Exception, match="too short for an IDX header"):
        main(["--debug", "info", str(bad)])
    assert main(["info", str(bad)]) == 1


def test_console_script_reports_bad_file_in_one_line(tmp_path: Path) -> None:
    directory = tmp_path / "bad"
    directory.mkdir()
    (directory / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
    (directory / "t10k-labels-idx1-ubyte.gz").write_bytes(b"")
    result = subprocess.run(
        [sys.executable, "-m", "mnist_data_cli", "info", str(directory)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mnist-data: error: ")
    assert str(directory) in lines[0]


def test_import_does_not_pull_tensorflow() -> None:
    code = "import sys, mnist_data, mnist_data.input_data; print('tensorflow' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
        == "False"
    )


def test_a_failed_write_names_the_output_not_its_temporary(tmp_path: Path, capsys) -> None:
    out = tmp_path / "tfr"
    assert main(["to-tfrecord", "mnist-sample", str(out), "--workers", "1", "--quiet"]) == 0
    shard = next(out.glob("train-*.tfrecord"))
    shard.unlink()
    shard.mkdir()  # the resumed run cannot rename its finished shard onto a directory
    (out / "manifest.json").unlink()
    assert main(["to-tfrecord", "mnist-sample", str(out), "--workers", "1", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err == f"mnist-data: error: {shard}: Is a directory\n"


def test_bad_numbers_and_unwritable_json_paths_stop_before_any_work(tmp_path, capsys) -> None:
    import pipelines
    from mnist_data import DatasetError

    for args, says in (
        (
            ["bench", "pipeline", "--source", "mnist-sample", "--batch-size", "0"],
            "expected a whole number >= 1",
        ),
        (
            ["bench", "pipeline", "--source", "mnist-sample", "--epochs", "-1"],
            "expected a whole number >= 1",
        ),
        (
            ["bench", "pipeline", "--source", "mnist-sample", "--repeat", "0"],
            "expected a whole number >= 1",
        ),
        (["serve", "dispatcher", "--port", "99999"], "expected a port number 0..65535"),
        (["to-tfrecord", "mnist-sample", str(tmp_path / "o"), "--num-classes", "0"], ">= 1"),
        (
            [
                "to-tfrecord",
                "mnist-sample",
                str(tmp_path / "o"),
                "--json",
                str(tmp_path / "f" / "s.json"),
            ],
            f"{tmp_path / 'f'} is a file, so no folder can be made there",
        ),
        (["to-tfrecord", "mnist-sample", str(tmp_path / "o"), "--json", "-"], "give a file name"),
        (
            [
                "train",
                "softmax",
                "--data",
                "mnist-sample",
                "--out",
                str(tmp_path / "r"),
                "--json",
                str(tmp_path),
            ],
            "is a directory",
        ),
    ):
        (tmp_path / "f").write_text("a file, not a folder")
        with pytest.raises(SystemExit) as stop:
            main(args)
        err = capsys.readouterr().err
        assert stop.value.code == 2 and says in err, (args, err)
    assert not (tmp_path / "o").exists() and not (tmp_path / "r").exists()
    out = tmp_path / "tfr"  # a summary inside the OUT the command creates is fine
    assert (
        main(
            [
                "to-tfrecord",
                "mnist-sample",
                str(out),
                "--quiet",
                "--json",
                str(out / "summary.json"),
            ]
        )
        == 0
    )
    assert json.loads((out / "summary.json").read_text())["examples"] == 2000
    for kwargs in (
        dict(batch_size=0),
        dict(batch_size=2.5),
        dict(batch_size=True),
        dict(epochs=-1),
    ):
        with pytest.raises(DatasetError, match="must be a whole number"):
            pipelines.make_dataset("mnist-sample", **kwargs)
    import numpy as np

    batch = next(
        iter(pipelines.make_dataset("mnist-sample", "test", np.int64(100), epochs=np.int32(1)))
    )
    assert batch[0].shape[0] == 100  # NumPy's integers are whole numbers too
    summary = mnist_data.to_tfrecord(
        "mnist-sample",
        tmp_path / "np",
        splits="test",
        workers=np.int64(1),
        shard_size=np.int64(100),
        progress=False,
    )
    assert summary["files"] == 4


def test_a_reader_that_stops_early_gets_no_error(tmp_path) -> None:
    reader = subprocess.Popen(
        [sys.executable, "-m", "mnist_data_cli", "info", "mnist-sample"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    reader.stdout.close()  # like `| head -0`: nobody reads the output
    assert reader.wait(timeout=60) in (0, 141) and reader.stderr.read() == b""


def test_tensorflow_start_up_chatter_is_kept_off_the_terminal(tmp_path) -> None:
    import os

    from mnist_data_cli.quiet_start import _is_start_up_chatter

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "mnist_data_cli",
            "bench",
            "pipeline",
            "--source",
            "mnist-sample",
            "--epochs",
            "1",
            "--repeat",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == 0 and "ours" in run.stdout
    assert not [line for line in run.stderr.splitlines() if _is_start_up_chatter(line)], run.stderr
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "mnist_data_cli",
            "bench",
            "pipeline",
            "--source",
            "mnist-sample",
            "--epochs",
            "1",
            "--repeat",
            "1",
        ],
        capture_output=True,
        text=True,
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "0"},
    )  # asked for: all of it
    assert any(_is_start_up_chatter(line) for line in shown.stderr.splitlines()), shown.stderr
    kept = (
        "E0000 00:00:1795481120.570149   23223 cuda_dnn.cc:8579] Unable to register cuDNN factory",
        "mnist-data: warning: a warning of ours",
        "Traceback (most recent call last):",
    )
    assert not any(_is_start_up_chatter(line) for line in kept)


def test_json_never_replaces_an_input_or_the_commands_own_output(tmp_path: Path, capsys) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"\x89PNG\r\n not JSON")
    for args in (["info", "mnist-sample"], ["to-png", "mnist-sample", str(tmp_path / "p")]):
        with pytest.raises(SystemExit) as stop:
            main([*args, "--json", str(image)])
        assert (
            stop.value.code == 2
            and "a.png exists and does not hold JSON" in capsys.readouterr().err
        )
    assert image.read_bytes() == b"\x89PNG\r\n not JSON"
    earlier = tmp_path / "earlier.json"  # an earlier summary is replaced
    earlier.write_text(' {"files": []}')
    assert main(["info", "mnist-sample", "--json", str(earlier)]) == 0
    assert len(json.loads(earlier.read_text())["files"]) == 4
    out = tmp_path / "tfr"
    for name in (
        "manifest.json",
        ".mnist-data-run.json",
        "test.csv",
        "train-00000-of-00001.tfrecord",
        "train/summary.json",
        ".progress",
        ".",
    ):
        assert (
            main(["to-tfrecord", "mnist-sample", str(out), "--quiet", "--json", str(out / name)])
            == 1
        )
        assert "give the summary another name" in capsys.readouterr().err
    assert not out.exists()
    mnist_data.to_tfrecord(
        "mnist-sample", out, splits="test", progress=False
    )  # inputs holding JSON
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "softmax", "data": str(out)}))
    for args in (
        ["bench", "pipeline", "--source", str(out), "--json", str(out / "manifest.json")],
        [
            "train",
            "softmax",
            "--data",
            str(out),
            "--out",
            str(tmp_path / "r"),
            "--json",
            str(out / "manifest.json"),
        ],
        ["evaluate", str(run), "--json", str(run / "config.json")],
        ["evaluate", str(run), "--json", str(out / "manifest.json")],  # the data the run records
        [
            "train",
            "softmax",
            "--data",
            str(out),
            "--out",
            str(run),
            "--resume",
            "--json",
            str(run / "metrics.json"),
        ],
    ):
        assert main(args) == 1, args
        assert "give the summary another name" in capsys.readouterr().err
    assert (
        mnist_data.verify(out).ok
        and json.loads((run / "config.json").read_text())["model"] == "softmax"
    )
    for kind in ("empty", "pipe"):  # an empty file takes the JSON; a pipe is not read before
        target = tmp_path / f"{kind}.json"
        target.touch() if kind == "empty" else os.mkfifo(target)
        assert main(["info", "mnist-sample", "--json", str(target)]) == 0
        assert len(json.loads(target.read_text())["files"]) == 4


def test_splits_in_any_order_or_repeated_are_the_same_run(tmp_path: Path, capsys) -> None:
    out = tmp_path / "tfr"
    assert (
        main(
            [
                "to-tfrecord",
                "mnist-sample",
                str(out),
                "--quiet",
                "--splits",
                "test",
                "train",
                "test",
            ]
        )
        == 0
    )
    assert json.loads((out / "manifest.json").read_text())["options"]["splits"] == ["train", "test"]
    assert (
        main(["to-tfrecord", "mnist-sample", str(out), "--quiet"]) == 0
    )  # the same run: nothing to redo
    assert "(2 already done)" in capsys.readouterr().out.splitlines()[-1]
    with pytest.raises(mnist_data.ConvertError, match="unknown split 'validation'"):
        mnist_data.to_tfrecord("mnist-sample", out, splits=["train", "validation"], progress=False)


def test_converters_leave_the_summary_line_to_the_command(tmp_path: Path, capsys) -> None:
    mnist_data.to_tfrecord("mnist-sample", tmp_path / "t", progress=False)
    mnist_data.to_png("mnist-sample", tmp_path / "p", splits="test", progress=False)
    assert capsys.readouterr().out == ""
    assert main(["to-png", "mnist-sample", str(tmp_path / "p"), "--splits", "test", "--quiet"]) == 0
    assert "to-png:" in capsys.readouterr().out


def test_flag_values_and_outputs_that_cannot_work_are_named(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["to-png", "mnist-sample", str(tmp_path / "p"), "--compress-level", "12"])
    assert (
        stop.value.code == 2
        and "expected a compression level 0..9, got '12'" in capsys.readouterr().err
    )
    taken = tmp_path / "taken"
    taken.write_text("a file")
    assert main(["to-tfrecord", "mnist-sample", str(taken), "--quiet"]) == 1
    assert f"{taken}: exists and is not a directory" in capsys.readouterr().err


def test_info_takes_more_classes_when_told(tmp_path: Path, sample_dir: Path, capsys) -> None:
    import shutil

    import numpy as np

    directory = tmp_path / "twelve"
    shutil.copytree(sample_dir, directory)
    labels = mnist_data.read_idx(directory / "t10k-labels-idx1-ubyte.gz").copy()
    labels[0] = 11
    mnist_data.write_idx(directory / "t10k-labels-idx1-ubyte.gz", labels)
    assert main(["info", str(directory)]) == 1
    assert "label 11 at index 0 is out of range: expected 0..9" in capsys.readouterr().err
    assert main(["info", str(directory), "--num-classes", "12"]) == 0
    per_class = [line for line in capsys.readouterr().out.splitlines() if "per class" in line]
    assert per_class[1].endswith(f"{np.bincount(labels).tolist()}")
