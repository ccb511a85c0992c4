"""The `mnist-data` command: the composition root above `mnist_data` and `pipelines`.

Each layer registers its own subcommands; errors the packages raise on purpose are
printed as one line with a non-zero exit, never as a traceback.
"""

from __future__ import annotations

import argparse
import os
import re
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
    data_commands = set(commands.choices)
    pipelines.cli.register(commands)
    parser.set_defaults(uses_tensorflow=False)
    for name in set(commands.choices) - data_commands:
        commands.choices[name].set_defaults(uses_tensorflow=True)
    return parser


def _is_start_up_chatter(line: str) -> bool:
    """TensorFlow's start-up lines: INFO and WARNING records, absl's notice, and CUDA's absence on
    a machine without a GPU (the run goes on on the CPU and says so)."""
    return (re.match(r"[IW]\d{4} \d\d:\d\d:\d\d", line) is not None
            or line.startswith(("WARNING: All log messages before absl::InitializeLog()",
                                "To enable the following instructions:"))
            or (re.match(r"E\d{4} ", line) is not None and "failed call to cuInit" in line))


def start_tensorflow_quietly() -> None:
    """Import TensorFlow and find its devices with file descriptor 2 sent to a file, then pass on
    everything but its start-up chatter. Why: TensorFlow writes those lines before its logging
    is set up, where TF_CPP_MIN_LOG_LEVEL cannot hide them (TF_CPP_MIN_LOG_LEVEL=0 shows them)."""
    import tempfile

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # later INFO and WARNING records
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0" or "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not _is_start_up_chatter(line)))
            sys.stderr.flush()


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
        if isinstance(exc, OSError) and exc.filename:  # the output a user asked for, not its temporary
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
        from pipelines.file_readers import tf_reason  # an op that failed: a full disk while saving, say

        print(f"mnist-data: error: {tf_reason(exc)}", file=sys.stderr)
        return 1
