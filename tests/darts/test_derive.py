"""Tests of optuna_nas.darts.derive."""

from __future__ import annotations

from darts_helpers import TINY
import pytest
import torch

from optuna_nas.darts import count_skip_connections
from optuna_nas.darts import create_supernet
from optuna_nas.darts import derive_darts_genotype
from optuna_nas.darts import derive_nb201_cell
from optuna_nas.search_spaces import NB201_OPERATIONS
from optuna_nas.search_spaces import PRIMITIVES
from optuna_nas.search_spaces import Genotype
from optuna_nas.search_spaces import NB201Cell
from optuna_nas.search_spaces import create_search_space


def test_derive_darts_takes_top2_non_none_inputs() -> None:
    ops = PRIMITIVES
    k = {name: i for i, name in enumerate(ops)}
    weights = torch.full((14, len(ops)), 0.01)
    # Node 2 (edges 0, 1): input 1 strongest with sep_conv_3x3; input 0 has a huge ``none``
    # that must be ignored, and dil_conv_5x5 as its best real operation.
    weights[0, k["none"]] = 0.99
    weights[0, k["dil_conv_5x5"]] = 0.2
    weights[1, k["sep_conv_3x3"]] = 0.5
    # Node 3 (edges 2, 3, 4 for inputs 0, 1, 2): inputs 2 and 0.
    weights[4, k["skip_connect"]] = 0.6
    weights[2, k["max_pool_3x3"]] = 0.4
    weights[3, k["avg_pool_3x3"]] = 0.3
    # Node 4 (edges 5..8): inputs 3 and 1; node 5 (edges 9..13): inputs 4 and 0.
    weights[8, k["sep_conv_5x5"]] = 0.7
    weights[6, k["dil_conv_3x3"]] = 0.6
    weights[13, k["avg_pool_3x3"]] = 0.9
    weights[9, k["skip_connect"]] = 0.8
    genotype = derive_darts_genotype(weights, weights, operations=ops)
    expected = [
        ("sep_conv_3x3", 1), ("dil_conv_5x5", 0),
        ("skip_connect", 2), ("max_pool_3x3", 0),
        ("sep_conv_5x5", 3), ("dil_conv_3x3", 1),
        ("avg_pool_3x3", 4), ("skip_connect", 0),
    ]  # fmt: skip
    assert list(genotype.normal) == expected
    assert list(genotype.normal_concat) == [2, 3, 4, 5]
    assert count_skip_connections(genotype) == 2
    with pytest.raises(ValueError, match="shape"):
        derive_darts_genotype(weights[:5], weights, operations=ops)


def test_derive_nb201_none_handling() -> None:
    ops = NB201_OPERATIONS
    weights = torch.zeros(6, len(ops))
    weights[:, ops.index("nor_conv_3x3")] = 0.3
    weights[0, ops.index("none")] = 0.9
    weights[5, ops.index("skip_connect")] = 0.8
    faithful = derive_nb201_cell(weights, operations=ops)
    assert faithful.ops == ("none",) + ("nor_conv_3x3",) * 4 + ("skip_connect",)
    without_none = derive_nb201_cell(weights, operations=ops, include_none=False)
    assert without_none.ops == ("nor_conv_3x3",) * 5 + ("skip_connect",)
    assert count_skip_connections(without_none) == 1


@pytest.mark.parametrize("space_name", ["darts", "nasbench201"])
def test_derived_architecture_is_valid_for_the_space(space_name: str) -> None:
    space = create_search_space(space_name)
    for seed in range(3):
        torch.manual_seed(seed)
        net = create_supernet(space, num_classes=4, alpha_init_std=1.0, **TINY[space_name])
        arch = net.derive()
        assert space.from_string(space.to_string(arch)) == arch
        assert space.from_params(space.to_params(arch)) == arch
        kwargs = TINY[space_name]
        model = space.build(arch, num_classes=4, **kwargs)
        assert model(torch.randn(2, 3, 8, 8)).shape[-1] == 4


def test_derive_and_count_reject_unknown_architectures() -> None:
    with pytest.raises(ValueError, match="Genotype"):
        count_skip_connections("not an arch")
    assert count_skip_connections(NB201Cell(("skip_connect",) * 6)) == 6
    genotype = Genotype(
        normal=[("skip_connect", 0), ("skip_connect", 1)] * 4,
        normal_concat=range(2, 6),
        reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1)] * 4,
        reduce_concat=range(2, 6),
    )
    assert count_skip_connections(genotype) == 8
