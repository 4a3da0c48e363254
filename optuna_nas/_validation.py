"""Argument checks shared across the package (no dependencies beyond the standard library)."""

from __future__ import annotations

from collections.abc import Mapping
import math
import numbers
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


def check_int(name: str, value: Any, *, minimum: int) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is an int ``>= minimum``.

    ``bool`` and integral floats (``2.0``) are rejected: a constructor argument that is a count
    must be given as one (NumPy integers are ints here).

    Example:
        >>> check_int("top_k", 1.5, minimum=1)
        Traceback (most recent call last):
        ...
        ValueError: top_k must be an int >= 1, got 1.5.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")


def check_number(
    name: str,
    value: Any,
    *,
    minimum: float = -math.inf,
    maximum: float = math.inf,
    min_inclusive: bool = True,
    max_inclusive: bool = True,
) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a finite real in the range.

    NaN and infinities are always rejected (they would turn comparisons off silently), and so
    are ``bool`` and non-numbers.

    Example:
        >>> check_number("learning_rate", float("nan"), minimum=0.0, min_inclusive=False)
        Traceback (most recent call last):
        ...
        ValueError: learning_rate must be a finite number in (0.0, inf), got nan.
    """
    x = float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else None
    ok = (
        x is not None
        and math.isfinite(x)
        and (x >= minimum if min_inclusive else x > minimum)
        and (x <= maximum if max_inclusive else x < maximum)
    )
    if not ok:
        low = "[" if min_inclusive and math.isfinite(minimum) else "("
        high = "]" if max_inclusive and math.isfinite(maximum) else ")"
        raise ValueError(
            f"{name} must be a finite number in {low}{minimum}, {maximum}{high}, got {value!r}."
        )


#: Seeds go to NumPy's legacy ``RandomState`` (Optuna's samplers), which takes 32-bit seeds.
MAX_SEED = 2**32 - 1


def check_seed(value: Any) -> None:
    """Raise ``ValueError`` naming ``seed`` unless ``value`` is ``None`` or an int in
    ``[0, 2**32 - 1]``.

    Example:
        >>> check_seed(-1)
        Traceback (most recent call last):
        ...
        ValueError: seed must be None or an int in [0, 4294967295], got -1.
    """
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or not 0 <= int(value) <= MAX_SEED
    ):
        raise ValueError(f"seed must be None or an int in [0, {MAX_SEED}], got {value!r}.")
