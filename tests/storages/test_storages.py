"""create_storage: URL kinds, argument checks, the heartbeat default, the stale-trial re-run."""

from __future__ import annotations

from pathlib import Path
import time
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.storages import BaseStorage
from optuna.storages import InMemoryStorage
from optuna.storages import JournalStorage
from optuna.storages import RDBStorage
from optuna.trial import TrialState
import pytest

from optuna_nas import _optuna_compat
from optuna_nas.storages import DEFAULT_GRACE_PERIOD
from optuna_nas.storages import DEFAULT_HEARTBEAT_INTERVAL
from optuna_nas.storages import STALE_REASON_PREFIX
from optuna_nas.storages import create_storage
from optuna_nas.storages import retried_trial_number


def _callback(storage: BaseStorage) -> Any:
    """The storage's stale-trial callback (the getter was renamed in Optuna 4.9)."""
    getter = getattr(storage, "get_heartbeat_stale_trial_callback", None)
    return getter() if getter is not None else storage.get_failed_trial_callback()  # type: ignore[attr-defined]


def _sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'nas.db'}"


def test_sqlite_gets_the_heartbeat_by_default(tmp_path: Path) -> None:
    storage = create_storage(_sqlite(tmp_path))
    assert isinstance(storage, RDBStorage)
    assert storage.get_heartbeat_interval() == DEFAULT_HEARTBEAT_INTERVAL == 60
    assert storage.grace_period == DEFAULT_GRACE_PERIOD == 120
    assert _callback(storage) is not None
    study = optuna.create_study(storage=storage)
    assert optuna.storages._heartbeat.is_heartbeat_enabled(study._storage)


def test_heartbeat_settings(tmp_path: Path) -> None:
    storage = create_storage(_sqlite(tmp_path), heartbeat_interval=5, grace_period=30)
    assert isinstance(storage, RDBStorage)
    assert (storage.get_heartbeat_interval(), storage.grace_period) == (5, 30)
    assert create_storage(_sqlite(tmp_path), heartbeat_interval=7).grace_period == 14
    off = create_storage(_sqlite(tmp_path), heartbeat_interval=None)
    assert isinstance(off, RDBStorage) and off.get_heartbeat_interval() is None
    assert not optuna.storages._heartbeat.is_heartbeat_enabled(off)


@pytest.mark.postgres
def test_postgres_gets_the_heartbeat_by_default(postgres_db_url: str) -> None:
    storage = create_storage(postgres_db_url)
    assert isinstance(storage, RDBStorage)
    assert storage.engine.dialect.name == "postgresql"
    assert storage.get_heartbeat_interval() == 60 and storage.grace_period == 120
    study = optuna.create_study(storage=storage, study_name="nas")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert len(optuna.load_study(study_name="nas", storage=postgres_db_url).trials) == 2


@pytest.mark.postgres
def test_plain_postgresql_url_opens_with_the_postgresql_extra(postgres_db_url: str) -> None:
    # README's URLs are plain postgresql:// (SQLAlchemy 2.1 picks psycopg 3 for them).
    plain = postgres_db_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    assert plain != postgres_db_url
    storage = create_storage(plain)
    assert isinstance(storage, RDBStorage) and storage.engine.dialect.name == "postgresql"
    optuna.create_study(storage=storage, study_name="plain").optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=1
    )
    assert len(optuna.load_study(study_name="plain", storage=postgres_db_url).trials) == 1


@pytest.mark.parametrize("name", ["nas.log", "nas.journal", "journal:nas.txt"])
def test_journal_files(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = create_storage(name, heartbeat_interval=5)
    assert isinstance(storage, JournalStorage)
    optuna.create_study(storage=storage, study_name="s").optimize(
        lambda t: t.suggest_int("x", 0, 3), n_trials=2
    )
    path = tmp_path / name.removeprefix("journal:")
    assert path.stat().st_size > 0
    reopened = create_storage(f"journal:{path}")
    assert len(optuna.load_study(study_name="s", storage=reopened).trials) == 2


def test_a_database_url_ending_in_log_is_no_journal(tmp_path: Path) -> None:
    storage = create_storage(f"sqlite:///{tmp_path / 'nas.log'}")
    assert isinstance(storage, RDBStorage)


def test_grpc_url() -> None:
    pytest.importorskip("grpc")
    from optuna.storages import GrpcStorageProxy

    storage = create_storage("grpc://127.0.0.1:13000")
    assert isinstance(storage, GrpcStorageProxy)
    storage.close()


def test_storage_objects_pass_through() -> None:
    memory = InMemoryStorage()
    assert create_storage(memory) is memory
    rdb = RDBStorage("sqlite://")  # no heartbeat: returned as it is, not reconfigured
    assert create_storage(rdb, heartbeat_interval=5) is rdb
    assert rdb.get_heartbeat_interval() is None


@pytest.mark.parametrize(
    "url",
    [
        "nas.db",
        "foo://bar",
        "://nas",
        "grpc://localhost",
        "grpc://:13000",
        "grpc://host:port",
        "grpc://host:0",
        "grpc://host:70000",
        "journal:",
        "sqlite:///nas.db\n",
        " sqlite:///nas.db",
    ],
)
def test_bad_urls_raise_one_line_value_errors_naming_them(url: str) -> None:
    with pytest.raises(ValueError) as info:
        create_storage(url)
    message = str(info.value)
    assert repr(url) in message
    assert "\n" not in message


def test_a_missing_journal_folder_names_the_url(tmp_path: Path) -> None:
    url = str(tmp_path / "missing" / "nas.log")
    with pytest.raises(ValueError, match="Cannot open storage") as info:
        create_storage(url)
    assert repr(url) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("storage", ["", "   ", None, 3])
def test_not_a_url(storage: object) -> None:
    with pytest.raises(ValueError, match="storage must be a storage URL"):
        create_storage(storage)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"heartbeat_interval": 0}, "heartbeat_interval"),
        ({"heartbeat_interval": -1}, "heartbeat_interval"),
        ({"heartbeat_interval": 1.5}, "heartbeat_interval"),
        ({"heartbeat_interval": True}, "heartbeat_interval"),
        ({"heartbeat_interval": "60"}, "heartbeat_interval"),
        ({"grace_period": 0}, "grace_period"),
        ({"grace_period": 2.5}, "grace_period"),
        ({"grace_period": 30}, "grace_period"),  # not longer than the interval (60)
        ({"heartbeat_interval": 10, "grace_period": 10}, "grace_period"),
        ({"heartbeat_interval": None, "grace_period": 10}, "grace_period"),
        ({"max_retry": -1}, "max_retry"),
        ({"max_retry": 1.0}, "max_retry"),
        ({"max_retry": None}, "max_retry"),
    ],
)
def test_bad_arguments_name_themselves(kwargs: dict, name: str, tmp_path: Path) -> None:
    # Checked before the URL is looked at, for every kind of storage.
    for storage in (_sqlite(tmp_path), str(tmp_path / "nas.log"), InMemoryStorage()):
        with pytest.raises(ValueError, match=name):
            create_storage(storage, **kwargs)


def _stale_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """A failed trial as the heartbeat leaves it: params, a curve, user attrs, fail_reason."""
    trial = optuna.trial.create_trial(
        state=TrialState.FAIL,
        params={"op": "conv3x3"},
        distributions={"op": CategoricalDistribution(["conv3x3", "skip"])},
        user_attrs={"arch": "a", "fail_reason": f"{STALE_REASON_PREFIX} gone"},
        intermediate_values={0: 0.5, 1: 0.6},
        system_attrs={"sampler:key": 1},
    )
    study.add_trial(trial)
    return study.trials[-1]


@pytest.mark.parametrize("max_retry", [0, 1, 2])
def test_stale_callback_reruns_without_the_fail_reason(tmp_path: Path, max_retry: int) -> None:
    storage = create_storage(_sqlite(tmp_path), max_retry=max_retry)
    assert isinstance(storage, RDBStorage)
    callback = _callback(storage)
    assert callback is not None
    study = optuna.create_study(storage=storage)
    stale = _stale_trial(study)
    callback(study, stale)
    if max_retry == 0:
        assert len(study.trials) == 1
        return
    rerun = study.trials[-1]
    assert rerun.state == TrialState.WAITING
    assert rerun.params == stale.params
    assert rerun.intermediate_values == {0: 0.5, 1: 0.6}
    assert rerun.user_attrs == {"arch": "a"}
    assert rerun.system_attrs["failed_trial"] == stale.number == retried_trial_number(rerun)
    assert rerun.system_attrs["sampler:key"] == 1
    assert stale.user_attrs["fail_reason"].startswith("stale:")  # the stale trial keeps it
    # The re-run went stale too: re-run again only while max_retry allows.
    failed_rerun = optuna.trial.create_trial(
        state=TrialState.FAIL,
        params=rerun.params,
        distributions=rerun.distributions,
        user_attrs={**rerun.user_attrs, "fail_reason": "stale: again"},
        system_attrs=rerun.system_attrs,
    )
    study.add_trial(failed_rerun)
    callback(study, study.trials[-1])
    assert len(study.trials) == (3 if max_retry == 1 else 4)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_retried_trial_number_of_a_live_trial(tmp_path: Path) -> None:
    storage = create_storage(_sqlite(tmp_path))
    assert isinstance(storage, RDBStorage)
    study = optuna.create_study(storage=storage)
    _stale_trial(study)
    callback = _callback(storage)
    assert callback is not None
    callback(study, study.trials[0])
    trial = study.ask()  # pops the waiting re-run
    assert retried_trial_number(trial) == 0
    assert retried_trial_number(study.ask()) is None


def test_a_stale_trial_in_process_is_failed_and_rerun_once(tmp_path: Path) -> None:
    """The whole path on SQLite, in one process: a trial whose heartbeat stopped is failed by
    the next optimize() with a fail_reason, and re-run with its params and curve."""
    storage = create_storage(_sqlite(tmp_path), heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(storage=storage, direction="maximize")
    with pytest.warns(UserWarning, match="Heartbeat"):
        trial = study.ask()  # outside optimize(): no heartbeat thread, as if frozen
    trial.suggest_categorical("op", ["a", "b", "c"])
    trial.report(0.25, 0)
    study._storage.record_heartbeat(trial._trial_id)  # type: ignore[attr-defined]
    time.sleep(3.1)
    seen: list[dict] = []

    def objective(t: optuna.Trial) -> float:
        t.suggest_categorical("op", ["a", "b", "c"])
        seen.append(dict(study._storage.get_trial(t._trial_id).intermediate_values))
        t.report(0.5, 1)
        return 1.0

    study.optimize(objective, n_trials=2)
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert trials[0].user_attrs["fail_reason"].startswith(STALE_REASON_PREFIX)
    assert "2 s" in trials[0].user_attrs["fail_reason"]
    assert trials[1].system_attrs["failed_trial"] == 0
    assert trials[1].params == trials[0].params
    assert seen[0] == {0: 0.25}  # the re-run starts from the stale trial's curve
    assert trials[1].intermediate_values == {0: 0.25, 1: 0.5}
    assert "fail_reason" not in trials[1].user_attrs
    assert "failed_trial" not in trials[2].system_attrs


def test_compat_names_match_this_optuna() -> None:
    # Optuna 4.9 renamed the stale-trial callback and its RDBStorage argument.
    import inspect

    assert _optuna_compat.STALE_TRIAL_CALLBACK_ARG in inspect.signature(RDBStorage).parameters
    callback = _optuna_compat.RetryStaleTrialCallback(max_retry=1)
    assert callable(callback)
    assert issubclass(RDBStorage, BaseStorage)
