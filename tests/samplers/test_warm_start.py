"""warm_start: score random cells, enqueue the best-scored first, once per study."""

from __future__ import annotations

from collections.abc import Callable
import math
from pathlib import Path
from typing import Any

import optuna
from optuna.samplers import BaseSampler
from optuna.samplers import RandomSampler
from optuna.samplers import TPESampler
from optuna.trial import TrialState
import pytest

from optuna_nas.samplers import RegularizedEvolutionSampler
from optuna_nas.samplers import RNNControllerSampler
from optuna_nas.samplers import WarmStartCandidate
from optuna_nas.samplers import warm_start
from optuna_nas.samplers._randomness import derive_seed
from optuna_nas.samplers._warm_start import USER_ATTR_N_CANDIDATES
from optuna_nas.samplers._warm_start import USER_ATTR_RANK
from optuna_nas.samplers._warm_start import USER_ATTR_SCORE
from optuna_nas.samplers._warm_start import USER_ATTR_SECONDS
from optuna_nas.samplers._warm_start import warm_start_key
from optuna_nas.search_spaces import NASBench201SearchSpace
from optuna_nas.search_spaces import NB201Cell
from optuna_nas.search_spaces import create_search_space


optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = create_search_space("nasbench201")
ARCH_PARAMS = tuple(d.name for d in SPACE.decisions)


def hash_score(cell: NB201Cell) -> float:
    """Random-looking but deterministic, and without ties."""
    return derive_seed("score", SPACE.to_string(cell)) / 2**63


class CountingScore:
    def __init__(self, fn: Callable[[NB201Cell], float] = hash_score) -> None:
        self.fn = fn
        self.calls: list[str] = []

    def __call__(self, cell: NB201Cell) -> float:
        self.calls.append(SPACE.to_string(cell))
        return self.fn(cell)


def _objective(trial: optuna.Trial) -> float:
    # The space plus a hyperparameter of the user's own, conditional on the cell.
    cell = SPACE.suggest(trial)
    value = float(sum(op == "nor_conv_3x3" for op in cell.ops))
    if cell.ops[0] != "none":
        value -= abs(math.log10(trial.suggest_float("lr", 1e-4, 1e-1, log=True)) + 2.0)
    return value


def _arch(params: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(params[name] for name in ARCH_PARAMS)


def _system_attrs(study: optuna.Study) -> dict[str, Any]:
    return study._storage.get_study_system_attrs(study._study_id)


# --------------------------------------------------------------------------- what is enqueued
def test_enqueues_exactly_the_top_k_by_score_with_their_attributes() -> None:
    score = CountingScore()
    study = optuna.create_study(direction="maximize")
    result = warm_start(
        study, SPACE, score, n_candidates=200, top_k=7, seed=3, user_attrs={"tag": "ws"}
    )
    # 200 distinct cells were scored, each once.
    assert len(score.calls) == len(set(score.calls)) == 200
    assert result.n_candidates == 200 and result.enqueued
    brute_force = sorted(score.calls, key=lambda s: -hash_score(SPACE.from_string(s)))[:7]
    assert [SPACE.to_string(c.arch) for c in result] == brute_force
    assert [c.rank for c in result] == list(range(1, 8))
    assert all(isinstance(c, WarmStartCandidate) for c in result)
    assert all(c.params == SPACE.to_params(c.arch) for c in result)
    assert all(c.score == hash_score(c.arch) for c in result)
    assert result.seconds >= sum(c.seconds for c in result) >= 0.0

    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 7
    for trial, candidate in zip(waiting, result):
        assert trial.system_attrs["fixed_params"] == candidate.params
        assert trial.user_attrs == {
            "tag": "ws",
            USER_ATTR_SCORE: candidate.score,
            USER_ATTR_RANK: candidate.rank,
            USER_ATTR_N_CANDIDATES: 200,
            USER_ATTR_SECONDS: result.seconds,
        }
    recorded = _system_attrs(study)[result.key]
    assert result.key == warm_start_key(SPACE, seed=3, n_candidates=200, top_k=7)
    assert result.key.startswith("optuna_nas:warm_start:")
    assert recorded["seconds"] == result.seconds
    assert (recorded["seed"], recorded["n_candidates"], recorded["top_k"]) == (3, 200, 7)
    assert [c["arch"] for c in recorded["candidates"]] == brute_force


def test_same_seed_same_candidates_other_seed_differs() -> None:
    def run(seed: int) -> list[str]:
        result = warm_start(optuna.create_study(), SPACE, hash_score, n_candidates=50, seed=seed)
        return [SPACE.to_string(c.arch) for c in result]

    assert run(0) == run(0)
    assert run(0) != run(1)


def _sampler(name: str) -> BaseSampler:
    if name == "random":
        return RandomSampler(seed=0)
    if name == "tpe":
        return TPESampler(seed=0, n_startup_trials=3)
    if name == "evolution":
        return RegularizedEvolutionSampler(
            population_size=4, sample_size=2, search_space=SPACE, seed=0
        )
    return RNNControllerSampler(seed=0, hidden_size=8)


@pytest.mark.parametrize("name", ["random", "tpe", "evolution", "rnn"])
def test_the_first_k_trials_are_the_candidates_with_any_sampler(name: str) -> None:
    study = optuna.create_study(direction="maximize", sampler=_sampler(name))
    result = warm_start(study, SPACE, hash_score, n_candidates=100, top_k=5, seed=0)
    study.optimize(_objective, n_trials=12)
    trials = study.trials
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert [_arch(t.params) for t in trials[:5]] == [_arch(c.params) for c in result]
    assert [t.user_attrs[USER_ATTR_RANK] for t in trials[:5]] == [1, 2, 3, 4, 5]
    assert all(USER_ATTR_RANK not in t.user_attrs for t in trials[5:])
    # The user's own hyperparameter is not fixed: the sampler suggested it.
    with_lr = [t for t in trials[:5] if t.params[ARCH_PARAMS[0]] != "none"]
    assert all("lr" in t.params for t in with_lr)
    assert len({t.params["lr"] for t in with_lr}) == len(with_lr)


# --------------------------------------------------------------------------- idempotence
def test_idempotent_on_the_same_study_and_on_a_resumed_one(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'db.sqlite'}"
    study = optuna.create_study(storage=storage, study_name="ws", direction="maximize")
    first = warm_start(study, SPACE, hash_score, n_candidates=60, top_k=4, seed=1)
    study.optimize(_objective, n_trials=2)

    score = CountingScore()
    resumed = optuna.load_study(study_name="ws", storage=storage)
    again = warm_start(resumed, SPACE, score, n_candidates=60, top_k=4, seed=1)
    assert score.calls == []  # nothing scored
    assert not again.enqueued
    assert again == first and again.seconds == first.seconds
    assert again.n_candidates == 60
    resumed.optimize(_objective, n_trials=4)
    trials = resumed.trials
    assert [_arch(t.params) for t in trials[:4]] == [_arch(c.params) for c in first]
    # Not enqueued twice: only the first four trials are the warm start's.
    assert [t.number for t in trials if USER_ATTR_RANK in t.user_attrs] == [0, 1, 2, 3]

    # Other settings are another warm start.
    other = warm_start(resumed, SPACE, hash_score, n_candidates=60, top_k=2, seed=1)
    assert other.enqueued and other.key != first.key
    assert len(resumed.get_trials(states=(TrialState.WAITING,))) == 2


# --------------------------------------------------------------------------- edge cases
def test_non_finite_scores_are_never_enqueued() -> None:
    def score(cell: NB201Cell) -> float:
        value = hash_score(cell)
        return math.nan if value > 0.5 else (math.inf if value > 0.4 else value)

    result = warm_start(optuna.create_study(), SPACE, score, n_candidates=100, top_k=10)
    assert len(result) == 10
    assert all(c.score <= 0.4 for c in result)


def test_fewer_finite_scores_than_top_k() -> None:
    result = warm_start(optuna.create_study(), SPACE, lambda c: math.nan, n_candidates=10, top_k=3)
    assert list(result) == [] and result.n_candidates == 10


def test_small_space_scores_every_architecture_once() -> None:
    space = NASBench201SearchSpace(operations=("none", "skip_connect"))  # 2**6 = 64 cells
    seen: list[str] = []

    def score(cell: NB201Cell) -> float:
        seen.append(space.to_string(cell))
        return float(cell.ops.count("skip_connect"))

    study = optuna.create_study()
    result = warm_start(study, space, score, n_candidates=100, top_k=1)
    assert len(seen) == len(set(seen)) == 64 == result.n_candidates
    assert result[0].arch.ops == ("skip_connect",) * 6
    assert study.get_trials()[0].user_attrs[USER_ATTR_N_CANDIDATES] == 64


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"n_candidates": 0}, "n_candidates must be an int >= 1, got 0"),
        ({"n_candidates": 2.0}, "n_candidates must be an int >= 1, got 2.0"),
        ({"top_k": 0}, "top_k must be an int in [1, 1000], got 0"),
        ({"n_candidates": 5, "top_k": 6}, "top_k must be an int in [1, 5], got 6"),
        ({"seed": -1}, "seed must be an int in [0, 4294967295], got -1"),
        ({"seed": None}, "seed must be an int"),
        ({"score": 3}, "score must be callable, got 3"),
        ({"space": "nasbench201"}, "'nasbench201'"),
        ({"user_attrs": [1]}, "user_attrs must be a mapping or None, got [1]"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, Any], text: str) -> None:
    args = {"space": SPACE, "score": hash_score, **kwargs}
    space, score = args.pop("space"), args.pop("score")
    study = optuna.create_study()
    with pytest.raises(ValueError, match=text.replace("[", r"\[").replace("]", r"\]")):
        warm_start(study, space, score, **args)
    assert study.trials == []
