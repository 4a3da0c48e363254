from __future__ import annotations

import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time
from typing import Any

import optuna
from optuna.trial import TrialState
import pytest

import optuna_nas
from optuna_nas import cli
from optuna_nas.pruners import LearningCurvePruner


TINY = [
    "--dataset",
    "digits",
    "--subset",
    "200",
    "--image-size",
    "8",
    "--epochs",
    "1",
    "--channels",
    "4",
    "--batch-size",
    "32",
    "--accelerator",
    "cpu",
    "--no-progress-bar",
]


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # The demo writes its default --artifact-dir relative to the working directory.
    monkeypatch.chdir(tmp_path)


def _storage(tmp_path: Any, name: str = "demo.db") -> str:
    return f"sqlite:///{os.path.join(tmp_path, name)}"


def test_demo_creates_the_study_and_prints_the_best_architecture(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = _storage(tmp_path)
    assert cli.main(["demo", "--n-trials", "2", "--storage", storage, *TINY]) == 0
    out = capsys.readouterr().out
    assert os.path.exists(os.path.join(tmp_path, "demo.db"))
    study = optuna.load_study(study_name=cli.DEFAULT_STUDY_NAME, storage=storage)
    assert len(study.trials) == 2
    best = study.best_trial
    assert best.user_attrs["arch"] in out
    artifacts = cli.DEFAULT_ARTIFACT_DIR
    assert f"optuna-nas dashboard --storage {storage} --artifact-dir {artifacts}" in out
    assert study.user_attrs["demo_config"]["dataset"] == "digits"
    # Each trial carries its cell diagram as an SVG artifact for the dashboard.
    metas = optuna.artifacts.get_all_artifact_meta(best, storage=study._storage)
    assert [m.mimetype for m in metas] == ["image/svg+xml"]
    assert os.path.isdir(os.path.join(tmp_path, cli.DEFAULT_ARTIFACT_DIR))

    # `best` prints the same trial; `--json` is machine readable.
    assert cli.main(["best", "--storage", storage]) == 0
    assert best.user_attrs["arch"] in capsys.readouterr().out
    assert cli.main(["best", "--storage", storage, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["best_trials"][0]["number"] == best.number
    assert payload["directions"] == ["maximize"]

    # Resuming with another fidelity would mix incomparable values: refused.
    args = ["demo", "--n-trials", "1", "--storage", storage, *TINY]
    args[args.index("--epochs") + 1] = "2"
    assert cli.main(args) == 1
    assert "epochs=1" in capsys.readouterr().err


@pytest.mark.parametrize("sampler", cli.SAMPLERS)
def test_demo_samplers(sampler: str) -> None:
    import numpy as np

    from optuna_nas.samplers import create_sampler
    from optuna_nas.search_spaces import create_search_space

    space = create_search_space("nasbench201")
    # What the demo builds; an error here is a bug and fails the test (no skip).
    made = create_sampler(sampler, seed=0, search_space=space)
    assert isinstance(made, optuna.samplers.BaseSampler)
    study = optuna.create_study(sampler=made, direction="maximize")
    study.optimize(
        lambda t: float(np.mean([op == "nor_conv_3x3" for op in space.suggest(t).ops])), 3
    )
    assert len(study.trials) == 3


def test_demo_evolution_uses_the_samplers_defaults(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo builds its sampler with the factory and the sampler's documented defaults, and
    a sampler that cannot be built surfaces as an error, not as a CLIError."""
    from optuna_nas import samplers

    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    original = samplers.create_sampler

    def spy(*args: Any, **kwargs: Any) -> optuna.samplers.BaseSampler:
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(samplers, "create_sampler", spy)
    argv = ["demo", "--n-trials", "1", "--sampler", "evolution", "--seed", "3"]
    assert cli.main([*argv, "--storage", _storage(tmp_path), *TINY]) == 0
    ((args, kwargs),) = calls
    assert args == ("evolution",)
    assert sorted(kwargs) == ["search_space", "seed"] and kwargs["seed"] == 3  # no preset

    def broken(*args: Any, **kwargs: Any) -> optuna.samplers.BaseSampler:
        raise TypeError("broken constructor")

    monkeypatch.setattr(samplers, "create_sampler", broken)
    with pytest.raises(TypeError, match="broken constructor"):
        cli.main(["demo", "--n-trials", "1", "--storage", _storage(tmp_path, "b.db"), *TINY])


@pytest.mark.parametrize("pruner", cli.PRUNERS)
def test_demo_pruners(pruner: str, tmp_path: Any) -> None:
    storage = _storage(tmp_path)
    args = ["demo", "--n-trials", "2", "--storage", storage, "--pruner", pruner, *TINY]
    args[args.index("--epochs") + 1] = "2"
    assert cli.main(args) == 0
    study = optuna.load_study(study_name=cli.DEFAULT_STUDY_NAME, storage=storage)
    assert len(study.trials) == 2
    expected = {
        "median": optuna.pruners.MedianPruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "learning_curve": LearningCurvePruner,
        "none": optuna.pruners.NopPruner,
    }[pruner]
    assert isinstance(cli._make_pruner(pruner, 2), expected)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--n-trials", "0"], "positive integer"),
        (["demo", "--sampler", "grid"], "invalid choice"),
        (["demo", "--timeout", "-5"], "positive number"),
        (["demo", "--epochs", "two"], "positive integer"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_arguments_exit_with_usage_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_best_on_a_missing_database_is_a_clear_error(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = _storage(tmp_path, "missing.db")
    assert cli.main(["best", "--storage", storage]) == 1
    assert "No database" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(tmp_path, "missing.db"))  # not created either
    assert cli.main(["dashboard", "--storage", storage]) == 1


def test_best_needs_a_study_name_when_ambiguous(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = _storage(tmp_path, "two.db")
    for name in ("a", "b"):
        study = optuna.create_study(study_name=name, storage=storage)
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert cli.main(["best", "--storage", storage]) == 1
    assert "--study-name" in capsys.readouterr().err
    assert cli.main(["best", "--storage", storage, "--study-name", "c"]) == 1
    assert "No study named 'c'" in capsys.readouterr().err
    assert cli.main(["best", "--storage", storage, "--study-name", "b"]) == 0
    assert "trial 0" in capsys.readouterr().out


def test_best_without_completed_trials(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    storage = _storage(tmp_path, "empty.db")
    optuna.create_study(study_name="empty", storage=storage)
    assert cli.main(["best", "--storage", storage]) == 1
    assert "no completed trial" in capsys.readouterr().err


def test_dashboard_passes_storage_host_and_port(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import optuna_dashboard

    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(
        optuna_dashboard,
        "run_server",
        lambda storage, host, port, artifact_store: calls.append(
            (storage, host, port, artifact_store)
        ),
    )
    storage = _storage(tmp_path, "dash.db")
    optuna.create_study(storage=storage)
    assert cli.main(["dashboard", "--storage", storage, "--port", "8123"]) == 0
    # The storage opened by create_storage (one-line errors), without a heartbeat: read only.
    ((opened, *served),) = calls
    assert opened.url == storage and opened.heartbeat_interval is None
    assert served == ["127.0.0.1", 8123, None]  # no artifact folder yet
    os.makedirs(tmp_path / "art")
    assert cli.main(["dashboard", "--storage", storage, "--artifact-dir", "art"]) == 0
    assert calls[-1][3] is not None


def test_python_dash_m_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "optuna_nas", "demo", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env=_env(),
    )
    assert "--n-trials" in result.stdout and "fidelity (advanced)" in result.stdout
    assert "--heartbeat-interval" in result.stdout and "--total-trials" not in result.stdout
    worker = subprocess.run(
        [sys.executable, "-m", "optuna_nas", "worker", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env=_env(),
    )
    assert "--devices" in worker.stdout and "Several machines" in worker.stdout


# ------------------------------------------------------------------ storages, Ctrl+C, worker
ROOT = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    """This checkout on the import path of a subprocess (not whatever is installed)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def _cli(*argv: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "optuna_nas", *argv],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _with_epochs(argv: list[str], epochs: int) -> list[str]:
    argv = list(argv)
    argv[argv.index("--epochs") + 1] = str(epochs)
    return argv


def _wait_for_training(storage: str, n_running: int, timeout: float = 180) -> None:
    """Until ``n_running`` trials are RUNNING and past their first epoch."""
    # ``create_storage`` retries the schema race with the CLI process creating the same tables
    # (a plain ``RDBStorage`` here lost it once in CI with a unique violation on alembic_version).
    rdb = optuna_nas.create_storage(storage, heartbeat_interval=None)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        studies = rdb.get_all_studies()
        if studies:
            trials = rdb.get_all_trials(studies[0]._study_id, deepcopy=False)
            running = [
                t for t in trials if t.state == TrialState.RUNNING and t.intermediate_values
            ]
            if len(running) >= n_running:
                return
        time.sleep(0.2)
    raise AssertionError(f"no {n_running} trial(s) training after {timeout} s")


def _study_trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=cli.DEFAULT_STUDY_NAME, storage=storage).trials


def _bad_storages() -> list[Any]:
    import importlib.util

    cases: list[Any] = [pytest.param("notaurl", "is not a storage URL", id="not-a-url")]
    # An unreachable server: the connection is refused at once.
    unreachable = "postgresql+psycopg2://u@127.0.0.1:1/db"
    cases.append(
        pytest.param(
            unreachable,
            "Connection refused",
            id="unreachable-postgresql",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("psycopg2") is None, reason="needs psycopg2"
            ),
        )
    )
    cases.append(
        pytest.param(
            "mysql://u@127.0.0.1:1/db",
            "No module named 'MySQLdb'",
            id="missing-driver",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("MySQLdb") is not None, reason="MySQLdb is installed"
            ),
        )
    )
    return cases


@pytest.mark.parametrize(("storage", "message"), _bad_storages())
@pytest.mark.parametrize("command", ["demo", "worker", "best", "dashboard"])
def test_a_storage_that_cannot_be_opened_is_one_line_and_creates_nothing(
    command: str,
    storage: str,
    message: str,
    tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [command, "--storage", storage]
    if command in ("demo", "worker"):
        argv += TINY if command == "demo" else [*TINY[:-1], "--devices", "cpu"]
    assert cli.main(argv) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"optuna-nas {command}: error: Cannot open storage")
    assert message in lines[0]
    assert os.listdir(tmp_path) == []  # no artifact or checkpoint folder, no database


def test_demo_opens_its_storage_with_the_heartbeat(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from optuna_nas import storages

    opened: list[dict[str, Any]] = []
    original = storages.create_storage

    def spy(url: Any, **kwargs: Any) -> Any:
        opened.append(kwargs)
        return original(url, **kwargs)

    monkeypatch.setattr(storages, "create_storage", spy)
    storage = _storage(tmp_path)
    assert cli.main(["demo", "--n-trials", "1", "--storage", storage, *TINY]) == 0
    argv = ["demo", "--n-trials", "1", "--storage", storage]
    assert cli.main([*argv, "--heartbeat-interval", "10", "--grace-period", "30", *TINY]) == 0
    assert cli.main([*argv, "--heartbeat-interval", "0", *TINY]) == 0
    assert opened == [
        {"heartbeat_interval": storages.DEFAULT_HEARTBEAT_INTERVAL, "grace_period": None},
        {"heartbeat_interval": 10, "grace_period": 30},
        {"heartbeat_interval": None, "grace_period": None},
    ]
    # A grace period without a heartbeat means nothing: a one-line error, not a silent no-op.
    assert cli.main([*argv, "--heartbeat-interval", "0", "--grace-period", "30", *TINY]) == 1
    assert cli.DEFAULT_HEARTBEAT_INTERVAL == storages.DEFAULT_HEARTBEAT_INTERVAL
    # The demo's checkpoints live in <artifact-dir>/checkpoints, removed with each trial.
    checkpoints = tmp_path / cli.DEFAULT_ARTIFACT_DIR / cli.CHECKPOINT_SUBDIR
    assert os.listdir(checkpoints / cli.DEFAULT_STUDY_NAME) == []


def test_ctrl_c_fails_the_running_trial_and_exits_130(tmp_path: Any) -> None:
    storage = _storage(tmp_path)
    argv = ["demo", "--n-trials", "3", "--storage", storage, *_with_epochs(TINY, 1000)]
    proc = _cli(*argv, cwd=tmp_path)
    try:
        _wait_for_training(storage, 1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert len(err.strip().splitlines()) == 1, err
    assert "interrupted" in err and "Traceback" not in err + out, out + err
    (trial,) = _study_trials(storage)
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["fail_reason"] == "interrupted"
    assert 1 <= trial.user_attrs["epochs_trained"] < 1000
    checkpoints = tmp_path / cli.DEFAULT_ARTIFACT_DIR / cli.CHECKPOINT_SUBDIR
    assert os.listdir(checkpoints / cli.DEFAULT_STUDY_NAME) == []


WORKER = ["worker", "--devices", "cpu", "--workers", "2", "--threads", "1", *TINY[:-1]]


def _check_worker_study(storage: str, n_trials: int, out: str) -> None:
    import socket

    trials = _study_trials(storage)
    assert len(trials) == n_trials
    assert sorted(t.number for t in trials) == list(range(n_trials))
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    host = socket.gethostname()
    assert {t.user_attrs["worker"] for t in trials} == {f"{host}/cpu:0", f"{host}/cpu:1"}
    # Each worker's sampler has a seed of its own: they do not propose the same cells.
    assert len({tuple(sorted(t.params.items())) for t in trials}) == n_trials
    # Each worker's lines carry its device.
    assert "[cpu:0] " in out and "[cpu:1] " in out


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_worker_runs_one_study_with_two_cpu_workers(
    database: str, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    from optuna_nas.training._objective import WORKER_ENV

    assert cli.WORKER_ENV == WORKER_ENV
    if database == "sqlite":
        storage = _storage(tmp_path)
    else:  # a fresh database on the tests' throwaway PostgreSQL server
        storage = request.getfixturevalue("postgres_db_url")
    # Trials long enough (2-3 s each) for both workers to have started before 4 are done.
    argv = [*_with_epochs(WORKER, 40), "--n-trials", "4", "--storage", storage]
    result = subprocess.run(
        [sys.executable, "-m", "optuna_nas", *argv],
        env=_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    _check_worker_study(storage, 4, result.stdout)
    assert "4 trials in" in result.stdout  # the parent's summary, once


def test_worker_ctrl_c_interrupts_every_worker(tmp_path: Any) -> None:
    storage = _storage(tmp_path)
    argv = [*_with_epochs(WORKER, 1000), "--n-trials", "10", "--storage", storage]
    proc = _cli(*argv, cwd=tmp_path)
    try:
        _wait_for_training(storage, 2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in out + err, out + err
    trials = _study_trials(storage)
    assert len(trials) == 2
    for trial in trials:
        assert trial.state == TrialState.FAIL
        assert trial.user_attrs["fail_reason"] == "interrupted"
    # Each worker said it once; the parent, once.
    assert sorted(line.split(" ", 1)[0] for line in err.strip().splitlines()) == [
        "[cpu:0]",
        "[cpu:1]",
        "optuna-nas",
        "optuna-nas",
    ]


def test_worker_reports_a_crashed_worker_and_the_others_go_on(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    slots = cli._worker_slots

    def one_broken(args: Any) -> list[tuple[str, dict[str, str]]]:
        good, bad = slots(args)
        bad[1]["_threads"] = "0"  # its demo refuses --threads 0: exit status 2
        return [good, bad]

    monkeypatch.setattr(cli, "_worker_slots", one_broken)
    storage = _storage(tmp_path)
    assert cli.main([*_with_epochs(WORKER, 2), "--n-trials", "3", "--storage", storage]) == 1
    captured = capsys.readouterr()
    assert "optuna-nas worker: worker cpu:1 exited with status 2" in captured.err
    trials = _study_trials(storage)
    assert len(trials) == 3 and {t.user_attrs["worker"].split("/")[1] for t in trials} == {"cpu:0"}
    assert "3 trials in" in captured.out


@pytest.mark.slow
def test_a_terminated_demo_trial_is_resumed_by_the_next_run(tmp_path: Any) -> None:
    """SIGTERM (a preempted job): the trial stays RUNNING with its checkpoint; the next run
    fails it as stale (heartbeat) and re-runs it, resuming at the epoch it had reached."""
    storage = _storage(tmp_path)
    epochs = 150
    heartbeat = ["--heartbeat-interval", "1", "--grace-period", "2"]
    argv = ["demo", "--n-trials", "1", "--storage", storage, *heartbeat]
    proc = _cli(*argv, *_with_epochs(TINY, epochs), cwd=tmp_path)
    try:
        _wait_for_training(storage, 1)
        time.sleep(0.5)  # a few more epochs
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert len(err.strip().splitlines()) == 1 and "SIGTERM" in err, err
    (killed,) = _study_trials(storage)
    assert killed.state == TrialState.RUNNING
    folder = tmp_path / cli.DEFAULT_ARTIFACT_DIR / cli.CHECKPOINT_SUBDIR / cli.DEFAULT_STUDY_NAME
    assert os.listdir(folder) == ["trial_0"]

    time.sleep(3.2)  # over the grace period of 2 s, in SQLite's whole seconds
    result = subprocess.run(
        [sys.executable, "-m", "optuna_nas", *argv, *_with_epochs(TINY, epochs)],
        env=_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    stale, rerun = _study_trials(storage)
    assert stale.state == TrialState.FAIL and stale.user_attrs["fail_reason"].startswith("stale")
    assert rerun.state == TrialState.COMPLETE and rerun.params == stale.params
    assert rerun.user_attrs["resumed_at_epoch"] >= 1
    assert rerun.user_attrs["epochs_trained"] == epochs
    assert len(rerun.user_attrs["val_acc_curve"]) == epochs
    assert sorted(rerun.intermediate_values) == list(range(epochs))
    assert os.listdir(folder) == []


def test_worker_devices_map_to_one_visible_device_each(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--devices`` are this process's CUDA indices; each worker sees only its own device,
    through this process's CUDA_VISIBLE_DEVICES; CPU workers share the CPUs."""
    parser = cli.build_parser()

    def slots(*argv: str) -> list[tuple[str, dict[str, str]]]:
        return cli._worker_slots(parser.parse_args(["worker", *argv]))

    monkeypatch.setattr(cli, "_visible_cuda_devices", lambda: ["2", "5", "7"])
    monkeypatch.setattr(cli, "_cpu_count", lambda: 12)
    assert slots("--devices", "0,2") == [
        ("cuda:0", {"CUDA_VISIBLE_DEVICES": "2", "_threads": "6"}),
        ("cuda:2", {"CUDA_VISIBLE_DEVICES": "7", "_threads": "6"}),
    ]
    assert [label for label, _ in slots()] == ["cuda:0", "cuda:1", "cuda:2"]  # all
    assert slots("--devices", "cpu", "--workers", "3", "--threads", "2") == [
        (f"cpu:{i}", {"CUDA_VISIBLE_DEVICES": "", "_threads": "2"}) for i in range(3)
    ]
    for bad, message in (("0,0", "expected"), ("gpu1", "expected"), ("3", "no CUDA device")):
        with pytest.raises(cli.CLIError, match=message):
            slots("--devices", bad)

    # Without CUDA: `all` means --workers CPU processes, an equal share of threads each.
    monkeypatch.setattr(cli, "_visible_cuda_devices", lambda: [])
    assert slots("--workers", "4") == [
        (f"cpu:{i}", {"CUDA_VISIBLE_DEVICES": "", "_threads": "3"}) for i in range(4)
    ]
    with pytest.raises(cli.CLIError, match="no CUDA device is visible"):
        slots("--devices", "0")


def test_worker_runs_search_with_the_same_arguments() -> None:
    # The workers run `search` (every space and dataset), no longer `demo`.
    argv = ["worker", "--n-trials", "7", "--seed", "3", "--heartbeat-interval", "0", *TINY]
    args = cli.build_parser().parse_args(
        [*argv, "--space", "darts", "--build-args", '{"drop_path_prob": 0.1}']
    )
    argv = cli._search_argv(args, total_trials=7, threads="2")
    again = cli.build_parser().parse_args(argv)
    assert again.command == "search" and again.total_trials == 7 and again.threads == 2
    assert again.build_args == {"drop_path_prob": 0.1} and again.trial_devices == 1
    shared = (set(vars(again)) & set(vars(args))) - {"command", "n_trials", "threads"}
    assert shared >= {"space", "dataset", "seed", "epochs", "build_args", "heartbeat_interval"}
    assert {k: getattr(again, k) for k in shared} == {k: getattr(args, k) for k in shared}


def test_the_demos_first_ctrl_c_waits_for_a_batch_boundary_the_second_does_not() -> None:
    """The first SIGINT only asks (the trial stops at its next batch, outside any storage
    write); a second one raises at once. Outside the context, the handler is the default."""
    before = signal.getsignal(signal.SIGINT)
    with cli._GracefulInterrupt.installed():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # no KeyboardInterrupt here
        with pytest.raises(KeyboardInterrupt):
            cli._GracefulInterrupt.check()  # what the Lightning callback does at a batch end
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
    assert signal.getsignal(signal.SIGINT) is before
    assert not cli._GracefulInterrupt.requested


def test_worker_total_counts_results_and_running_trials_only() -> None:
    from optuna.trial import create_trial

    study = optuna.create_study()
    fail = {"state": TrialState.FAIL}
    for trial in (
        create_trial(value=1.0),
        create_trial(state=TrialState.PRUNED),
        create_trial(**fail, user_attrs={"fail_reason": "Out of memory"}),
        create_trial(state=TrialState.RUNNING),
        create_trial(state=TrialState.WAITING),  # e.g. the re-run of the stale one below
        create_trial(**fail, user_attrs={"fail_reason": "stale: no heartbeat"}),
        create_trial(**fail, user_attrs={"fail_reason": "interrupted"}),
    ):
        study.add_trial(trial)
    assert cli._n_counted_trials(study) == 4
    # The worker's optimize stops after its trial once the total is reached.
    study.optimize(lambda t: 0.0, n_trials=5, callbacks=[cli._StopAtTotal(6)])
    # (the first runs the WAITING trial, the second is new)
    assert len(study.trials) == 8 and cli._n_counted_trials(study) == 6


# ------------------------------------------------------------------ search, spaces, darts
SEARCH_TINY = [
    "--dataset",
    "digits",
    "--subset",
    "300",
    "--image-size",
    "8",
    "--channels",
    "4",
    "--epochs",
    "1",
    "--batch-size",
    "32",
    "--accelerator",
    "cpu",
    "--no-progress-bar",
]


def _search(tmp_path: Any, *argv: str, db: str = "s.db") -> tuple[int, str]:
    storage = _storage(tmp_path, db)
    return cli.main(["search", "--storage", storage, *argv]), storage


def test_spaces_match_the_registry() -> None:
    from optuna_nas.search_spaces import list_search_spaces

    assert list(cli.SPACES) == list_search_spaces()


def test_spaces_lists_sizes_formats_and_build_arguments(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["spaces"]) == 0
    out = capsys.readouterr().out
    assert "nasbench201:" in out and "15,625" in out and "~0|+|" in out
    # DARTS: ~10^20 parameter assignments (ordered input pairs; ~10^18 distinct cells).
    assert "Genotype(normal=" in out and "~2.76e20" in out and "cells_per_stage=5" in out
    assert cli.main(["spaces", "--json"]) == 0
    entries = {e["name"]: e for e in json.loads(capsys.readouterr().out)}
    assert set(entries) == set(cli.SPACES)
    assert entries["nasbench201"]["num_architectures"] == 15625
    assert 10**20 < entries["darts"]["num_architectures"] < 10**21
    assert entries["darts"]["build_args"]["layers"] == 20
    assert entries["macro"]["space_args"]["num_layers"] == 6


@pytest.mark.parametrize(
    ("space", "extra"),
    [
        ("darts", ["--layers", "3"]),
        ("macro", ["--space-args", '{"num_layers": 3, "num_filters": [4, 8]}']),
    ],
)
def test_search_on_each_space(space: str, extra: list[str], tmp_path: Any) -> None:
    argv = [*SEARCH_TINY, "--n-trials", "2", "--space", space, *extra]
    if space == "macro":
        argv.remove("--channels")
        argv.remove("4")
    status, storage = _search(tmp_path, *argv)
    assert status == 0
    study = optuna.load_study(study_name=cli.DEFAULT_STUDY_NAME, storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert all(t.user_attrs["search_space"] == space for t in study.trials)
    assert study.user_attrs["demo_config"]["space"] == space


def test_a_build_flag_of_another_space_is_an_error(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _ = _search(tmp_path, *SEARCH_TINY, "--layers", "3")  # nasbench201
    assert status == 1
    assert "--layers does not apply to --space nasbench201" in capsys.readouterr().err


@pytest.mark.parametrize("sampler", cli.SAMPLERS)
def test_a_resumed_study_trains_fresh_architectures(sampler: str, tmp_path: Any) -> None:
    """Two runs of 3 trials on one storage give 6 distinct architectures (with one seed)."""
    argv = [*SEARCH_TINY, "--n-trials", "3", "--sampler", sampler, "--pruner", "none"]
    assert _search(tmp_path, *argv)[0] == 0
    status, storage = _search(tmp_path, *argv)
    assert status == 0
    trials = optuna.load_study(study_name=cli.DEFAULT_STUDY_NAME, storage=storage).trials
    assert len(trials) == 6
    assert len({t.user_attrs["arch"] for t in trials}) == 6
    # Deterministic: the same two runs on another storage draw the same architectures.
    if sampler == "random":
        _search(tmp_path, *argv, db="again.db")
        _, again = _search(tmp_path, *argv, db="again.db")
        other = optuna.load_study(study_name=cli.DEFAULT_STUDY_NAME, storage=again).trials
        assert [t.user_attrs["arch"] for t in other] == [t.user_attrs["arch"] for t in trials]


def test_search_with_darts_searches_then_retrains_then_samples(tmp_path: Any) -> None:
    argv = [*SEARCH_TINY, "--n-trials", "3", "--sampler", "darts", "--then-sampler", "tpe"]
    status, storage = _search(tmp_path, *argv)
    assert status == 0
    trials = optuna.load_study(study_name=cli.DEFAULT_STUDY_NAME, storage=storage).trials
    assert [t.user_attrs.get("source") for t in trials] == ["darts_search", "darts", None]
    assert trials[1].user_attrs["arch"] == trials[0].user_attrs["darts:arch"]
    assert all(t.state == TrialState.COMPLETE for t in trials)


def test_darts_command_searches_and_retrains(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = _storage(tmp_path, "d.db")
    argv = ["darts", "--storage", storage, *SEARCH_TINY, "--space", "darts", "--layers", "3"]
    argv += ["--search-epochs", "2", "--early-stop-skip-connections", "2", "--aux-skip"]
    assert cli.main([*argv, "--retrain-epochs", "1"]) == 0
    out = capsys.readouterr().out
    search, retrained = optuna.load_study(
        study_name=cli.DEFAULT_STUDY_NAME, storage=storage
    ).trials
    assert search.user_attrs["source"] == "darts_search" and 1 <= search.user_attrs["darts:epochs"]
    assert retrained.user_attrs["source"] == "darts"
    assert retrained.user_attrs["arch"] == search.user_attrs["darts:arch"] in out
    # The same study goes on with `search` (same settings), comparable trials.
    argv = [*SEARCH_TINY, "--space", "darts", "--layers", "3", "--n-trials", "1"]
    assert cli.main(["search", "--storage", storage, *argv]) == 0


def test_search_on_an_image_folder(tmp_path: Any) -> None:
    from cli_helpers import make_image_folder

    root = make_image_folder(tmp_path / "shapes", classes=3, per_class=6)
    argv = ["--dataset", f"imagefolder:{root}", "--image-size", "8", "--channels", "4"]
    argv += ["--epochs", "1", "--n-trials", "2", "--accelerator", "cpu", "--no-progress-bar"]
    status, storage = _search(tmp_path, *argv, "--batch-size", "4")
    assert status == 0
    study = optuna.load_study(study_name=cli.DEFAULT_STUDY_NAME, storage=storage)
    assert len(study.trials) == 2 and study.best_trial.value is not None
    assert study.user_attrs["demo_config"]["dataset"] == f"imagefolder:{root}"


def test_search_on_a_users_datamodule(tmp_path: Any) -> None:
    argv = ["--dataset", "cli_helpers:TinyDataModule", "--datamodule-args", "n: 48"]
    argv += ["--channels", "4", "--epochs", "1", "--n-trials", "1", "--accelerator", "cpu"]
    status, storage = _search(tmp_path, *argv, "--no-progress-bar")
    assert status == 0
    (trial,) = optuna.load_study(study_name=cli.DEFAULT_STUDY_NAME, storage=storage).trials
    assert trial.state == TrialState.COMPLETE


def test_cifar10_builds_the_cifar_datamodule(monkeypatch: pytest.MonkeyPatch) -> None:
    from optuna_nas.training import CIFAR10DataModule

    monkeypatch.setattr(CIFAR10DataModule, "prepare_data", lambda self: None)
    args = cli.build_parser().parse_args(
        ["search", "--dataset", "cifar10", "--data-dir", "/nowhere", "--subset", "100"]
    )
    dm = cli._create_datamodule(args)
    assert isinstance(dm, CIFAR10DataModule)
    assert (dm.data_dir, dm.subset, dm.batch_size) == ("/nowhere", 100, 64)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dataset", "fashion"], "--dataset 'fashion': expected mnist, digits, cifar10"),
        (["--dataset", "imagefolder:/no/such/dir"], "'/no/such/dir' does not exist"),
        (["--dataset", "no_such_module:DM"], "cannot import 'no_such_module'"),
        (["--dataset", "cli_helpers:Missing"], "has no attribute 'Missing'"),
        (["--dataset", "cli_helpers:NoImageSize"], "lacks attribute(s) in_channels, image_size"),
        (["--dataset", "cli_helpers:TinyDataModule", "--datamodule-args", "{bad: 1}"], "bad"),
        (["--space-args", '{"num_nodes": 0}', "--space", "darts"], "num_nodes"),
        (["--build-args", '{"depth": 3}'], "depth"),
    ],
)
def test_bad_search_values_are_one_line_errors(
    argv: list[str], message: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _search(tmp_path, *argv, "--n-trials", "1", "--accelerator", "cpu")[0] == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("optuna-nas search: error: "), lines
    assert message in lines[0]
    assert os.listdir(tmp_path) == []  # nothing created


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search", "--space", "nasbench301"], "invalid choice: 'nasbench301'"),
        (["search", "--build-args", "[1, 2]"], "expected a JSON/YAML mapping, got '[1, 2]'"),
        (["darts", "--space", "macro"], "invalid choice: 'macro'"),
        (["search", "--config", "missing.yaml"], "missing.yaml"),
    ],
)
def test_bad_search_arguments_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"optuna-nas {argv[0]}: error: ") and message in err[-1], err


def test_a_config_file_with_flags_overriding_it(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "space: nasbench201\nsampler: evolution\nn_trials: 5\ndataset: digits\nsubset: 300\n"
        "image_size: 8\nchannels: 4\nepochs: 1\naccelerator: cpu\nno_progress_bar: true\n"
        "build_args:\n  cells_per_stage: 1\n"
    )
    argv = ["search", "--config", str(config), "--n-trials", "1"]
    args = cli.build_parser().parse_args(argv)
    assert (args.sampler, args.n_trials, args.image_size) == ("evolution", 1, 8)
    assert args.build_args == {"cells_per_stage": 1}
    assert cli.main([*argv, "--storage", _storage(tmp_path)]) == 0
    trials = _study_trials(_storage(tmp_path))
    assert len(trials) == 1 and trials[0].user_attrs["search_space"] == "nasbench201"

    # --print_config prints the resolved options: a config file to start from.
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        cli.main([*argv, "--print_config"])
    assert info.value.code == 0
    import yaml

    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["n_trials"] == 1 and printed["sampler"] == "evolution"
    assert printed["build_args"] == {"cells_per_stage": 1}


def test_a_resumed_study_with_another_space_or_dataset_is_refused(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _search(tmp_path, *SEARCH_TINY, "--n-trials", "1")[0] == 0
    assert _search(tmp_path, *SEARCH_TINY, "--n-trials", "1", "--space", "darts")[0] == 1
    assert "space='nasbench201'" in capsys.readouterr().err
    argv = [*SEARCH_TINY, "--n-trials", "1", "--build-args", "cells_per_stage: 2"]
    assert _search(tmp_path, *argv)[0] == 1
    assert "build=" in capsys.readouterr().err


def test_search_and_darts_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("search", "darts"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        out = capsys.readouterr().out
        for group in ("search:", "network:", "data:", "fidelity (advanced):", "storage and run:"):
            assert group in out, (command, group)
        assert "(default: nasbench201)" in " ".join(out.split()) and "--print_config" in out
    assert "--retrain-epochs" in out and "--second-order" in out


def test_trials_can_be_data_parallel() -> None:
    args = cli.build_parser().parse_args(["search", "--devices", "2", "--accelerator", "cpu"])
    assert cli._trainer_kwargs(args) == {
        "accelerator": "cpu",
        "devices": 2,
        "strategy": "ddp_spawn",
    }
    args = cli.build_parser().parse_args(["search"])
    assert [type(c).__name__ for c in cli._trainer_kwargs(args)["callbacks"]] == [
        "InterruptAtBatchEnd"
    ]


def test_search_warm_start_trains_the_best_scored_first_once_per_study(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = _storage(tmp_path)
    argv = ["search", "--storage", storage, "--warm-start", "params:20:2", *TINY]
    assert cli.main([*argv, "--n-trials", "3"]) == 0
    assert "Warm start: 20 architectures scored by params" in capsys.readouterr().out
    study = optuna.load_study(study_name=cli.DEFAULT_STUDY_NAME, storage=storage)
    first, second, third = study.trials
    assert (first.user_attrs["warm_start:rank"], second.user_attrs["warm_start:rank"]) == (1, 2)
    assert first.user_attrs["warm_start:score"] >= second.user_attrs["warm_start:score"]
    assert first.user_attrs["warm_start:score"] == first.user_attrs["n_params"]
    assert "warm_start:rank" not in third.user_attrs
    # Resumed: the warm start is not repeated.
    assert cli.main([*argv, "--n-trials", "1"]) == 0
    assert "already done" in capsys.readouterr().out
    study = optuna.load_study(study_name=cli.DEFAULT_STUDY_NAME, storage=storage)
    assert sum("warm_start:rank" in t.user_attrs for t in study.trials) == 2


@pytest.mark.parametrize(
    ("spec", "message"),
    [("synflow:5:9", "K must be at most N"), ("synflow:x", "integers"), ("nope", "'nope'")],
)
def test_search_warm_start_errors(
    tmp_path: Any, spec: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = _storage(tmp_path)
    try:
        code = cli.main(["search", "--storage", storage, "--warm-start", spec, *TINY])
    except SystemExit as exit_:  # a malformed value: argparse's usage error
        code = int(exit_.code or 0)
    assert code in (1, 2)
    err = capsys.readouterr().err.strip()
    assert message in err.splitlines()[-1], err  # (a usage error prints the usage first)
    assert not os.path.exists(os.path.join(tmp_path, "demo.db"))
