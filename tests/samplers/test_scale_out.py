"""Both NAS samplers scaled out: resumed studies, same-seeded workers, failed and retried trials.

Every random draw of a trial is keyed by ``(seed, trial number, purpose)``, so a study resumed
with a new sampler object continues exactly as an uninterrupted one, workers given one seed do
not repeat each other, and what a sampler learns comes from the storage's finished trials only.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import inspect
import math
from pathlib import Path
import time
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.samplers import BaseSampler
from optuna.samplers import RandomSampler
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest

from optuna_nas.samplers import RegularizedEvolutionSampler
from optuna_nas.samplers import RNNControllerSampler
from optuna_nas.samplers._evolution import PARENT_KEY
from optuna_nas.samplers._randomness import derive_seed
from optuna_nas.samplers._randomness import sample_uniform
from optuna_nas.samplers._randomness import trial_random_state
from optuna_nas.samplers._rnn_policy import ControllerPolicy
from optuna_nas.samplers._rnn_policy import Step
from optuna_nas.search_spaces import create_search_space


optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = create_search_space("nasbench201")
ARCH_PARAMS = tuple(d.name for d in SPACE.decisions)

SamplerFactory = Callable[[int | None], BaseSampler]


def _evolution(seed: int | None) -> BaseSampler:
    # A small population, so that most of the trials below are children, not warm-up.
    return RegularizedEvolutionSampler(
        population_size=10, sample_size=3, search_space=SPACE, seed=seed
    )


def _rnn(seed: int | None) -> BaseSampler:
    return RNNControllerSampler(seed=seed, hidden_size=16)


SAMPLERS = [pytest.param(_evolution, id="evolution"), pytest.param(_rnn, id="rnn")]


def _conditional_objective(trial: optuna.Trial) -> float:
    """Deterministic and define-by-run: numeric parameters exist only for some cells."""
    cell = SPACE.suggest(trial)
    score = sum(op == "nor_conv_3x3" for op in cell.ops) + 0.1 * sum(
        op == "skip_connect" for op in cell.ops
    )
    if cell.ops[0] != "none":
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        score -= abs(math.log10(lr) + 2.0)
        if cell.ops[1] == "nor_conv_3x3":
            score += trial.suggest_int("width", 8, 64, step=8) / 640
    return score


def _architecture_objective(trial: optuna.Trial) -> float:
    cell = SPACE.suggest(trial)
    return sum(op == "nor_conv_3x3" for op in cell.ops) + 0.1 * sum(
        op == "skip_connect" for op in cell.ops
    )


def _params(study: optuna.Study) -> list[list[tuple[str, Any]]]:
    return [sorted(t.params.items()) for t in study.trials]


def _architecture(trial: FrozenTrial) -> tuple[Any, ...]:
    return tuple(trial.params[name] for name in ARCH_PARAMS)


# --------------------------------------------------------------------------- resume
def _resumed_equals_uninterrupted(
    make: SamplerFactory, storage: str | None, n_first: int, n_total: int
) -> None:
    uninterrupted = optuna.create_study(direction="maximize", sampler=make(0))
    uninterrupted.optimize(_conditional_objective, n_trials=n_total)

    first = optuna.create_study(
        direction="maximize",
        storage=storage or optuna.storages.InMemoryStorage(),
        study_name="resume",
        sampler=make(0),
    )
    first.optimize(_conditional_objective, n_trials=n_first)
    resumed = optuna.load_study(study_name="resume", storage=first._storage, sampler=make(0))
    resumed.optimize(_conditional_objective, n_trials=n_total - n_first)

    assert _params(resumed) == _params(uninterrupted)
    # The comparison means something: the space's numeric parameters are conditional, and
    # the run is not a repetition of a few points.
    assert len({tuple(p) for p in _params(resumed)}) > n_total // 2
    assert {len(t.params) for t in resumed.trials} >= {len(ARCH_PARAMS), len(ARCH_PARAMS) + 1}


@pytest.mark.parametrize("make", SAMPLERS)
def test_resumed_study_equals_uninterrupted(make: SamplerFactory) -> None:
    _resumed_equals_uninterrupted(make, None, n_first=40, n_total=80)


@pytest.mark.slow
@pytest.mark.parametrize("n_first", [5, 30])  # in the warm-up, and well after it
@pytest.mark.parametrize("make", SAMPLERS)
def test_resumed_sqlite_study_equals_uninterrupted(
    make: SamplerFactory, n_first: int, tmp_path: Path
) -> None:
    _resumed_equals_uninterrupted(make, f"sqlite:///{tmp_path / 'db.sqlite'}", n_first, 60)


# --------------------------------------------------------------------------- workers
def _run_workers(samplers: Sequence[BaseSampler], schedule: Sequence[int]) -> optuna.Study:
    """Workers on one storage, interleaved in one process following ``schedule``.

    At its turn a worker first finishes its running trial (if any), then starts a new one and
    suggests all its parameters: while a worker's trial runs, the others start theirs, as
    parallel workers would.
    """
    storage = optuna.storages.InMemoryStorage()
    studies = [
        optuna.create_study(
            direction="maximize",
            storage=storage,
            study_name="workers",
            sampler=sampler,
            load_if_exists=True,
        )
        for sampler in samplers
    ]
    running: dict[int, tuple[optuna.Trial, float]] = {}
    for worker in schedule:
        if worker in running:
            trial, value = running.pop(worker)
            studies[worker].tell(trial, value)
        trial = studies[worker].ask()
        trial.set_user_attr("worker", worker)
        running[worker] = (trial, _architecture_objective(trial))
    for worker, (trial, value) in running.items():
        studies[worker].tell(trial, value)
    return studies[0]


def _cross_worker_repeats(study: optuna.Study) -> int:
    """How often the k-th trials of two different workers have the same architecture."""
    by_worker: dict[int, list[tuple[Any, ...]]] = {}
    for t in study.trials:
        by_worker.setdefault(t.user_attrs["worker"], []).append(_architecture(t))
    sequences = list(by_worker.values())
    return sum(
        x == y for i, a in enumerate(sequences) for b in sequences[i + 1 :] for x, y in zip(a, b)
    )


N_WORKERS = 4
N_WORKER_TRIALS = 120
# Chance margin: 120 uniform cells out of 15,625 hold ~0.5 repeated pairs on average.
MARGIN = 3


def _schedules() -> dict[str, list[int]]:
    rounds = N_WORKER_TRIALS // N_WORKERS
    shuffled = np.random.default_rng(0).permutation(np.repeat(np.arange(N_WORKERS), rounds))
    return {
        "round_robin": list(range(N_WORKERS)) * rounds,
        "shuffled": [int(w) for w in shuffled],
    }


@pytest.mark.parametrize("schedule_name", ["round_robin", "shuffled"])
@pytest.mark.parametrize("make", SAMPLERS)
def test_same_seeded_workers_do_not_repeat_each_other(
    make: SamplerFactory, schedule_name: str
) -> None:
    schedule = _schedules()[schedule_name]
    study = _run_workers([make(0) for _ in range(N_WORKERS)], schedule)
    # Optuna's RandomSampler given one seed per worker would repeat itself, the very failure
    # tested here; independent draws are the baseline.
    baseline = _run_workers([RandomSampler(seed=w) for w in range(N_WORKERS)], schedule)
    assert len(study.trials) == len(baseline.trials) == N_WORKER_TRIALS

    distinct = len({_architecture(t) for t in study.trials})
    baseline_distinct = len({_architecture(t) for t in baseline.trials})
    assert distinct >= baseline_distinct - MARGIN
    assert _cross_worker_repeats(study) <= _cross_worker_repeats(baseline) + MARGIN


@pytest.mark.parametrize("make", SAMPLERS)
def test_unseeded_samplers_differ(make: SamplerFactory) -> None:
    runs = []
    for _ in range(2):
        study = optuna.create_study(direction="maximize", sampler=make(None))
        study.optimize(_conditional_objective, n_trials=15)
        runs.append(_params(study))
    assert runs[0] != runs[1]


@pytest.mark.parametrize("make", SAMPLERS)
def test_reseed_rng_changes_unseeded_draws_only(make: SamplerFactory) -> None:
    def first_trials(sampler: BaseSampler, reseed: bool) -> list[list[tuple[str, Any]]]:
        if reseed:
            sampler.reseed_rng()
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(_conditional_objective, n_trials=12)
        return _params(study)

    unseeded = make(None)
    before = first_trials(unseeded, reseed=False)
    assert first_trials(unseeded, reseed=False) == before  # the same sampler, the same numbers
    assert first_trials(unseeded, reseed=True) != before
    # A seeded sampler keeps its seed: reproducible whatever Optuna's threads call.
    assert first_trials(make(0), reseed=True) == first_trials(make(0), reseed=False)


# --------------------------------------------------------------------------- failures
Rewards = list[tuple[tuple[Step, ...], float]]


@pytest.fixture
def rewards(monkeypatch: pytest.MonkeyPatch) -> Rewards:
    """Every ``(decisions, reward)`` that any RNN controller learns from in the test."""
    records: Rewards = []
    apply = ControllerPolicy.apply

    def recording_apply(self: ControllerPolicy, steps: Sequence[Step], reward: float) -> None:
        records.append((tuple(steps), reward))
        apply(self, steps, reward)

    monkeypatch.setattr(ControllerPolicy, "apply", recording_apply)
    return records


def _learned_from(sampler: BaseSampler, study: optuna.Study, rewards: Rewards) -> set[int]:
    """Numbers of the trials the sampler used: parents, or trials whose reward it applied."""
    if isinstance(sampler, RegularizedEvolutionSampler):
        parents = (t.system_attrs.get(PARENT_KEY) for t in study.trials)
        return {p for p in parents if p is not None}
    assert isinstance(sampler, RNNControllerSampler)
    by_reward: dict[tuple[tuple[Step, ...], float | None], set[int]] = {}
    for t in study.trials:
        if t.state == TrialState.COMPLETE:
            key = (tuple(sampler._steps(t)), t.value)
            by_reward.setdefault(key, set()).add(t.number)
    used: set[int] = set()
    for key in rewards:
        assert key in by_reward, "the controller learned from something but a completed trial"
        used |= by_reward[key]
    n_complete = sum(t.state == TrialState.COMPLETE for t in study.trials)
    # Not vacuous: every completed trial but those finished after the last look is applied.
    assert len(rewards) >= n_complete - 1
    return used


def _failing_objective(trial: optuna.Trial) -> float:
    value = _conditional_objective(trial)
    if trial.number % 3 == 1:
        # Good-looking failures: were they learned from, they would be the best parents.
        trial.set_user_attr("would_have_been", value + 100.0)
        raise RuntimeError("worker lost")
    return value


@pytest.mark.parametrize("make", SAMPLERS)
def test_failed_trials_are_never_learned_from(make: SamplerFactory, rewards: Rewards) -> None:
    sampler = make(0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(_failing_objective, n_trials=45, catch=(RuntimeError,))
    failed = {t.number for t in study.trials if t.state == TrialState.FAIL}
    assert len(failed) == 15
    learned = _learned_from(sampler, study, rewards)
    assert learned and not learned & failed


def _retry_callback() -> Any:
    # Optuna 5 renamed RetryFailedTrialCallback (4.8) to RetryHeartbeatStaleTrialCallback.
    callback = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    if callback is None:
        callback = optuna.storages.RetryFailedTrialCallback
    return callback(max_retry=1)


def _crash_mid_trial(study: optuna.Study, n_params: int) -> optuna.Trial:
    """A worker starts a trial, suggests its first ``n_params`` parameters and vanishes."""
    trial = study.ask()
    for decision in SPACE.decisions[:n_params]:
        trial.suggest_categorical(decision.name, decision.choices)
    return trial


def _check_retry(
    study: optuna.Study, sampler: BaseSampler, failed_number: int, rewards: Rewards
) -> None:
    failed = study.trials[failed_number]
    assert failed.state == TrialState.FAIL
    (retried,) = [t for t in study.trials if t.system_attrs.get("failed_trial") == failed_number]
    assert retried.state == TrialState.COMPLETE
    # Exactly the fixed parameters, the others sampled afresh.
    assert {k: retried.params[k] for k in failed.params} == failed.params
    assert set(retried.params) >= set(ARCH_PARAMS)
    if isinstance(sampler, RegularizedEvolutionSampler):
        # The retry copied a child's lineage attributes: the case that must not break.
        assert failed.system_attrs[PARENT_KEY] is not None
        assert PARENT_KEY in retried.system_attrs
    learned = _learned_from(sampler, study, rewards)
    assert failed_number not in learned
    later = [t for t in study.trials if t.number > retried.number]
    assert later and all(t.state == TrialState.COMPLETE for t in later)


@pytest.mark.parametrize("n_params", [len(ARCH_PARAMS), 3])  # crashed after / while suggesting
@pytest.mark.parametrize("make", SAMPLERS)
def test_retried_failed_trial_runs_with_its_fixed_params(
    make: SamplerFactory, n_params: int, rewards: Rewards
) -> None:
    study = optuna.create_study(direction="maximize", sampler=make(0))
    study.optimize(_conditional_objective, n_trials=20)
    crashed = _crash_mid_trial(study, n_params)
    study.tell(crashed, state=TrialState.FAIL)
    _retry_callback()(study, study.trials[crashed.number])
    # Another worker, with a sampler object of its own, picks up the retry.
    sampler = make(0)
    other = optuna.load_study(study_name=study.study_name, storage=study._storage, sampler=sampler)
    other.optimize(_conditional_objective, n_trials=10)
    _check_retry(other, sampler, crashed.number, rewards)


def _heartbeat_storage(url: str) -> optuna.storages.RDBStorage:
    # Optuna 5 renamed the argument failed_trial_callback (4.8).
    parameters = inspect.signature(optuna.storages.RDBStorage).parameters
    name = (
        "heartbeat_stale_trial_callback"
        if "heartbeat_stale_trial_callback" in parameters
        else "failed_trial_callback"
    )
    kwargs = {name: _retry_callback()}
    return optuna.storages.RDBStorage(url, heartbeat_interval=1, grace_period=1, **kwargs)


# study.ask() on a heartbeat storage warns that heartbeats are meant for optimize(): here the
# asked trial is the one whose worker died.
@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
@pytest.mark.slow  # SQLite commits and a 2 s wait; the in-memory retry test above is quick
@pytest.mark.parametrize("make", SAMPLERS)
def test_heartbeat_stale_trial_is_retried_with_its_fixed_params(
    make: SamplerFactory, tmp_path: Path, rewards: Rewards
) -> None:
    storage = _heartbeat_storage(f"sqlite:///{tmp_path / 'db.sqlite'}")
    study = optuna.create_study(
        direction="maximize", storage=storage, study_name="hb", sampler=make(0)
    )
    study.optimize(_conditional_objective, n_trials=12)  # the crashed trial is a child
    crashed = _crash_mid_trial(study, len(ARCH_PARAMS))
    storage.record_heartbeat(crashed._trial_id)  # then nothing: the worker is gone
    # Past the grace period of 1 s, in SQLite's whole seconds whatever the fraction now.
    time.sleep(2.1)
    sampler = make(0)
    other = optuna.load_study(study_name="hb", storage=storage, sampler=sampler)
    other.optimize(_conditional_objective, n_trials=3)  # fails the stale trial, runs its retry
    _check_retry(other, sampler, crashed.number, rewards)


# --------------------------------------------------------------------------- the helper
@pytest.mark.parametrize(
    "distribution",
    [
        FloatDistribution(1e-4, 1e-1, log=True),
        FloatDistribution(-1.0, 1.0, step=0.25),
        IntDistribution(8, 64, step=8),
        CategoricalDistribution(["a", "b", "c"]),
    ],
)
def test_sample_uniform_draws_as_random_sampler(distribution: BaseDistribution) -> None:
    # So the RNN controller's floats are what its former per-parameter RandomSampler drew.
    study = optuna.create_study()
    trial = study.ask()
    for number in range(5):
        seed = derive_seed(3, number, "x") % 2**32
        expected = RandomSampler(seed=seed).sample_independent(
            study, study.trials[-1], "x", distribution
        )
        assert sample_uniform(distribution, trial_random_state(3, number, "x")) == expected
    study.tell(trial, 0.0)


@pytest.mark.parametrize("make", SAMPLERS)
def test_a_sampler_moved_to_a_new_study_starts_over(
    make: SamplerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A freed storage's id() can be reused by the next storage (it happened in CI): per-study
    # state keyed by id() would carry the first study's history into the second. Every id()
    # in the samplers' modules is made equal here, to make that reuse certain.
    from optuna_nas.samplers import _evolution
    from optuna_nas.samplers import _rnn_controller

    for module in (_evolution, _rnn_controller):
        monkeypatch.setattr(module, "id", lambda _: 1, raising=False)

    def first_trials(sampler: BaseSampler) -> list[list[tuple[str, Any]]]:
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(_conditional_objective, n_trials=8)
        return _params(study)

    fresh = first_trials(make(0))
    moved = make(0)
    for _ in range(3):
        assert first_trials(moved) == fresh
