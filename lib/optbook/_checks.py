"""Argument checks shared by the library: every error names the argument and its value."""

from __future__ import annotations

import numbers


def is_int(value) -> bool:
    """An integer, and not a bool (``True`` is an ``int`` to Python, never to us)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value) -> bool:
    """A real number, and not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(name: str, value, minimum: int) -> int:
    """``value`` as an ``int``; ``ValueError`` unless it is an integer ≥ ``minimum``."""
    if not is_int(value) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"Invalid {name}: {value!r} (must be {what})")
    return int(value)
