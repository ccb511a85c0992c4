"""Subcommands of the train side of the pipeline layer. TensorFlow is imported only when one runs."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction, bench_commands: argparse._SubParsersAction) -> None:
    """Add top-level subcommands to `commands` and benchmarks to `bench_commands`."""
