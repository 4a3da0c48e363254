from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import optuna
import pytest

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
    assert f"optuna-dashboard {storage} --artifact-dir {cli.DEFAULT_ARTIFACT_DIR}" in out
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
    assert calls == [(storage, "127.0.0.1", 8123, None)]  # no artifact folder yet
    os.makedirs(tmp_path / "art")
    assert cli.main(["dashboard", "--storage", storage, "--artifact-dir", "art"]) == 0
    assert calls[-1][3] is not None


def test_python_dash_m_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "optuna_nas", "demo", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--n-trials" in result.stdout and "fidelity (advanced)" in result.stdout
