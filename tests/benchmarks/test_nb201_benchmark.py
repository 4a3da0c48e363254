from __future__ import annotations

import csv
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from optuna_nas.benchmarks import DATA_ENV_VAR
from optuna_nas.benchmarks import DEFAULT_HARDWARE_METRIC
from optuna_nas.benchmarks import NB201Benchmark
from optuna_nas.benchmarks import resolve_data_dir
from optuna_nas.search_spaces import NASBench201SearchSpace
from optuna_nas.search_spaces import NB201Cell
from optuna_nas.trial_outcome import ParameterConflictError


optuna.logging.set_verbosity(optuna.logging.WARNING)

# A two-operation sub-space has 2**6 = 64 cells: small enough for a complete table in tmp_path.
OPS = ("none", "skip_connect")
SMALL_SPACE = NASBench201SearchSpace(operations=OPS)
ALL_SKIP = "+".join(
    "|" + "|".join(f"skip_connect~{j}" for j in range(node)) + "|" for node in (1, 2, 3)
)


def _small_cells() -> list[str]:
    return [SMALL_SPACE.to_string(NB201Cell(ops)) for ops in itertools.product(OPS, repeat=6)]


def _accuracy(i: int) -> float:
    return 10.0 + i  # 10..73, distinct, best = last row


def write_tiny_data(root: Path) -> Path:
    """<root>/nasbench201/{cifar10,hardware}.csv for the 64 cells; indices 1000 + row."""
    folder = root / "nasbench201"
    folder.mkdir(parents=True)
    with open(folder / "cifar10.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "arch", "cifar10_test_acc"])
        for i, arch in enumerate(_small_cells()):
            w.writerow([1000 + i, arch, _accuracy(i)])
    with open(folder / "hardware.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "arch", DEFAULT_HARDWARE_METRIC, "energy_mj_x"])
        for i, arch in reversed(list(enumerate(_small_cells()))):  # other order: matched by arch
            w.writerow([1000 + i, arch, 0.5 * i, 2.0 * i])
    return root


@pytest.fixture
def tiny(tmp_path: Path) -> NB201Benchmark:
    return NB201Benchmark.load(write_tiny_data(tmp_path))


def test_load_tiny_table_facts(tiny: NB201Benchmark) -> None:
    cells = _small_cells()
    assert len(tiny) == 64
    assert tiny.best_accuracy == 73.0
    assert tiny.best_arch == cells[-1]
    assert tiny.best_index == 1063
    assert math.isclose(tiny.mean_accuracy, np.mean([_accuracy(i) for i in range(64)]))
    assert tiny.accuracy(cells[5]) == _accuracy(5)
    assert tiny.accuracy(SMALL_SPACE.from_string(cells[5])) == _accuracy(5)
    assert tiny.accuracy(1005) == _accuracy(5)
    assert tiny.index(cells[7]) == 1007
    assert set(tiny.hardware_metrics) == {DEFAULT_HARDWARE_METRIC, "energy_mj_x"}
    assert tiny.hardware_cost(cells[4]) == 2.0
    assert tiny.hardware_cost(cells[4], "energy_mj_x") == 8.0


def test_lookup_errors(tiny: NB201Benchmark) -> None:
    outside = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    with pytest.raises(ValueError, match="not in the NAS-Bench-201 table"):
        tiny.accuracy(outside)
    with pytest.raises(ValueError, match="Malformed"):
        tiny.accuracy("|none~0|")
    with pytest.raises(ValueError, match="Index 7"):
        tiny.accuracy(7)
    with pytest.raises(ValueError, match="Unknown hardware metric 'latency_ms_nope'"):
        tiny.hardware_cost(_small_cells()[0], "latency_ms_nope")
    with pytest.raises(ValueError, match="Unknown hardware metric"):
        tiny.multi_objective(metric="latency_ms_nope")


def test_constructor_validates() -> None:
    cells = _small_cells()[:3]
    with pytest.raises(ValueError, match="equal length"):
        NB201Benchmark(archs=cells, accuracies=[1.0, 2.0])
    with pytest.raises(ValueError, match="more than once"):
        NB201Benchmark(archs=[cells[0], cells[0]], accuracies=[1.0, 2.0])
    with pytest.raises(ValueError, match="nan"):
        NB201Benchmark(archs=cells, accuracies=[1.0, float("nan"), 2.0])
    with pytest.raises(ValueError, match="Unknown operation 'conv_9x9'"):
        NB201Benchmark(archs=[cells[0].replace("none", "conv_9x9", 1)], accuracies=[1.0])
    with pytest.raises(ValueError, match="indices contains the same index"):
        NB201Benchmark(archs=cells, accuracies=[1.0, 2.0, 3.0], indices=[0, 0, 1])


def test_csv_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("index,arch,acc\n0,x,1\n")
    with pytest.raises(ValueError, match="cifar10_test_acc"):
        NB201Benchmark.from_csv(path)
    path.write_text(f"arch,cifar10_test_acc\n{_small_cells()[0]},high\n")
    with pytest.raises(ValueError, match="Non-numeric"):
        NB201Benchmark.from_csv(path)
    hardware = tmp_path / "h.csv"
    hardware.write_text(f"arch,latency\n{_small_cells()[1]},1.0\n")
    path.write_text(f"arch,cifar10_test_acc\n{_small_cells()[0]},1.0\n")
    with pytest.raises(ValueError, match="no row for 1 cell"):
        NB201Benchmark.from_csv(path, hardware_path=hardware)


def test_csv_round_trip_without_index(tmp_path: Path, tiny: NB201Benchmark) -> None:
    tiny.to_csv(tmp_path / "out.csv")
    again = NB201Benchmark.from_csv(tmp_path / "out.csv")
    assert again.archs == tiny.archs
    assert np.array_equal(again.accuracies, tiny.accuracies)
    assert again.best_index == tiny.best_index
    (tmp_path / "noindex.csv").write_text(
        "arch,cifar10_test_acc\n" + "".join(f"{a},{i}\n" for i, a in enumerate(tiny.archs))
    )
    plain = NB201Benchmark.from_csv(tmp_path / "noindex.csv")
    assert plain.index(tiny.archs[3]) == 3  # the row number without an index column
    assert plain.hardware_metrics == ()


def test_data_dir_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tiny_data(tmp_path)
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path))
    assert resolve_data_dir() == tmp_path.resolve()
    assert len(NB201Benchmark.load()) == 64
    assert NB201Benchmark.load(hardware=False).hardware_metrics == ()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_data_dir(tmp_path / "missing")


def test_objective_records_truth_and_noise_is_reproducible(tiny: NB201Benchmark) -> None:
    def run(seed: int) -> list[optuna.trial.FrozenTrial]:
        study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0)
        )
        study.optimize(tiny.objective(noise_std=2.0, seed=seed, space=SMALL_SPACE), n_trials=12)
        return study.trials

    first, again, other = run(seed=5), run(seed=5), run(seed=6)
    for t in first:
        truth = tiny.accuracy(t.user_attrs["arch"])
        assert t.user_attrs["true_accuracy"] == truth
        assert t.user_attrs["index"] == tiny.index(t.user_attrs["arch"])
        assert t.user_attrs["arch"] == SMALL_SPACE.to_string(SMALL_SPACE.from_params(t.params))
        assert t.user_attrs["noise_std"] == 2.0
        assert t.value == pytest.approx(truth + t.user_attrs["noise"])
    assert [t.value for t in first] == [t.value for t in again]
    assert [t.params for t in first] == [t.params for t in other]  # same sampler seed
    assert [t.value for t in first] != [t.value for t in other]  # different noise seed


def test_noise_depends_on_trial_number_and_has_stated_size(tiny: NB201Benchmark) -> None:
    objective = tiny.objective(noise_std=0.5, seed=1, space=SMALL_SPACE)
    study = optuna.create_study(direction="maximize")
    cell = SMALL_SPACE.to_params(SMALL_SPACE.from_string(_small_cells()[9]))
    study.enqueue_trial(cell)
    study.enqueue_trial(cell)
    study.optimize(objective, n_trials=2)
    a, b = study.trials
    assert a.user_attrs["true_accuracy"] == b.user_attrs["true_accuracy"]
    assert a.value != b.value  # re-evaluating a cell gives a fresh noisy signal
    assert a.user_attrs["noise"] == objective.noise(0)
    draws = np.array([objective.noise(i) for i in range(4000)])
    assert abs(draws.mean()) < 0.05  # 5 standard errors of the mean
    assert 0.45 < draws.std() < 0.55


def test_noiseless_objective(tiny: NB201Benchmark) -> None:
    objective = tiny.objective(space=SMALL_SPACE)
    assert objective.directions == ("maximize",)
    study = optuna.create_study(direction="maximize")
    study.optimize(objective, n_trials=5)
    for t in study.trials:
        assert t.value == t.user_attrs["true_accuracy"]
        assert "noise" not in t.user_attrs and t.user_attrs["noise_std"] == 0.0
    assert "noise_std=0.0" in repr(objective)


def test_an_enqueued_cell_outside_the_space_fails_only_its_trial(tiny: NB201Benchmark) -> None:
    # The same policy as NASObjective: an invalid architecture FAILs with fail_reason.
    objective = tiny.objective(space=SMALL_SPACE)
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({name: "bogus_op" for name in (d.name for d in SMALL_SPACE.decisions)})
    study.optimize(objective, n_trials=2)
    bad, ok = study.trials
    assert bad.state == optuna.trial.TrialState.FAIL
    assert bad.user_attrs["fail_reason"].startswith("Invalid architecture")
    assert "bogus_op" in bad.user_attrs["fail_reason"]
    assert ok.state == optuna.trial.TrialState.COMPLETE
    multi = tiny.multi_objective(metric="energy_mj_x", space=SMALL_SPACE)
    study = optuna.create_study(directions=multi.directions)
    study.enqueue_trial({name: "bogus_op" for name in (d.name for d in SMALL_SPACE.decisions)})
    study.optimize(multi, n_trials=1)
    assert study.trials[0].state == optuna.trial.TrialState.FAIL


def test_a_resumed_study_with_other_operations_raises(tiny: NB201Benchmark) -> None:
    study = optuna.create_study(direction="maximize")
    study.optimize(tiny.objective(space=SMALL_SPACE), n_trials=1)
    with pytest.raises(ParameterConflictError, match="nb201/edge_1_0"):
        study.optimize(tiny.objective(space=NASBench201SearchSpace()), n_trials=1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"noise_std": -1.0}, r"noise_std must be a finite number in \[0.0, inf\), got -1.0"),
        ({"noise_std": float("inf")}, "noise_std"),
        ({"seed": -3}, r"seed must be an int in \[0, 4294967295\], got -3"),
        ({"seed": 1.5}, "seed"),
        ({"space": object()}, "space must be a NASBench201SearchSpace"),
    ],
)
def test_objective_validates(tiny: NB201Benchmark, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        tiny.objective(**kwargs)


def test_multi_objective(tiny: NB201Benchmark) -> None:
    objective = tiny.multi_objective(
        metric="energy_mj_x", noise_std=1.0, seed=2, space=SMALL_SPACE
    )
    assert objective.directions == ("maximize", "minimize")
    study = optuna.create_study(directions=objective.directions)
    study.optimize(objective, n_trials=6)
    for t in study.trials:
        arch = t.user_attrs["arch"]
        assert (
            t.values[1] == tiny.hardware_cost(arch, "energy_mj_x") == t.user_attrs["energy_mj_x"]
        )
        assert t.values[0] == pytest.approx(tiny.accuracy(arch) + t.user_attrs["noise"])
    assert tiny.multi_objective().metric == DEFAULT_HARDWARE_METRIC


class _FakeNatsApi:
    """The slice of the NATS-Bench API that ``from_api`` uses."""

    def __init__(self) -> None:
        self.cells = _small_cells()[:4]
        self.calls: list[tuple[Any, ...]] = []

    def __len__(self) -> int:
        return len(self.cells)

    def arch(self, index: int) -> str:
        return self.cells[index]

    def get_more_info(self, index: int, dataset: str, *, hp: str, is_random: bool) -> dict:
        self.calls.append((index, dataset, hp, is_random))
        return {"test-accuracy": 50.0 + index, "test-loss": 1.0}


def test_from_api() -> None:
    api = _FakeNatsApi()
    bench = NB201Benchmark.from_api(api, dataset="cifar100", hp="12")
    assert bench.archs == tuple(api.cells)
    assert bench.best_accuracy == 53.0 and bench.best_index == 3
    assert bench.dataset == "cifar100"
    assert api.calls[0] == (0, "cifar100", "12", False)  # mean over seeds, not one seed


def test_from_nats_bench_without_package(tmp_path: Path) -> None:
    try:
        import nats_bench  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install nats_bench"):
            NB201Benchmark.from_nats_bench(tmp_path)
    else:
        pytest.skip("nats_bench is installed")


# ----------------------------------------------------------------------- the shared table
def _shared_bench() -> NB201Benchmark:
    try:
        return NB201Benchmark.load()
    except FileNotFoundError:
        pytest.skip("NAS-Bench-201 data not found (set OPTUNA_NAS_DATA)")


@pytest.fixture(scope="module")
def shared() -> NB201Benchmark:
    return _shared_bench()


def test_shared_table_published_facts(shared: NB201Benchmark) -> None:
    assert len(shared) == 15625
    assert shared.best_accuracy == pytest.approx(94.3733, abs=1e-4)
    assert shared.best_index == 6111
    assert shared.mean_accuracy == pytest.approx(87.06, abs=0.01)
    # NAS-Bench-201 paper: DARTS collapses to the all-skip cell, 54.30% on CIFAR-10.
    assert shared.accuracy(ALL_SKIP) == pytest.approx(54.30, abs=0.01)
    assert DEFAULT_HARDWARE_METRIC in shared.hardware_metrics


def test_shared_table_strings_are_our_format(shared: NB201Benchmark) -> None:
    space = NASBench201SearchSpace()
    with open(resolve_data_dir() / "nasbench201" / "cifar10.csv", newline="") as f:
        raw = [row["arch"] for row in csv.DictReader(f)]
    # Every official string parses and prints back identically: the table is the whole space.
    assert all(space.to_string(space.from_string(a)) == a for a in raw)
    assert len({space.from_string(a) for a in raw}) == space.num_architectures
