"""Argument types shared by the subcommands of both layers: bad values stop the command
before any work, with argparse's one-line usage error."""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path


def positive_int(text: str) -> int:
    """A whole number >= 1 (counts: epochs, batch size, workers, shards...)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def non_negative_int(text: str) -> int:
    """A whole number >= 0 (0 means 'the default' where an option says so)."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def level_0_to_9(text: str) -> int:
    """A deflate compression level."""
    if not text.isdigit() or int(text) > 9:
        raise argparse.ArgumentTypeError(f"expected a compression level 0..9, got {text!r}")
    return int(text)


def port(text: str) -> int:
    """A TCP port, 0 (any free port) to 65535."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535, got {text!r}")
    return int(text)


def output_file(text: str) -> str:
    """A JSON file to write at the end of a command, checked now rather than after the work: not a
    directory, not an existing file of another kind (an input image or data file named by
    mistake), and inside a folder that exists or can be created (maybe the command's own OUT)."""
    path = Path(text)
    if text == "-":
        raise argparse.ArgumentTypeError("this command writes its JSON to a file: give a file name")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory, expected a file name")
    if path.exists() and not _holds_json(path):
        raise argparse.ArgumentTypeError(
            f"{text} exists and does not hold JSON: refusing to write over it"
        )
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text}: {existing} is a file, so no folder can be made there"
        )
    if not os.access(existing, os.W_OK):
        raise argparse.ArgumentTypeError(f"{text}: the folder {existing} is not writable")
    return text


def _holds_json(path: Path) -> bool:
    """Whether an existing file may take JSON: an empty file, one that looks like JSON (an
    object or a list, judged by its first bytes), or no regular file at all (a pipe, a
    terminal), which is not read."""
    try:
        if not stat.S_ISREG(path.stat().st_mode) or path.stat().st_size == 0:
            return True
        with open(path, "rb") as handle:
            start = handle.read(64).removeprefix(b"\xef\xbb\xbf").lstrip()
    except OSError:
        return False
    return start[:1] in (b"{", b"[")


def output_file_or_stdout(text: str) -> str:
    """As `output_file`, or '-' for standard output."""
    return text if text == "-" else output_file(text)
