"""Several worker processes on one study: PostgreSQL, a journal file, Optuna's gRPC proxy.

W worker processes (the same sampler, all seeded 0) run N trials each on one study that the
test created before they start; a barrier makes them start their trials together. Afterwards
the study holds exactly W * N finished trials numbered 0 .. W*N-1, every worker ran its N, and
the samplers drew on the other workers' trials: evolution parents of other workers, and an RNN
controller baseline (an average of the rewards it learned from) that only other workers'
rewards explain (worker w's rewards lie in [10 w, 10 w + 1)).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
import socket
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest

from optuna_nas.samplers._evolution import PARENT_KEY
from optuna_nas.storages import create_storage


if TYPE_CHECKING:
    from conftest import Workers  # tests/storages/conftest.py, the ``workers`` fixture

W = 4
N = 8
# Worker w's values are in [OFFSET * w, OFFSET * w + 1): the RNN check tells workers apart.
OFFSET = 10.0


def run_workers(workers: Workers, url: str, sampler: str) -> list[FrozenTrial]:
    """The scenario: create the study once, run W workers together, return its trials."""
    optuna.create_study(study_name="nas", storage=create_storage(url), direction="maximize")
    processes = [
        workers.start(
            "optimize",
            *("--storage", url, "--sampler", sampler, "--seed", 0),
            *("--n-trials", N, "--worker", w, "--offset", OFFSET if sampler == "rnn" else 0),
            *("--signal-dir", workers.signal_dir),
        )
        for w in range(W)
    ]
    workers.go(W)
    for process in processes:
        workers.finish(process)
    study = optuna.load_study(study_name="nas", storage=create_storage(url))
    trials = study.get_trials(deepcopy=False)
    check_trials(trials)
    check_sampler_used_all_workers(trials, sampler)
    return trials


def check_trials(trials: list[FrozenTrial]) -> None:
    assert sorted(t.number for t in trials) == list(range(W * N))
    assert Counter(t.state for t in trials) == {TrialState.COMPLETE: W * N}
    assert Counter(t.user_attrs["worker"] for t in trials) == {w: N for w in range(W)}
    assert len({t.user_attrs["pid"] for t in trials}) == W


def check_sampler_used_all_workers(trials: list[FrozenTrial], sampler: str) -> None:
    by_number = {t.number: t for t in trials}
    worker = {t.number: t.user_attrs["worker"] for t in trials}
    if sampler == "evolution":
        children = [t for t in trials if t.system_attrs.get(PARENT_KEY) is not None]
        assert children, "no trial was a mutated child (evolution never left its warm-up)"
        for child in children:
            parent = by_number[child.system_attrs[PARENT_KEY]]
            assert parent.state == TrialState.COMPLETE and parent.number != child.number
        foreign = [t for t in children if worker[t.system_attrs[PARENT_KEY]] != worker[t.number]]
        assert foreign, "every child's parent ran on the child's own worker"
        # Parents come from more than one worker, and children on more than one get them.
        assert len({worker[t.system_attrs[PARENT_KEY]] for t in children}) > 1
        assert len({worker[t.number] for t in foreign}) > 1
    elif sampler == "rnn":
        for t in trials:
            assert "RNNControllerSampler:log_prob" in t.system_attrs
        for w in range(W):
            baselines = [
                t.system_attrs["RNNControllerSampler:baseline"]
                for t in trials
                if worker[t.number] == w and "RNNControllerSampler:baseline" in t.system_attrs
            ]
            # The baseline is a moving average of the rewards the worker's controller learned
            # from: outside [10 w, 10 w + 1), it includes other workers' rewards.
            outside = [b for b in baselines if not OFFSET * w <= b < OFFSET * w + 1]
            assert outside, f"worker {w}'s controller learned from its own trials only"
    else:
        raise AssertionError(sampler)


@pytest.mark.postgres
@pytest.mark.parametrize("sampler", ["evolution", "rnn"])
def test_workers_on_postgres(workers: Workers, postgres_db_url: str, sampler: str) -> None:
    trials = run_workers(workers, postgres_db_url, sampler)
    # The heartbeat (on by default for database storages) ran for every trial.
    assert create_storage(postgres_db_url).get_heartbeat_interval() == 60
    assert not any("fail_reason" in t.user_attrs for t in trials)


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["evolution", "rnn"])
def test_workers_on_journal_file(workers: Workers, tmp_path: Path, sampler: str) -> None:
    path = tmp_path / "nas.log"
    run_workers(workers, str(path), sampler)
    assert path.stat().st_size > 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def grpc_url(workers: Workers, postgres_db_url: str) -> str:
    """Optuna's gRPC storage proxy, in a process, in front of a fresh PostgreSQL database."""
    pytest.importorskip("grpc", reason="the gRPC storage proxy needs grpcio (the test extra)")
    from optuna.storages import GrpcStorageProxy

    port = _free_port()
    server = workers.start("grpc", "--storage", postgres_db_url, "--port", port)
    proxy = GrpcStorageProxy(host="127.0.0.1", port=port)
    try:
        proxy.wait_server_ready(timeout=60)
    except Exception:
        server.kill()
        pytest.fail(f"gRPC proxy did not start: {server.communicate()[1][-3000:]}")
    finally:
        proxy.close()
    return f"grpc://127.0.0.1:{port}"


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("sampler", ["evolution", "rnn"])
def test_workers_through_grpc_proxy(
    workers: Workers, grpc_url: str, postgres_db_url: str, sampler: str
) -> None:
    run_workers(workers, grpc_url, sampler)
    # The trials went through the proxy into the PostgreSQL database.
    direct = optuna.load_study(study_name="nas", storage=create_storage(postgres_db_url))
    assert len(direct.get_trials(deepcopy=False)) == W * N


def test_journal_and_grpc_storages_have_no_heartbeat(tmp_path: Path) -> None:
    """Optuna's journal storage and gRPC proxy have no heartbeat: a killed worker's trial stays
    RUNNING there (documented in optuna_nas.storages). Fails once Optuna adds one."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    journal = create_storage(str(tmp_path / "nas.log"), heartbeat_interval=1, grace_period=2)
    assert not is_heartbeat_enabled(journal)
    pytest.importorskip("grpc")
    proxy = create_storage(f"grpc://127.0.0.1:{_free_port()}", heartbeat_interval=1)
    assert not is_heartbeat_enabled(proxy)
