"""The `mnist-data` command: the composition root above `mnist_data` and `pipelines`.

Each layer registers its own subcommands; errors the packages raise on purpose are
printed as one line with a non-zero exit, never as a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Sequence

import mnist_data
import mnist_data.cli
from mnist_data.atomic import final_name_of
import pipelines.cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mnist-data", description=mnist_data.__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"mnist-data {mnist_data.__version__}")
    parser.add_argument("--debug", action="store_true", help="show a traceback on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    mnist_data.cli.register(commands)
    pipelines.cli.register(commands)
    return parser


def _one_line_warnings() -> None:
    """Print each distinct warning once, as 'mnist-data: warning: ...' rather than Python's
    two-line format with a source line."""
    shown: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if str(message) not in shown:
            shown.add(str(message))
            print(f"mnist-data: warning: {message}", file=sys.stderr)

    warnings.showwarning = show


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _one_line_warnings()
    try:
        code = args.run(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers, not at exit
        return code
    except BrokenPipeError:  # the reader went away (`mnist-data info | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (mnist_data.MnistDataError, OSError) as exc:
        if args.debug:
            raise
        message = str(exc).strip()
        if isinstance(exc, OSError) and exc.filename:  # the output a user asked for, not its temporary
            message = f"{final_name_of(exc.filename)}: {exc.strerror or message}"
        print(f"mnist-data: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mnist-data: interrupted", file=sys.stderr)
        return 130
