"""The data layer's subcommands. Each one calls a public function of the package."""

from __future__ import annotations

import argparse

from mnist_data.cli_args import level_0_to_9, output_file, positive_int
from mnist_data.conversion.png import LABELS_AS, to_png
from mnist_data.conversion.run import line
from mnist_data.conversion.tfrecord import COMPRESSIONS, ENCODINGS, to_tfrecord
from mnist_data.conversion.verify import verify
from mnist_data.fs import write_json_atomic
from mnist_data.sources.catalog import CATALOG, SPLITS
from mnist_data.sources.fetch import fetch
from mnist_data.sources.load import describe


def register(commands: argparse._SubParsersAction) -> None:
    """Add this layer's subcommands to the `mnist-data` parser."""
    p = commands.add_parser(
        "fetch",
        help="download a dataset (checksummed, resumable)",
        description="Download a catalog dataset's four IDX files, trying mirrors in order.",
    )
    p.add_argument(
        "--dataset", default="mnist", choices=[n for n, d in CATALOG.items() if d.mirrors]
    )
    p.add_argument("--data-dir", help="target directory (default: the user cache dir)")
    p.add_argument(
        "--mirror", action="append", help="mirror base URL, tried in the order given (repeatable)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_fetch)

    p = commands.add_parser(
        "info",
        help="show what a dataset, IDX directory or IDX file holds",
        description="Shapes, dtypes, counts per class, MD5s and catalog matches.",
    )
    p.add_argument(
        "source",
        nargs="?",
        default="mnist",
        help="dataset name, directory of IDX files, or IDX file",
    )
    p.add_argument("--data-dir", help="directory searched first")
    p.add_argument(
        "--num-classes",
        type=positive_int,
        help="labels allowed: 0..N-1 (default: the catalog's, else 10)",
    )
    p.add_argument(
        "--json", dest="json_path", type=output_file, help="also write the summary as JSON here"
    )
    p.set_defaults(run=_run_info)

    p = commands.add_parser(
        "to-tfrecord",
        help="convert to sharded TFRecords (parallel, atomic, resumable)",
        description="Write OUT/<split>-<i:05d>-of-<n:05d>.tfrecord[.gz] and OUT/manifest.json.",
    )
    _conversion_arguments(p)
    shards = p.add_mutually_exclusive_group()
    shards.add_argument("--shards", type=positive_int, help="shards per split")
    shards.add_argument("--shard-size", type=positive_int, help="records per shard (default 10000)")
    p.add_argument("--compression", choices=COMPRESSIONS, default="none")
    p.add_argument(
        "--encoding",
        choices=ENCODINGS,
        default="raw",
        help="raw: 784 uint8 bytes; png: PNG file bytes",
    )
    p.set_defaults(run=_run_to_tfrecord)

    p = commands.add_parser(
        "to-png",
        help="export PNGs into class folders (parallel, atomic, resumable)",
        description=(
            "Write OUT/<split>/<label>/<index:05d>.png, OUT/<split>.csv and OUT/manifest.json."
        ),
    )
    _conversion_arguments(p)
    p.add_argument(
        "--labels-as",
        choices=LABELS_AS,
        default="digits",
        help="folder names: digits or class names",
    )
    p.set_defaults(run=_run_to_png)

    p = commands.add_parser(
        "verify",
        help="re-read converted output and check it against its manifest",
        description="Checks sizes, SHA-256s, TFRecord CRCs and counts; exits 1 on damage.",
    )
    p.add_argument("out", help="directory written by to-tfrecord or to-png")
    p.set_defaults(run=_run_verify)


def _conversion_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="dataset name or directory of IDX files")
    p.add_argument("out", help="output directory")
    p.add_argument("--splits", nargs="+", choices=SPLITS, default=list(SPLITS))
    p.add_argument("--workers", type=positive_int, help="worker threads (default: one per core)")
    p.add_argument(
        "--compress-level",
        type=level_0_to_9,
        default=1,
        help="deflate level of PNG data, 0-9 (default 1; to-png, or to-tfrecord --encoding png)",
    )
    p.add_argument(
        "--num-classes",
        type=positive_int,
        help="labels allowed: 0..N-1 (default: the catalog's, else 10)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help=(
            "replace earlier mnist-data output in OUT (a directory of other files is never cleared)"
        ),
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--json", dest="json_path", type=output_file, help="write the run summary as JSON here"
    )


def _run_to_tfrecord(args: argparse.Namespace) -> int:
    result = to_tfrecord(
        args.source,
        args.out,
        splits=args.splits,
        encoding=args.encoding,
        compression=args.compression,
        shards=args.shards,
        shard_size=args.shard_size,
        workers=args.workers,
        compress_level=args.compress_level,
        num_classes=args.num_classes,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    print(line(result))
    if args.json_path:
        write_json_atomic(args.json_path, result)
    return 0


def _run_to_png(args: argparse.Namespace) -> int:
    result = to_png(
        args.source,
        args.out,
        splits=args.splits,
        workers=args.workers,
        compress_level=args.compress_level,
        labels_as=args.labels_as,
        num_classes=args.num_classes,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    print(line(result))
    if args.json_path:
        write_json_atomic(args.json_path, result)
    return 0


def _run_verify(args: argparse.Namespace) -> int:
    report = verify(args.out)
    for problem in report.problems:
        print(f"DAMAGED {problem}")
    status = "OK" if report.ok else f"{len(report.problems)} problem(s)"
    print(
        f"verify {args.out}: {report.format}, {report.files} files, "
        f"{report.records} records: {status}"
    )
    return 0 if report.ok else 1


def _run_fetch(args: argparse.Namespace) -> int:
    directory = fetch(args.dataset, args.data_dir, mirrors=args.mirror, progress=not args.quiet)
    print(f"{args.dataset}: all files present and verified in {directory}")
    return 0


def _run_info(args: argparse.Namespace) -> int:
    summary = describe(args.source, args.data_dir, num_classes=args.num_classes)
    for entry in summary["files"]:
        split = f"{entry['split']:5s} " if "split" in entry else ""
        match = (
            entry["catalog_match"]
            or "MD5 not in the catalog: not a published file, or recompressed"
        )
        print(f"{split}{entry['file']}")
        print(f"      {entry['dtype']} {tuple(entry['shape'])}  md5 {entry['md5']}  ({match})")
        if "per_class" in entry:
            print(f"      per class: {entry['per_class']}")
    if args.json_path:
        write_json_atomic(args.json_path, summary)
    return 0
