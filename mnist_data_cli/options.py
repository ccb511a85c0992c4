"""Options that several subcommands share, declared once, and the one check of `--json PATH`."""

from __future__ import annotations

import argparse
import inspect
import os
import stat
from collections.abc import Callable
from pathlib import Path

from pipelines import FORMATS

# JSON files mnist-data writes for itself: a summary never takes their place.
OWN_JSON = ("manifest.json", ".mnist-data-run.json", "config.json", "metrics.json")


def json_target(text: str) -> str:
    """`--json PATH`, checked before any work: '-' (standard output), or a new or JSON file whose
    name ends in .json, is none of mnist-data's own, and whose folder can be made."""
    path = Path(text)
    if text == "-":
        return text
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory, expected a file name")
    if path.exists() and not _holds_json(path):
        raise argparse.ArgumentTypeError(f"{text} exists and does not hold JSON: refusing it")
    if path.suffix != ".json" or path.name in OWN_JSON:
        raise argparse.ArgumentTypeError(
            f"{text}: give the summary another name, ending in .json and not {', '.join(OWN_JSON)}"
        )
    folder = next(p for p in path.absolute().parents if p.exists())
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {folder} is a file, so no folder can be made")
    if not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"{text}: the folder {folder} is not writable")
    return text


def _holds_json(path: Path) -> bool:
    """An empty file, one starting like a JSON object or list, or no regular file (a pipe)."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return True
        with open(path, "rb") as handle:
            start = handle.read(64).removeprefix(b"\xef\xbb\xbf").lstrip()
    except OSError:
        return False
    return start[:1] in (b"", b"{", b"[")


OPTIONS = {
    "--json": dict(
        nargs="?",
        const="-",
        type=json_target,
        metavar="PATH",
        help="also write the summary as JSON to PATH; bare or '-': print only the JSON",
    ),
    "--quiet": dict(action="store_false", dest="progress", default=True, help="no progress bars"),
    "--num-classes": dict(type=int, help="labels are 0..N-1 (default: the data's class count)"),
    "--grid": dict(metavar="PATH", help="also draw random examples of each class into PATH (PNG)"),
    "--per-class": dict(type=int, metavar="N", help="examples of each class on the --grid sheet"),
    "--data": dict(help="dataset name, IDX directory, or converted TFRecord/PNG directory"),
    "--data-dir": dict(help="where a dataset name's files are looked for first (or downloaded)"),
    "--format": dict(choices=FORMATS, help="input format (default: detected from the data)"),
    "--batch-size": dict(type=int, help="examples per batch"),
    "--epochs": dict(type=int, help="passes over the data"),
    "--repeat": dict(type=int, help="runs per method, taking turns"),
    "--xla": dict(action=argparse.BooleanOptionalAction, help="compile the step with XLA"),
    "--op-threads": dict(type=int, metavar="N", help="TensorFlow's op threads (0: one per core)"),
}


def add_options(parser: argparse.ArgumentParser, *names: str) -> None:
    """Add the shared options `names` to `parser` (its defaults: `parser.set_defaults`)."""
    for name in names:
        parser.add_argument(name, **OPTIONS[name])


def plural(count: int, word: str) -> str:
    """'1 epoch', '2 epochs'."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def call(function: Callable, args: argparse.Namespace, **given: object) -> object:
    """`function` called with the flags named as its parameters, and `given`."""
    names = inspect.signature(function).parameters
    return function(**{k: v for k, v in vars(args).items() if k in names} | given)
