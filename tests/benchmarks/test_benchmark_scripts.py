"""Smoke tests: the benchmark scripts run end to end in --quick mode."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
import subprocess
import sys
from types import ModuleType

import numpy as np
import pytest

from optuna_nas.benchmarks import resolve_data_dir


SCRIPTS = Path(__file__).resolve().parents[2] / "benchmarks"


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=600
    )


@pytest.mark.slow
def test_compare_samplers_quick(tmp_path: Path) -> None:
    try:
        found = (resolve_data_dir() / "nasbench201" / "cifar10.csv").is_file()
    except FileNotFoundError:
        found = False
    if not found:
        pytest.skip("NAS-Bench-201 data not found (set OPTUNA_NAS_DATA)")
    result = _run([str(SCRIPTS / "compare_samplers.py"), "--quick", "--out", str(tmp_path)])
    assert result.returncode == 0, result.stderr
    assert "| Random |" in result.stdout and "| TPE |" in result.stdout
    assert "Gaussian noise std 2.0 points" in result.stdout
    for suffix in ("md", "json", "csv", "png"):
        assert (tmp_path / f"compare_samplers.{suffix}").stat().st_size > 0
    raw = json.loads((tmp_path / "compare_samplers.json").read_text())
    best = raw["best_accuracy"]
    for run in raw["runs"]:
        assert len(run["true"]) == max(raw["budgets"])
        assert all(t <= best for t in run["true"])  # nothing beats the table's best cell


def _skip_without_nb201() -> None:
    try:
        found = (resolve_data_dir() / "nasbench201" / "cifar10.csv").is_file()
    except FileNotFoundError:
        found = False
    if not found:
        pytest.skip("NAS-Bench-201 data not found (set OPTUNA_NAS_DATA)")


@pytest.mark.slow
def test_proxy_correlation_quick(tmp_path: Path) -> None:
    _skip_without_nb201()
    parts = ["free", "data"]
    try:
        import yahpo_gym  # noqa: F401

        if (resolve_data_dir() / "nasbench301" / "model.onnx").is_file():
            parts.append("nb301")
    except ImportError:
        pass
    args = ["--quick", "--out", str(tmp_path), "--parts", *parts]
    result = _run([str(SCRIPTS / "proxy_correlation.py"), *args])
    assert result.returncode == 0, result.stderr
    for proxy in ("synflow", "params", "flops", "snip", "jacob_cov", "naswot", "vote"):
        assert f"| {proxy} | " in result.stdout
    assert "| synflow | " in (tmp_path / "proxy_correlation.md").read_text()
    free = tmp_path / "proxy_cache" / "nb201_free_C4_N1.csv"
    assert len(free.read_text().splitlines()) == 21  # a header and 20 cells
    # A second call reuses the caches: nothing is scored again.
    again = _run([str(SCRIPTS / "proxy_correlation.py"), *args])
    assert again.returncode == 0, again.stderr
    assert len(free.read_text().splitlines()) == 21
    assert again.stdout == result.stdout


@pytest.mark.slow
def test_warm_start_quick(tmp_path: Path) -> None:
    _skip_without_nb201()
    result = _run([str(SCRIPTS / "warm_start.py"), "--quick", "--out", str(tmp_path)])
    assert result.returncode == 0, result.stderr
    assert "| TPE | " in result.stdout
    assert "| RegularizedEvolution + warm start synflow:20:3 | " in result.stdout
    assert "vs TPE + warm start synflow:20:3" in result.stdout
    raw = json.loads((tmp_path / "warm_start.json").read_text())
    assert len(raw["runs"]) == 2 * 2 * 3  # (tpe, evolution) x (plain, warm) x 3 seeds
    for run in raw["runs"]:
        assert len(run["true"]) == 10
        assert all(t <= raw["best_accuracy"] for t in run["true"])


@pytest.mark.slow
def test_sampler_overhead_quick() -> None:
    result = _run([str(SCRIPTS / "sampler_overhead.py"), "--quick"])
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| memory |")]
    assert len(rows) == 1 and "| sqlite | 100 |" in result.stdout


@pytest.mark.slow
def test_sampler_storage_cost_quick() -> None:
    result = _run([str(SCRIPTS / "sampler_storage_cost.py"), "--quick"])
    assert result.returncode == 0, result.stderr
    rows = [line.split(" | ") for line in result.stdout.splitlines() if line.startswith("| ")]
    body = rows[1:]  # after the header (the separator line starts with "|---")
    labels = ("Random", "TPE", "RegularizedEvolution", "RNNController")
    assert sorted((r[0], r[2]) for r in body) == sorted(
        (f"| {storage}", label) for storage in ("memory", "sqlite") for label in labels
    )
    assert all(r[4] == "1.0" for r in body if r[2] == "Random")  # the ratio's baseline


def _load_compare() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "compare_samplers", SCRIPTS / "compare_samplers.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_incumbent_is_the_best_observed_trial() -> None:
    compare = _load_compare()
    observed = [1.0, 3.0, float("nan"), 2.0, 3.0, 5.0]
    true = [10.0, 30.0, 99.0, 20.0, 31.0, 50.0]
    # The failed (nan) trial never becomes the incumbent; ties keep the earlier trial.
    assert compare.incumbent_true(observed, true).tolist() == [10, 30, 30, 30, 30, 50]


def test_pareto_front_and_hypervolume() -> None:
    compare = _load_compare()
    acc = np.array([90.0, 85.0, 80.0, 84.0, 90.0])
    cost = np.array([5.0, 2.0, 1.0, 3.0, 6.0])
    assert compare.pareto_mask(acc, cost).tolist() == [True, True, True, False, False]
    # Reference (accuracy 70, cost 10): union of rectangles, computed by hand.
    expected = (90 - 70) * (10 - 5) + (85 - 70) * (5 - 2) + (80 - 70) * (2 - 1)
    assert compare.hypervolume(acc, cost, (70.0, 10.0)) == pytest.approx(expected)
    assert compare.hypervolume(acc, cost, (95.0, 10.0)) == 0.0


def test_strategy_specs() -> None:
    compare = _load_compare()
    assert compare.parse_strategy("evolution:population_size=10,sample_size=3") == (
        "evolution",
        {"population_size": 10, "sample_size": 3},
    )
    assert compare.strategy_label("tpe:multivariate=True") == "TPE(multivariate=True)"
    with pytest.raises(ValueError, match="Unknown strategy 'cmaes'"):
        compare.parse_strategy("cmaes")


@pytest.mark.slow
@pytest.mark.postgres
def test_scale_out_quick(postgres_url: str) -> None:
    # postgres_url: skips without PostgreSQL's binaries (the script starts its own server).
    result = _run([str(SCRIPTS / "scale_out.py"), "--quick", "--samplers", "random", "evolution"])
    assert result.returncode == 0, result.stderr
    assert "| Random | " in result.stdout and "| RegularizedEvolution | " in result.stdout
    assert "(a) Trials per hour" in result.stdout and "(b) Distinct" in result.stdout
