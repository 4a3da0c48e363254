"""Smoke tests of the training-free estimation benchmarks added for speed and NB301."""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys

import pytest

from optuna_nas.benchmarks import resolve_data_dir


SCRIPTS = Path(__file__).resolve().parents[2] / "benchmarks"


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=600
    )


def test_proxy_speed_quick(tmp_path: Path) -> None:
    result = _run([str(SCRIPTS / "proxy_speed.py"), "--quick", "--out", str(tmp_path)])
    assert result.returncode == 0, result.stderr  # it checks the two ways score alike
    rows = [line for line in result.stdout.splitlines() if line.startswith("| nasbench201 |")]
    assert len(rows) == 1 and rows[0].count("|") == 7
    assert "| darts |" in (tmp_path / "proxy_speed.md").read_text()


@pytest.mark.slow
def test_warm_start_nb301_quick(tmp_path: Path) -> None:
    pytest.importorskip("yahpo_gym")
    try:
        found = (resolve_data_dir() / "nasbench301" / "model.onnx").is_file()
    except FileNotFoundError:
        found = False
    if not found:
        pytest.skip("NAS-Bench-301 data not found (set OPTUNA_NAS_DATA)")
    args = [str(SCRIPTS / "warm_start_nb301.py"), "--quick", "--out", str(tmp_path)]
    result = _run(args)
    assert result.returncode == 0, result.stderr
    assert "| RegularizedEvolution + warm start synflow:8:3 | " in result.stdout
    raw = json.loads((tmp_path / "warm_start_nb301.json").read_text())
    assert len(raw["runs"]) == 2 * 2 * 2  # (tpe, evolution) x (plain, warm) x 2 seeds
    cache = tmp_path / "proxy_cache" / "nb301_free_C4_L2.csv"
    assert len(cache.read_text().splitlines()) == 1 + 2 * 8  # two seeds' candidates, once
    for run in raw["runs"]:
        assert len(run["true"]) == 10 and max(run["true"]) <= raw["best_found"]
    # A second call scores nothing again.
    again = _run(args)
    assert again.returncode == 0, again.stderr
    assert "scoring 0 of 16 candidate cells" in again.stderr
