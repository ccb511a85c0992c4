"""Checks of the numbers public functions take, shared by both layers."""

from __future__ import annotations

import operator
import os
from collections.abc import Collection
from pathlib import Path


def is_whole(value: object, minimum: int) -> bool:
    """Whether `value` is an integer (Python's or NumPy's, not a bool or float) >= `minimum`."""
    if isinstance(value, bool):
        return False
    try:
        return operator.index(value) >= minimum
    except TypeError:
        return False


def summary_clash(
    summary_path: str | os.PathLike | None,
    out: str | os.PathLike,
    own_names: Collection[str],
    role: str = "the output this command writes in",
) -> str | None:
    """Why a --json summary may not be written to `summary_path`, if it would replace a file a
    command writes into its output directory `out` itself (its manifest, its run configuration)
    or land inside one of that directory's subfolders; None if it may."""
    if summary_path is None:
        return None
    target, out = Path(summary_path).resolve(), Path(out).resolve()
    if target != out and (
        out not in target.parents or (target.parent == out and target.name not in own_names)
    ):
        return None
    return f"{summary_path} is part of {role} {out}: give the summary another name"
