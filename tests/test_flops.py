"""count_flops: torch's FLOP formulas without the per-module breakdown, the network untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from optuna_nas._flops import count_flops
from optuna_nas.search_spaces import create_search_space
from optuna_nas.search_spaces import list_search_spaces


def _stock_count(network: nn.Module, shape: tuple[int, ...]) -> int:
    counter = FlopCounterMode(display=False)
    network.eval()
    with torch.no_grad(), counter:
        network(torch.zeros((1, *shape)))
    return int(counter.get_total_flops())


@pytest.mark.parametrize("name", list_search_spaces())
def test_counts_as_the_stock_flop_counter_on_every_space(name: str) -> None:
    space = create_search_space(name)
    build = {"nasbench201": {"channels": 4, "cells_per_stage": 1}, "darts": {"channels": 4}}
    for seed in range(3):
        network = space.build(
            space.sample(np.random.RandomState(seed)),
            num_classes=10,
            **build.get(name, {}),
        )
        ours = count_flops(network, (3, 16, 16))
        assert ours > 0
        assert ours == _stock_count(network, (3, 16, 16))


def test_leaves_each_modules_mode_and_gradients_as_they_were() -> None:
    network = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(), nn.Flatten())
    network[1].eval()  # a frozen BatchNorm inside a training network
    modes = [m.training for m in network.modules()]
    stats = network[1].running_mean.clone()
    assert count_flops(network, (3, 6, 6)) == 2 * 4 * 3 * 9 * 16
    assert [m.training for m in network.modules()] == modes
    assert torch.equal(network[1].running_mean, stats)
    assert all(p.grad is None for p in network.parameters())


def test_runs_in_the_networks_dtype() -> None:
    assert count_flops(nn.Linear(5, 2).double(), (5,)) == 2 * 5 * 2
