"""The data layer's subcommands: fetch and info. Each one calls a public function."""

from __future__ import annotations

import argparse
import json

import numpy as np

from mnist_data.catalog import CATALOG, SPLITS
from mnist_data.fetch import fetch
from mnist_data.load import load_splits, resolve


def register(commands: argparse._SubParsersAction) -> None:
    """Add this layer's subcommands to the `mnist-data` parser."""
    p = commands.add_parser("fetch", help="download a dataset (checksummed, resumable)",
                            description="Download a catalog dataset's four IDX files, trying mirrors in order.")
    p.add_argument("--dataset", default="mnist", choices=[n for n, d in CATALOG.items() if d.mirrors])
    p.add_argument("--data-dir", help="target directory (default: the user cache dir)")
    p.add_argument("--mirror", action="append", help="mirror base URL, tried in the order given (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_fetch)

    p = commands.add_parser("info", help="show where a dataset resolves to and what it holds",
                            description="Resolve a dataset name or IDX directory and summarise each split.")
    p.add_argument("source", nargs="?", default="mnist", help="dataset name or directory of IDX files")
    p.add_argument("--data-dir", help="directory searched first")
    p.add_argument("--json", dest="json_path", help="also write the summary as JSON here")
    p.set_defaults(run=_run_info)


def _run_fetch(args: argparse.Namespace) -> int:
    directory = fetch(args.dataset, args.data_dir, mirrors=args.mirror, progress=not args.quiet)
    print(f"{args.dataset}: all files present and verified in {directory}")
    return 0


def _run_info(args: argparse.Namespace) -> int:
    arrays = load_splits(args.source, SPLITS, args.data_dir)
    summary = {"source": str(args.source), "splits": {}}
    for split, (images, labels) in arrays.items():
        files = resolve(args.source, split, args.data_dir, download=False)
        counts = np.bincount(labels, minlength=10).tolist()
        summary["splits"][split] = {"directory": str(files.directory), "images": list(images.shape),
                                    "labels": len(labels), "per_class": counts}
        print(f"{split:5s} {len(labels):6d} examples {images.shape[1]}x{images.shape[2]}  from {files.directory}")
        print(f"      per class: {counts}")
    if args.json_path:
        from mnist_data.atomic import write_bytes_atomic

        write_bytes_atomic(args.json_path, json.dumps(summary, indent=2).encode())
    return 0
