"""Argument types shared by the subcommands of both layers: bad values stop the command
before any work, with argparse's one-line usage error."""

from __future__ import annotations

import argparse
import os
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


def port(text: str) -> int:
    """A TCP port, 0 (any free port) to 65535."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535, got {text!r}")
    return int(text)


def output_file(text: str) -> str:
    """A file to write at the end of a command: its folder must exist now, not after the work
    ('-' stands for standard output)."""
    if text == "-":
        return text
    folder = Path(text).parent
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: the folder {folder} does not exist")
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory, expected a file name")
    if not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"{text}: the folder {folder} is not writable")
    return text
