"""The data layer's subcommands. Each one calls a public function of the package."""

from __future__ import annotations

import argparse
import json

from mnist_data.atomic import write_bytes_atomic
from mnist_data.catalog import CATALOG
from mnist_data.describe import describe
from mnist_data.fetch import fetch


def register(commands: argparse._SubParsersAction) -> None:
    """Add this layer's subcommands to the `mnist-data` parser."""
    p = commands.add_parser("fetch", help="download a dataset (checksummed, resumable)",
                            description="Download a catalog dataset's four IDX files, trying mirrors in order.")
    p.add_argument("--dataset", default="mnist", choices=[n for n, d in CATALOG.items() if d.mirrors])
    p.add_argument("--data-dir", help="target directory (default: the user cache dir)")
    p.add_argument("--mirror", action="append", help="mirror base URL, tried in the order given (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_fetch)

    p = commands.add_parser("info", help="show what a dataset, IDX directory or IDX file holds",
                            description="Shapes, dtypes, counts per class, MD5s and catalog matches.")
    p.add_argument("source", nargs="?", default="mnist", help="dataset name, directory of IDX files, or IDX file")
    p.add_argument("--data-dir", help="directory searched first")
    p.add_argument("--json", dest="json_path", help="also write the summary as JSON here")
    p.set_defaults(run=_run_info)


def _run_fetch(args: argparse.Namespace) -> int:
    directory = fetch(args.dataset, args.data_dir, mirrors=args.mirror, progress=not args.quiet)
    print(f"{args.dataset}: all files present and verified in {directory}")
    return 0


def _run_info(args: argparse.Namespace) -> int:
    summary = describe(args.source, args.data_dir)
    for entry in summary["files"]:
        split = f"{entry['split']:5s} " if "split" in entry else ""
        match = entry["catalog_match"] or "no catalog match"
        print(f"{split}{entry['file']}")
        print(f"      {entry['dtype']} {tuple(entry['shape'])}  md5 {entry['md5']}  ({match})")
        if "per_class" in entry:
            print(f"      per class: {entry['per_class']}")
    if args.json_path:
        write_bytes_atomic(args.json_path, json.dumps(summary, indent=2).encode())
    return 0
