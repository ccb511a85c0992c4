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
from mnist_data.checks import summary_clash
from mnist_data.conversion import check_summary_path
from mnist_data.fs import final_name_of
from mnist_data.manifest import MANIFEST
from mnist_data_cli.quiet_start import start_tensorflow_quietly
from pipelines.training.config import TrainError
from pipelines.training.run_dir import CONFIG, RUN_FILES, run_data


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


def _check_json_target(args: argparse.Namespace) -> None:
    """Refuse a --json file that would replace part of the command's output or of its inputs:
    a converted directory's manifest, listings and shards, a run directory's configuration,
    metrics and checkpoints (a summary beside them, under another name, is fine)."""
    target = getattr(args, "json_path", None)
    if not target or target == "-":
        return
    runs = [getattr(args, "run_dir", None), args.out if args.command == "train" else None]
    converted = [args.out] if args.command in ("to-tfrecord", "to-png") else []
    inputs = [getattr(args, "source", None), getattr(args, "data", None)]
    inputs += [recorded_data(Path(run)) for run in runs if run and (Path(run) / CONFIG).is_file()]
    for directory in filter(None, runs):
        clash = summary_clash(target, directory, RUN_FILES, "the run directory")
        if clash:
            raise TrainError(clash)
    for directory in converted:
        check_summary_path(Path(directory), target)
    for directory in inputs:
        if directory and (Path(directory) / MANIFEST).is_file():
            check_summary_path(Path(directory), target, "the converted data in")


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
        _check_json_target(args)
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
        from pipelines.file_readers import (
            tf_reason,
        )  # an op that failed: a full disk while saving, say

        print(f"mnist-data: error: {tf_reason(exc)}", file=sys.stderr)
        return 1
