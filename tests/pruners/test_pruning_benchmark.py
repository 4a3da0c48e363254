"""Smoke tests of benchmarks/pruning.py (and its helpers benchmarks/_pruning_*.py): the
NAS-Bench-301 part (skips without the surrogate) and the real-training part (embedded MNIST
digits, always runs). The other curve families and the non-dominance check are tested in
test_pruning_families.py."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path
import sys
from types import ModuleType

import pytest


SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "pruning.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pruning_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_quick_run_writes_a_consistent_table(tmp_path: Path) -> None:
    pytest.importorskip("yahpo_gym")
    from optuna_nas.benchmarks import NB301Benchmark

    try:
        NB301Benchmark()
    except FileNotFoundError as error:  # no data folder; a broken import must fail
        pytest.skip(f"NAS-Bench-301 surrogate unavailable: {error}")
    script = _load_script()
    code = script.main(
        [
            "--quick",
            "--families",
            "nb301",
            "--seeds",
            "2",
            "--samplers",
            "random",
            "--pruners",
            "median,learning_curve",
            "--equal-budget",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    with (tmp_path / "summary.csv").open() as f:
        rows = {r["pruner"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"none", "median", "learning_curve"}
    # Without pruning every trial trains all 98 epochs and nothing is lost.
    assert float(rows["none"]["epochs"]) == 30 * 98
    assert float(rows["none"]["delta_mean"]) == 0.0
    for name in ("median", "learning_curve"):
        assert float(rows[name]["epochs"]) < 30 * 98
        # The random sampler proposes the same cells: pruning can only lose the best one.
        assert float(rows[name]["delta_mean"]) <= 0.0
    # Equal compute: the pruned studies ran on past 30 trials, and since their first 30 trials
    # are those of the fixed-size study (same random cells, same history-only pruning), their
    # best within the unpruned epochs is at least the fixed-size study's best.
    with (tmp_path / "equal_compute.csv").open() as f:
        budget = {r["pruner"]: r for r in csv.DictReader(f)}
    assert set(budget) == {"median", "learning_curve"}
    for name, row in budget.items():
        assert float(row["trials"]) > 30
        assert float(row["delta_at_1.00"]) >= float(rows[name]["delta_mean"]) - 1e-9
        assert float(row["delta_at_0.25"]) <= float(row["delta_at_1.00"])
    assert (tmp_path / "results.csv").is_file()
    assert (tmp_path / "pruning_nb301.png").stat().st_size > 0
    # The unpruned studies' curves are measured too: correlations and top-k shares in range.
    with (tmp_path / "predictability.csv").open() as f:
        (predictability,) = list(csv.DictReader(f))
    assert predictability["sampler"] == "random"
    for key, value in predictability.items():
        if key.startswith("rank_corr_at_"):
            assert -1.0 <= float(value) <= 1.0
        elif key.endswith("_share"):
            assert 0.0 < float(value) < 1.0


@pytest.mark.slow
def test_real_training_part_shares_training_between_pruners_and_samplers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _load_script()
    code = script.main(
        [
            "--families",
            "none",
            "--real",
            "--quick",  # 1 seed, 6 trials of 4 epochs
            "--real-samplers",
            "random,evolution",
            "--pruners",
            "median,learning_curve",
            "--out",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    with (tmp_path / "summary.csv").open() as f:
        rows = {(r["sampler"], r["pruner"]): r for r in csv.DictReader(f)}
    assert set(rows) == {
        (s, p) for s in ("random", "evolution") for p in ("none", "median", "learning_curve")
    }
    for sampler in ("random", "evolution"):
        assert float(rows[sampler, "none"]["epochs"]) == 6 * 4
        assert float(rows[sampler, "median"]["epochs"]) <= 6 * 4
    # The random sampler proposes the same 6 cells to every pruner: each is trained once.
    assert "real training, random: 6 distinct cells trained" in out
    # The replayed curves are those of live training (same seeds, same pruning decisions).
    assert "-> identical" in out


def test_predictability_measures_rank_correlation_and_top_k_entries() -> None:
    """`predictability` on hand-made curves whose answers are known."""
    pytest.importorskip("scipy")
    import _pruning_specs  # benchmarks/, on the tests' pythonpath (pyproject.toml)
    import _pruning_study
    import numpy as np
    import optuna

    n_trials, n_epochs = 30, 20
    finals = np.random.default_rng(0).permutation(n_trials).astype(float)

    def trials(slope_sign: float) -> list[optuna.trial.FrozenTrial]:
        # Each curve rises linearly to its final value; `slope_sign` -1 makes every value but
        # the last rank the trials in reverse (fast starters finish worst).
        out = []
        for final in finals:
            start = 100.0 + 20.0 * slope_sign * (final - n_trials)
            curve = np.linspace(start, final + 200.0, n_epochs)
            out.append(
                optuna.trial.create_trial(
                    value=float(curve[-1]),
                    intermediate_values={e: float(v) for e, v in enumerate(curve)},
                )
            )
        return out

    same_order, shares = _pruning_study.predictability(trials(+1.0))
    reversed_order, _ = _pruning_study.predictability(trials(-1.0))
    assert len(same_order) == len(_pruning_study.CHECKPOINT_FRACTIONS)
    assert np.allclose(same_order, 1.0)
    assert np.allclose(reversed_order, -1.0)
    # Shares of trials whose final value reaches the k-th best of the trials before them.
    for k, share in zip(_pruning_study.TOP_KS, shares):
        first = max(k, _pruning_specs.N_WARMUP_TRIALS)
        expected = np.mean([finals[i] >= np.sort(finals[:i])[-k] for i in range(first, n_trials)])
        assert share == pytest.approx(expected)
    assert shares[0] < shares[-1]  # a larger k lets more trials in
    # A pruned study (ragged curves) and a too-short study are not measured.
    assert _pruning_study.predictability(trials(1.0)[:10]) == ((), ())
