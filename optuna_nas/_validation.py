"""Argument checks shared across the package (no dependencies beyond the standard library)."""

from __future__ import annotations

from collections.abc import Mapping
import math
import numbers
from typing import Any


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer: an ``int`` or a NumPy integer, but not a ``bool``.

    ``bool`` is an ``int`` subclass, yet ``True`` is no count or size; integral floats
    (``2.0``) are not integers either.

    Example:
        >>> is_int(3), is_int(True), is_int(3.0)
        (True, False, False)
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_positive_ints(what: str, values: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming every value of ``values`` that is not a positive int.

    Integers are as in :func:`is_int` (NumPy integers count, ``bool`` does not).

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
    bad = {name: value for name, value in values.items() if not (is_int(value) and value >= 1)}
    if bad:
        raise ValueError(f"These {what} must be positive ints: {bad!r}.")


def check_int(name: str, value: Any, *, minimum: int, maximum: int | None = None) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is an int in
    ``[minimum, maximum]`` (no upper bound when ``maximum`` is ``None``).

    ``bool`` and integral floats (``2.0``) are rejected: a constructor argument that is a count
    must be given as one (NumPy integers are ints here, see :func:`is_int`).

    Example:
        >>> check_int("top_k", 1.5, minimum=1)
        Traceback (most recent call last):
        ...
        ValueError: top_k must be an int >= 1, got 1.5.
        >>> check_int("max_epochs", 99, minimum=1, maximum=98)
        Traceback (most recent call last):
        ...
        ValueError: max_epochs must be an int in [1, 98], got 99.
    """
    if not is_int(value) or value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be an int {bound}, got {value!r}.")


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


def check_fraction(name: str, value: Any) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a fraction strictly between 0
    and 1 (a split's share: neither part may be empty); :func:`check_number` for other ranges.

    Example:
        >>> check_fraction("val_fraction", 1.0)
        Traceback (most recent call last):
        ...
        ValueError: val_fraction must be a finite number in (0.0, 1.0), got 1.0.
    """
    check_number(name, value, minimum=0.0, maximum=1.0, min_inclusive=False, max_inclusive=False)


#: Seeds go to NumPy's legacy ``RandomState`` (Optuna's samplers), which takes 32-bit seeds.
MAX_SEED = 2**32 - 1


def check_seed(value: Any, *, allow_none: bool = True, name: str = "seed") -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is an int in ``[0, 2**32 - 1]``
    (or ``None``, when ``allow_none``).

    Example:
        >>> check_seed(-1)
        Traceback (most recent call last):
        ...
        ValueError: seed must be None or an int in [0, 4294967295], got -1.
        >>> check_seed(None, allow_none=False)
        Traceback (most recent call last):
        ...
        ValueError: seed must be an int in [0, 4294967295], got None.
    """
    if value is None and allow_none:
        return
    if not is_int(value) or not 0 <= int(value) <= MAX_SEED:
        expected = "None or an int" if allow_none else "an int"
        raise ValueError(f"{name} must be {expected} in [0, {MAX_SEED}], got {value!r}.")
