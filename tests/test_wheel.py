"""The package as a user installs it: a wheel built from the repo, installed into a fresh venv
outside the repo, each command run from a folder that holds no source."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(
    *command: object, cwd: Path, ok: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if ok:
        assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding the built wheel; its dependencies come from the test environment's
    site-packages through a .pth line (no download, and no path to the repo's source)."""
    work = tmp_path_factory.mktemp("wheel")
    run(
        sys.executable, "-m", "pip", "wheel", REPO, "--no-deps", "-q", "-w", work / "dist", cwd=work
    )
    (wheel,) = (work / "dist").glob("mnist_data-*.whl")
    run(sys.executable, "-m", "venv", "--without-pip", work / "venv", cwd=work)
    run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        work / "venv" / "bin" / "python",
        "install",
        "--no-deps",
        "--no-index",
        "-q",
        wheel,
        cwd=work,
    )
    site = Path(
        run(
            work / "venv" / "bin" / "python",
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            cwd=work,
        ).stdout.strip()
    )
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return work / "venv"


def test_the_installed_package_and_its_sample_come_from_the_wheel(
    venv: Path, tmp_path: Path
) -> None:
    code = (
        "import mnist_data; images, labels = mnist_data.load('mnist-sample', 'test'); "
        "print(mnist_data.__file__); print(images.shape, labels.max())"
    )
    where, shape = run(venv / "bin" / "python", "-c", code, cwd=tmp_path).stdout.splitlines()
    assert Path(where).is_relative_to(venv) and shape == "(400, 28, 28) 9"
    assert run(venv / "bin" / "mnist-data", "--version", cwd=tmp_path).stdout.startswith(
        "mnist-data "
    )


def test_every_subcommand_works_from_the_installed_wheel(venv: Path, tmp_path: Path) -> None:
    command = venv / "bin" / "mnist-data"
    assert "1600" in run(command, "info", "mnist-sample", cwd=tmp_path).stdout
    run(command, "to-tfrecord", "mnist-sample", "tfr", "--quiet", cwd=tmp_path)
    run(command, "to-png", "mnist-sample", "png", "--quiet", cwd=tmp_path)
    for out in ("tfr", "png"):
        run(command, "verify", out, cwd=tmp_path)
    run(command, "bench", "pipeline", "--source", "tfr", "--epochs", "1", cwd=tmp_path)
    run(
        command,
        "train",
        "softmax",
        "--data",
        "png",
        "--epochs",
        "1",
        "--out",
        "run",
        "--quiet",
        cwd=tmp_path,
    )
    assert "accuracy" in run(command, "evaluate", "run", cwd=tmp_path).stdout
    digit = next((tmp_path / "png" / "test" / "7").iterdir())
    assert run(command, "predict", "run", digit, cwd=tmp_path).stdout.strip()
    run(command, "bench", "train", "softmax", "--steps", "20", "--repeat", "1", cwd=tmp_path)
    fetched = run(
        command,
        "fetch",
        "--dataset",
        "kmnist",
        "--mirror",
        "http://127.0.0.1:9/",
        "--data-dir",
        "kmnist",
        cwd=tmp_path,
        ok=False,
    )
    assert fetched.returncode == 1 and fetched.stderr.startswith("mnist-data: error: ")
    server = subprocess.Popen(
        [command, "serve", "dispatcher", "--port", "0"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "listening" in server.stdout.readline()
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 130
