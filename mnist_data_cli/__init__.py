"""The `mnist-data` command: the composition root above `mnist_data` and `pipelines`.

Each layer registers its own subcommands; errors the packages raise on purpose are
printed as one line with a non-zero exit, never as a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import mnist_data
import mnist_data.cli
import pipelines.cli
from mnist_data.fs import final_name_of
from mnist_data_cli.quiet_start import start_tensorflow_quietly
from pipelines.train import run_data


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnist-data", description=mnist_data.__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--version", action="version", version=f"mnist-data {mnist_data.__version__}"
    )
    parser.add_argument("--debug", action="store_true", help="show a traceback on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    mnist_data.cli.register(commands)
    data_commands = set(commands.choices)
    pipelines.cli.register(commands)
    parser.set_defaults(uses_tensorflow=False)
    for name in set(commands.choices) - data_commands:
        commands.choices[name].set_defaults(uses_tensorflow=True)
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


def recorded_data(run_dir: Path) -> str | None:
    """The data a run directory records it was trained on, if it can be read."""
    try:
        return str(run_data(run_dir)[0])
    except (OSError, ValueError):
        return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _one_line_warnings()
    try:
        if getattr(args, "prepare", None):  # checks that need no TensorFlow run before it starts
            args.prepare(args)
        if args.uses_tensorflow and not args.debug:
            start_tensorflow_quietly()
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
        if (
            isinstance(exc, OSError) and exc.filename
        ):  # the output a user asked for, not its temporary
            message = f"{final_name_of(exc.filename)}: {exc.strerror or message}"
        print(f"mnist-data: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mnist-data: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        tf = sys.modules.get("tensorflow")
        if args.debug or tf is None or not isinstance(exc, tf.errors.OpError):
            raise
        from pipelines.input.readers import (
            tf_reason,
        )  # an op that failed: a full disk while saving, say

        print(f"mnist-data: error: {tf_reason(exc)}", file=sys.stderr)
        return 1
