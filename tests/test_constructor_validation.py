"""Bad numeric arguments fail at construction with an error naming the argument and value.

A sweep over every numeric argument of the samplers and the pruner: ill-typed, fractional (for
counts), negative, zero (where it must be positive), NaN and infinite values. Each must raise a
``ValueError`` whose message names the argument, instead of failing later inside NumPy or
heapq, or silently switching a feature off.
"""

from __future__ import annotations

from collections.abc import Callable
import math
from typing import Any

import pytest

from optuna_nas.pruners import LearningCurvePruner
from optuna_nas.samplers import RegularizedEvolutionSampler
from optuna_nas.samplers import RNNControllerSampler


NAN, INF = math.nan, math.inf
#: Bad values of every count (an int with a minimum) and of every real-valued argument.
_ILL_TYPED = ["a", None, [1], True]
_COUNT = [*_ILL_TYPED, 1.5, 2.0, NAN, INF, -1]
_REAL = [*_ILL_TYPED, NAN, INF, -INF, -1.0]
#: For the real-valued arguments where ``None`` means "off".
_REAL_OR_NONE = [v for v in _REAL if v is not None]

# (constructor, argument, bad values); zero is added where the argument must be positive.
CASES: list[tuple[Callable[..., Any], str, list[Any]]] = [
    (RegularizedEvolutionSampler, "population_size", [*_COUNT, 0, 1]),
    (RegularizedEvolutionSampler, "sample_size", [*_COUNT, 0]),
    (RegularizedEvolutionSampler, "max_duplicate_retries", _COUNT),
    (RegularizedEvolutionSampler, "numeric_mutation_scale", [*_REAL_OR_NONE, 0.0]),
    (RegularizedEvolutionSampler, "seed", ["a", 1.5, NAN, INF, -1, 2**32, True]),
    (RNNControllerSampler, "seed", ["a", 1.5, NAN, INF, -1, 2**32, True]),
    (RNNControllerSampler, "hidden_size", [*_COUNT, 0]),
    (RNNControllerSampler, "num_layers", [*_COUNT, 0]),
    (RNNControllerSampler, "batch_size", [*_COUNT, 0]),
    (RNNControllerSampler, "max_int_choices", _COUNT),
    (RNNControllerSampler, "imitation_top_k", _COUNT),
    (RNNControllerSampler, "max_duplicate_retries", _COUNT),
    (RNNControllerSampler, "learning_rate", [*_REAL, 0.0]),
    (RNNControllerSampler, "temperature", [*_REAL, 0.0]),
    (RNNControllerSampler, "tanh_constant", [*_REAL_OR_NONE, 0.0]),
    (RNNControllerSampler, "entropy_weight", _REAL),
    (RNNControllerSampler, "imitation_weight", _REAL),
    (RNNControllerSampler, "baseline_decay", [*_REAL, 1.0, 1.5]),
    (LearningCurvePruner, "max_resource", ["a", None, 1.5, NAN, INF, -1, 0, True]),
    (LearningCurvePruner, "top_k", [*_COUNT, 0]),
    (LearningCurvePruner, "n_warmup_trials", _COUNT),
    (LearningCurvePruner, "n_warmup_steps", _COUNT),
    (LearningCurvePruner, "interval_steps", [*_COUNT, 0]),
    (LearningCurvePruner, "optimism", _REAL),
]


@pytest.mark.parametrize(
    ("constructor", "argument", "value"),
    [(c, a, v) for c, a, values in CASES for v in values],
    ids=[f"{c.__name__}-{a}={v!r}" for c, a, values in CASES for v in values],
)
def test_bad_value_raises_naming_the_argument(
    constructor: Callable[..., Any], argument: str, value: Any
) -> None:
    with pytest.raises(ValueError, match=rf"\b{argument}\b") as info:
        constructor(**{argument: value})
    assert repr(value) in str(info.value) or str(value) in str(info.value)


@pytest.mark.parametrize("constructor", [RegularizedEvolutionSampler, RNNControllerSampler])
def test_the_edges_of_the_valid_ranges_are_accepted(constructor: Callable[..., Any]) -> None:
    constructor(seed=0)
    constructor(seed=2**32 - 1)
    constructor(seed=None, max_duplicate_retries=0)


def test_pruner_edges_are_accepted() -> None:
    LearningCurvePruner(max_resource=1, top_k=1, n_warmup_trials=0, optimism=0.0)
    LearningCurvePruner(max_resource="auto", interval_steps=1, n_warmup_steps=0)
