"""The converters called every way a user calls them, each a real process: a script with and
without a main guard (TensorFlow imported before or after), `python -c`, `python -i`, a
Jupyter kernel and the CLI. Every caller must convert once and write the same bytes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

SOURCE = "/usr/share/datasets/fashion-mnist"
CONVERT = (
    "mnist_data.to_tfrecord(SOURCE, 'tfr', splits=['test'], shard_size=2000, progress=False)\n"
    "mnist_data.to_png(SOURCE, 'png', splits=['test'], progress=False)\n"
    "print('converted', flush=True)\n"
)


def script(tensorflow_first: bool = True, guarded: bool = False) -> str:
    imports = ["import tensorflow as tf", "import mnist_data"]
    head = "\n".join(imports if tensorflow_first else imports[::-1]) + f"\nSOURCE = {SOURCE!r}\n"
    if not guarded:
        return head + CONVERT
    body = "".join(f"    {line}\n" for line in CONVERT.splitlines())
    return head + "if __name__ == '__main__':\n" + body


def tree_digest(root: Path) -> dict[str, str]:
    """SHA-256 of every file the two conversions wrote under `root`, by relative path."""
    files = [p for out in ("tfr", "png") for p in sorted((root / out).rglob("*")) if p.is_file()]
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files
    }


def python(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done


def by_cli(cwd: Path) -> None:
    command = [sys.executable, "-m", "mnist_data_cli"]
    for args in (
        ["to-tfrecord", SOURCE, "tfr", "--splits", "test", "--shard-size", "2000"],
        ["to-png", SOURCE, "png", "--splits", "test"],
    ):
        subprocess.run([*command, *args, "--quiet"], cwd=cwd, check=True, capture_output=True)


def by_kernel(cwd: Path) -> str:
    """Run the conversion in a Jupyter kernel, as a notebook cell does; returns its stdout."""
    from jupyter_client.manager import start_new_kernel

    printed = []

    def keep(message: dict) -> None:
        if message["msg_type"] == "stream" and message["content"]["name"] == "stdout":
            printed.append(message["content"]["text"])

    manager, client = start_new_kernel(kernel_name="python3", cwd=str(cwd))
    try:
        reply = client.execute_interactive(script(), timeout=300, output_hook=keep)
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    return "".join(printed)


def by_script(cwd: Path, text: str) -> str:
    (cwd / "convert.py").write_text(text)
    return python("convert.py", cwd=cwd).stdout


CALLERS = {
    "script, tensorflow first, no guard": lambda cwd: by_script(cwd, script()),
    "script, tensorflow after, no guard": lambda cwd: by_script(cwd, script(False)),
    "script with a main guard": lambda cwd: by_script(cwd, script(guarded=True)),
    "python -c": lambda cwd: python("-c", script(), cwd=cwd).stdout,
    "python -i": lambda cwd: python("-i", cwd=cwd, stdin=script()).stdout,
    "jupyter kernel": by_kernel,
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if not Path(SOURCE).is_dir():
        pytest.fail(f"{SOURCE} is missing: install Debian's dataset-fashion-mnist")
    cwd = tmp_path_factory.mktemp("cli")
    by_cli(cwd)
    return tree_digest(cwd)


@pytest.mark.parametrize("caller", CALLERS)
def test_every_caller_converts_once_to_the_bytes_of_the_cli(caller, reference, tmp_path) -> None:
    printed = CALLERS[caller](tmp_path)
    assert printed.count("converted") == 1, printed  # the caller's code ran once
    assert tree_digest(tmp_path) == reference
    assert len([name for name in reference if name.startswith("png/test/")]) == 10_000


def test_converting_adds_no_lines_to_the_callers_terminal(tmp_path: Path) -> None:
    """Nothing is printed by the conversion itself (no worker re-starting TensorFlow, say)."""
    text = script().replace(
        "import mnist_data\n",
        "import mnist_data\nimport sys\nprint('ready', file=sys.stderr, flush=True)\n",
    )
    (tmp_path / "convert.py").write_text(text)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"}
    done = subprocess.run(
        [sys.executable, "convert.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.split("ready\n", 1)[1] == ""


def test_reading_and_caching_a_png_tree_work_from_a_script_without_a_guard(tmp_path: Path) -> None:
    """The PNG reader and the cache writer start nothing that re-runs the caller's script."""
    (tmp_path / "read.py").write_text(
        "import tensorflow as tf\nimport mnist_data\nimport pipelines\n"
        "mnist_data.to_png('mnist-sample', 'png', progress=False)\n"
        "for cache in (False, 'cache', 'cache'):\n"
        "    batches = pipelines.make_dataset('png', 'test', 100, cache=cache, shuffle=False)\n"
        "    print('read', sum(len(labels) for _, labels in batches), flush=True)\n"
    )
    printed = python("read.py", cwd=tmp_path).stdout
    assert printed.splitlines() == ["read 400"] * 3
    assert any((tmp_path / "cache").iterdir())
