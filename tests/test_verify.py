"""verify names damaged shards and records; a SIGKILLed conversion resumes to identical output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mnist_data import to_png, to_tfrecord, verify
from mnist_data.errors import ConvertError
from mnist_data.fs import is_temp_name
from mnist_data_cli import main


def test_flipped_byte_is_caught_and_named(tmp_path: Path, capsys) -> None:
    out = tmp_path / "tfr"
    to_tfrecord("mnist-sample", out, shards=2, progress=False)
    assert verify(out).ok and verify(out).records == 2000
    assert main(["verify", str(out)]) == 0
    shard = out / "train-00001-of-00002.tfrecord"
    blob = bytearray(shard.read_bytes())
    record_size = len(blob) // 800
    blob[5 * record_size + 300] ^= 0x01  # inside the image bytes of record 5
    shard.write_bytes(bytes(blob))
    report = verify(out)
    assert not report.ok
    assert any(
        "train-00001-of-00002.tfrecord: record 5" in p and "data CRC mismatch" in p
        for p in report.problems
    )
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
    to_png(
        "mnist-sample", tree, progress=False
    )  # both splits: test.csv's lines are counted on their own
    assert verify(tree).ok
    three = sorted((tree / "test" / "3").iterdir())[0]
    shutil.copy(
        three, tree / "test" / "7" / "extra.png"
    )  # a class-folder reader would take it as a 7
    moved = tree / "test" / "8" / three.name
    three.rename(moved)
    problems = verify(tree).problems
    assert "test/7/extra.png: not listed in test.csv" in problems
    assert f"test/8/{three.name}: not listed in test.csv" in problems
    assert any(p.startswith(f"test/3/{three.name}:") for p in problems)  # listed but gone
    assert len(problems) == 3, problems
    listing = tree / "test.csv"
    head, rest = listing.read_text().split("\n", 1)
    listing.write_text(
        head + "\n\n" + rest[:-13]
    )  # a blank line (skipped, but counted), and cut mid-row
    assert any(p.startswith("test.csv: line 402: bad row") for p in verify(tree).problems)
    listing.write_text("path,label,index\n" + listing.read_text().split("\n", 1)[1])
    assert verify(tree).problems[-1].startswith("test.csv: line 402: bad row")


def test_an_error_in_a_worker_returns_only_once_the_workers_stopped(
    tmp_path: Path, large_idx_dir: Path
) -> None:
    import shutil

    import mnist_data

    out = tmp_path / "png"
    to_png(large_idx_dir, out, splits=["test"], workers=2, progress=False)
    shutil.rmtree(out / ".progress")  # as if killed: every chunk is redone
    first = out / "test" / str(mnist_data.load(large_idx_dir, "test")[1][0]) / "00000.png"
    first.unlink()
    first.mkdir()  # the first chunk cannot rename its first PNG onto this
    with pytest.raises(OSError):
        to_png(large_idx_dir, out, splits=["test"], workers=2, progress=False)
    workers = [
        thread.name for thread in threading.enumerate() if thread.name.startswith("mnist-data")
    ]
    assert workers == []  # the workers have ended, not just been abandoned
    settled = sorted(p.name for p in (out / ".progress").iterdir())
    time.sleep(1.0)
    assert (
        sorted(p.name for p in (out / ".progress").iterdir()) == settled
    )  # nobody writes any more


CONVERT = {
    "to-tfrecord": [
        "to-tfrecord",
        "{source}",
        "{out}",
        "--encoding",
        "png",
        "--shard-size",
        "2000",
        "--workers",
        "1",
    ],
    "to-png": ["to-png", "{source}", "{out}", "--splits", "test", "--workers", "1"],
}


def test_a_valid_png_holding_the_wrong_image_is_flagged(tmp_path: Path) -> None:
    import shutil

    tree = tmp_path / "png"
    to_png("mnist-sample", tree, splits=["test"], progress=False)
    first, second = sorted((tree / "test" / "3").iterdir())[:2]
    shutil.copy(second, first)  # still a valid 28x28 PNG of a 3, but another 3
    assert verify(tree).problems == [
        f"test/3/{first.name}: its pixels differ from the image the listing records"
    ]
    listing = tree / "test.csv"
    rows = listing.read_text().splitlines()
    assert rows[0] == "file,label,index,pixels_crc32"
    listing.write_text(
        "\n".join(",".join(row.split(",")[:3]) for row in rows) + "\n"
    )  # a listing without CRCs
    assert verify(tree).ok


def test_missing_cut_and_foreign_files_are_each_named(tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "tfr"
    to_tfrecord("mnist-sample", out, shards=2, progress=False)
    (out / "test-00000-of-00002.tfrecord").unlink()
    cut = out / "train-00001-of-00002.tfrecord"
    cut.write_bytes(cut.read_bytes()[:-1000])
    problems = verify(out).problems
    assert "test-00000-of-00002.tfrecord: missing" in problems
    assert any(p.startswith(f"{cut.name}: size ") and "manifest says" in p for p in problems)
    assert any(
        p.startswith(f"{cut.name}: ") and "valid records, manifest says 800" in p for p in problems
    )
    (out / "manifest.json").unlink()
    with pytest.raises(
        ConvertError, match="an unfinished conversion .no manifest.json yet.; run the same command"
    ):
        verify(out)
    (out / ".mnist-data-run.json").unlink()
    with pytest.raises(
        ConvertError, match="no manifest.json: not the OUT of to-tfrecord or to-png"
    ):
        verify(out)
    with pytest.raises(ConvertError, match=f"{cut.name}: no manifest.json: not the OUT"):
        verify(cut)  # a file, not a directory

    tree = tmp_path / "png"
    to_png("mnist-sample", tree, splits=["test"], progress=False)
    rgb, big = sorted((tree / "test" / "1").iterdir())[:2]
    Image.open(rgb).convert("RGB").save(rgb)
    Image.open(big).resize((32, 32)).save(big)
    listing = tree / "test.csv"
    rows = listing.read_text().splitlines()
    relabelled = rows[-1].split(",")
    relabelled[1] = str(
        (int(relabelled[1]) + 1) % 10
    )  # the row's label no longer matches its folder
    listing.write_text("\n".join(rows[:-2] + [",".join(relabelled)]) + "\n")  # and one row dropped
    problems = verify(tree).problems
    assert f"test/1/{rgb.name}: mode RGB, expected 8-bit grayscale (L)" in problems
    assert f"test/1/{big.name}: 32x32, expected 28x28" in problems
    assert "test.csv: 399 rows, manifest says 400" in problems
    assert any(p.startswith(relabelled[0] + ": in folder") for p in problems)
    relabelled[1] = "300"
    listing.write_text("\n".join(rows[:-2] + [",".join(relabelled)]) + "\n")
    assert "test.csv: line 400: label 300 is not one of the 10 classes" in verify(tree).problems


def test_a_malformed_manifest_is_a_clear_error(tmp_path: Path) -> None:
    for text in ('{"format": "tfrecord"}', "[1, 2]"):
        (tmp_path / "manifest.json").write_text(text)
        with pytest.raises(
            ConvertError, match="manifest.json: not as mnist-data wrote it: no 'splits' table"
        ):
            verify(tmp_path)
    to_tfrecord("mnist-sample", tmp_path / "tfr", splits="test", progress=False)
    manifest = json.loads((tmp_path / "tfr" / "manifest.json").read_text())
    del manifest["splits"]["test"]["shards"][0]["sha256"]
    (tmp_path / "tfr" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        ConvertError,
        match="manifest.json: not as mnist-data wrote it: split 'test': "
        "shard test-00000-of-00001.tfrecord has no str 'sha256'",
    ):
        verify(tmp_path / "tfr")
    manifest["splits"]["test"]["shards"] = [7]
    (tmp_path / "tfr" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        ConvertError, match="not as mnist-data wrote it: split 'test': a shard entry is not a table"
    ):
        verify(tmp_path / "tfr")
    manifest["splits"]["test"] = {"shards": []}
    (tmp_path / "tfr" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConvertError, match="split 'test' needs a whole 'records' count"):
        verify(tmp_path / "tfr")


def run_cli(args: list[str], log: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mnist_data_cli", *args, "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=open(log, "w") if log else subprocess.DEVNULL,
    )


def final_files(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in out.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


@pytest.mark.parametrize("kind", list(CONVERT))
def test_sigkill_then_rerun_gives_identical_output(
    tmp_path: Path, kind: str, large_idx_dir: Path
) -> None:
    killed, clean = tmp_path / "killed", tmp_path / "clean"

    def args(out: Path) -> list[str]:
        return [a.format(source=large_idx_dir, out=out) for a in CONVERT[kind]]

    process = run_cli(args(killed))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if list(killed.glob(".progress/*.done")) or list(
            killed.glob("*.tfrecord")
        ):  # a finished chunk
            break
        time.sleep(0.005)
    assert process.poll() is None, "the conversion finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (killed / "manifest.json").exists()
    partial = final_files(killed)
    assert partial  # some output was there when it died

    def run_to_end(out: Path, summary: Path) -> dict:
        command = [sys.executable, "-m", "mnist_data_cli", *args(out), "--quiet"]
        assert subprocess.run([*command, "--json", str(summary)]).returncode == 0
        return json.loads(summary.read_text())

    clean_summary = run_to_end(clean, tmp_path / "clean.json")
    reference = final_files(clean)
    for name, blob in partial.items():  # nothing under a final name was partial
        assert reference[name] == blob, name
    resumed = run_to_end(killed, tmp_path / "resumed.json")
    assert resumed["resumed_files"] > 0  # finished chunks were kept, not redone
    assert resumed["bytes"] == clean_summary["bytes"]  # kept ones count too
    assert final_files(killed) == reference
    assert not [p for p in killed.rglob(".*") if is_temp_name(p)]
    assert verify(killed).ok


def test_ctrl_c_ends_a_conversion_with_one_line_and_status_130(
    tmp_path: Path, large_idx_dir: Path
) -> None:
    out, log = tmp_path / "png", tmp_path / "stderr.txt"
    process = run_cli(
        ["to-png", str(large_idx_dir), str(out), "--splits", "test", "--workers", "1"], log
    )
    deadline = time.monotonic() + 60
    while (
        not list(out.glob(".progress/*.done"))
        and process.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.005)
    assert process.poll() is None, "the conversion finished before it could be interrupted"
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 130
    assert log.read_text() == "mnist-data: interrupted\n"
    assert not (out / "manifest.json").exists()
