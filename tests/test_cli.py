"""The `mnist-data` command: help with defaults, one --json, errors in one line."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mnist_data
import pipelines
from mnist_data_cli import build_parser, main
from mnist_data_cli.quiet_start import _is_start_up_chatter
from pipelines.input.service import dispatcher_checks, worker_checks
from pipelines.training.setup import use_op_threads

COMMAND = [sys.executable, "-m", "mnist_data_cli"]


def leaf_parsers(parser: argparse.ArgumentParser, path: tuple = ()) -> dict:
    """Every runnable subcommand's parser, by its words (`bench pipeline`, `serve worker`...)."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= leaf_parsers(sub, (*path, name))
    return found or {path: parser}


LEAVES = leaf_parsers(build_parser())


@pytest.mark.parametrize("words", LEAVES, ids=" ".join)
def test_every_subcommand_has_help_that_shows_its_defaults(words: tuple, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main([*words, "--help"])
    shown = "".join(capsys.readouterr().out.split())  # help wraps lines, even at hyphens
    assert info.value.code == 0 and shown.startswith(f"usage:mnist-data{''.join(words)}")
    for action in LEAVES[words]._actions:
        default = action.default
        if default not in (None, argparse.SUPPRESS) and not isinstance(default, bool):
            default = "".join(default) if isinstance(default, (list, tuple)) else default
            assert "".join(f"(default: {default})".split()) in shown, action


def test_info_writes_json_to_a_file_or_alone_to_stdout(tmp_path: Path, capsys) -> None:
    out = tmp_path / "info.json"
    assert main(["info", "mnist-sample", "--json", str(out)]) == 0
    assert "(400, 28, 28)" in capsys.readouterr().out and out.read_text().endswith("}\n")
    files = {Path(f["file"]).name: f for f in json.loads(out.read_text())["files"]}
    labels = files["train-labels-idx1-ubyte.gz"]
    assert labels["shape"] == [1600] and sum(labels["per_class"]) == 1600
    assert labels["catalog_match"] == "mnist-sample/train-labels-idx1-ubyte.gz"
    assert files["t10k-images-idx3-ubyte.gz"]["shape"] == [400, 28, 28]
    for bare in (["--json"], ["--json", "-"]):
        assert main(["info", "mnist-sample", *bare]) == 0
        assert json.loads(capsys.readouterr().out) == json.loads(out.read_text())


def test_info_on_a_single_file(sample_dir: Path, capsys) -> None:
    assert main(["info", str(sample_dir / "t10k-labels-idx1-ubyte.gz")]) == 0
    out = capsys.readouterr().out
    assert "uint8 (400,)" in out and "per class:" in out
    assert "0c148cd64fc4226c2ed350580c2d59cb" in out


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
    result = subprocess.run([*COMMAND, "info", str(directory)], capture_output=True, text=True)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1
    assert lines[0].startswith("mnist-data: error: ") and str(directory) in lines[0]


def test_import_does_not_pull_tensorflow() -> None:
    code = "import sys, mnist_data, mnist_data.input_data; print('tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False"


def test_a_failed_write_names_the_output_not_its_temporary(tmp_path: Path, capsys) -> None:
    out = tmp_path / "tfr"
    assert main(["to-tfrecord", "mnist-sample", str(out), "--workers", "1", "--quiet"]) == 0
    shard = next(out.glob("train-*.tfrecord"))
    shard.unlink()
    shard.mkdir()  # the resumed run cannot rename its finished shard onto a directory
    (out / "manifest.json").unlink()
    assert main(["to-tfrecord", "mnist-sample", str(out), "--workers", "1", "--quiet"]) == 1
    assert capsys.readouterr().err == f"mnist-data: error: {shard}: Is a directory\n"


def test_the_command_and_the_api_refuse_the_same_values_alike(tmp_path: Path, capsys) -> None:
    out = str(tmp_path / "o")
    for args, call, says in (
        (
            ["bench", "pipeline", "--source", "mnist-sample", "--batch-size", "0"],
            lambda: pipelines.make_dataset("mnist-sample", batch_size=0),
            "batch_size must be a whole number",
        ),
        (
            ["bench", "pipeline", "--source", "mnist-sample", "--epochs", "-1"],
            lambda: pipelines.make_dataset("mnist-sample", epochs=-1),
            "epochs must be a whole number",
        ),
        (
            ["to-png", "mnist-sample", out, "--compress-level", "12"],
            lambda: mnist_data.to_png("mnist-sample", out, compress_level=12),
            "compress_level must be a whole number in 0..9, got 12",
        ),
        (
            ["to-tfrecord", "mnist-sample", out, "--workers", "0"],
            lambda: mnist_data.to_tfrecord("mnist-sample", out, workers=0),
            "workers must be a whole number >= 1, got 0",
        ),
        (
            ["to-tfrecord", "mnist-sample", out, "--num-classes", "0"],
            lambda: mnist_data.to_tfrecord("mnist-sample", out, num_classes=0),
            "num_classes must be a whole number >= 1, got 0",
        ),
        (
            ["bench", "train", "softmax", "--op-threads", "-3"],
            lambda: use_op_threads(-3),
            "op_threads must be a whole number in 0..1024, got -3",
        ),
        (
            ["serve", "dispatcher", "--port", "99999"],
            lambda: dispatcher_checks(99999, None),
            "port must be a whole number in 0..65535, got 99999",
        ),
        (
            ["serve", "worker", "--dispatcher", "localhost:1", "--heartbeat-interval-ms", "-1"],
            lambda: worker_checks("localhost:1", 0, None, 1, heartbeat_interval_ms=-1),
            "heartbeat_interval_ms must be a whole number >= 0, got -1",
        ),
        (
            ["bench", "pipeline", "--service", "localhost:1", "--service-timeout", "-1"],
            lambda: pipelines.make_dataset(
                "mnist-sample", service="localhost:1", service_timeout=-1
            ),
            "timeout must be a number of seconds >= 0, got -1",
        ),
    ):
        assert main(args) == 1
        err = capsys.readouterr().err
        assert err.startswith("mnist-data: error: ") and says in err and err.count("\n") == 1
        with pytest.raises(mnist_data.MnistDataError, match=says):
            call()
    with pytest.raises(SystemExit) as stop:  # argparse converts the type, no more
        main(["bench", "pipeline", "--batch-size", "2.5"])
    assert stop.value.code == 2 and "invalid int value: '2.5'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    batch = next(iter(pipelines.make_dataset("mnist-sample", "test", np.int64(100), epochs=1)))
    assert batch[0].shape[0] == 100  # NumPy's integers are whole numbers too
    summary = mnist_data.to_tfrecord(
        "mnist-sample", tmp_path / "np", splits="test", shard_size=np.int64(100), progress=False
    )
    assert summary["files"] == 4
    for spelling in ("GZIP", "gzip"):  # TensorFlow's spelling and ours
        args = ["to-tfrecord", "mnist-sample", str(tmp_path / spelling), "--splits", "test"]
        assert main([*args, "--compression", spelling, "--quiet"]) == 0
        assert mnist_data.to_tfrecord(
            "mnist-sample", tmp_path / f"api-{spelling}", splits="test", compression=spelling
        )["files"]


def test_a_reader_that_stops_early_gets_no_error() -> None:
    reader = subprocess.Popen(
        [*COMMAND, "info", "mnist-sample"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    reader.stdout.close()  # like `| head -0`: nobody reads the output
    assert reader.wait(timeout=60) in (0, 141) and reader.stderr.read() == b""


def test_tensorflow_start_up_chatter_is_kept_off_the_terminal() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    bench = "bench pipeline --source mnist-sample --epochs 1 --repeat 1".split()
    for level, chatter in ((None, False), ("0", True)):  # TF_CPP_MIN_LOG_LEVEL=0: all of it
        run = subprocess.run(
            [*COMMAND, *bench],
            capture_output=True,
            text=True,
            env=env if level is None else {**env, "TF_CPP_MIN_LOG_LEVEL": level},
        )
        assert run.returncode == 0 and "ours" in run.stdout
        lines = run.stderr.splitlines()
        assert any(_is_start_up_chatter(line) for line in lines) == chatter, run.stderr
    kept = (
        "E0000 00:00:1795481120.570149   23223 cuda_dnn.cc:8579] Unable to register cuDNN factory",
        "mnist-data: warning: a warning of ours",
        "Traceback (most recent call last):",
    )
    assert not any(_is_start_up_chatter(line) for line in kept)


def test_json_takes_a_json_name_of_its_own_and_is_checked_before_any_work(
    tmp_path: Path, capsys
) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"\x89PNG\r\n not JSON")
    (tmp_path / "f").write_text("a file, not a folder")
    out = tmp_path / "tfr"
    for target, says in (
        (image, "a.png exists and does not hold JSON"),
        (tmp_path, "is a directory"),
        (tmp_path / "f" / "s.json", f"{tmp_path / 'f'} is a file, so no folder can be made"),
        *(
            (out / name, "give the summary another name")
            for name in ("manifest.json", ".mnist-data-run.json", "test.csv", ".progress", ".")
        ),
        (tmp_path / "run" / "config.json", "give the summary another name"),
        (tmp_path / "train-00000-of-00001.tfrecord", "give the summary another name"),
    ):
        for command in (["info", "mnist-sample"], ["to-tfrecord", "mnist-sample", str(out)]):
            with pytest.raises(SystemExit) as stop:
                main([*command, "--json", str(target)])
            err = capsys.readouterr().err
            assert stop.value.code == 2 and says in err, (target, err)
    assert image.read_bytes() == b"\x89PNG\r\n not JSON" and not out.exists()
    earlier = tmp_path / "earlier.json"  # an earlier summary is replaced
    earlier.write_text(' {"files": []}')
    (tmp_path / "empty.json").touch()
    os.mkfifo(tmp_path / "pipe.json")  # a pipe is not read before
    for target in (earlier, tmp_path / "empty.json", tmp_path / "pipe.json"):
        assert main(["info", "mnist-sample", "--json", str(target)]) == 0
        assert len(json.loads(target.read_text())["files"]) == 4
    summary = out / "summary.json"  # inside the OUT the command creates
    assert main(["to-tfrecord", "mnist-sample", str(out), "--quiet", "--json", str(summary)]) == 0
    assert json.loads(summary.read_text())["examples"] == 2000


def test_a_conversion_prints_its_line_or_only_its_json(tmp_path: Path, capsys) -> None:
    mnist_data.to_tfrecord("mnist-sample", tmp_path / "t", splits="test", progress=False)
    mnist_data.to_png("mnist-sample", tmp_path / "p", splits="test", progress=False)
    assert capsys.readouterr().out == ""  # the library prints nothing
    png = ["to-png", "mnist-sample", str(tmp_path / "p"), "--splits", "test", "--quiet"]
    assert main(png) == 0 and "to-png:" in capsys.readouterr().out
    assert main([*png, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["resumed_files"] == 400
    assert main(["verify", str(tmp_path / "t")]) == 0
    assert capsys.readouterr().out.endswith(": tfrecord, 1 file, 400 records: OK\n")


def test_splits_in_any_order_or_repeated_are_the_same_run(tmp_path: Path, capsys) -> None:
    out = tmp_path / "tfr"
    assert main(f"to-tfrecord mnist-sample {out} --quiet --splits test train test".split()) == 0
    assert json.loads((out / "manifest.json").read_text())["options"]["splits"] == ["train", "test"]
    assert main(["to-tfrecord", "mnist-sample", str(out), "--quiet"]) == 0  # nothing to redo
    assert "(2 already done)" in capsys.readouterr().out.splitlines()[-1]
    with pytest.raises(mnist_data.ConvertError, match="unknown split 'validation'"):
        mnist_data.to_tfrecord("mnist-sample", out, splits=["train", "validation"], progress=False)


def test_an_output_that_is_a_file_is_named(tmp_path: Path, capsys) -> None:
    taken = tmp_path / "taken"
    taken.write_text("a file")
    assert main(["to-tfrecord", "mnist-sample", str(taken), "--quiet"]) == 1
    assert f"{taken}: exists and is not a directory" in capsys.readouterr().err


def test_info_counts_the_classes_unnamed_labels_need(tmp_path: Path, sample_dir: Path, capsys):
    directory = tmp_path / "twelve"
    shutil.copytree(sample_dir, directory)
    labels = mnist_data.read_idx(directory / "t10k-labels-idx1-ubyte.gz").copy()
    labels[0] = 11
    mnist_data.write_idx(directory / "t10k-labels-idx1-ubyte.gz", labels)
    assert main(["info", str(directory)]) == 0
    per_class = [line for line in capsys.readouterr().out.splitlines() if "per class" in line]
    assert per_class[1].endswith(f"{np.bincount(labels).tolist()}")
    assert main(["info", str(directory), "--num-classes", "10"]) == 1
    assert "label 11 at index 0 is out of range: expected 0..9" in capsys.readouterr().err


def test_run_commands_word_a_mistake_alike_and_count_in_words(tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=300)

    run, summary = tmp_path / "run", tmp_path / "s.json"
    trained = cli("train", "softmax", "--data", "mnist-sample", "--epochs", "1", "--quiet",
                  "--out", str(run), "--json", str(summary))  # fmt: skip
    assert trained.returncode == 0 and "after 1 epoch," in trained.stdout, trained.stderr
    assert summary.read_text().endswith("}\n")
    evaluated = cli("evaluate", str(run), "--json")  # the JSON alone on stdout
    assert (
        json.loads(evaluated.stdout)["test_accuracy"]
        == json.loads(summary.read_text())["test_accuracy"]
    )
    wrong = [cli("evaluate", str(tmp_path)), cli("predict", str(tmp_path), "x.png")]
    assert [w.returncode for w in wrong] == [1, 1] and wrong[0].stderr == wrong[1].stderr
    assert wrong[0].stderr == (
        f"mnist-data: error: {tmp_path / 'config.json'}: missing, "
        f"{tmp_path} is not a training run directory\n"
    )
