"""The `mnist-data` command. Each subcommand maps its flags onto one public function and prints
the summary it returns; `--json` is written here. Errors the packages raise on purpose are one
line and exit 1."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import warnings
from collections.abc import Sequence

import mnist_data
from mnist_data.fs import final_name_of, write_json_atomic
from mnist_data_cli import data, input, train
from mnist_data_cli.quiet_start import start_tensorflow_quietly


class _Formatter(argparse.HelpFormatter):
    """Shows each option's default after its help, unless the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text, default = action.help or "", action.default
        if default in (None, argparse.SUPPRESS) or type(default) is bool or "default" in text:
            return text
        shown = " ".join(default) if isinstance(default, (list, tuple)) else "%(default)s"
        return f"{text} (default: {shown})"


class _Parser(argparse.ArgumentParser):
    """A parser, and all its subcommands' parsers, showing defaults in --help."""

    def __init__(self, **kwargs) -> None:
        super().__init__(formatter_class=_Formatter, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mnist-data", description=mnist_data.__doc__.splitlines()[0])
    version = f"mnist-data {mnist_data.__version__}"
    parser.add_argument("--version", action="version", version=version)
    parser.add_argument("--debug", action="store_true", help="show a traceback on errors")
    parser.set_defaults(tensorflow=False, prepare=None, json=None)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data.register(commands)
    bench = commands.add_parser(
        "bench", help="benchmarks (pipeline, train)", description="See docs/BENCHMARKS.md."
    )
    benchmarks = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    input.register(commands, benchmarks)
    train.register(commands, benchmarks)
    return parser


def _one_line_warnings() -> None:
    """Each distinct warning once, as 'mnist-data: warning: ...', without Python's source line."""
    shown: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if str(message) not in shown:
            shown.add(str(message))
            print(f"mnist-data: warning: {message}", file=sys.stderr)

    warnings.showwarning = show


def _emit(summary: object, text: str, target: str | None) -> None:
    """The text for people, or with `--json -` only the JSON, so that stdout stays parseable."""
    if target and target != "-":
        write_json_atomic(target, summary)
    if target == "-":
        print(json.dumps(summary, indent=2))
    elif text:
        print(text)


def _look_in_data_dir(args: argparse.Namespace) -> None:
    """`--data-dir DIR`: the dataset name given stands for its files in DIR (as `data_dir=`)."""
    if args.command in ("fetch", "info") or not getattr(args, "data_dir", None):
        return  # these two take data_dir themselves
    key = "source" if hasattr(args, "source") else "data"
    name, splits = getattr(args, key), getattr(args, "splits", mnist_data.sources.catalog.SPLITS)
    if name not in mnist_data.CATALOG:
        given = "" if name is None else f", not {name}"
        raise mnist_data.DatasetError(
            f"--data-dir {args.data_dir} says where a dataset name's files are: give the name"
            f"{given} (one of {', '.join(mnist_data.CATALOG)})"
        )
    found = mnist_data.resolve_source(name, args.data_dir, splits=splits, fallback=False)
    setattr(args, key, found)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _one_line_warnings()
    try:
        _look_in_data_dir(args)
        if args.prepare:  # checks that need no TensorFlow run before it starts
            args.prepare(args)
        if args.tensorflow and not args.debug:
            start_tensorflow_quietly()
        with contextlib.redirect_stdout(sys.stderr if args.json == "-" else sys.stdout):
            summary, text, code = args.run(args)  # with `--json -`, stdout is the JSON's alone
        _emit(summary, text, args.json)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers, not at exit
        return code
    except BrokenPipeError:  # the reader went away (`mnist-data info | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (mnist_data.MnistDataError, OSError) as exc:
        if args.debug:
            raise
        message = str(exc).strip()
        if isinstance(exc, OSError) and exc.filename:  # the output asked for, not its temporary
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
        from pipelines.input.readers import tf_reason  # imports TensorFlow, running already

        print(f"mnist-data: error: {tf_reason(exc)}", file=sys.stderr)  # a full disk, say
        return 1
