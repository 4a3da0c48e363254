"""Every script in ``examples/`` runs in its ``--smoke`` mode and does the work it shows.

Each example runs as a user runs it (``python examples/<name>.py --smoke``) in a subprocess
whose working directory is the test's ``tmp_path``, so nothing is written to the checkout;
where an example writes a database, ``--storage`` points into ``tmp_path`` (or at a fresh
database of the tests' throwaway PostgreSQL server). An example without a test here fails
:func:`test_every_example_has_a_smoke_test`.
"""

from __future__ import annotations

from collections.abc import Callable
import os
from pathlib import Path
import re
import subprocess
import sys
from typing import Any

import optuna
import pytest


REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = REPO_ROOT / "examples"

# Example file name -> its smoke test (filled by @smoke_test).
SMOKE_TESTS: dict[str, Callable[..., None]] = {}


def smoke_test(example: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def register(test: Callable[..., None]) -> Callable[..., None]:
        SMOKE_TESTS.setdefault(example, test)
        return test

    return register


def run_example(example: str, *args: str, cwd: Path, timeout: float = 300) -> str:
    """Run ``examples/<example> --smoke *args``; fail with its output unless it exits 0."""
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + (os.pathsep + path if path else "")}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / example), "--smoke", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, (
        f"{example} exited with {result.returncode}\n--- stdout\n{result.stdout[-3000:]}"
        f"\n--- stderr\n{result.stderr[-3000:]}"
    )
    return result.stdout


ARCH = r"\|[a-z_0-9]+~0\|\+\|\S+\|"  # a NAS-Bench-201 cell string


def test_every_example_has_a_smoke_test() -> None:
    examples = sorted(p.name for p in EXAMPLES.glob("*.py"))
    assert examples, "no examples found"
    missing = [name for name in examples if name not in SMOKE_TESTS]
    assert not missing, f"examples without a smoke test in {Path(__file__).name}: {missing}"
    stale = sorted(set(SMOKE_TESTS) - set(examples))
    assert not stale, f"smoke tests for examples that do not exist: {stale}"


@smoke_test("quickstart.py")
def test_quickstart(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'quickstart.db'}"
    out = run_example("quickstart.py", "--storage", storage, cwd=tmp_path)
    assert re.search(r"Best trial \d+: val_acc [01]\.\d{4}", out), out
    assert re.search(rf"architecture: {ARCH}", out), out
    assert "of 3 trials were pruned early" in out, out
    study = optuna.load_study(study_name="quickstart", storage=storage)
    assert len(study.trials) == 3
    # The enqueued known-good cell ran first, with the study's own hyperparameters beside it.
    first = study.trials[0]
    assert first.params["lr"] == 0.05 and "nb201/edge_1_0" in first.params


@smoke_test("pruning_median.py")
def test_pruning_median(tmp_path: Path) -> None:
    out = run_example("pruning_median.py", cwd=tmp_path)
    rows = re.findall(rf"^\s+\d+  (COMPLETE|PRUNED)\s+[12]  .*{ARCH}$", out, re.MULTILINE)
    assert len(rows) == 3, out
    assert re.search(r"of 3 trials pruned; \d+ of 6 epochs trained", out), out


@smoke_test("pruning_hyperband.py")
def test_pruning_hyperband(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    out = run_example("pruning_hyperband.py", "--storage", storage, cwd=tmp_path)
    assert re.search(r"hyperband: \d+ epochs trained \(no pruning: 9\)", out), out
    assert len(re.findall(r"^# ?\d+ (COMPLETE|PRUNED)", out, re.MULTILINE)) == 3, out
    assert re.search(rf"best: [01]\.\d{{4}} {ARCH}", out), out


@smoke_test("darts_search.py")
def test_darts_search(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'darts.db'}"
    out = run_example("darts_search.py", "--storage", storage, cwd=tmp_path)
    derived = re.search(rf"derived: ({ARCH})", out)
    assert derived, out
    # The derived cell is re-trained as the next trial, then one sampled cell.
    assert "trial 1 (darts): val acc 0." in out and derived.group(1) in out, out
    assert re.search(r"trial 2 \(sampler\): val acc 0\.", out), out


@pytest.mark.slow
def test_darts_search_in_the_darts_space(tmp_path: Path) -> None:
    out = run_example("darts_search.py", "--space", "darts", cwd=tmp_path)
    assert re.search(r"derived: Genotype\(normal=", out), out
    assert re.search(r"trial 1 \(darts\): val acc 0\.\d+  Genotype\(", out), out


def _strategy_rows(out: str) -> dict[str, int]:
    rows = re.findall(r"^(evolution|rnn|tpe|random)\s+(\d+)\s+\d+\.\d{4}\s+\d", out, re.M)
    return {name: int(trials) for name, trials in rows}


@smoke_test("strategies.py")
def test_strategies(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'strategies.db'}"
    out = run_example("strategies.py", "--storage", storage, cwd=tmp_path)
    assert "best val_acc" in out, out
    assert _strategy_rows(out) == {"evolution": 3, "rnn": 3, "tpe": 3, "random": 3}, out
    # One storage, one study per strategy.
    names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    assert names == {f"strategies-{n}" for n in ("evolution", "rnn", "tpe", "random")}


def test_strategies_on_the_nb201_table(tmp_path: Path, data_dir: Path) -> None:
    out = run_example(
        "strategies.py", "--benchmark", "nb201", "--data-dir", str(data_dir), cwd=tmp_path
    )
    assert "best test acc %" in out, out
    assert _strategy_rows(out) == {"evolution": 3, "rnn": 3, "tpe": 3, "random": 3}, out


@smoke_test("multi_objective_latency.py")
@pytest.mark.parametrize("sampler", ["evolution", "nsgaii"])
def test_multi_objective_latency(tmp_path: Path, sampler: str) -> None:
    storage = f"sqlite:///{tmp_path / 'mo.db'}"
    out = run_example(
        "multi_objective_latency.py", "--storage", storage, "--sampler", sampler, cwd=tmp_path
    )
    header = re.search(r"Pareto front: (\d+) of 3 trials", out)
    assert header, out
    rows = re.findall(rf"^\s+\d+\s+[01]\.\d{{4}}\s+\d+\.\d{{3}}\s+[\d,]+  {ARCH}$", out, re.M)
    study = optuna.load_study(study_name=f"latency-{sampler}", storage=storage)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert len(rows) == int(header.group(1)) == len(study.best_trials) >= 1, out


@smoke_test("postgres_workers.py")
@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_postgres_workers(tmp_path: Path, database: str, request: pytest.FixtureRequest) -> None:
    storage: Any
    if database == "sqlite":
        storage = f"sqlite:///{tmp_path / 'workers.db'}"
    else:  # a fresh database on the tests' throwaway PostgreSQL server
        storage = request.getfixturevalue("postgres_db_url")
    out = run_example("postgres_workers.py", "--storage", storage, cwd=tmp_path)
    assert "4 trials by 2 workers" in out, out
    study = optuna.load_study(study_name="workers", storage=storage)
    assert [t.number for t in study.trials] == [0, 1, 2, 3]
    # One epoch per trial: nothing for the workers' MedianPruner (1 warm-up epoch) to stop.
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    workers = [t.user_attrs["worker"].split()[0] for t in study.trials]
    # Two trials per worker process, each printed with its trial.
    assert sorted(workers) == ["worker-0", "worker-0", "worker-1", "worker-1"]
    for trial in study.trials:
        worker = re.escape(trial.user_attrs["worker"])
        assert re.search(rf"^\s+{trial.number}  COMPLETE .* {worker} ", out, re.M), out


@smoke_test("export_and_retrain.py")
def test_export_and_retrain(tmp_path: Path) -> None:
    out = run_example("export_and_retrain.py", "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert "same outputs: True" in out
    assert re.search(r"retrained 1 epochs .*recorded in the study: [0-9.]+", out), out
    folder = next((tmp_path / "run").glob("trial_*"))
    assert {"architecture.json", "weights.pt", "model.onnx"} <= {p.name for p in folder.iterdir()}
