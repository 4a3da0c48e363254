"""Class-stratified, seeded splits of a labelled dataset into disjoint parts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def stratified_split(
    labels: Sequence[int] | np.ndarray,
    fractions: Sequence[float],
    *,
    seed: int,
    subset: int | None = None,
) -> list[np.ndarray]:
    """Split sample indices into disjoint, class-stratified parts.

    Each class is shuffled with ``seed`` and cut in the given proportions, so every part has the
    class balance of the whole; the result depends only on ``labels``, ``fractions``, ``subset``
    and ``seed``.

    Args:
        labels: The class label of every sample.
        fractions: Fractions of the (sub)set that go to parts ``1..k``; part ``0`` receives the
            rest. For example ``(0.2,)`` gives ``[train (80%), val (20%)]``.
        seed: Seed of the shuffle.
        subset: Use only this many samples in total (drawn stratified) before splitting.

    Returns:
        ``len(fractions) + 1`` sorted index arrays.

    Raises:
        ValueError: A fraction is outside ``[0, 1)``, the fractions sum to 1 or more, or
            ``subset`` is not in ``[1, len(labels)]``.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if any(not 0.0 <= f < 1.0 for f in fractions) or sum(fractions) >= 1.0:
        raise ValueError(
            f"fractions must each lie in [0, 1) and sum to less than 1; got {list(fractions)!r}."
        )
    if subset is not None and not 1 <= subset <= n:
        raise ValueError(f"subset must be in [1, {n}]; got {subset!r}.")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    # Largest-remainder allocation of the subset to classes, so the total is exactly `subset`.
    total = n if subset is None else subset
    exact = counts * (total / n)
    quota = np.floor(exact).astype(int)
    remainder = total - int(quota.sum())
    if remainder:
        quota[np.argsort(-(exact - quota), kind="stable")[:remainder]] += 1

    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for cls, m in zip(classes, quota):
        idx = rng.permutation(np.flatnonzero(labels == cls))[:m]
        start = 0
        for k, fraction in enumerate(fractions, start=1):
            size = int(round(m * fraction))
            parts[k].append(idx[start : start + size])
            start += size
        parts[0].append(idx[start:])
    return [np.sort(np.concatenate(p)) if p else np.empty(0, dtype=int) for p in parts]
