"""Cost measures of a child network (training/_measure.py)."""

from __future__ import annotations

import optuna
import pytest
from torch import nn

from optuna_nas.search_spaces import create_search_space
from optuna_nas.training import count_flops
from optuna_nas.training import count_parameters
from optuna_nas.training import measure_latency
from optuna_nas.training._measure import record_costs


def _nb201() -> nn.Module:
    space = create_search_space("nasbench201")
    cell = space.from_string(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
    )
    return space.build(cell, num_classes=10, in_channels=1, channels=4, cells_per_stage=1)


def test_count_flops_matches_hand_count() -> None:
    assert count_flops(nn.Linear(4, 3), (4,)) == 2 * 4 * 3
    conv = nn.Conv2d(2, 5, 3, padding=1, bias=False)
    assert count_flops(conv, (2, 6, 6)) == 2 * (2 * 9) * 5 * 36
    network = _nb201()
    network.train()
    assert count_flops(network, (1, 8, 8)) > 0 and network.training  # mode restored


def test_count_parameters_excludes_auxiliary_head() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Linear(3, 4)  # 16
            self.auxiliary_head = nn.Linear(4, 2)  # 10

    assert count_parameters(Net()) == 16
    assert count_parameters(Net(), exclude_auxiliary=False) == 26


def test_measure_latency() -> None:
    network = _nb201()
    assert measure_latency(network, (1, 8, 8), repeats=2, warmup=1) > 0
    with pytest.raises(ValueError):
        measure_latency(network, (1, 8, 8), repeats=0)


def test_record_costs_sets_each_measure_as_a_user_attribute() -> None:
    network = _nb201()
    trial = optuna.create_study().ask()
    measured = record_costs(trial, network, (1, 8, 8), latency_repeats=2)
    assert measured["n_params"] == count_parameters(network)
    assert measured["flops"] == count_flops(network, (1, 8, 8))
    assert measured["latency_ms"] > 0
    assert trial.user_attrs == measured
    other = optuna.create_study().ask()
    assert set(record_costs(other, network, (1, 8, 8), latency_repeats=None)) == {
        "n_params",
        "flops",
    }
    assert "latency_ms" not in other.user_attrs
