from __future__ import annotations

import csv
import itertools
from pathlib import Path
import re

import numpy as np
import optuna
import pytest
import torch

from optuna_nas.search_spaces import NB201_OPERATIONS
from optuna_nas.search_spaces import NASBench201SearchSpace
from optuna_nas.search_spaces import NB201Cell
from optuna_nas.search_spaces import create_search_space
from optuna_nas.trial_outcome import InvalidArchitectureError


# The example string of the NAS-Bench-201 documentation (index 1 of the benchmark).
DOC_EXAMPLE = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)
# NB201's string, written out independently of the implementation: node 1 reads node 0, node 2
# reads nodes 0 and 1, node 3 reads nodes 0, 1 and 2.
_OP = r"([a-z0-9_]+)"
NB201_STRING_RE = re.compile(rf"\|{_OP}~0\|\+\|{_OP}~0\|{_OP}~1\|\+\|{_OP}~0\|{_OP}~1\|{_OP}~2\|")
EDGE_ORDER = ["1_0", "2_0", "2_1", "3_0", "3_1", "3_2"]  # the order of the regex groups


def _num_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _skeleton_params(channels: int = 16, in_channels: int = 3, num_classes: int = 10) -> int:
    """Parameters of the NB201 network outside the cells, counted by hand from the paper's
    skeleton: stem conv3x3 + BN; two ResNet reduction blocks (two conv3x3 + BN and a 1x1
    shortcut conv); final BN; linear classifier."""
    c = channels
    stem = in_channels * c * 9 + 2 * c
    reductions = sum(
        cin * cout * 9 + 2 * cout + cout * cout * 9 + 2 * cout + cin * cout
        for cin, cout in ((c, 2 * c), (2 * c, 4 * c))
    )
    return stem + reductions + 2 * 4 * c + 4 * c * num_classes + num_classes


def _cell_params(cell: NB201Cell, channels: int = 16, cells_per_stage: int = 5) -> int:
    """Cell parameters for cells whose every edge is reachable from the input."""
    total = 0
    for c in (channels, 2 * channels, 4 * channels):
        per_channel = sum(
            {"nor_conv_3x3": 9 * c * c + 2 * c, "nor_conv_1x1": c * c + 2 * c}.get(op, 0)
            for op in cell.ops
        )
        total += cells_per_stage * per_channel
    return total


def _forward_backward(model: torch.nn.Module, x: torch.Tensor, num_classes: int) -> None:
    model.train()
    out = model(x)
    assert out.shape == (x.shape[0], num_classes)
    assert torch.isfinite(out).all()
    out.logsumexp(dim=1).mean().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_registry_and_decisions() -> None:
    space = create_search_space("nasbench201")
    assert isinstance(space, NASBench201SearchSpace)
    assert space.num_architectures == 15625 == 5**6
    assert [d.name for d in space.decisions] == [f"nb201/edge_{e}" for e in EDGE_ORDER]
    assert all(d.choices == NB201_OPERATIONS for d in space.decisions)
    assert set(NB201_OPERATIONS) == {
        "none",
        "skip_connect",
        "nor_conv_1x1",
        "nor_conv_3x3",
        "avg_pool_3x3",
    }


def test_exhaustive_round_trips() -> None:
    # Every one of the 15,625 cells: architecture <-> params <-> string, with the string checked
    # against NB201's format written out independently (no network building here).
    space = NASBench201SearchSpace()
    strings = set()
    for ops in itertools.product(NB201_OPERATIONS, repeat=6):
        cell = NB201Cell(ops)
        params = space.to_params(cell)
        assert space.from_params(params) == cell
        text = space.to_string(cell)
        match = NB201_STRING_RE.fullmatch(text)
        assert match is not None, text
        assert list(match.groups()) == [params[f"nb201/edge_{e}"] for e in EDGE_ORDER]
        assert space.from_string(text) == cell
        strings.add(text)
    assert len(strings) == 15625


def test_documented_example() -> None:
    space = NASBench201SearchSpace()
    cell = space.from_string(DOC_EXAMPLE)
    assert cell.op(1, 0) == "nor_conv_3x3"
    assert cell.op(2, 0) == "nor_conv_3x3"
    assert cell.op(2, 1) == "avg_pool_3x3"
    assert cell.op(3, 0) == "skip_connect"
    assert cell.op(3, 1) == "nor_conv_3x3"
    assert cell.op(3, 2) == "skip_connect"
    assert space.to_string(cell) == DOC_EXAMPLE
    assert space.to_params(cell)["nb201/edge_2_1"] == "avg_pool_3x3"
    assert space.from_string(f"  {DOC_EXAMPLE}\n") == cell


def test_official_table_strings_round_trip(data_dir: Path) -> None:
    path = data_dir / "nasbench201" / "cifar10.csv"
    if not path.exists():
        pytest.skip(f"NAS-Bench-201 data not found at {path}")
    space = NASBench201SearchSpace()
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 15625
    cells = set()
    for row in rows:
        cell = space.from_string(row["arch"])
        assert space.to_string(cell) == row["arch"]
        cells.add(cell)
    assert len(cells) == 15625  # the table covers the whole space, each cell once


def test_sample_and_mutate() -> None:
    space = NASBench201SearchSpace()
    for rng in (np.random.default_rng(0), np.random.RandomState(0)):
        cells = [space.sample(rng) for _ in range(50)]
        assert len(set(cells)) > 40
        for cell in cells:
            child = space.mutate(cell, rng)
            assert sum(a != b for a, b in zip(cell.ops, child.ops)) == 1


def test_parameter_count_of_the_largest_network() -> None:
    # The all-nor_conv_3x3 network is NB201's largest: 1.531546 MB parameters (CIFAR-10).
    space = NASBench201SearchSpace()
    cell = NB201Cell(("nor_conv_3x3",) * 6)
    model = space.build(cell, num_classes=10)
    assert _num_params(model) == 1_531_546
    assert _num_params(model) == _skeleton_params() + _cell_params(cell)


@pytest.mark.parametrize(
    "text",
    [
        DOC_EXAMPLE,
        "|nor_conv_1x1~0|+|avg_pool_3x3~0|nor_conv_3x3~1|"
        "+|nor_conv_1x1~0|skip_connect~1|nor_conv_3x3~2|",
    ],
)
def test_parameter_count_matches_hand_count(text: str) -> None:
    space = NASBench201SearchSpace()
    cell = space.from_string(text)
    model = space.build(cell, num_classes=100, in_channels=1, channels=8, cells_per_stage=2)
    assert _num_params(model) == _skeleton_params(8, 1, 100) + _cell_params(cell, 8, 2)


def test_all_none_and_all_skip_at_full_size() -> None:
    torch.manual_seed(0)
    space = NASBench201SearchSpace()
    x = torch.randn(2, 3, 32, 32)
    none_model = space.build(NB201Cell(("none",) * 6), num_classes=10)
    skip_model = space.build(NB201Cell(("skip_connect",) * 6), num_classes=10)
    for model in (none_model, skip_model):
        _forward_backward(model, x, 10)
        # Parameter-free cells: only the skeleton has parameters.
        assert _num_params(model) == _skeleton_params()
    # An all-none cell disconnects the output from the input: a valid, input-independent network.
    none_model.eval()
    with torch.no_grad():
        assert torch.equal(none_model(x), none_model(torch.randn(2, 3, 32, 32)))
    skip_model.eval()
    with torch.no_grad():
        assert not torch.equal(skip_model(x), skip_model(torch.randn(2, 3, 32, 32)))


# Cells with convolutions on edges that are cut off from the input or from the output.
DEAD_END_CELLS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|none~0|none~1|none~2|",
    "|none~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|",
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|nor_conv_3x3~0|none~1|none~2|",
]


@pytest.mark.parametrize("text", DEAD_END_CELLS)
def test_dead_end_cells_match_nb201(text: str) -> None:
    # Every parameter must receive a gradient (DDP) and counts must match NB201's InferCell.
    space = NASBench201SearchSpace()
    cell = space.from_string(text)
    model = space.build(cell, num_classes=10, channels=4, cells_per_stage=1)
    model(torch.randn(2, 3, 16, 16)).sum().backward()
    unused = [name for name, p in model.named_parameters() if p.grad is None]
    assert not unused
    assert _num_params(model) == _skeleton_params(4) + _cell_params(cell, 4, 1)


def test_disconnected_output_is_valid() -> None:
    space = NASBench201SearchSpace()
    cell = space.from_string(DEAD_END_CELLS[0])
    model = space.build(cell, num_classes=10, channels=4, cells_per_stage=1)
    _forward_backward(model, torch.randn(2, 3, 32, 32), 10)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(torch.randn(2, 3, 32, 32)), model(torch.randn(2, 3, 32, 32)))


@pytest.mark.parametrize(("in_channels", "size"), [(3, 32), (1, 28)])
def test_random_cells_forward_backward(in_channels: int, size: int) -> None:
    torch.manual_seed(0)
    space = NASBench201SearchSpace()
    rng = np.random.default_rng(size)
    for _ in range(20):
        cell = space.sample(rng)
        model = space.build(
            cell, num_classes=10, in_channels=in_channels, channels=4, cells_per_stage=1
        )
        _forward_backward(model, torch.randn(2, in_channels, size, size), 10)


_VALID = DOC_EXAMPLE


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (_VALID.replace("avg_pool_3x3", "conv_5x5"), "conv_5x5"),
        (_VALID.replace("avg_pool_3x3", "sep_conv_3x3"), "sep_conv_3x3"),
        # Node 2 with a single input.
        (
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
            "must have 2 input",
        ),
        # Node 1 with two inputs.
        (
            "|nor_conv_3x3~0|none~1|+|nor_conv_3x3~0|avg_pool_3x3~1|"
            "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
            "must have 1 input",
        ),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "3 nodes"),
        (_VALID + "+|none~0|", "3 nodes"),
        (_VALID.replace("avg_pool_3x3~1", "avg_pool_3x3~0"), "avg_pool_3x3~0"),
        (_VALID.replace("avg_pool_3x3~1", "avg_pool_3x3"), "avg_pool_3x3"),
        (_VALID.strip("|"), "nor_conv_3x3~0"),
        ("", "3 nodes"),
        ("nor_conv_3x3", "3 nodes"),
    ],
)
def test_bad_strings(text: str, match: str) -> None:
    space = NASBench201SearchSpace()
    with pytest.raises(InvalidArchitectureError, match=re.escape(match)):
        space.from_string(text)


def test_bad_params_and_arguments() -> None:
    space = NASBench201SearchSpace()
    params = space.to_params(space.from_string(DOC_EXAMPLE))
    missing = {k: v for k, v in params.items() if k != "nb201/edge_3_1"}
    with pytest.raises(InvalidArchitectureError, match="nb201/edge_3_1"):
        space.from_params(missing)
    with pytest.raises(InvalidArchitectureError, match="nb201/edge_2_0"):
        space.from_params({**params, "nb201/edge_2_0": "conv_5x5"})
    with pytest.raises(InvalidArchitectureError, match="conv_5x5"):
        NB201Cell(("conv_5x5",) * 6)
    with pytest.raises(InvalidArchitectureError, match="6 edges"):
        NB201Cell(("none",) * 5)
    with pytest.raises(ValueError, match="bogus"):
        NASBench201SearchSpace(operations=["none", "bogus"])
    with pytest.raises(ValueError, match="operations"):
        NASBench201SearchSpace(operations=[])
    with pytest.raises(ValueError, match="foo"):
        space.build(space.from_string(DOC_EXAMPLE), num_classes=10, foo=1)
    with pytest.raises(ValueError, match="channels"):
        space.build(space.from_string(DOC_EXAMPLE), num_classes=10, channels=0)

    # A restricted space refuses cells and strings with operations outside it.
    no_none = NASBench201SearchSpace(operations=[op for op in NB201_OPERATIONS if op != "none"])
    assert no_none.num_architectures == 4**6
    with pytest.raises(InvalidArchitectureError, match="none"):
        no_none.from_string(DOC_EXAMPLE.replace("avg_pool_3x3", "none"))
    with pytest.raises(InvalidArchitectureError, match="none"):
        no_none.to_params(NB201Cell(("none",) * 6))


def test_suggest_in_a_real_study() -> None:
    space = NASBench201SearchSpace()

    def objective(trial: optuna.Trial) -> float:
        cell = space.suggest(trial)
        assert space.from_params(trial.params) == cell
        trial.set_user_attr("arch", space.to_string(cell))
        return float(sum(op == "nor_conv_3x3" for op in cell.ops))

    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5)
    )
    study.enqueue_trial(space.to_params(space.from_string(DOC_EXAMPLE)))
    study.optimize(objective, n_trials=12)
    assert study.trials[0].user_attrs["arch"] == DOC_EXAMPLE
    for trial in study.trials:
        assert space.to_string(space.from_params(trial.params)) == trial.user_attrs["arch"]
        for d in space.decisions:
            dist = trial.distributions[d.name]
            assert isinstance(dist, optuna.distributions.CategoricalDistribution)
            assert dist.choices == d.choices


def test_mixed_study_with_user_hyperparameters() -> None:
    space = NASBench201SearchSpace()

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        # A user parameter that shares a suffix with the space's names must not clash.
        edge = trial.suggest_int("edge_1_0", 0, 3)
        cell = space.suggest(trial)
        model = space.build(cell, num_classes=3, channels=4, cells_per_stage=1)
        with torch.no_grad():
            out = model(torch.randn(2, 3, 8, 8))
        return float(out.abs().mean()) * lr + edge

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1, n_startup_trials=3))
    study.optimize(objective, n_trials=6)
    assert len(study.trials) == 6
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert set(trial.params) == {"lr", "edge_1_0"} | {d.name for d in space.decisions}
        assert not space.owns_param("lr") and not space.owns_param("edge_1_0")
        assert isinstance(trial.params["lr"], float)
        # from_params ignores the user's parameters.
        assert space.to_params(space.from_params(trial.params)) == {
            k: v for k, v in trial.params.items() if space.owns_param(k)
        }


def test_network_takes_the_cell_or_its_nb201_string() -> None:
    from optuna_nas.search_spaces._nasbench201 import NASBench201Network

    space = NASBench201SearchSpace()
    text = (
        "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|skip_connect~2|"
    )
    torch.manual_seed(0)
    from_cell = NASBench201Network(space.from_string(text), num_classes=10, channels=4)
    torch.manual_seed(0)
    from_text = NASBench201Network(text, num_classes=10, channels=4)
    x = torch.randn(2, 3, 8, 8)
    from_cell.eval()
    from_text.eval()
    torch.testing.assert_close(from_cell(x), from_text(x))
    with pytest.raises(InvalidArchitectureError, match="Unknown operation"):
        NASBench201Network(text.replace("none", "conv_9x9"), num_classes=10)
