"""Subcommands of the data layer: fetch, info, to-tfrecord, to-png, verify."""

from __future__ import annotations

import argparse
import dataclasses

from mnist_data.conversion.png import LABELS_AS, to_png
from mnist_data.conversion.run import line
from mnist_data.conversion.tfrecord import COMPRESSIONS, ENCODINGS, to_tfrecord
from mnist_data.conversion.verify import verify
from mnist_data.sources.catalog import CATALOG, SPLITS
from mnist_data.sources.fetch import fetch
from mnist_data.sources.load import describe
from mnist_data.sources.source import resolve_source
from mnist_data_cli.options import add_options, call, plural
from mnist_data_cli.quiet_start import start_tensorflow_quietly
from pipelines.input.sheet import check_per_class, contact_sheet


def register(commands: argparse._SubParsersAction) -> None:
    """Add the data layer's subcommands to the `mnist-data` parser."""
    p = commands.add_parser("fetch", help="download a dataset (checksummed, resumable)")
    p.add_argument(
        "--dataset",
        default="mnist",
        choices=[n for n, d in CATALOG.items() if d.mirrors],
        help="catalog name",
    )
    p.add_argument("--data-dir", help="target directory (default: the user cache dir)")
    p.add_argument("--splits", nargs="+", default=SPLITS, help="splits to read")
    p.add_argument("--mirror", action="append", dest="mirrors", help="base URL, tried in order")
    add_options(p, "--quiet", "--json")
    p.set_defaults(run=_fetch)

    p = commands.add_parser("info", help="IDX shapes and MD5s or OUT's manifest; --grid: examples")
    p.add_argument("source", nargs="?", default="mnist", help="dataset, IDX directory or file, OUT")
    add_options(p, "--data-dir", "--num-classes", "--grid", "--per-class", "--json")
    p.set_defaults(run=_info, per_class=10, prepare=lambda args: check_per_class(args.per_class))

    p = commands.add_parser(
        "to-tfrecord",
        help="convert to sharded TFRecords (parallel, atomic, resumable)",
        description="Write OUT/<split>-<i:05d>-of-<n:05d>.tfrecord[.gz] and OUT/manifest.json.",
    )
    _conversion_arguments(p)
    shards = p.add_mutually_exclusive_group()
    shards.add_argument("--shards", type=int, help="shards per split (default: by --shard-size)")
    shards.add_argument("--shard-size", type=int, help="records per shard (default: 10000)")
    p.add_argument(
        "--compression", type=str.lower, choices=COMPRESSIONS, default="none", help="of each file"
    )
    p.add_argument("--encoding", choices=ENCODINGS, default="raw", help="raw bytes or PNG files")
    p.set_defaults(run=lambda args: _converted(call(to_tfrecord, args)))

    p = commands.add_parser(
        "to-png",
        help="export PNGs into class folders (parallel, atomic, resumable)",
        description="Write OUT/<split>/<label>/<index:05d>.png, OUT/<split>.csv, manifest.json.",
    )
    _conversion_arguments(p)
    p.add_argument("--labels-as", choices=LABELS_AS, default="digits", help="folder names")
    p.set_defaults(run=lambda args: _converted(call(to_png, args)))

    p = commands.add_parser("verify", help="check converted output against its manifest")
    p.add_argument("out", help="directory written by to-tfrecord or to-png")
    add_options(p, "--json")
    p.set_defaults(run=_verify)


def _conversion_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="dataset name or directory of IDX files")
    p.add_argument("out", help="output directory")
    add_options(p, "--data-dir")
    p.add_argument("--splits", nargs="+", default=SPLITS, help="splits to read")
    p.add_argument("--workers", type=int, help="worker threads (default: one per core)")
    p.add_argument("--compress-level", type=int, default=1, help="deflate level of PNGs, 0-9")
    p.add_argument("--overwrite", action="store_true", help="replace earlier output in OUT")
    add_options(p, "--num-classes", "--quiet", "--json")


def _converted(summary: dict) -> tuple:
    return summary, line(summary), 0


def _verify(args: argparse.Namespace) -> tuple:
    report = verify(args.out)
    status = "OK" if report.ok else plural(len(report.problems), "problem")
    text = [f"DAMAGED {problem}" for problem in report.problems] + [
        f"verify {args.out}: {report.format}, {plural(report.files, 'file')}, "
        f"{plural(report.records, 'record')}: {status}"
    ]
    return dataclasses.asdict(report) | {"ok": report.ok}, "\n".join(text), 0 if report.ok else 1


def _fetch(args: argparse.Namespace) -> tuple:
    directory = call(fetch, args)
    text = f"{args.dataset}: all files present and verified in {directory}"
    return {"dataset": args.dataset, "directory": str(directory)}, text, 0


def _info(args: argparse.Namespace) -> tuple:
    summary = call(describe, args)
    text = _idx_lines(summary) if "files" in summary else _output_lines(summary)
    if args.grid:
        source = resolve_source(args.source, args.data_dir, download=False)
        if source.kind == "tfrecord" and not args.debug:
            start_tensorflow_quietly()  # read to draw: TensorFlow's start-up lines kept away
        summary["grid"] = str(contact_sheet(source, args.grid, per_class=args.per_class))
        text.append(f"contact sheet: {summary['grid']}")
    return summary, "\n".join(text), 0


def _output_lines(summary: dict) -> list[str]:
    settings = [f"{key} {summary[key]}" for key in ("encoding", "compression") if key in summary]
    kind = summary["format"] + (f" ({', '.join(settings)})" if settings else "")
    text = [f"{summary['source']}: {kind}, converted from {summary['converted_from']}"]
    text += [f"{split:5s} {records:,} records" for split, records in summary["splits"].items()]
    classes = summary["classes"]
    return [*text, f"classes: {', '.join(classes) if classes else 'not named'}"]


def _idx_lines(summary: dict) -> list[str]:
    text = []
    for entry in summary["files"]:
        split = f"{entry['split']:5s} " if "split" in entry else ""
        match = entry["catalog_match"] or (
            "a member of an archive, whose MD5 the catalog checks"
            if "archive" in entry
            else "MD5 not in the catalog: not published, or recompressed"
        )
        text.append(f"{split}{entry['file']}")
        text.append(
            f"      {entry['dtype']} {tuple(entry['shape'])}  md5 {entry['md5']}  ({match})"
        )
        if "per_class" in entry:
            text.append(f"      per class: {entry['per_class']}")
    return text
