"""The curve families of benchmarks/pruning.py (synthetic generator, LCBench) and its
non-dominance check, in quick mode."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path
import sys
from types import ModuleType
from typing import Any

import numpy as np
import pytest


SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "pruning.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pruning_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _random_curves(name: str, n: int = 200, seed: int = 0) -> np.ndarray:
    import _pruning_synthetic as syn  # benchmarks/, on the tests' pythonpath (pyproject.toml)

    rng = np.random.default_rng(seed)
    family = syn.SYNTHETIC_FAMILIES[name]
    return np.array(
        [
            syn.synthetic_curve({f"x{i}": rng.random() for i in range(syn.N_PARAMS)}, family)
            for _ in range(n)
        ]
    )


def test_synthetic_curves_have_the_settings_shape_and_deterministic_noise() -> None:
    import _pruning_synthetic as syn

    for name, family in syn.SYNTHETIC_FAMILIES.items():
        curves = _random_curves(name)
        assert curves.shape == (200, family.epochs)
        assert np.all(np.isfinite(curves))
        # Final values spread over the family's range (the quality bowl), up to noise.
        slack = 4 * family.noise + 1e-9
        assert family.low - slack <= curves[:, -1].min() < curves[:, -1].max()
        assert curves[:, -1].max() <= family.high + slack + 8.0 * (family.shape == "peak")
    params = {"x0": 0.1, "x1": 0.2, "x2": 0.3, "x3": 0.4}
    family = syn.SYNTHETIC_FAMILIES["exp-noise1"]
    assert np.array_equal(syn.synthetic_curve(params, family), syn.synthetic_curve(params, family))
    clean = syn.clean_curve(
        *syn.quality_and_speed(np.array(list(params.values())), family), family
    )
    noise = syn.synthetic_curve(params, family) - clean
    assert 0.5 < noise.std() < 1.5  # the family's noise level (1.0)


def test_noise_free_shapes_rise_saturate_and_peak() -> None:
    import _pruning_synthetic as syn

    for name in ("exp", "power", "logistic"):
        family = syn.SYNTHETIC_FAMILIES[name]
        for q, r in ((0.2, 0.1), (0.9, 0.9), (0.5, 0.5)):
            curve = syn.clean_curve(q, r, family)
            assert np.all(np.diff(curve) >= -1e-9), name  # monotone rise
            assert curve[-1] == pytest.approx(family.low + (family.high - family.low) * q)
    family = syn.SYNTHETIC_FAMILIES["peak-decline"]
    for q, r in ((0.2, 0.1), (0.9, 0.9)):
        curve = syn.clean_curve(q, r, family)
        peak = int(curve.argmax())
        assert 0 < peak < family.epochs - 1  # it peaks inside the training...
        assert curve[-1] < curve[peak] - 0.5  # ...and declines by more than half a point
        assert np.all(np.diff(curve[peak:]) <= 1e-9)


def test_crossing_family_curves_cross() -> None:
    # With speed_coupling < 0 the better candidates learn slower: many pairs swap order.
    def swapped_pairs(name: str) -> float:
        curves = _random_curves(name, n=100, seed=1)
        early, final = curves[:, 4], curves[:, -1]
        better_later = final[:, None] > final[None, :]
        return float((better_later & (early[:, None] < early[None, :])).sum() / better_later.sum())

    assert swapped_pairs("exp-crossing") > 0.5  # more than half of the ordered pairs
    assert swapped_pairs("exp-crossing") > swapped_pairs("exp") + 0.1


def test_objective_returns_what_the_family_says() -> None:
    import _pruning_synthetic as syn
    import optuna

    for name in ("peak-decline", "peak-decline-best"):
        objective = syn.SyntheticObjective(syn.SYNTHETIC_FAMILIES[name])
        study = optuna.create_study(
            direction="maximize",
            sampler=optuna.samplers.RandomSampler(seed=0),
            pruner=optuna.pruners.NopPruner(),
        )
        study.optimize(objective, n_trials=3)
        for t in study.trials:
            curve = [t.intermediate_values[s] for s in sorted(t.intermediate_values)]
            expected = max(curve) if name.endswith("-best") else curve[-1]
            assert t.value == pytest.approx(expected)


def _row(part: str, pruner: str, saving: float, loss: float) -> dict[str, Any]:
    return {
        "part": part,
        "sampler": "random",
        "pruner": pruner,
        "saving_x": saving,
        "delta_mean": -loss,
    }


def test_dominance_compares_saving_and_loss() -> None:
    import _pruning_report as rep

    rows = [
        _row("a", "none", 1.0, 0.0),
        _row("a", "learning_curve", 3.0, 0.10),
        _row("a", "median", 3.0, 0.20),  # ours saves as much for less loss
        _row("a", "percentile:p=25", 5.0, 0.10),  # saves more for the same loss
        _row("a", "hyperband", 2.0, 0.05),  # a trade-off
        _row("a", "learning_curve:top_k=2", 9.0, 0.0),  # not a baseline
        _row("b", "learning_curve", 3.0, 0.10),
        _row("b", "median", 3.0, 0.10),  # equal points: neither dominates strictly
    ]
    verdicts = {(r["part"], r["baseline"]): r["verdict"] for r in rep.dominance(rows)}
    assert verdicts == {
        ("a", "median"): "dominates",
        ("a", "percentile:p=25"): "dominated",
        ("a", "hyperband"): "trade-off",
        ("b", "median"): "dominates",
    }


@pytest.mark.slow
def test_quick_run_of_the_synthetic_families_checks_dominance(tmp_path: Path) -> None:
    import _pruning_synthetic as syn

    script = _load_script()
    families = ["exp-crossing", "peak-decline-best", "short-noisy"]
    code = script.main(
        [
            "--quick",
            "--seeds",
            "2",
            "--trials",
            "20",
            "--families",
            ",".join(families),
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    with (tmp_path / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {r["part"] for r in rows} == set(families)
    for name in families:
        epochs = syn.SYNTHETIC_FAMILIES[name].epochs
        mine = {(r["sampler"], r["pruner"]): r for r in rows if r["part"] == name}
        assert {p for _, p in mine} >= {
            "none",
            "median",
            "percentile:p=25",
            "percentile:p=75",
            "hyperband",
            "successive_halving",
            "learning_curve",
        }
        for sampler in ("random", "evolution"):
            assert float(mine[sampler, "none"]["epochs"]) == 20 * epochs
            assert float(mine[sampler, "learning_curve"]["epochs"]) <= 20 * epochs
        assert (tmp_path / f"pruning_{name}.png").stat().st_size > 0
    with (tmp_path / "dominance.csv").open() as f:
        dominance = list(csv.DictReader(f))
    assert {(r["part"], r["sampler"]) for r in dominance} == {
        (f, s) for f in families for s in ("random", "evolution")
    }
    assert {r["verdict"] for r in dominance} <= {"dominated", "dominates", "trade-off"}


@pytest.mark.slow
def test_quick_run_of_an_lcbench_family(tmp_path: Path) -> None:
    pytest.importorskip("yahpo_gym")
    from optuna_nas.benchmarks import LCBenchBenchmark

    try:
        LCBenchBenchmark()
    except FileNotFoundError as error:  # no data folder; a broken import must fail
        pytest.skip(f"LCBench surrogate unavailable: {error}")
    script = _load_script()
    code = script.main(
        [
            "--quick",
            "--seeds",
            "1",
            "--trials",
            "15",
            "--samplers",
            "random",
            "--families",
            "lcbench-3945",
            "--pruners",
            "median,learning_curve",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    with (tmp_path / "summary.csv").open() as f:
        rows = {r["pruner"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"none", "median", "learning_curve"}
    assert float(rows["none"]["epochs"]) == 15 * 52
    assert float(rows["learning_curve"]["delta_mean"]) <= 0.0  # same configs, some pruned


def test_unknown_family_is_refused(tmp_path: Path) -> None:
    script = _load_script()
    with pytest.raises(SystemExit, match="Unknown family 'spline'"):
        script.main(["--families", "spline", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="Unknown LCBench task '1'"):
        script.main(["--families", "lcbench-1", "--out", str(tmp_path)])
