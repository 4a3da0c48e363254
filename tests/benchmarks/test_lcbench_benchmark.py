"""LCBenchBenchmark: the LCBench surrogate (skips without yahpo-gym or the data folder)."""

from __future__ import annotations

from pathlib import Path
import re

import numpy as np
import optuna
import pytest

from optuna_nas.benchmarks import LCBENCH_INSTANCES
from optuna_nas.benchmarks import LCBENCH_MAX_EPOCHS
from optuna_nas.benchmarks import LCBENCH_SPACE
from optuna_nas.benchmarks import LCBenchBenchmark


CONFIG = {
    "batch_size": 64,
    "learning_rate": 0.01,
    "max_dropout": 0.2,
    "max_units": 256,
    "momentum": 0.9,
    "num_layers": 3,
    "weight_decay": 1e-3,
}


@pytest.fixture(scope="module")
def bench() -> LCBenchBenchmark:
    pytest.importorskip("yahpo_gym")
    try:
        return LCBenchBenchmark(instance="3945")
    except FileNotFoundError as error:  # no data folder; a broken import must fail
        pytest.skip(f"LCBench surrogate unavailable: {error}")


def test_invalid_instance_and_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape("instance='42'")):
        LCBenchBenchmark(instance="42", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="LCBench file"):
        LCBenchBenchmark(data_dir=tmp_path)
    assert len(LCBENCH_INSTANCES) == 34 and set(CONFIG) == set(LCBENCH_SPACE)


def test_learning_curve_in_percent_over_52_epochs(bench: LCBenchBenchmark) -> None:
    curve = bench.learning_curve(CONFIG)
    assert curve.shape == (LCBENCH_MAX_EPOCHS,)
    assert np.all((0.0 <= curve) & (curve <= 100.0))
    assert curve[-1] > curve[0] + 10.0  # it learns
    assert np.array_equal(curve[[0, 9]], bench.learning_curve(CONFIG, [1, 10]))  # deterministic
    other = LCBenchBenchmark(instance="7593", data_dir=bench._folder.parent)
    assert not np.allclose(other.learning_curve(CONFIG), curve)  # the instance is honoured
    assert np.array_equal(bench.learning_curve(CONFIG), curve)  # and not left switched
    with pytest.raises(ValueError, match="epochs must lie in 1..52"):
        bench.learning_curve(CONFIG, [0])
    with pytest.raises(ValueError, match="momentum"):
        bench.learning_curve({k: v for k, v in CONFIG.items() if k != "momentum"})


def test_objective_reports_the_curve_and_obeys_the_pruner(bench: LCBenchBenchmark) -> None:
    objective = bench.objective(max_epochs=10)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.NopPruner(),
    )
    study.optimize(objective, n_trials=3)
    for t in study.trials:
        assert set(t.params) == set(LCBENCH_SPACE)
        assert sorted(t.intermediate_values) == list(range(10))
        assert t.value == t.intermediate_values[9] == t.user_attrs["learning_curve"][-1]
    pruned = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.ThresholdPruner(lower=101.0),  # prunes at the first report
    )
    pruned.optimize(objective, n_trials=2)
    assert all(t.state == optuna.trial.TrialState.PRUNED for t in pruned.trials)
    assert pruned.trials[0].user_attrs["epochs_used"] == 1
    with pytest.raises(ValueError, match="max_epochs"):
        bench.objective(max_epochs=53)
