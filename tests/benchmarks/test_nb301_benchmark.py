from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest

from optuna_nas.benchmarks import NB301_MAX_EPOCHS
from optuna_nas.benchmarks import NB301Benchmark
from optuna_nas.benchmarks import resolve_data_dir
from optuna_nas.benchmarks import to_nb301_config
from optuna_nas.search_spaces import DARTS_V1
from optuna_nas.search_spaces import DARTS_V2
from optuna_nas.search_spaces import NASNET_A
from optuna_nas.search_spaces import DartsSearchSpace
from optuna_nas.search_spaces import Genotype
from optuna_nas.search_spaces import InvalidArchitectureError


optuna.logging.set_verbosity(optuna.logging.WARNING)
P = "NetworkSelectorDatasetInfo_COLON_darts_COLON_"
SPACE = DartsSearchSpace()  # distinct inputs per node, as in NAS-Bench-301
INDEPENDENT = DartsSearchSpace(distinct_inputs=False)


def _genotype(normal: list[tuple[str, int]], reduce: list[tuple[str, int]]) -> Genotype:
    return Genotype(
        normal=normal, normal_concat=[2, 3, 4, 5], reduce=reduce, reduce_concat=[2, 3, 4, 5]
    )


def _random_genotypes(n: int, seed: int) -> list[Genotype]:
    """Random genotypes of the default DARTS space."""
    rng = np.random.default_rng(seed)
    return [SPACE.sample(rng) for _ in range(n)]


def _swap_inputs(genotype: Genotype, cell: str, node: int) -> Genotype:
    """The same network with the two (operation, input) pairs of ``node`` listed the other way."""
    pairs = list(getattr(genotype, cell))
    p = 2 * (node - 2)
    pairs[p], pairs[p + 1] = pairs[p + 1], pairs[p]
    return Genotype(**{**genotype._asdict(), cell: pairs})


def test_mapping_of_a_hand_built_genotype() -> None:
    # NB301 numbers a cell's 14 edges node by node: node 2 <- 0,1 (edges 0,1), node 3 <- 0..2
    # (2..4), node 4 <- 0..3 (5..8), node 5 <- 0..4 (9..13).
    normal = [
        ("sep_conv_3x3", 1), ("skip_connect", 0),
        ("dil_conv_5x5", 2), ("max_pool_3x3", 0),
        ("avg_pool_3x3", 3), ("sep_conv_5x5", 1),
        ("dil_conv_3x3", 4), ("skip_connect", 0),
    ]  # fmt: skip
    reduce = [
        ("max_pool_3x3", 0), ("max_pool_3x3", 1),
        ("skip_connect", 1), ("skip_connect", 2),
        ("sep_conv_3x3", 2), ("sep_conv_3x3", 3),
        ("avg_pool_3x3", 3), ("avg_pool_3x3", 4),
    ]  # fmt: skip
    expected = {
        "edge_normal_1": "sep_conv_3x3", "edge_normal_0": "skip_connect",
        "edge_normal_4": "dil_conv_5x5", "edge_normal_2": "max_pool_3x3",
        "inputs_node_normal_3": "0_2",
        "edge_normal_8": "avg_pool_3x3", "edge_normal_6": "sep_conv_5x5",
        "inputs_node_normal_4": "1_3",
        "edge_normal_13": "dil_conv_3x3", "edge_normal_9": "skip_connect",
        "inputs_node_normal_5": "0_4",
        "edge_reduce_0": "max_pool_3x3", "edge_reduce_1": "max_pool_3x3",
        "edge_reduce_3": "skip_connect", "edge_reduce_4": "skip_connect",
        "inputs_node_reduce_3": "1_2",
        "edge_reduce_7": "sep_conv_3x3", "edge_reduce_8": "sep_conv_3x3",
        "inputs_node_reduce_4": "2_3",
        "edge_reduce_12": "avg_pool_3x3", "edge_reduce_13": "avg_pool_3x3",
        "inputs_node_reduce_5": "3_4",
    }  # fmt: skip
    assert to_nb301_config(_genotype(normal, reduce)) == {P + k: v for k, v in expected.items()}


def test_every_genotype_of_the_default_space_maps() -> None:
    for genotype in _random_genotypes(500, seed=1):
        config = to_nb301_config(genotype)
        # 2 * 8 edges and the input pairs of nodes 3..5 of both cells.
        assert len(config) == 2 * 8 + 2 * 3
        # NB301 pairs are unordered: listing a node's inputs the other way is the same cell.
        for cell in ("normal", "reduce"):
            assert to_nb301_config(_swap_inputs(genotype, cell, 4)) == config
    # Independent inputs mostly give cells outside NB301 (why the default space is distinct).
    rng = np.random.default_rng(2)
    outside = 0
    for _ in range(100):
        try:
            to_nb301_config(INDEPENDENT.sample(rng))
        except ValueError as e:
            assert "twice" in str(e)
            outside += 1
    assert outside > 80


def test_mapping_rejects_genotypes_outside_nb301() -> None:
    with pytest.raises(InvalidArchitectureError, match="Node 3 of the normal cell reads input 1"):
        to_nb301_config(
            DARTS_V2._replace(
                normal=(
                    *DARTS_V2.normal[:2],
                    ("sep_conv_3x3", 1),
                    ("skip_connect", 1),
                    *DARTS_V2.normal[4:],
                )
            )
        )
    with pytest.raises(ValueError, match="4 intermediate nodes"):
        to_nb301_config(NASNET_A)
    with pytest.raises(ValueError, match="concatenates all intermediate nodes"):
        to_nb301_config(DARTS_V2._replace(reduce_concat=(2, 3, 4)))
    with pytest.raises(ValueError, match="'conv_7x1_1x7'"):
        to_nb301_config(DARTS_V2._replace(reduce=(("conv_7x1_1x7", 0), *DARTS_V2.reduce[1:])))


# ----------------------------------------------------------------------- needs yahpo + data
def _data_folder() -> Path:
    try:
        folder = resolve_data_dir() / "nasbench301"
    except FileNotFoundError:
        pytest.skip("NAS-Bench-301 data not found (set OPTUNA_NAS_DATA)")
    if not (folder / "model.onnx").is_file():
        pytest.skip("NAS-Bench-301 data not found (set OPTUNA_NAS_DATA)")
    return folder


@pytest.fixture(scope="module")
def bench() -> NB301Benchmark:
    pytest.importorskip("yahpo_gym")
    _data_folder()
    return NB301Benchmark()


def test_configs_are_valid_in_nb301_config_space() -> None:
    """Check the mapping against NB301's own conditions (which edge is active for which inputs)."""
    cs_module = pytest.importorskip("ConfigSpace")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        space = cs_module.ConfigurationSpace.from_json(_data_folder() / "config_space.json")
    for genotype in [DARTS_V1, DARTS_V2, *_random_genotypes(50, seed=0)]:
        values = {**to_nb301_config(genotype), "epoch": 98}
        # Raises if a value is illegal, an active hyperparameter is missing or an inactive one set.
        cs_module.Configuration(space, values=values).check_valid_configuration()


def test_learning_curve(bench: NB301Benchmark) -> None:
    curve = bench.learning_curve(DARTS_V2)
    assert curve.shape == (NB301_MAX_EPOCHS,)
    assert np.all((curve > 0) & (curve < 100))
    # Data README: cells score about 59% at epoch 1 and 90..93% after 98 epochs.
    assert curve[0] < 75 < 85 < curve[-1]
    assert bench.accuracy(DARTS_V2, epoch=10) == pytest.approx(curve[9], abs=1e-4)
    assert np.allclose(bench.learning_curve(DARTS_V2, [3, 1]), curve[[2, 0]], atol=1e-4)
    with pytest.raises(ValueError, match="epochs must lie in 1..98"):
        bench.learning_curve(DARTS_V2, [0, 5])
    # One surrogate and one temporary copy per process, whatever the number of objects.
    assert NB301Benchmark()._bench is bench._bench


def test_loading_leaves_the_users_yahpo_config_alone(bench: NB301Benchmark) -> None:
    import sys

    import yahpo_gym.configuration

    # The private configuration is swapped in only while loading; the user's one is back.
    user_config = sys.modules["yahpo_gym.local_config"].local_config
    assert yahpo_gym.configuration.local_config is user_config


def test_objective_reports_curves_and_prunes(bench: NB301Benchmark) -> None:
    class PruneAfterThree(optuna.pruners.BasePruner):
        def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
            return trial.number == 1 and max(trial.intermediate_values) >= 2  # 3 epochs

    study = optuna.create_study(direction="maximize", pruner=PruneAfterThree())
    for g in (DARTS_V2, DARTS_V1):
        study.enqueue_trial(SPACE.to_params(g))
    study.optimize(bench.objective(max_epochs=10), n_trials=2)
    done, pruned = study.trials

    assert done.state == optuna.trial.TrialState.COMPLETE
    # 0-based epochs: step e holds the accuracy after e + 1 epochs.
    assert sorted(done.intermediate_values) == list(range(10))
    assert done.user_attrs["learning_curve"] == [done.intermediate_values[e] for e in range(10)]
    assert done.intermediate_values[2] == pytest.approx(bench.accuracy(DARTS_V2, epoch=3))
    assert done.user_attrs["epochs_used"] == 10
    assert done.value == pytest.approx(bench.accuracy(DARTS_V2, epoch=10))
    assert done.user_attrs["arch"] == SPACE.to_string(DARTS_V2)

    assert pruned.state == optuna.trial.TrialState.PRUNED
    assert pruned.user_attrs["epochs_used"] == 3 and len(pruned.user_attrs["learning_curve"]) == 3
    # The same trial-outcome policy as NASObjective: the pruner's decision, explained.
    assert pruned.user_attrs["pruned_reason"].startswith("pruned by PruneAfterThree")
    assert pruned.last_step == 2 and pruned.user_attrs["epochs_used"] == pruned.last_step + 1


def test_objective_on_random_cells_never_fails(bench: NB301Benchmark) -> None:
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.NopPruner(),
    )
    study.optimize(bench.objective(max_epochs=3), n_trials=30)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 30
    for trial in study.trials:
        assert "fail_reason" not in trial.user_attrs
        assert trial.value is not None and 0 < trial.value < 100
        genotype = SPACE.from_params(trial.params)
        assert trial.user_attrs["arch"] == str(genotype)
        assert trial.value == pytest.approx(bench.accuracy(genotype, epoch=3), abs=1e-4)
    assert len({t.user_attrs["arch"] for t in study.trials}) == 30


def test_objective_fails_cells_outside_nb301(bench: NB301Benchmark) -> None:
    equal_inputs = INDEPENDENT.to_params(DARTS_V2)
    equal_inputs["darts/normal/node2/input1"] = equal_inputs["darts/normal/node2/input0"]
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial(equal_inputs)
    study.enqueue_trial(INDEPENDENT.to_params(DARTS_V2))
    study.optimize(bench.objective(max_epochs=5, space=INDEPENDENT), n_trials=2)
    failed, done = study.trials

    assert failed.state == optuna.trial.TrialState.FAIL
    assert "Node 2 of the normal cell reads input 0 twice" in failed.user_attrs["fail_reason"]
    assert failed.user_attrs["fail_reason"].startswith("Invalid architecture: ")
    assert "learning_curve" not in failed.user_attrs
    # Cells of the independent space that NB301 knows are still scored.
    assert done.state == optuna.trial.TrialState.COMPLETE
    assert done.value == pytest.approx(bench.accuracy(DARTS_V2, epoch=5))


def test_objective_validates(bench: NB301Benchmark) -> None:
    with pytest.raises(ValueError, match=r"max_epochs must be an int in \[1, 98\], got 99"):
        bench.objective(max_epochs=99)
    with pytest.raises(ValueError, match="space must be a DARTS space with 4 nodes"):
        bench.objective(space=DartsSearchSpace(num_nodes=5))
    with pytest.raises(ValueError, match="space must be a DARTS space"):
        bench.objective(space=DartsSearchSpace(operations=["sep_conv_7x7", "skip_connect"]))


def test_missing_files(tmp_path: Path) -> None:
    (tmp_path / "nasbench301").mkdir()
    (tmp_path / "nasbench301" / "model.onnx").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="encoding.json"):
        NB301Benchmark(data_dir=tmp_path)
