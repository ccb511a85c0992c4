"""Checks of the numbers public functions take, shared by both layers."""

from __future__ import annotations

import operator

from mnist_data.errors import MnistDataError


def is_whole(value: object, minimum: int) -> bool:
    """Whether `value` is an integer (Python's or NumPy's, not a bool or float) >= `minimum`."""
    if isinstance(value, bool):
        return False
    try:
        return operator.index(value) >= minimum
    except TypeError:
        return False


def check_whole(
    name: str, value: object, least: int, most: int | None = None, error=MnistDataError
) -> None:
    """Raise `error` naming `name` unless `value` is a whole number in least..most."""
    if not is_whole(value, least) or (most is not None and value > most):
        span = f"in {least}..{most}" if most is not None else f">= {least}"
        raise error(f"{name} must be a whole number {span}, got {value!r}")


def check_seconds(name: str, value: float | None, error=MnistDataError) -> None:
    """Raise `error` naming `name` unless `value` is None or a number >= 0."""
    if value is not None and (isinstance(value, bool) or not value >= 0):
        raise error(f"{name} must be a number of seconds >= 0, got {value!r}")
