"""verify names damaged shards and records; a SIGKILLed conversion resumes to identical output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnist_data import to_png, to_tfrecord, verify
from mnist_data.atomic import is_temp_name
from mnist_data.errors import ConvertError
from mnist_data_cli import main


def test_flipped_byte_is_caught_and_named(tmp_path: Path, capsys) -> None:
    out = tmp_path / "tfr"
    to_tfrecord("mnist-sample", out, shards=2, progress=False)
    assert verify(out).ok and verify(out).records == 2000
    shard = out / "train-00001-of-00002.tfrecord"
    blob = bytearray(shard.read_bytes())
    record_size = len(blob) // 800
    blob[5 * record_size + 300] ^= 0x01  # inside the image bytes of record 5
    shard.write_bytes(bytes(blob))
    report = verify(out)
    assert not report.ok
    assert any("train-00001-of-00002.tfrecord: record 5" in p and "data CRC mismatch" in p for p in report.problems)
    assert any("SHA-256" in p for p in report.problems)
    assert main(["verify", str(out)]) == 1
    assert "DAMAGED train-00001-of-00002.tfrecord: record 5" in capsys.readouterr().out


def test_truncated_gzip_shard_and_broken_png(tmp_path: Path) -> None:
    out = tmp_path / "tfr"
    to_tfrecord("mnist-sample", out, compression="gzip", splits=["test"], progress=False)
    shard = next(out.glob("*.tfrecord.gz"))
    shard.write_bytes(shard.read_bytes()[:-2000])
    assert any(shard.name in p for p in verify(out).problems)
    tree = tmp_path / "png"
    to_png("mnist-sample", tree, splits=["test"], progress=False)
    victim = next((tree / "test" / "3").iterdir())
    victim.write_bytes(victim.read_bytes()[:30])
    problems = verify(tree).problems
    assert len(problems) == 1 and victim.name in problems[0]


def test_png_tree_with_a_moved_or_stray_file_is_flagged(tmp_path: Path) -> None:
    import shutil

    tree = tmp_path / "png"
    to_png("mnist-sample", tree, splits=["test"], progress=False)
    assert verify(tree).ok
    three = sorted((tree / "test" / "3").iterdir())[0]
    shutil.copy(three, tree / "test" / "7" / "extra.png")  # a class-folder reader would take it as a 7
    moved = tree / "test" / "8" / three.name
    three.rename(moved)
    problems = verify(tree).problems
    assert "test/7/extra.png: not listed in test.csv" in problems
    assert f"test/8/{three.name}: not listed in test.csv" in problems
    assert any(p.startswith(f"test/3/{three.name}:") for p in problems)  # listed but gone
    assert len(problems) == 3, problems
    listing = tree / "test.csv"
    listing.write_text(listing.read_text()[:-13])  # cut mid-row
    assert any("test.csv: row" in p and "bad row" in p for p in verify(tree).problems)


def test_an_error_in_a_worker_returns_only_once_the_workers_stopped(tmp_path: Path, fashion_dir: Path) -> None:
    out = tmp_path / "png"
    (out / "test" / "9").mkdir(parents=True)
    (out / "test" / "9" / "00000.png").mkdir()  # the first chunk cannot rename its first PNG onto this
    (out / "manifest.json").write_text('{"format": "png", "version": 1, "splits": {}}')
    with pytest.raises(OSError):
        to_png("fashion-mnist", out, splits=["test"], workers=2, progress=False)
    settled = sorted(p.name for p in (out / ".progress").iterdir())
    time.sleep(1.0)
    assert sorted(p.name for p in (out / ".progress").iterdir()) == settled  # nobody writes any more


CONVERT = {
    "to-tfrecord": ["to-tfrecord", "fashion-mnist", "{out}", "--encoding", "png", "--shard-size", "2000", "--workers", "1"],
    "to-png": ["to-png", "fashion-mnist", "{out}", "--splits", "test", "--workers", "1"],
}


def test_a_valid_png_holding_the_wrong_image_is_flagged(tmp_path: Path) -> None:
    import shutil

    tree = tmp_path / "png"
    to_png("mnist-sample", tree, splits=["test"], progress=False)
    first, second = sorted((tree / "test" / "3").iterdir())[:2]
    shutil.copy(second, first)  # still a valid 28x28 PNG of a 3, but another 3
    assert verify(tree).problems == [f"test/3/{first.name}: its pixels differ from the image the listing records"]
    listing = tree / "test.csv"
    rows = listing.read_text().splitlines()
    assert rows[0] == "file,label,index,pixels_crc32"
    listing.write_text("\n".join(",".join(row.split(",")[:3]) for row in rows) + "\n")  # a listing without CRCs
    assert verify(tree).ok


def test_a_malformed_manifest_is_a_clear_error(tmp_path: Path) -> None:
    for text in ('{"format": "tfrecord"}', "[1, 2]"):
        (tmp_path / "manifest.json").write_text(text)
        with pytest.raises(ConvertError, match="manifest.json: not a manifest written by mnist-data"):
            verify(tmp_path)


def run_cli(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mnist_data_cli", *args, "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def children_of(pid: int) -> list[int]:
    """Live child processes of `pid`, from /proc (field 4 of /proc/PID/stat is the parent)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def test_workers_die_with_a_killed_converter(tmp_path: Path, fashion_dir: Path) -> None:
    process = run_cli(["to-tfrecord", "fashion-mnist", str(tmp_path / "out"), "--encoding", "png",
                       "--shard-size", "2000", "--workers", "2"])
    workers: list[int] = []
    deadline = time.monotonic() + 60
    while len(workers) < 2 and process.poll() is None and time.monotonic() < deadline:
        workers = children_of(process.pid)
        time.sleep(0.01)
    assert len(workers) == 2 and process.poll() is None, "no workers seen while the conversion ran"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()], "workers outlived the converter"


def final_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*")
            if p.is_file() and not p.name.startswith(".")}


@pytest.mark.parametrize("kind", list(CONVERT))
def test_sigkill_then_rerun_gives_identical_output(tmp_path: Path, kind: str, fashion_dir: Path) -> None:
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    args = lambda out: [a.format(out=out) for a in CONVERT[kind]]
    process = run_cli(args(killed))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if sum(1 for p in killed.rglob("*") if p.is_file() and not p.name.startswith(".")) >= 3:
            break
        time.sleep(0.005)
    assert process.poll() is None, "the conversion finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (killed / "manifest.json").exists()
    partial = final_files(killed)
    assert partial  # some output was there when it died
    reference = None
    assert subprocess.run([sys.executable, "-m", "mnist_data_cli", *args(clean), "--quiet"]).returncode == 0
    reference = final_files(clean)
    for name, blob in partial.items():  # nothing under a final name was partial
        assert reference[name] == blob, name
    assert subprocess.run([sys.executable, "-m", "mnist_data_cli", *args(killed), "--quiet"]).returncode == 0
    assert final_files(killed) == reference
    assert not [p for p in killed.rglob(".*") if is_temp_name(p)]
    assert verify(killed).ok
