"""Benchmark: decoding an IDX gzip file, ours against what users use today.

Times, in one process on the same file (best of --repeat runs each):
  gzip+frombuffer  the tfds / torchvision way: gzip.open(...).read() then np.frombuffer
  idx2numpy        the idx2numpy package on a gzip file object
  tutorial loop    the old tutorial parser: struct header, then one image at a time
  read_idx         mnist_data.read_idx (cold: inflate and check)
  warm reload      mnist_data's decoded cache (memory-mapped .npy, source checked)
Usage: .venv/bin/python tools/bench_parse.py [FILE] [--repeat N] [--json PATH]
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import struct
import tempfile
import time
from pathlib import Path

import numpy as np

from mnist_data import read_idx
from mnist_data.fs import write_bytes_atomic
from mnist_data.sources.cache import read_idx_cached

DEFAULT = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def gzip_frombuffer(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(-1, 28, 28)


def idx2numpy_convert(path: Path) -> np.ndarray:
    import idx2numpy

    with gzip.open(path, "rb") as handle:
        return idx2numpy.convert_from_file(handle)


def tutorial_loop(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        _, count, rows, cols = struct.unpack(">IIII", handle.read(16))
        images = np.empty((count, rows, cols), dtype=np.uint8)
        for i in range(count):
            images[i] = np.frombuffer(handle.read(rows * cols), dtype=np.uint8).reshape(rows, cols)
    return images


def best_of(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    reference = read_idx(args.path)
    assert np.array_equal(reference, gzip_frombuffer(args.path))
    with tempfile.TemporaryDirectory() as cache:
        read_idx_cached(args.path, cache)
        timings = {
            "gzip+frombuffer": best_of(lambda: gzip_frombuffer(args.path), args.repeat),
            "idx2numpy": best_of(lambda: idx2numpy_convert(args.path), args.repeat),
            "tutorial loop": best_of(lambda: tutorial_loop(args.path), args.repeat),
            "read_idx (cold)": best_of(lambda: read_idx(args.path), args.repeat),
            "warm reload": best_of(lambda: read_idx_cached(args.path, cache), args.repeat),
        }
    baseline = min(timings["gzip+frombuffer"], timings["idx2numpy"], timings["tutorial loop"])
    print(
        f"{args.path} ({args.path.stat().st_size / 1e6:.1f} MB gz, {reference.shape}) "
        f"on {platform.processor() or platform.machine()}"
    )
    for name, seconds in timings.items():
        print(f"  {name:18s} {seconds * 1000:8.1f} ms   {seconds / baseline:6.3f}x best baseline")
    if args.json:
        write_bytes_atomic(
            args.json,
            json.dumps(
                {"file": str(args.path), "seconds": timings, "best_baseline": baseline}, indent=2
            ).encode(),
        )


if __name__ == "__main__":
    main()
