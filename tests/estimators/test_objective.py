"""ProxyObjective: a training-free study on the NAS-Bench-201 space."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState
import pytest

from optuna_nas.benchmarks import NB201Benchmark
from optuna_nas.estimators import ProxyObjective
from optuna_nas.samplers import RegularizedEvolutionSampler
from optuna_nas.samplers import warm_start
from optuna_nas.search_spaces import NB201Cell
from optuna_nas.search_spaces import create_search_space


optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = create_search_space("nasbench201")


def n_convs(cell: NB201Cell) -> float:
    return float(sum(op.startswith("nor_conv") for op in cell.ops))


def fake_latency(cell: NB201Cell) -> float:
    return 0.5 + sum(op == "nor_conv_3x3" for op in cell.ops) + 0.3 * cell.ops.count("none")


class FakeScorer:
    """Like estimators.ProxyScorer: callable, and ``score`` with every proxy and seconds."""

    def __init__(self) -> None:
        self.calls = 0
        self.details = 0

    def __call__(self, cell: NB201Cell) -> float:
        self.calls += 1
        return n_convs(cell)

    def score(self, cell: NB201Cell) -> dict[str, float]:
        self.details += 1
        return {"synflow": n_convs(cell), "params": 1.5 * n_convs(cell), "seconds": 0.25}


def test_single_objective_records_the_architecture_and_the_score() -> None:
    objective = ProxyObjective(SPACE, n_convs, metric_name="n_convs")
    assert objective.directions == ("maximize",)
    study = optuna.create_study(directions=objective.directions)
    study.optimize(objective, n_trials=15)
    for t in study.trials:
        cell = SPACE.from_params(t.params)
        assert t.state == TrialState.COMPLETE
        assert t.value == n_convs(cell)
        assert t.user_attrs["arch"] == SPACE.to_string(cell)
        assert t.user_attrs["search_space"] == "nasbench201"
        assert t.user_attrs["n_convs"] == t.value
        assert t.user_attrs["proxy:seconds"] >= 0.0
        assert not any(k.startswith("proxy:") and k != "proxy:seconds" for k in t.user_attrs)


def test_a_scorer_with_a_score_dict_is_called_once_and_every_proxy_recorded() -> None:
    scorer = FakeScorer()
    objective = ProxyObjective(SPACE, scorer)  # metric_name="synflow", the dict's entry
    study = optuna.create_study(directions=objective.directions)
    study.optimize(objective, n_trials=5)
    assert (scorer.details, scorer.calls) == (5, 0)
    t = study.trials[0]
    assert t.value == t.user_attrs["synflow"] == n_convs(SPACE.from_params(t.params))
    assert t.user_attrs["proxy:params"] == 1.5 * t.value
    assert t.user_attrs["proxy:seconds"] == 0.25

    # A name the dict lacks: the callable gives the value.
    objective = ProxyObjective(SPACE, scorer, metric_name="combined")
    optuna.create_study(directions=objective.directions).optimize(objective, n_trials=2)
    assert (scorer.details, scorer.calls) == (7, 2)


def test_multi_objective_with_a_fake_latency() -> None:
    objective = ProxyObjective(SPACE, n_convs, latency=fake_latency)
    assert objective.directions == ("maximize", "minimize")
    study = optuna.create_study(
        directions=objective.directions,
        sampler=RegularizedEvolutionSampler(population_size=4, sample_size=2, seed=0),
    )
    study.optimize(objective, n_trials=20)
    for t in study.trials:
        cell = SPACE.from_params(t.params)
        assert t.values == [n_convs(cell), fake_latency(cell)]
        assert t.user_attrs["latency_ms"] == fake_latency(cell)
        assert t.user_attrs["synflow"] == n_convs(cell)
    assert study.best_trials


def test_multi_objective_with_the_benchmarks_hardware_latency(data_dir: Path) -> None:
    bench = NB201Benchmark.load(data_dir)
    objective = ProxyObjective(
        bench.space, n_convs, latency=bench.hardware_cost, latency_name="latency_ms_pixel"
    )
    study = optuna.create_study(directions=objective.directions)
    study.optimize(objective, n_trials=5)
    for t in study.trials:
        assert t.values[1] == bench.hardware_cost(t.user_attrs["arch"])
        assert t.user_attrs["latency_ms_pixel"] == t.values[1]


def test_warm_started_proxy_study() -> None:
    objective = ProxyObjective(SPACE, n_convs)
    study = optuna.create_study(directions=objective.directions)
    best = warm_start(study, SPACE, n_convs, n_candidates=50, top_k=3)
    study.optimize(objective, n_trials=5)
    assert [t.value for t in study.trials[:3]] == [c.score for c in best]


# --------------------------------------------------------------------------- failures
def test_an_invalid_enqueued_architecture_fails_the_trial() -> None:
    objective = ProxyObjective(SPACE, n_convs, latency=fake_latency)
    study = optuna.create_study(directions=objective.directions)
    params = SPACE.to_params(SPACE.sample(np.random.default_rng(0)))
    study.enqueue_trial({**params, "nb201/edge_1_0": "conv_7x7"})
    study.optimize(objective, n_trials=2)
    failed, ok = study.trials
    assert failed.state == TrialState.FAIL
    assert "conv_7x7" in failed.user_attrs["fail_reason"]
    assert ok.state == TrialState.COMPLETE


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_score_or_latency_fails_the_trial(bad: float) -> None:
    study = optuna.create_study()
    study.optimize(ProxyObjective(SPACE, lambda cell: bad), n_trials=1)
    assert study.trials[0].state == TrialState.FAIL
    assert "the score synflow is" in study.trials[0].user_attrs["fail_reason"]

    objective = ProxyObjective(SPACE, n_convs, latency=lambda cell: bad)
    study = optuna.create_study(directions=objective.directions)
    study.optimize(objective, n_trials=1)
    assert study.trials[0].state == TrialState.FAIL
    assert "the latency latency_ms is" in study.trials[0].user_attrs["fail_reason"]


def test_other_errors_end_the_study_unless_caught() -> None:
    def broken(cell: NB201Cell) -> float:
        raise RuntimeError("proxy bug")

    study = optuna.create_study()
    with pytest.raises(RuntimeError, match="proxy bug"):
        study.optimize(ProxyObjective(SPACE, broken), n_trials=1)
    study.optimize(ProxyObjective(SPACE, broken, catch=(RuntimeError,)), n_trials=1)
    assert study.trials[-1].state == TrialState.FAIL
    assert "proxy bug" in study.trials[-1].user_attrs["fail_reason"]


@pytest.mark.parametrize(
    ("args", "kwargs", "text"),
    [
        (("nasbench201", n_convs), {}, "space must be an optuna-nas SearchSpace"),
        ((SPACE, 3), {}, "score must be callable, got 3"),
        ((SPACE, n_convs), {"latency": 1.0}, "latency must be callable or None, got 1.0"),
        ((SPACE, n_convs), {"metric_name": ""}, "metric_name must be a non-empty string"),
        ((SPACE, n_convs), {"latency_name": 3}, "latency_name must be a non-empty string, got 3"),
        (
            (SPACE, n_convs),
            {"latency": fake_latency, "metric_name": "latency_ms"},
            "must differ",
        ),
    ],
)
def test_invalid_arguments(args: tuple[Any, ...], kwargs: dict[str, Any], text: str) -> None:
    with pytest.raises(ValueError, match=text):
        ProxyObjective(*args, **kwargs)
