"""RegularizedEvolutionSampler's proxy-guided mutation (the "move proposal")."""

from __future__ import annotations

from collections.abc import Callable
import copy
import math
import pickle
from typing import Any

import optuna
from optuna.samplers import BaseSampler
from optuna.testing.pytest_samplers import BasicSamplerTestCase
from optuna.testing.pytest_samplers import MultiObjectiveSamplerTestCase
from optuna.trial import FrozenTrial
import pytest

from optuna_nas import InvalidArchitectureError
from optuna_nas.samplers import RegularizedEvolutionSampler
from optuna_nas.samplers._evolution import _MOVE_STREAM
from optuna_nas.samplers._evolution import MOVE_FALLBACK
from optuna_nas.samplers._evolution import MOVE_KEY
from optuna_nas.samplers._evolution import MOVE_PROPOSAL
from optuna_nas.samplers._evolution import MOVE_RANDOM
from optuna_nas.samplers._evolution import MOVE_SCORE_KEY
from optuna_nas.samplers._evolution import MUTATION_KEY
from optuna_nas.samplers._evolution import PARENT_KEY
from optuna_nas.samplers._evolution import USER_ATTR_MOVE
from optuna_nas.samplers._evolution import USER_ATTR_MOVE_SCORE
from optuna_nas.samplers._randomness import derive_seed
from optuna_nas.samplers._randomness import trial_random_state
from optuna_nas.search_spaces import NB201Cell
from optuna_nas.search_spaces import create_search_space


optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = create_search_space("nasbench201")
ARCH_PARAMS = tuple(d.name for d in SPACE.decisions)


def hash_score(cell: NB201Cell) -> float:
    """Random-looking but deterministic, and without ties (module level: picklable)."""
    return derive_seed("score", SPACE.to_string(cell)) / 2**63


def _architecture_objective(trial: optuna.Trial) -> float:
    cell = SPACE.suggest(trial)
    return sum(op == "nor_conv_3x3" for op in cell.ops) + 0.1 * sum(
        op == "skip_connect" for op in cell.ops
    )


def _conditional_objective(trial: optuna.Trial) -> float:
    cell = SPACE.suggest(trial)
    score = _architecture_objective_of(cell)
    if cell.ops[0] != "none":
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        score -= abs(math.log10(lr) + 2.0)
    return score


def _architecture_objective_of(cell: NB201Cell) -> float:
    return sum(op == "nor_conv_3x3" for op in cell.ops) + 0.1 * sum(
        op == "skip_connect" for op in cell.ops
    )


def _sampler(**kwargs: Any) -> RegularizedEvolutionSampler:
    options: dict[str, Any] = {
        "population_size": 10,
        "sample_size": 3,
        "search_space": SPACE,
        "mutation_score": hash_score,
        "seed": 0,
    }
    options.update(kwargs)
    return RegularizedEvolutionSampler(**options)


def _children(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in study.trials if t.system_attrs.get(PARENT_KEY) is not None]


def _neighbours(params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every single-decision mutation of a cell, in decision order (brute force)."""
    out = []
    for d in SPACE.decisions:
        for choice in d.choices:
            if choice != params[d.name]:
                out.append({**params, d.name: choice})
    return out


def _key(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(params.items()))


# --------------------------------------------------------------------------- the proposal
def test_proposal_is_the_best_scored_unseen_neighbour() -> None:
    study = optuna.create_study(direction="maximize", sampler=_sampler())
    study.optimize(_architecture_objective, n_trials=90)
    children = _children(study)
    proposals = [t for t in children if t.system_attrs[MOVE_KEY] == MOVE_PROPOSAL]
    assert len(proposals) > 30
    for child in proposals:
        parent = study.trials[child.system_attrs[PARENT_KEY]]
        # Sequential study: every earlier trial was finished when the child was planned.
        seen = {_key(t.params) for t in study.trials[: child.number]}
        candidates = [p for p in _neighbours(parent.params) if _key(p) not in seen]
        assert len(_neighbours(parent.params)) == 24
        best = max(candidates, key=lambda p: hash_score(SPACE.from_params(p)))
        assert child.params == best
        assert child.system_attrs[MOVE_SCORE_KEY] == hash_score(SPACE.from_params(best))
        assert child.user_attrs[USER_ATTR_MOVE] == MOVE_PROPOSAL
        assert child.user_attrs[USER_ATTR_MOVE_SCORE] == child.system_attrs[MOVE_SCORE_KEY]
        assert set(child.system_attrs[MUTATION_KEY]) == {
            k for k in child.params if child.params[k] != parent.params[k]
        }
    # Random moves change one decision too, and record their child's score.
    randoms = [t for t in children if t.system_attrs[MOVE_KEY] == MOVE_RANDOM]
    assert randoms
    for child in randoms:
        parent = study.trials[child.system_attrs[PARENT_KEY]]
        assert sum(child.params[k] != parent.params[k] for k in ARCH_PARAMS) >= 1
        assert child.system_attrs[MOVE_SCORE_KEY] == hash_score(SPACE.from_params(child.params))
    # Warm-up trials record no move.
    assert all(MOVE_KEY not in t.system_attrs for t in study.trials[:10])


def test_the_random_branch_is_the_keyed_draw_and_respects_the_fraction() -> None:
    fraction = 0.25
    study = optuna.create_study(
        direction="maximize", sampler=_sampler(random_mutation_fraction=fraction, seed=7)
    )
    study.optimize(_architecture_objective, n_trials=210)
    children = _children(study)
    assert len(children) == 200
    kinds = [t.system_attrs[MOVE_KEY] for t in children]
    for child, kind in zip(children, kinds):
        # Same seed + same trial number = same draw, whatever the history.
        draw = trial_random_state(7, child.number, _MOVE_STREAM).random_sample()
        assert (kind == MOVE_RANDOM) == (draw < fraction)
    n_random = kinds.count(MOVE_RANDOM)
    assert 0.15 * len(kinds) <= n_random <= 0.35 * len(kinds)  # 50 expected, sd about 6


@pytest.mark.parametrize(("fraction", "kind"), [(0.0, MOVE_PROPOSAL), (1.0, MOVE_RANDOM)])
def test_fraction_edges(fraction: float, kind: str) -> None:
    study = optuna.create_study(
        direction="maximize", sampler=_sampler(random_mutation_fraction=fraction)
    )
    study.optimize(_architecture_objective, n_trials=30)
    assert {t.system_attrs[MOVE_KEY] for t in _children(study)} == {kind}


def test_bounded_subset_of_neighbours() -> None:
    study = optuna.create_study(direction="maximize", sampler=_sampler(max_mutation_candidates=5))
    study.optimize(_architecture_objective, n_trials=40)
    proposals = [t for t in _children(study) if t.system_attrs[MOVE_KEY] == MOVE_PROPOSAL]
    assert proposals
    for child in proposals:
        parent = study.trials[child.system_attrs[PARENT_KEY]]
        rng = trial_random_state(0, child.number, _MOVE_STREAM)
        rng.random_sample()  # the random-or-proposal draw
        subset = sorted(rng.choice(24, size=5, replace=False).tolist())
        neighbours = [_neighbours(parent.params)[i] for i in subset]
        seen = {_key(t.params) for t in study.trials[: child.number]}
        candidates = [p for p in neighbours if _key(p) not in seen]
        assert child.params == max(candidates, key=lambda p: hash_score(SPACE.from_params(p)))


def test_unscorable_neighbours_are_skipped_and_no_score_falls_back() -> None:
    def picky(cell: NB201Cell) -> float:
        if cell.ops[0] == "none":
            raise InvalidArchitectureError("the proxy cannot build this cell")
        return math.nan if cell.ops[1] == "none" else hash_score(cell)

    study = optuna.create_study(direction="maximize", sampler=_sampler(mutation_score=picky))
    study.optimize(_architecture_objective, n_trials=40)
    for child in _children(study):
        if child.system_attrs[MOVE_KEY] == MOVE_PROPOSAL:
            assert child.params[ARCH_PARAMS[0]] != "none"
            assert child.params[ARCH_PARAMS[1]] != "none"
        elif child.params[ARCH_PARAMS[0]] == "none" or child.params[ARCH_PARAMS[1]] == "none":
            assert child.system_attrs[MOVE_SCORE_KEY] is None

    study = optuna.create_study(
        direction="maximize", sampler=_sampler(mutation_score=lambda c: math.nan)
    )
    study.optimize(_architecture_objective, n_trials=25)
    kinds = {t.system_attrs[MOVE_KEY] for t in _children(study)}
    assert kinds <= {MOVE_FALLBACK, MOVE_RANDOM} and MOVE_FALLBACK in kinds


def test_proposals_inherit_the_users_hyperparameters() -> None:
    study = optuna.create_study(
        direction="maximize", sampler=_sampler(random_mutation_fraction=0.0)
    )
    study.optimize(_conditional_objective, n_trials=40)
    for child in _children(study):
        assert child.system_attrs[MOVE_KEY] == MOVE_PROPOSAL
        parent = study.trials[child.system_attrs[PARENT_KEY]]
        changed = {k for k in ARCH_PARAMS if child.params[k] != parent.params[k]}
        assert len(changed) == 1
        if "lr" in parent.params and "lr" in child.params:
            assert child.params["lr"] == parent.params["lr"]


def test_foreign_parameters_fall_back_to_the_random_mutation() -> None:
    def objective(trial: optuna.Trial) -> float:
        return trial.suggest_float("x", -1, 1) ** 2

    study = optuna.create_study(sampler=_sampler(population_size=3, sample_size=2))
    study.optimize(objective, n_trials=15)
    kinds = {t.system_attrs[MOVE_KEY] for t in _children(study)}
    assert kinds <= {MOVE_FALLBACK, MOVE_RANDOM} and MOVE_FALLBACK in kinds
    assert all(t.system_attrs[MOVE_SCORE_KEY] is None for t in _children(study))


# --------------------------------------------------------------------------- reproducibility
def _history(study: optuna.Study) -> list[Any]:
    return [
        (
            sorted(t.params.items()),
            t.system_attrs.get(PARENT_KEY),
            t.system_attrs.get(MOVE_KEY),
            t.system_attrs.get(MOVE_SCORE_KEY),
        )
        for t in study.trials
    ]


def test_resumed_study_equals_uninterrupted() -> None:
    uninterrupted = optuna.create_study(direction="maximize", sampler=_sampler())
    uninterrupted.optimize(_conditional_objective, n_trials=80)

    storage = optuna.storages.InMemoryStorage()
    first = optuna.create_study(
        direction="maximize", storage=storage, study_name="resume", sampler=_sampler()
    )
    first.optimize(_conditional_objective, n_trials=40)
    # A new sampler object: a restarted worker, with an empty score cache.
    resumed = optuna.load_study(study_name="resume", storage=storage, sampler=_sampler())
    resumed.optimize(_conditional_objective, n_trials=40)

    assert _history(resumed) == _history(uninterrupted)
    kinds = {t.system_attrs.get(MOVE_KEY) for t in resumed.trials[40:]}
    assert {MOVE_PROPOSAL, MOVE_RANDOM} <= kinds


def test_same_seed_same_trials_other_seed_differs() -> None:
    def run(seed: int) -> list[Any]:
        study = optuna.create_study(direction="maximize", sampler=_sampler(seed=seed))
        study.optimize(_architecture_objective, n_trials=30)
        return _history(study)

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_pickle_and_deepcopy_drop_the_score_cache() -> None:
    sampler = _sampler()
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(_architecture_objective, n_trials=15)
    assert sampler._scores
    for clone in (pickle.loads(pickle.dumps(sampler)), copy.deepcopy(sampler)):
        assert clone._scores == {}
        assert clone._settings.mutation_score is not None


# --------------------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"random_mutation_fraction": -0.1}, "random_mutation_fraction must be a finite number"),
        ({"random_mutation_fraction": 1.5}, "got 1.5"),
        ({"random_mutation_fraction": float("nan")}, "random_mutation_fraction.*got nan"),
        ({"random_mutation_fraction": "a"}, "random_mutation_fraction.*got 'a'"),
        ({"random_mutation_fraction": None}, "random_mutation_fraction.*got None"),
        ({"max_mutation_candidates": 0}, "max_mutation_candidates must be an int >= 1, got 0"),
        ({"max_mutation_candidates": 2.5}, "max_mutation_candidates.*got 2.5"),
        ({"mutation_score": 3}, "mutation_score must be callable or None, got 3"),
        ({"search_space": None}, "mutation_score needs search_space"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, Any], text: str) -> None:
    with pytest.raises(ValueError, match=text):
        _sampler(**kwargs)


def test_fraction_is_checked_without_a_score() -> None:
    with pytest.raises(ValueError, match="random_mutation_fraction.*got 2"):
        RegularizedEvolutionSampler(random_mutation_fraction=2)


# --------------------------------------------------------------------------- optuna's suites
@pytest.fixture(
    params=[
        {"population_size": 2, "sample_size": 2},
        {"population_size": 3, "sample_size": 1, "random_mutation_fraction": 0.0},
    ],
    ids=["tiny", "tiny-always-propose"],
)
def _sampler_factory(request: pytest.FixtureRequest) -> Callable[[], BaseSampler]:
    kwargs = request.param
    return lambda: RegularizedEvolutionSampler(
        search_space=SPACE, mutation_score=hash_score, **kwargs
    )


class TestBasicWithMutationScore(BasicSamplerTestCase):
    @pytest.fixture
    def sampler(self, _sampler_factory: Callable[[], BaseSampler]) -> Callable[[], BaseSampler]:
        return _sampler_factory


class TestMultiObjectiveWithMutationScore(MultiObjectiveSamplerTestCase):
    @pytest.fixture
    def sampler(self, _sampler_factory: Callable[[], BaseSampler]) -> Callable[[], BaseSampler]:
        return _sampler_factory


def test_multi_objective_study_with_proposals() -> None:
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        cell = SPACE.suggest(trial)
        return _architecture_objective_of(cell), float(cell.ops.count("nor_conv_3x3"))

    study = optuna.create_study(directions=["maximize", "minimize"], sampler=_sampler())
    study.optimize(objective, n_trials=40)
    assert MOVE_PROPOSAL in {t.system_attrs[MOVE_KEY] for t in _children(study)}
