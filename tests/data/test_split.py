"""Tests of optuna_nas.data._split."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

from optuna_nas.data import stratified_split


def test_stratified_split_is_disjoint_stratified_and_deterministic() -> None:
    labels = np.repeat(np.arange(4), [40, 40, 20, 100])
    train, val = stratified_split(labels, (0.25,), seed=3)
    assert len(np.intersect1d(train, val)) == 0
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(len(labels)))
    assert Counter(labels[val].tolist()) == {0: 10, 1: 10, 2: 5, 3: 25}
    again = stratified_split(labels, (0.25,), seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((train, val), again))
    other = stratified_split(labels, (0.25,), seed=4)
    assert not np.array_equal(val, other[1])


def test_stratified_split_subset_and_three_parts() -> None:
    labels = np.repeat(np.arange(10), 50)
    train, val, test = stratified_split(labels, (0.2, 0.1), seed=0, subset=200)
    assert len(train) + len(val) + len(test) == 200
    assert Counter(labels[val].tolist()) == dict.fromkeys(range(10), 4)
    assert Counter(labels[test].tolist()) == dict.fromkeys(range(10), 2)
    assert len(set(train) | set(val) | set(test)) == 200


@pytest.mark.parametrize(
    ("fractions", "subset", "match"),
    [
        ((1.0,), None, r"\[1\.0\]"),
        ((0.6, 0.5), None, r"\[0\.6, 0\.5\]"),
        ((-0.1,), None, r"\[-0\.1\]"),
        ((0.2,), 0, "got 0"),
    ],
)
def test_stratified_split_rejects_bad_arguments(
    fractions: tuple[float, ...], subset: Any, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        stratified_split(np.zeros(10), fractions, seed=0, subset=subset)
