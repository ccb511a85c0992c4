"""The pipeline layer's subcommands: input benchmarks and the tf.data service
(cli_input.py), trainers and the training benchmark (cli_train.py)."""

from __future__ import annotations

import argparse

from pipelines import cli_input, cli_train


def register(commands: argparse._SubParsersAction) -> None:
    """Add this layer's subcommands (and the `bench` group) to the `mnist-data` parser."""
    bench = commands.add_parser(
        "bench",
        help="benchmarks (pipeline, train)",
        description="Benchmarks that print figures; see docs/BENCHMARKS.md.",
    )
    bench_commands = bench.add_subparsers(dest="bench_command", required=True, metavar="BENCHMARK")
    cli_input.register(commands, bench_commands)
    cli_train.register(commands, bench_commands)
