"""Checks of the numbers public functions take, shared by both layers."""

from __future__ import annotations

import operator


def is_whole(value: object, minimum: int) -> bool:
    """Whether `value` is an integer (Python's or NumPy's, not a bool or float) >= `minimum`."""
    if isinstance(value, bool):
        return False
    try:
        return operator.index(value) >= minimum
    except TypeError:
        return False
