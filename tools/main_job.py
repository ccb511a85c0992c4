"""The main job: find the best MNIST-like data available and summarise it.

Online it fetches MNIST; offline it uses Fashion-MNIST from the system if installed,
else the 2,000-digit sample embedded in the package.
"""

from __future__ import annotations

import argparse
import time
import warnings

import mnist_data
import mnist_data.locate
from mnist_data.errors import FetchError


def pick_source() -> str:
    """MNIST if it is here or can be fetched, else Fashion-MNIST if installed, else the sample."""
    try:
        mnist_data.fetch("mnist", progress=True)
        return "mnist"
    except FetchError as exc:
        print(f"MNIST unavailable ({str(exc).splitlines()[0]})")
    if mnist_data.locate.locate("fashion-mnist", "train") is not None:
        return "fashion-mnist"
    return "mnist-sample"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", help="dataset name or IDX directory (default: the best available)")
    parser.add_argument("--quick", action="store_true", help="smaller, faster run")
    args = parser.parse_args()
    source = args.source or pick_source()
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        splits = mnist_data.load_splits(source)
    print(f"data: {source} (decoded in {time.perf_counter() - started:.3f} s)")
    for split, (images, labels) in splits.items():
        print(f"  {split:5s} {images.shape[0]:6d} images {images.shape[1]}x{images.shape[2]}, "
              f"{len(set(labels.tolist()))} classes")


if __name__ == "__main__":
    main()
