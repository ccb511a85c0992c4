"""The `mnist-data` command: every subcommand has --help; errors are one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
    summary = json.loads(out.read_text())
    assert summary["splits"]["train"]["labels"] == 1600
    assert sum(summary["splits"]["test"]["per_class"]) == 400
    assert "1600 examples" in capsys.readouterr().out


def test_console_script_reports_bad_file_in_one_line(tmp_path: Path) -> None:
    directory = tmp_path / "bad"
    directory.mkdir()
    (directory / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
    (directory / "t10k-labels-idx1-ubyte.gz").write_bytes(b"")
    result = subprocess.run([sys.executable, "-m", "mnist_data_cli", "info", str(directory)],
                            capture_output=True, text=True)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mnist-data: error: ")
    assert str(directory) in lines[0]


def test_import_does_not_pull_tensorflow() -> None:
    code = "import sys, mnist_data, mnist_data.input_data; print('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
