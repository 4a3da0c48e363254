"""Argument checks shared across the package (no dependencies beyond the standard library)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def check_positive_ints(what: str, values: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming every value of ``values`` that is not a positive int.

    ``bool`` is rejected although it is an ``int`` subclass (``True`` is no size).

    Args:
        what: What the values are, for the message (e.g. ``"DARTS network sizes"``).
        values: Name -> value.

    Raises:
        ValueError: Some values are not positive ints; the message lists them all.

    Example:
        >>> check_positive_ints("sizes", {"channels": 16, "layers": 0})
        Traceback (most recent call last):
        ...
        ValueError: These sizes must be positive ints: {'layers': 0}.
    """
    bad = {
        name: value
        for name, value in values.items()
        if isinstance(value, bool) or not isinstance(value, int) or value < 1
    }
    if bad:
        raise ValueError(f"These {what} must be positive ints: {bad!r}.")
