"""Killed workers on PostgreSQL: the stale trial fails with a reason and is re-run once.

A worker process hangs in its objective after reporting one intermediate value and is killed
with a real SIGKILL; a worker started afterwards (heartbeat every second, stale after two)
fails the trial with ``fail_reason`` "stale: ..." and re-runs it, once, with its parameters and
its learning curve. Also: several processes opening an empty database at the same moment.
"""

from __future__ import annotations

from collections import Counter
import time
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest

from optuna_nas.samplers._evolution import PARENT_KEY
from optuna_nas.storages import STALE_REASON_PREFIX
from optuna_nas.storages import create_storage
from optuna_nas.storages import retried_trial_number


if TYPE_CHECKING:
    from pathlib import Path

    from _postgres import PostgresServer
    from conftest import Workers  # tests/storages/conftest.py, the ``workers`` fixture


pytestmark = pytest.mark.postgres

HEARTBEAT = ("--heartbeat-interval", 1, "--grace-period", 2)
# Seconds after the kill by which the killed trial's heartbeat is surely older than the grace
# period (2 s) plus one interval.
STALE_AFTER = 3.5
STEPS = 3


def _worker(url: str, sampler: str, n_trials: int, *extra: object) -> list:
    return [
        "optimize",
        *("--storage", url, "--sampler", sampler, "--seed", 0, "--n-trials", n_trials),
        *("--steps", STEPS, *HEARTBEAT, *extra),
    ]


def _kill_while_hanging(workers: Workers, url: str, sampler: str) -> tuple[int, float]:
    """Start a worker that hangs in its first trial, SIGKILL it; (trial number, kill time)."""
    workers.new_round()
    hanging = workers.start(
        *_worker(url, sampler, 1, "--hang", "--signal-dir", workers.signal_dir)
    )
    (workers.signal_dir / "go").touch()
    number = int(workers.wait_for_file("hanging"))
    time.sleep(1.5)  # a heartbeat or two while it hangs: the trial was alive
    workers.sigkill(hanging)
    return number, time.monotonic()


def _trials(url: str) -> list[FrozenTrial]:
    study = optuna.load_study(study_name="nas", storage=create_storage(url))
    return sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)


def _check_stale(trial: FrozenTrial, steps: int) -> None:
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["fail_reason"].startswith(STALE_REASON_PREFIX)
    assert sorted(trial.intermediate_values) == list(range(steps))


@pytest.mark.parametrize("sampler", ["evolution", pytest.param("rnn", marks=pytest.mark.slow)])
def test_killed_trial_fails_as_stale_and_reruns_once(
    workers: Workers, postgres_db_url: str, sampler: str
) -> None:
    url = postgres_db_url
    storage = create_storage(url, heartbeat_interval=1, grace_period=2)
    optuna.create_study(study_name="nas", storage=storage, direction="maximize")
    killed, killed_at = _kill_while_hanging(workers, url, sampler)
    assert killed == 0
    assert _trials(url)[0].state == TrialState.RUNNING  # nobody has looked yet

    time.sleep(max(0.0, killed_at + STALE_AFTER - time.monotonic()))
    n_more = 12
    workers.finish(workers.start(*_worker(url, sampler, n_more)))

    trials = _trials(url)
    assert [t.number for t in trials] == list(range(1 + n_more))
    stale = trials[0]
    _check_stale(stale, steps=1)
    reruns = [t for t in trials if "failed_trial" in t.system_attrs]
    assert [t.number for t in reruns] == [1], "the stale trial is re-run exactly once"
    rerun = reruns[0]
    assert rerun.system_attrs["failed_trial"] == 0 and retried_trial_number(rerun) == 0
    assert rerun.state == TrialState.COMPLETE
    assert rerun.params == stale.params and rerun.distributions == stale.distributions
    # The curve continues: the stale run's step 0, then the re-run's steps 1 and 2.
    assert rerun.intermediate_values[0] == stale.intermediate_values[0]
    assert sorted(rerun.intermediate_values) == list(range(STEPS))
    assert "fail_reason" not in rerun.user_attrs
    assert Counter(t.state for t in trials) == {TrialState.FAIL: 1, TrialState.COMPLETE: n_more}

    if sampler == "evolution":
        children = [t for t in trials if t.system_attrs.get(PARENT_KEY) is not None]
        assert len(children) >= 3, "evolution never got past its warm-up"
        assert all(t.system_attrs[PARENT_KEY] != stale.number for t in children)


def test_a_rerun_killed_again_is_not_rerun_with_max_retry_1(
    workers: Workers, postgres_db_url: str
) -> None:
    url = postgres_db_url
    storage = create_storage(url, heartbeat_interval=1, grace_period=2, max_retry=1)
    optuna.create_study(study_name="nas", storage=storage, direction="maximize")
    first, killed_at = _kill_while_hanging(workers, url, "evolution")
    time.sleep(max(0.0, killed_at + STALE_AFTER - time.monotonic()))
    # The next worker fails trial 0, takes its re-run (trial 1) and hangs in it: killed too.
    second, killed_at = _kill_while_hanging(workers, url, "evolution")
    assert (first, second) == (0, 1)
    time.sleep(max(0.0, killed_at + STALE_AFTER - time.monotonic()))
    workers.finish(workers.start(*_worker(url, "evolution", 2)))

    trials = _trials(url)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    _check_stale(trials[0], steps=1)
    _check_stale(trials[1], steps=2)  # the re-run's curve: step 0 inherited, step 1 its own
    assert trials[1].system_attrs["failed_trial"] == 0
    assert trials[1].system_attrs["retry_history"] == [0]
    # Trial 1 was the one retry: trials 2 and 3 are new ones, not re-runs of it.
    assert [t.state for t in trials[2:]] == [TrialState.COMPLETE] * 2
    assert not any("failed_trial" in t.system_attrs for t in trials[2:])


@pytest.mark.slow
def test_processes_opening_an_empty_database_together(
    workers: Workers, postgres_server: PostgresServer
) -> None:
    """4 processes run create_storage + create_study(load_if_exists=True) on an empty database
    at the same moment (PostgreSQL's schema-creation race), 5 times: none dies."""
    for _ in range(5):
        url = postgres_server.create_database()
        workers.new_round()
        processes = [
            workers.start(
                "create", "--storage", url, "--worker", w, "--signal-dir", workers.signal_dir
            )
            for w in range(4)
        ]
        workers.go(len(processes))
        for process in processes:
            workers.finish(process)
        summaries = optuna.get_all_study_summaries(create_storage(url))
        assert [s.study_name for s in summaries] == ["nas"]


@pytest.mark.slow
def test_processes_opening_an_empty_sqlite_file_together(workers: Workers, tmp_path: Path) -> None:
    """The same race on SQLite, which reports it as a unique violation on alembic_version."""
    for round_ in range(5):
        url = f"sqlite:///{tmp_path / f'race{round_}.db'}"
        workers.new_round()
        processes = [
            workers.start(
                "create", "--storage", url, "--worker", w, "--signal-dir", workers.signal_dir
            )
            for w in range(4)
        ]
        workers.go(len(processes))
        for process in processes:
            workers.finish(process)
        summaries = optuna.get_all_study_summaries(create_storage(url))
        assert [s.study_name for s in summaries] == ["nas"]
