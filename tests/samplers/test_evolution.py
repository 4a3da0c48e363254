from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import copy
import importlib
import math
import multiprocessing
from pathlib import Path
import pickle
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.samplers import BaseSampler
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.testing.pytest_samplers import BasicSamplerTestCase
from optuna.testing.pytest_samplers import MultiObjectiveSamplerTestCase
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest

from optuna_nas._optuna_compat import distribution_contains
from optuna_nas._optuna_compat import fast_non_domination_rank
from optuna_nas.samplers import RegularizedEvolutionSampler
from optuna_nas.samplers._evolution import MUTATION_KEY
from optuna_nas.samplers._evolution import PARENT_KEY
from optuna_nas.samplers._evolution import USER_ATTR_MUTATED
from optuna_nas.samplers._evolution import USER_ATTR_PARENT
from optuna_nas.search_spaces import NASBench201SearchSpace
from optuna_nas.search_spaces import NB201Cell
from optuna_nas.search_spaces import create_search_space
from optuna_nas.search_spaces._base import RandomGenerator


optuna.logging.set_verbosity(optuna.logging.WARNING)

CHOICES = ("a", "b", "c", "d", "e")


# --------------------------------------------------------------------------- optuna's suites
@pytest.fixture(
    params=[
        {},  # defaults: mostly the random warm-up in these short tests
        {"population_size": 2, "sample_size": 2},  # evolves from the third trial on
        {"population_size": 3, "sample_size": 1, "skip_duplicates": False},
    ],
    ids=["default", "tiny", "tiny-nodedup"],
)
def _sampler_factory(request: pytest.FixtureRequest) -> Callable[[], BaseSampler]:
    kwargs = request.param
    return lambda: RegularizedEvolutionSampler(**kwargs)


class TestBasic(BasicSamplerTestCase):
    @pytest.fixture
    def sampler(self, _sampler_factory: Callable[[], BaseSampler]) -> Callable[[], BaseSampler]:
        return _sampler_factory


class TestMultiObjective(MultiObjectiveSamplerTestCase):
    @pytest.fixture
    def sampler(self, _sampler_factory: Callable[[], BaseSampler]) -> Callable[[], BaseSampler]:
        return _sampler_factory


# --------------------------------------------------------------------------- helpers
def _categorical_objective(trial: optuna.Trial) -> float:
    # Deterministic, 5**4 = 625 configurations; value = number of "a"s plus a tie-breaker.
    xs = [trial.suggest_categorical(f"x{i}", CHOICES) for i in range(4)]
    return sum(x == "a" for x in xs) + 0.01 * sum(CHOICES.index(x) for x in xs)


def _children(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in study.trials if t.system_attrs.get(PARENT_KEY) is not None]


def _diff(a: dict[str, Any], b: dict[str, Any]) -> set[str]:
    return {k for k in set(a) | set(b) if a.get(k, object()) != b.get(k, object())}


def _assert_valid_lineage(study: optuna.Study) -> None:
    by_number = {t.number: t for t in study.trials}
    for child in _children(study):
        parent = by_number[child.system_attrs[PARENT_KEY]]
        # Planned lazily at the first suggest, so only "finished before the child" holds.
        assert parent.datetime_complete is not None and child.datetime_complete is not None
        assert parent.datetime_complete <= child.datetime_complete
        assert parent.state == TrialState.COMPLETE
        assert parent.values is not None and all(math.isfinite(v) for v in parent.values)
        assert child.user_attrs[USER_ATTR_PARENT] == parent.number
        mutation = child.system_attrs[MUTATION_KEY]
        assert child.user_attrs[USER_ATTR_MUTATED] == ",".join(sorted(mutation))


# --------------------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    "kwargs, text",
    [
        ({"population_size": 1}, "population_size must be an int >= 2, got 1"),
        ({"population_size": 2.5}, "population_size must be an int >= 2, got 2.5"),
        ({"sample_size": 0}, "got 0"),
        ({"population_size": 4, "sample_size": 5}, "population_size=4], got 5"),
        ({"sample_size": True}, "sample_size must be an int >= 1, got True"),
        ({"max_duplicate_retries": -1}, "got -1"),
        ({"numeric_mutation_scale": 0.0}, "got 0.0"),
        ({"numeric_mutation_scale": float("nan")}, "got nan"),
        ({"search_space": "nasbench201"}, "'nasbench201'"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, Any], text: str) -> None:
    with pytest.raises(ValueError, match=text.replace("[", r"\[").replace("]", r"\]")):
        RegularizedEvolutionSampler(**kwargs)


def test_positional_arguments_rejected() -> None:
    with pytest.raises(TypeError):
        RegularizedEvolutionSampler(10, 3)  # type: ignore[call-arg]


# --------------------------------------------------------------------------- algorithm
def test_warm_up_is_random_then_children() -> None:
    sampler = RegularizedEvolutionSampler(population_size=6, sample_size=2, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_categorical_objective, n_trials=20)
    parents = [t.system_attrs[PARENT_KEY] for t in study.trials]
    assert parents[:6] == [None] * 6
    assert all(p is not None for p in parents[6:])
    _assert_valid_lineage(study)


def test_child_is_parent_with_one_decision_changed() -> None:
    sampler = RegularizedEvolutionSampler(
        population_size=5, sample_size=2, skip_duplicates=False, seed=1
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(_categorical_objective, n_trials=40)
    children = _children(study)
    assert len(children) == 35
    for child in children:
        parent = study.trials[child.system_attrs[PARENT_KEY]]
        changed = _diff(child.params, parent.params)
        assert len(changed) == 1
        assert changed == set(child.system_attrs[MUTATION_KEY])
        assert child.user_attrs[USER_ATTR_MUTATED] == changed.pop()


def test_aging_population_and_tournament() -> None:
    # sample_size == population_size: the parent must be the best of the newest 4 completed
    # trials, even though an older trial is much better (it has aged out).
    sampler = RegularizedEvolutionSampler(population_size=4, sample_size=4, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    dist: dict[str, BaseDistribution] = {"x": CategoricalDistribution(list(range(20)))}
    study.add_trial(optuna.create_trial(params={"x": 0}, distributions=dist, value=100.0))
    for i in range(1, 8):
        study.add_trial(optuna.create_trial(params={"x": i}, distributions=dist, value=float(i)))
    # Non-completed trials do not count towards the population.
    study.add_trial(
        optuna.create_trial(params={"x": 19}, distributions=dist, state=TrialState.FAIL)
    )
    study.add_trial(
        optuna.create_trial(params={"x": 18}, distributions=dist, state=TrialState.PRUNED)
    )
    for _ in range(5):
        trial = study.ask(dist)
        parent_number = trial.storage.get_trial_system_attrs(trial._trial_id)[PARENT_KEY]
        complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
        newest = complete[-4:]
        assert parent_number in {t.number for t in newest}
        assert study.trials[parent_number].values == max(t.values for t in newest)
        study.tell(trial, -100.0)  # worse than all: the best stays the parent


def test_failed_pruned_and_non_finite_trials_never_become_parents() -> None:
    def objective(trial: optuna.Trial) -> float:
        value = _categorical_objective(trial)
        kind = trial.number % 5
        if kind == 1:
            raise RuntimeError("simulated failure")
        if kind == 2:
            raise optuna.TrialPruned()
        if kind == 3:
            return float("inf")  # would be the best if it were allowed
        if kind == 4:
            return float("nan")  # optuna marks it FAIL
        return value

    sampler = RegularizedEvolutionSampler(population_size=3, sample_size=3, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=60, catch=(RuntimeError,))
    children = _children(study)
    assert len(children) > 20
    for child in children:
        parent = study.trials[child.system_attrs[PARENT_KEY]]
        assert parent.number % 5 == 0
    _assert_valid_lineage(study)


def test_skip_duplicates() -> None:
    sampler = RegularizedEvolutionSampler(population_size=5, sample_size=5, seed=3)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(_categorical_objective, n_trials=80)
    seen: set[tuple[tuple[str, Any], ...]] = set()
    for t in study.trials:
        key = tuple(sorted(t.params.items()))
        if t.number >= 5:
            assert key not in seen, f"trial {t.number} duplicates an evaluated configuration"
        seen.add(key)


def test_duplicates_happen_without_skipping() -> None:
    # Control for the test above: always mutating the best of a tiny space revisits configs.
    sampler = RegularizedEvolutionSampler(
        population_size=5, sample_size=5, skip_duplicates=False, seed=3
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(_categorical_objective, n_trials=80)
    keys = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(keys)) < len(keys)


def test_conditional_parameters() -> None:
    def objective(trial: optuna.Trial) -> float:
        kind = trial.suggest_categorical("kind", ["conv", "mlp"])
        if kind == "conv":
            k = trial.suggest_categorical("kernel", [1, 3, 5])
            return k + trial.suggest_float("width", 1.0, 2.0)
        return trial.suggest_int("depth", 1, 8) * 1.0

    sampler = RegularizedEvolutionSampler(
        population_size=4, sample_size=2, skip_duplicates=False, seed=0
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=60)
    switched = 0
    for child in _children(study):
        parent = study.trials[child.system_attrs[PARENT_KEY]]
        mutated = set(child.system_attrs[MUTATION_KEY])
        assert len(mutated) == 1
        # Everything the child shares with its parent is inherited, except the mutated one.
        for name in set(child.params) & set(parent.params) - mutated:
            assert child.params[name] == parent.params[name]
        if mutated == {"kind"}:
            switched += 1
            # Parameters of the new branch were sampled (the parent lacked them).
            assert set(child.params) - set(parent.params)
    assert switched > 0
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


@pytest.mark.parametrize(
    "suggest",
    [
        lambda t: t.suggest_float("x", -3.0, 5.0),
        lambda t: t.suggest_float("x", 1e-5, 1.0, log=True),
        lambda t: t.suggest_float("x", 0.0, 1.0, step=0.25),
        lambda t: t.suggest_int("x", -4, 9),
        lambda t: t.suggest_int("x", 1, 1024, log=True),
        lambda t: t.suggest_int("x", 0, 1),  # tiny range: a mutation must flip it
        lambda t: t.suggest_int("x", 0, 10, step=5),
    ],
)
def test_numeric_mutation(suggest: Callable[[optuna.Trial], float]) -> None:
    sampler = RegularizedEvolutionSampler(
        population_size=3, sample_size=2, skip_duplicates=False, seed=0
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: float(suggest(t)), n_trials=30)
    dist = study.trials[0].distributions["x"]
    for child in _children(study):
        parent = study.trials[child.system_attrs[PARENT_KEY]]
        x = child.params["x"]
        assert x != parent.params["x"]
        assert type(x) is type(parent.params["x"])
        assert distribution_contains(dist, dist.to_internal_repr(x))


def test_numeric_mutation_is_local_by_default() -> None:
    # Gaussian steps of 0.2 x range: most children stay close to their parent.
    sampler = RegularizedEvolutionSampler(population_size=5, sample_size=2, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0.0, 100.0), n_trials=200)
    steps = [
        abs(c.params["x"] - study.trials[c.system_attrs[PARENT_KEY]].params["x"])
        for c in _children(study)
    ]
    # A uniform redraw would give a median distance of about 29; N(0, 20) about 13.5.
    assert np.median(steps) < 20.0


class _RecordingSpace(NASBench201SearchSpace):
    """A space whose ``mutate`` enforces a rule: edge 1_0 never becomes ``none``."""

    def __init__(self) -> None:
        super().__init__()
        self.outputs: list[NB201Cell] = []

    def mutate(self, arch: NB201Cell, rng: RandomGenerator) -> NB201Cell:
        child = super().mutate(arch, rng)
        while child.ops[0] == "none":
            child = super().mutate(arch, rng)
        self.outputs.append(child)
        return child


def test_search_space_mutation_with_user_hyperparameters() -> None:
    space = _RecordingSpace()

    def objective(trial: optuna.Trial) -> float:
        cell = space.suggest(trial)
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        return sum(op == "nor_conv_3x3" for op in cell.ops) - abs(math.log10(lr) + 2)

    sampler = RegularizedEvolutionSampler(
        population_size=5, sample_size=3, search_space=space, skip_duplicates=False, seed=0
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=80)
    arch_children = lr_children = 0
    for child in _children(study):
        parent = study.trials[child.system_attrs[PARENT_KEY]]
        changed = _diff(child.params, parent.params)
        assert changed == set(child.system_attrs[MUTATION_KEY])
        if changed == {"lr"}:
            lr_children += 1
        else:
            arch_children += 1
            assert len(changed) == 1 and all(space.owns_param(n) for n in changed)
            cell = space.from_params(child.params)
            assert cell in space.outputs  # the space's own mutate made it
            assert cell.ops[0] != "none" or parent.params["nb201/edge_1_0"] == "none"
            assert child.params["lr"] == parent.params["lr"]  # inherited
    # Architecture decisions are mutated with probability 6/7.
    assert arch_children > 3 * lr_children > 0


def test_search_space_ignored_for_foreign_parameters() -> None:
    space = create_search_space("nasbench201")
    sampler = RegularizedEvolutionSampler(
        population_size=3, sample_size=2, search_space=space, skip_duplicates=False, seed=0
    )
    study = optuna.create_study(sampler=sampler)
    # No parameter belongs to the space: generic mutation throughout.
    study.optimize(_categorical_objective, n_trials=20)
    for child in _children(study):
        assert len(child.system_attrs[MUTATION_KEY]) == 1


def test_search_space_falls_back_when_params_are_not_an_architecture() -> None:
    space = create_search_space("nasbench201")
    ops = list(space.decisions[0].choices)

    def objective(trial: optuna.Trial) -> float:
        # Only two of the space's six decisions: from_params fails, generic mutation is used.
        a = trial.suggest_categorical("nb201/edge_1_0", ops)
        b = trial.suggest_categorical("nb201/edge_2_0", ops)
        return ops.index(a) + ops.index(b)

    sampler = RegularizedEvolutionSampler(
        population_size=3, sample_size=2, search_space=space, skip_duplicates=False, seed=0
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=20)
    children = _children(study)
    assert children
    for child in children:
        parent = study.trials[child.system_attrs[PARENT_KEY]]
        assert len(_diff(child.params, parent.params)) == 1
        assert set(child.params) == {"nb201/edge_1_0", "nb201/edge_2_0"}


# --------------------------------------------------------------------------- multi-objective
def test_multi_objective_parent_is_non_dominated() -> None:
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        a = trial.suggest_float("a", 0.0, 1.0)
        b = trial.suggest_float("b", 0.0, 1.0)
        return a + b, (1 - a) ** 2 + b

    sampler = RegularizedEvolutionSampler(population_size=8, sample_size=8, seed=0)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=50)
    by_number = {t.number: t for t in study.trials}
    for child in _children(study):
        population = [t for t in study.trials[: child.number] if t.state == TrialState.COMPLETE]
        population = population[-8:]
        ranks = fast_non_domination_rank(np.array([t.values for t in population]))
        front = {t.number for t, r in zip(population, ranks) if r == 0}
        assert child.system_attrs[PARENT_KEY] in front
        assert by_number[child.system_attrs[PARENT_KEY]].state == TrialState.COMPLETE


def test_multi_objective_with_maximize_direction() -> None:
    sampler = RegularizedEvolutionSampler(population_size=4, sample_size=4, seed=0)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    dist: dict[str, BaseDistribution] = {"x": FloatDistribution(0, 1)}
    for x, values in [(0.1, (1.0, 5.0)), (0.2, (0.5, 9.0)), (0.3, (3.0, 9.0)), (0.4, (0.0, 1.0))]:
        study.add_trial(optuna.create_trial(params={"x": x}, distributions=dist, values=values))
    trial = study.ask(dist)
    parent = trial.storage.get_trial_system_attrs(trial._trial_id)[PARENT_KEY]
    # Trial 1 is dominated by trial 2 (lower accuracy, same latency); 0, 2, 3 form the front.
    assert parent in {0, 2, 3}


@pytest.mark.parametrize(
    "use_constraints_func",
    [
        True,
        pytest.param(
            False,
            marks=pytest.mark.skipif(
                not hasattr(optuna.Trial, "set_constraint"),
                reason="trial.set_constraint is new in Optuna 5",
            ),
        ),
    ],
)
def test_constraints_prefer_feasible_parents(use_constraints_func: bool) -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        if not use_constraints_func:
            trial.set_constraint("c", x - 0.3)
        return x  # maximize: the best values are infeasible (x > 0.3)

    def constraints(trial: FrozenTrial) -> Sequence[float]:
        return [trial.params["x"] - 0.3]

    sampler = RegularizedEvolutionSampler(
        population_size=10,
        sample_size=10,
        constraints_func=constraints if use_constraints_func else None,
        seed=0,
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=60)
    n_checked = 0
    for child in _children(study):
        population = [t for t in study.trials[: child.number] if t.state == TrialState.COMPLETE]
        population = population[-10:]
        if any(t.params["x"] <= 0.3 for t in population):
            n_checked += 1
            assert study.trials[child.system_attrs[PARENT_KEY]].params["x"] <= 0.3
    assert n_checked > 10


# --------------------------------------------------------------------------- state & workers
def test_new_sampler_object_continues_the_evolution(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(
        storage=storage,
        study_name="s",
        sampler=RegularizedEvolutionSampler(population_size=5, sample_size=2, seed=0),
    )
    study.optimize(_categorical_objective, n_trials=8)
    resumed = optuna.load_study(
        study_name="s",
        storage=storage,
        sampler=RegularizedEvolutionSampler(population_size=5, sample_size=2, seed=0),
    )
    resumed.optimize(_categorical_objective, n_trials=4)
    # No new warm-up: the population was read back from storage.
    assert all(t.system_attrs[PARENT_KEY] is not None for t in resumed.trials[5:])
    _assert_valid_lineage(resumed)


def test_plan_is_read_back_from_storage_mid_trial() -> None:
    sampler = RegularizedEvolutionSampler(population_size=3, sample_size=3, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_categorical_objective, n_trials=6)
    trial = study.ask()
    trial.suggest_categorical("x0", CHOICES)
    study.sampler = RegularizedEvolutionSampler(population_size=3, sample_size=3, seed=99)
    for i in range(1, 4):
        trial.suggest_categorical(f"x{i}", CHOICES)
    study.tell(trial, 0.0)
    child = study.trials[-1]
    parent = study.trials[child.system_attrs[PARENT_KEY]]
    # The second sampler followed the first one's plan: one change from the parent.
    assert _diff(child.params, parent.params) == set(child.system_attrs[MUTATION_KEY])
    assert len(child.system_attrs[MUTATION_KEY]) == 1


def test_threads() -> None:
    sampler = RegularizedEvolutionSampler(population_size=5, sample_size=3, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(_categorical_objective, n_trials=60, n_jobs=4)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert len(_children(study)) >= 40
    _assert_valid_lineage(study)


def test_deepcopy_and_pickle() -> None:
    sampler = RegularizedEvolutionSampler(population_size=3, sample_size=2, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_categorical_objective, n_trials=5)
    for clone in (copy.deepcopy(sampler), pickle.loads(pickle.dumps(sampler))):
        study.sampler = clone
        study.optimize(_categorical_objective, n_trials=3)
    _assert_valid_lineage(study)


def test_hyperband_pruner() -> None:
    def objective(trial: optuna.Trial) -> float:
        value = _categorical_objective(trial)
        for step in range(1, 10):
            trial.report(value * step / 9, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    sampler = RegularizedEvolutionSampler(population_size=4, sample_size=2, seed=0)
    study = optuna.create_study(
        direction="maximize",
        sampler=sampler,
        pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=9, reduction_factor=3),
    )
    study.optimize(objective, n_trials=80)
    assert {TrialState.COMPLETE, TrialState.PRUNED} >= {t.state for t in study.trials}
    assert any(t.state == TrialState.PRUNED for t in study.trials)
    assert len(_children(study)) > 0
    _assert_valid_lineage(study)


class _FilteredStudy(optuna.Study):
    """A study whose trial list is filtered, like a pruner's bracket study might be."""

    def _get_trials(
        self, deepcopy: bool = True, states: Any = None, use_cache: bool = False
    ) -> list[FrozenTrial]:
        trials = super()._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)
        return [t for t in trials if t.number % 3 == 0]


def test_filtered_study_with_small_population() -> None:
    sampler = RegularizedEvolutionSampler(population_size=4, sample_size=3, seed=0)
    base = optuna.create_study(direction="maximize", sampler=sampler)
    study = _FilteredStudy(study_name=base.study_name, storage=base._storage, sampler=sampler)
    dist: dict[str, BaseDistribution] = {
        f"x{i}": CategoricalDistribution(CHOICES) for i in range(4)
    }
    parents = []
    for _ in range(30):
        trial = study.ask(dist)
        study.tell(trial, _categorical_objective(trial))
        parents.append(trial.storage.get_trial_system_attrs(trial._trial_id)[PARENT_KEY])
    # Only every third trial is visible: random until 4 of them complete (trial 9 is the 4th).
    assert parents[:10] == [None] * 10
    assert all(p is not None and p % 3 == 0 for p in parents[10:])


# --------------------------------------------------------------------------- reproducibility
def _params_sequence(seed: int, n_trials: int = 40) -> list[list[tuple[str, Any]]]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = create_search_space("nasbench201")

    def objective(trial: optuna.Trial) -> float:
        cell = space.suggest(trial)
        x = trial.suggest_float("x", -1.0, 1.0)
        return sum(op == "nor_conv_3x3" for op in cell.ops) - x**2

    sampler = RegularizedEvolutionSampler(
        population_size=5, sample_size=2, search_space=space, seed=seed
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=n_trials)
    return [sorted(t.params.items()) for t in study.trials]


def test_seed_reproducibility_in_process() -> None:
    first = _params_sequence(7)
    assert first == _params_sequence(7)
    assert first != _params_sequence(8)


def _spawnable(monkeypatch: pytest.MonkeyPatch, name: str) -> Callable[..., None]:
    """This file's function ``name``, picklable by reference for a spawned child.

    pytest (``--import-mode=importlib``) imports this file under a name that a spawned process
    cannot import, so the child gets this folder on ``sys.path`` and imports the file by its own
    name.
    """
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    return getattr(importlib.import_module(Path(__file__).stem), name)


def _worker_sequence(seed: int, queue: Any) -> None:
    queue.put(_params_sequence(seed))


@pytest.mark.slow  # spawning imports torch: several seconds
def test_seed_reproducibility_in_spawned_process(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_spawnable(monkeypatch, "_worker_sequence"), args=(7, queue))
    process.start()
    spawned = queue.get(timeout=120)
    process.join(timeout=60)
    assert process.exitcode == 0
    assert [[tuple(p) for p in t] for t in spawned] == _params_sequence(7)


def _worker_optimize(path: str, worker: int, barrier: Any) -> None:
    import time

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(path))
    study = optuna.load_study(
        study_name="mp",
        storage=storage,
        sampler=RegularizedEvolutionSampler(population_size=4, sample_size=2, seed=worker),
    )
    barrier.wait(timeout=120)

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", worker)
        time.sleep(0.02)  # let the two workers interleave
        return _categorical_objective(trial)

    study.optimize(objective, n_trials=15)


@pytest.mark.slow  # two spawned processes
def test_processes_share_one_evolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "journal.log")
    optuna.create_study(study_name="mp", storage=JournalStorage(JournalFileBackend(path)))
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    target = _spawnable(monkeypatch, "_worker_optimize")
    processes = [ctx.Process(target=target, args=(path, w, barrier)) for w in range(2)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=180)
        assert p.exitcode == 0
    study = optuna.load_study(study_name="mp", storage=JournalStorage(JournalFileBackend(path)))
    assert len(study.trials) == 30
    children = _children(study)
    assert len(children) >= 20
    _assert_valid_lineage(study)
    # Workers breed from each other's trials: one evolution, not two.
    cross = [
        c
        for c in children
        if study.trials[c.system_attrs[PARENT_KEY]].user_attrs["worker"] != c.user_attrs["worker"]
    ]
    assert cross


def test_an_enqueued_architecture_is_not_recorded_as_mutated() -> None:
    """A trial whose cell is enqueued (a warm start) and whose learning rate is free: the
    sampler plans a child for the free parameter, but the cell's fixed values are kept, so no
    cell parameter may be recorded as mutated (its note would show a change that never
    happened)."""
    from optuna_nas.search_spaces import create_search_space

    space = create_search_space("nasbench201")
    sampler = RegularizedEvolutionSampler(population_size=3, sample_size=2, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        arch = space.suggest(trial)
        lr = trial.suggest_float("lr", 1e-3, 1.0, log=True)
        return len(space.to_string(arch)) * lr

    study.optimize(objective, n_trials=4)
    rng = np.random.default_rng(0)
    for _ in range(8):
        study.enqueue_trial(space.to_params(space.sample(rng)))
    study.optimize(objective, n_trials=8)
    enqueued = study.trials[4:]
    children = [t for t in enqueued if t.system_attrs.get(PARENT_KEY) is not None]
    assert children  # the population is full: each trial is planned as a child
    for trial in children:
        mutated = set(trial.system_attrs.get(MUTATION_KEY, {}))
        assert not any(space.owns_param(name) for name in mutated), (trial.number, mutated)
        assert mutated <= {"lr"}
