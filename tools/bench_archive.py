"""Benchmark: a split read from EMNIST's zip where it lies, against extracting its members to
the cache once and reading the files, on a zip in EMNIST's layout whose train images are
Fashion-MNIST's, transposed and repeated to emnist-digits' 240,000 (the real zip cannot be
downloaded here). Both then keep the decoded arrays in the same .npy cache, so only a first
load differs. Alternating rounds, each a fresh cache; the zip written and synced beforehand.
Usage: .venv/bin/python tools/bench_archive.py [--repeat N] [--stored]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from mnist_data import read_idx
from mnist_data.formats.idx import encode_idx, gzip_compress
from mnist_data.fs import write_bytes_atomic
from mnist_data.sources.cache import read_idx_cached
from mnist_data.sources.files import Member, read_bytes

FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
MEMBER = "gzip/emnist-digits-train-images-idx3-ubyte.gz"


def from_zip(archive: Path, cache: Path) -> np.ndarray:
    return read_idx_cached(Member(archive, MEMBER), cache, transposed=True)


def extracted(archive: Path, cache: Path) -> np.ndarray:
    target = cache / "emnist" / Path(MEMBER).name
    target.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(target, read_bytes(Member(archive, MEMBER)))  # as an extraction would
    return read_idx_cached(target, cache / "decoded", transposed=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stored", action="store_true", help="members stored, not deflated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir="/var/tmp") as work:
        work = Path(work)
        images = np.concatenate([read_idx(FASHION).transpose(0, 2, 1)] * 4)
        method = zipfile.ZIP_STORED if args.stored else zipfile.ZIP_DEFLATED
        archive = work / "gzip.zip"
        with zipfile.ZipFile(archive, "w", method) as opened:
            opened.writestr(MEMBER, gzip_compress(encode_idx(images)))
        os.sync()
        times = {"read from the zip": [], "extracted once": []}
        for round_ in range(args.repeat):
            for (name, run), cache in zip(
                (("read from the zip", from_zip), ("extracted once", extracted)), "ab"
            ):
                folder = work / f"cache-{round_}{cache}"
                start = time.perf_counter()
                loaded = run(archive, folder)
                first = time.perf_counter() - start
                start = time.perf_counter()
                run(archive, folder) if name == "read from the zip" else read_idx_cached(
                    folder / "emnist" / Path(MEMBER).name, folder / "decoded", True
                )
                times[name].append((first, time.perf_counter() - start))
                assert loaded.shape == (240_000, 28, 28)
        kind = "stored" if args.stored else "deflated"
        print(f"{len(images):,} images, members {kind}, {archive.stat().st_size / 1e6:.0f} MB zip")
        for name, pairs in times.items():
            first = statistics.median(p[0] for p in pairs)
            again = statistics.median(p[1] for p in pairs)
            print(f"{name:18s} first load {first:6.2f} s   again {again * 1e3:7.1f} ms")


if __name__ == "__main__":
    main()
