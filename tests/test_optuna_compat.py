"""The private Optuna names in ``optuna_nas._optuna_compat`` still behave as optuna-nas uses them.

CI runs this file against the newest and the lowest Optuna that ``pyproject.toml`` admits.
"""

from __future__ import annotations

import importlib.metadata
import math
from pathlib import Path
import re

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.trial import TrialState
import pytest

from optuna_nas import _optuna_compat as compat


def _major_minor(version: str) -> tuple[int, int]:
    major, minor = re.match(r"(\d+)\.(\d+)", version).groups()  # type: ignore[union-attr]
    return int(major), int(minor)


def test_installed_optuna_is_admitted_by_pyproject() -> None:
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if not pyproject.exists():
        pytest.skip("not a source checkout")
    # (tomllib is Python 3.11+; the requirement is one line of the dependencies list.)
    (spec,) = re.findall(r'^\s*"(optuna\s*[<>=][^"]*)"', pyproject.read_text(), re.MULTILINE)
    low = re.search(r">=\s*([\d.]+)", spec)
    high = re.search(r"<\s*(\d+)", spec)
    assert low is not None and high is not None, f"optuna needs lower and upper bounds: {spec}"
    installed = _major_minor(importlib.metadata.version("optuna"))
    assert _major_minor(low.group(1)) <= installed < (int(high.group(1)), 0), spec


def test_all_names_exist() -> None:
    for name in compat.__all__:
        assert getattr(compat, name) is not None, name


def test_search_space_transform_round_trips_log_and_step() -> None:
    distribution = FloatDistribution(1e-4, 1e-1, log=True)
    trans = compat.SearchSpaceTransform({"x": distribution})
    low, high = trans.bounds[0]
    assert (low, high) == pytest.approx((math.log(1e-4), math.log(1e-1)))
    x = trans.transform({"x": 1e-2})
    assert x[0] == pytest.approx(math.log(1e-2))
    assert trans.untransform(x)["x"] == pytest.approx(1e-2)

    stepped = compat.SearchSpaceTransform({"n": IntDistribution(0, 10, step=2)})
    value = stepped.untransform(np.array([3.2]))["n"]
    assert isinstance(value, int) and value in (2, 4)


def test_lazy_random_state_is_a_seeded_random_state() -> None:
    state = compat.LazyRandomState(3)
    assert isinstance(state.rng, np.random.RandomState)
    assert state.rng.randint(1000) == np.random.RandomState(3).randint(1000)


def test_fast_non_domination_rank_with_and_without_penalty() -> None:
    losses = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    assert compat.fast_non_domination_rank(losses).tolist() == [0, 0, 1, 2]
    # Feasible (penalty 0) first; infeasible ones ranked by total violation.
    penalty = np.array([1.0, 0.0, 0.0, 0.5])
    ranks = compat.fast_non_domination_rank(losses, penalty=penalty).tolist()
    assert ranks[1] < ranks[2] < ranks[3] < ranks[0]


def test_crowding_distance_is_keyed_by_trial_number() -> None:
    study = optuna.create_study(directions=["minimize", "minimize"])
    for values in ([0.0, 3.0], [1.0, 2.0], [2.0, 1.0], [3.0, 0.0]):
        study.add_trial(optuna.trial.create_trial(values=values))
    distances = compat.calc_crowding_distance(study.trials)
    assert set(distances) == {0, 1, 2, 3}
    assert math.isinf(distances[0]) and math.isinf(distances[3])
    assert 0.0 < distances[1] < math.inf and 0.0 < distances[2] < math.inf


def test_process_constraints_after_trial_feeds_frozen_trial_constraints() -> None:
    def constraints(trial: optuna.trial.FrozenTrial) -> list[float]:
        return [trial.params["x"] - 0.5]

    sampler = optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    trial = study.ask({"x": FloatDistribution(0.0, 1.0)})
    frozen = study.trials[0]  # still running, as in BaseSampler.after_trial
    compat.process_constraints_after_trial(constraints, study, frozen, TrialState.COMPLETE)
    study.tell(trial, 1.0)
    assert compat.trial_constraints(study.trials[0]) == [pytest.approx(frozen.params["x"] - 0.5)]
    assert compat.trial_constraints(frozen) == []  # the frozen copy predates them


def test_compute_hypervolume() -> None:
    losses = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert compat.compute_hypervolume(losses, np.array([2.0, 2.0])) == pytest.approx(3.0)


def test_artifact_store_protocol_is_met_by_the_filesystem_store(tmp_path: Path) -> None:
    store: compat.ArtifactStore = optuna.artifacts.FileSystemArtifactStore(str(tmp_path))
    for method in ("open_reader", "write", "remove"):
        assert callable(getattr(store, method))


@pytest.mark.parametrize(
    ("distribution", "inside", "outside"),
    [
        (FloatDistribution(0.0, 1.0), 0.5, 1.5),
        (IntDistribution(0, 10, step=2), 4.0, 3.0),
        (CategoricalDistribution(["a", "b"]), 1, 2),
    ],
)
def test_distribution_contains(distribution: object, inside: float, outside: float) -> None:
    assert compat.distribution_contains(distribution, inside)  # type: ignore[arg-type]
    assert not compat.distribution_contains(distribution, outside)  # type: ignore[arg-type]


def test_failed_suggestion_names_the_conflicting_call() -> None:
    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("lr", 0.01, 0.1), n_trials=1)
    trial = study.ask()
    with pytest.raises(ValueError) as info:
        trial.suggest_categorical("lr", [0.05, 0.1])
    found = compat.failed_suggestion(info.value)
    assert found is not None
    assert found[0] is trial and found[1] == "lr"
    assert found[2] == CategoricalDistribution([0.05, 0.1])
    assert compat.failed_suggestion(ValueError("raised elsewhere")) is None


def test_is_distribution_conflict_recognises_optunas_errors() -> None:
    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0.1, 1.0) + t.suggest_int("n", 1, 3), n_trials=1)
    trial = study.ask()
    clashes = (
        lambda: trial.suggest_categorical("x", [0.5, 1.0]),  # another kind
        lambda: trial.suggest_float("x", 0.1, 1.0, log=True),  # another log setting
        lambda: trial.suggest_categorical("n", [1, 2]),
    )
    for clash in clashes:
        with pytest.raises(ValueError) as info:
            clash()
        assert compat.is_distribution_conflict(info.value), str(info.value)
    assert not compat.is_distribution_conflict(ValueError("something else"))
