"""Tests of optuna_nas.darts.supernet."""

from __future__ import annotations

from typing import Any

from darts_helpers import TINY
from darts_helpers import flat
import numpy as np
import pytest
import torch

from optuna_nas.darts import DartsSupernet
from optuna_nas.darts import NB201Supernet
from optuna_nas.darts import create_supernet
from optuna_nas.search_spaces import create_search_space


@pytest.mark.parametrize("space_name", ["darts", "nasbench201"])
def test_supernet_forward_backward_and_parameter_split(space_name: str) -> None:
    space = create_search_space(space_name)
    net = create_supernet(space, num_classes=5, **TINY[space_name])
    out = net(torch.randn(3, 3, 8, 8))
    assert out.shape == (3, 5)
    out.square().sum().backward()
    arch, weights = net.arch_parameters(), net.weight_parameters()
    assert all(a.grad is not None and bool(a.grad.abs().sum() > 0) for a in arch)
    assert sum(w.grad is not None for w in weights) > 0.9 * len(weights)
    arch_ids, weight_ids = {id(p) for p in arch}, {id(p) for p in weights}
    assert not arch_ids & weight_ids
    assert arch_ids | weight_ids == {id(p) for p in net.parameters()}
    # The alphas have one row per edge and one column per candidate, ``none`` included.
    num_edges = 14 if space_name == "darts" else 6
    for alpha in arch:
        assert alpha.shape == (num_edges, len(net.operations))
    assert net.operations[0] == "none"
    # Alphas are saved with the weights.
    state = net.state_dict()
    assert any("alpha" in key for key in state)


@pytest.mark.parametrize("space_name", ["darts", "nasbench201"])
def test_fused_path_equals_reference(space_name: str) -> None:
    torch.manual_seed(0)
    net = create_supernet(
        create_search_space(space_name),
        num_classes=4,
        alpha_init_std=1.0,
        **TINY[space_name],
    ).double()
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    grads = []
    outs = []
    for fused in (True, False):
        net.fused = fused
        net.zero_grad()
        out = net(x)
        out.square().sum().backward()
        outs.append(out.detach())
        grads.append(
            flat(p.grad if p.grad is not None else torch.zeros_like(p) for p in net.parameters())
        )
    torch.testing.assert_close(outs[0], outs[1])
    torch.testing.assert_close(grads[0], grads[1])


def test_supernet_argument_validation() -> None:
    with pytest.raises(ValueError, match="even"):
        DartsSupernet(num_classes=10, channels=5)
    with pytest.raises(ValueError, match="layers"):
        DartsSupernet(num_classes=10, layers=0)
    with pytest.raises(NotImplementedError, match="macro"):
        create_supernet(create_search_space("macro"), num_classes=10)


def test_nb201_supernet_without_none_in_space() -> None:
    space = create_search_space(
        "nasbench201", operations=["skip_connect", "nor_conv_3x3", "avg_pool_3x3"]
    )
    net = create_supernet(space, num_classes=4, alpha_init_std=5.0, **TINY["nasbench201"])
    assert isinstance(net, NB201Supernet)
    assert net.operations[0] == "none"  # the supernet still has ``none``...
    with torch.no_grad():
        net.alphas[:, 0] = 100.0
    arch = net.derive()  # ...but never derives it when the space lacks it
    assert "none" not in arch.ops
    space.to_string(arch)
    with pytest.raises(ValueError, match="none"):
        net.derive(include_none=True)


def test_include_none_is_part_of_every_supernets_derive() -> None:
    darts = create_supernet(create_search_space("darts"), num_classes=4, **TINY["darts"])
    assert darts.derive(include_none=False) == darts.derive(include_none=None) == darts.derive()
    with pytest.raises(ValueError, match="include_none=True.*no 'none'"):
        darts.derive(include_none=True)
    nb201_space = create_search_space("nasbench201")
    nb201 = create_supernet(nb201_space, num_classes=4, **TINY["nasbench201"])
    with torch.no_grad():
        nb201.alphas[:, 0] = 100.0  # ``none`` everywhere
    assert nb201.derive(include_none=True).ops == ("none",) * 6
    assert "none" not in nb201.derive(include_none=False).ops


@pytest.mark.parametrize("space_name", ["darts", "nasbench201"])
def test_supernet_has_the_skeleton_of_the_discrete_network(space_name: str) -> None:
    space = create_search_space(space_name)
    supernet = create_supernet(space, num_classes=4, **TINY[space_name])
    arch = space.sample(np.random.default_rng(0))
    network = space.build(arch, num_classes=4, **TINY[space_name])

    def skeleton(net: torch.nn.Module) -> list[Any]:
        # A DARTS cell knows whether it reduces; NB201 reduces between the stages.
        cells = [getattr(c, "reduction", "Reduction" in type(c).__name__) for c in net.cells]
        return [net.stem[0].weight.shape, cells, net.classifier.weight.shape]

    assert skeleton(supernet) == skeleton(network)
