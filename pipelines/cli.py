"""The pipeline layer's subcommands (input benchmarks, tf.data service, trainers)."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    """Add this layer's subcommands to the `mnist-data` parser."""
