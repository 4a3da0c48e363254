from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import pytest
import torch

from optuna_nas.search_spaces import MacroArchitecture
from optuna_nas.search_spaces import MacroSearchSpace
from optuna_nas.search_spaces import create_search_space
from optuna_nas.search_spaces import list_search_spaces
from optuna_nas.search_spaces._macro import MacroLayer
from optuna_nas.search_spaces._macro import MacroNetwork
from optuna_nas.trial_outcome import InvalidArchitectureError


def _all_params(space: MacroSearchSpace, *, skip: bool, height: int, filters: int) -> dict:
    params: dict[str, Any] = {}
    for d in space.decisions:
        if d.name.endswith("/num_filters"):
            params[d.name] = filters
        elif "/skip_from" in d.name:
            params[d.name] = skip
        else:
            params[d.name] = height
    return params


def _forward_backward(model: torch.nn.Module, x: torch.Tensor, num_classes: int) -> None:
    model.train()
    out = model(x)
    assert out.shape == (x.shape[0], num_classes)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_registered() -> None:
    assert "macro" in list_search_spaces()
    space = create_search_space("macro")
    assert isinstance(space, MacroSearchSpace)
    assert space.prefix == "macro"
    assert repr(space) == "MacroSearchSpace()"


def test_decisions_layout() -> None:
    space = MacroSearchSpace()
    names = [d.name for d in space.decisions]
    assert len(names) == len(set(names))
    assert all(space.owns_param(n) for n in names)
    # 3 decisions per layer, plus one skip decision per layer before the predecessor.
    assert len(names) == 3 * 6 + sum(max(i - 1, 0) for i in range(6))
    assert names[:3] == [
        "macro/layer0/filter_height",
        "macro/layer0/filter_width",
        "macro/layer0/num_filters",
    ]
    by_name = {d.name: d.choices for d in space.decisions}
    assert by_name["macro/layer5/filter_width"] == (1, 3, 5, 7)
    assert by_name["macro/layer5/num_filters"] == (24, 36, 48, 64)
    assert by_name["macro/layer5/skip_from3"] == (False, True)
    assert "macro/layer5/skip_from4" not in by_name  # the predecessor always feeds a layer
    assert "macro/layer1/skip_from0" not in by_name
    assert space.num_architectures == 4**18 * 2**10


@pytest.mark.parametrize("seed", range(20))
def test_round_trips(seed: int) -> None:
    space = MacroSearchSpace()
    for rng in (np.random.default_rng(seed), np.random.RandomState(seed)):
        arch = space.sample(rng)
        params = space.to_params(arch)
        assert [*params] == [d.name for d in space.decisions]
        assert space.from_params(params) == arch
        text = space.to_string(arch)
        assert space.from_string(text) == arch
        assert space.to_string(space.from_string(text)) == text
        assert hash(arch) == hash(space.from_string(text))


def test_string_format() -> None:
    space = MacroSearchSpace(num_layers=4)
    text = "L0:3x3x36|L1:5x5x48|L2:1x7x24<0|L3:3x5x64<0,1"
    arch = space.from_string(text)
    assert arch.layers[2] == MacroLayer(1, 7, 24, (0,))
    assert arch.layers[3].filter_height == 3 and arch.layers[3].filter_width == 5
    assert arch.layers[3].num_filters == 64 and arch.layers[3].skip_from == (0, 1)
    assert space.to_string(arch) == text
    params = space.to_params(arch)
    assert params["macro/layer3/skip_from0"] is True
    assert params["macro/layer3/skip_from1"] is True
    assert params["macro/layer2/skip_from0"] is True
    assert params["macro/layer2/filter_width"] == 7


def test_architecture_is_immutable_and_validates() -> None:
    arch = MacroArchitecture((MacroLayer(3, 3, 24), MacroLayer(3, 3, 24)))
    with pytest.raises(AttributeError):
        arch.layers = ()  # type: ignore[misc]
    with pytest.raises(InvalidArchitectureError, match="skip from"):
        MacroArchitecture((MacroLayer(3, 3, 24), MacroLayer(3, 3, 24, (0,))))
    with pytest.raises(InvalidArchitectureError, match="filter_height"):
        MacroLayer(4, 3, 24)
    with pytest.raises(InvalidArchitectureError, match="num_filters"):
        MacroLayer(3, 3, 0)
    with pytest.raises(InvalidArchitectureError, match="ascending"):
        MacroLayer(3, 3, 24, (1, 0))
    with pytest.raises(InvalidArchitectureError, match="at least one layer"):
        MacroArchitecture(())
    # Lists are accepted and stored as tuples, so architectures stay hashable.
    layer = MacroLayer(3, 3, 24, [0])  # type: ignore[arg-type]
    assert layer.skip_from == (0,)
    hash(MacroArchitecture([MacroLayer(1, 1, 24)]))  # type: ignore[arg-type]


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize(("in_channels", "size"), [(3, 32), (1, 28)])
def test_all_skip_and_no_skip_build(skip: bool, in_channels: int, size: int) -> None:
    torch.manual_seed(0)
    space = MacroSearchSpace()
    arch = space.from_params(_all_params(space, skip=skip, height=3, filters=24))
    expected = tuple(range(5 - 1)) if skip else ()
    assert arch.layers[-1].skip_from == expected
    model = space.build(arch, num_classes=10, in_channels=in_channels)
    _forward_backward(model, torch.randn(2, in_channels, size, size), 10)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 6
    # Layer 5 reads layer 4 plus, with all skips, layers 0..3 (24 channels each).
    assert convs[5].in_channels == (5 * 24 if skip else 24)
    assert convs[0].in_channels == in_channels


def test_largest_architecture_builds_with_odd_sizes_and_pooling_everywhere() -> None:
    # Pooling after every layer but the last makes skip sources cross several pools
    # (28 -> 14 -> 7 -> 4 -> 2 -> 1), with odd sizes on the way.
    space = MacroSearchSpace(pool_after=range(5))
    arch = space.from_params(_all_params(space, skip=True, height=7, filters=64))
    model = space.build(arch, num_classes=3, in_channels=1)
    _forward_backward(model, torch.randn(2, 1, 28, 28), 3)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("in_channels", "size"), [(3, 32), (1, 28)])
def test_random_samples_forward_backward(seed: int, in_channels: int, size: int) -> None:
    torch.manual_seed(seed)
    space = MacroSearchSpace()
    arch = space.sample(np.random.default_rng(seed))
    model = space.build(arch, num_classes=10, in_channels=in_channels)
    _forward_backward(model, torch.randn(2, in_channels, size, size), 10)


def test_conv_kernels_and_widths_follow_the_architecture() -> None:
    space = MacroSearchSpace(num_layers=4)
    arch = space.from_string("L0:1x7x24|L1:5x3x36|L2:7x1x48<0|L3:3x3x64<0,1")
    model = space.build(arch, num_classes=5)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(1, 7), (5, 3), (7, 1), (3, 3)]
    assert [c.out_channels for c in convs] == [24, 36, 48, 64]
    assert [c.in_channels for c in convs] == [3, 24, 36 + 24, 48 + 24 + 36]
    pools = [m for m in model.modules() if isinstance(m, torch.nn.MaxPool2d)]
    assert len(pools) == 1  # one shared module, applied after layers 0 and 1 (4 // 3 = 1)
    assert space.pool_after == (0, 1)


def test_pool_positions() -> None:
    assert MacroSearchSpace().pool_after == (1, 3)  # ENAS: three stages of two layers
    assert MacroSearchSpace(num_layers=12).pool_after == (3, 7)  # ENAS's 12-layer network
    assert MacroSearchSpace(num_layers=2).pool_after == ()
    assert MacroSearchSpace(num_layers=6, pool_after=()).pool_after == ()
    assert repr(MacroSearchSpace(num_layers=4, pool_after=[2])) == (
        "MacroSearchSpace(num_layers=4, pool_after=(2,))"
    )


def _layer_output_sizes(space: MacroSearchSpace, size: int) -> list[int]:
    model = space.build(space.sample(np.random.default_rng(0)), num_classes=2)
    assert isinstance(model, MacroNetwork)
    seen: list[int] = []
    for layer in model.layers:
        layer.register_forward_hook(lambda m, i, o: seen.append(o.shape[-1]))
    model(torch.randn(1, 3, size, size))
    return seen


def test_feature_map_sizes() -> None:
    # 'same' padding keeps sizes; each pool halves them (rounding up).
    assert _layer_output_sizes(MacroSearchSpace(num_layers=3, pool_after=()), 8) == [8, 8, 8]
    assert _layer_output_sizes(MacroSearchSpace(), 32) == [32, 32, 16, 16, 8, 8]
    assert _layer_output_sizes(MacroSearchSpace(), 28) == [28, 28, 14, 14, 7, 7]
    assert _layer_output_sizes(MacroSearchSpace(pool_after=(0, 1, 2)), 28) == [28, 14, 7, 4, 4, 4]


def test_mutate_changes_exactly_one_decision() -> None:
    space = MacroSearchSpace()
    for seed in range(30):
        rng = np.random.default_rng(seed)
        arch = space.sample(rng)
        child = space.mutate(arch, rng)
        assert child != arch
        before, after = space.to_params(arch), space.to_params(child)
        assert sum(before[k] != after[k] for k in before) == 1


def test_suggest_in_a_real_study() -> None:
    space = MacroSearchSpace(num_layers=4, num_filters=(4, 8))

    def objective(trial: optuna.Trial) -> float:
        arch = space.suggest(trial)
        lr = trial.suggest_float("lr", 1e-3, 1e-1, log=True)
        assert space.from_params(trial.params) == arch
        trial.set_user_attr("arch", space.to_string(arch))
        model = space.build(arch, num_classes=2)
        with torch.no_grad():
            out = model(torch.randn(2, 3, 16, 16))
        return float(out.square().mean()) * lr

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=4)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    for trial in study.trials:
        assert "lr" in trial.params
        arch = space.from_params(trial.params)
        assert space.to_string(arch) == trial.user_attrs["arch"]
        assert {k for k in trial.params if space.owns_param(k)} == {
            d.name for d in space.decisions
        }
        assert all(type(trial.params[d.name]) is bool for d in space.decisions if "skip" in d.name)

    # Enqueued architectures come back exactly.
    arch = space.from_string("L0:3x3x8|L1:1x1x4|L2:5x7x8<0|L3:3x3x4<0,1")
    study.enqueue_trial(space.to_params(arch))
    study.optimize(objective, n_trials=1)
    assert study.trials[-1].user_attrs["arch"] == space.to_string(arch)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("L0:3x3x36|L1:5x5x48|L2:1x7x24<0", "3 layer"),
        ("L0:3x3x36|L1:5x5x48|L2:1x7x24<0|L3:3x5x64<0,1|", "5 layer"),
        ("L0:3x3x36|L1:5x5x48|L2:1x7x24<0|L3:3x5x64<0,,1", "'L3:3x5x64<0,,1'"),
        ("L0:3x3x36|L1:5x5x48|L2:1x7x24<0|L3:3x5x64<", "'L3:3x5x64<'"),
        ("L0:3x3x36|L1:5x5x48|L2:1x7x24 <0|L3:3x5x64", "'L2:1x7x24 <0'"),
        ("L0:3x3x36|L1:5x5x48|L2:1x7x024|L3:3x5x64", "'L2:1x7x024'"),
        ("L0:3x3x36|L2:5x5x48|L2:1x7x24|L3:3x5x64", "expected L1"),
        ("L0:3x3x36|L1:9x5x48|L2:1x7x24|L3:3x5x64", "filter height 9"),
        ("L0:3x3x36|L1:5x2x48|L2:1x7x24|L3:3x5x64", "filter width 2"),
        ("L0:3x3x36|L1:5x5x50|L2:1x7x24|L3:3x5x64", "number of filters 50"),
        ("L0:3x3x36|L1:5x5x48|L2:1x7x24<1|L3:3x5x64", r"skip from layer\(s\) \[1\]"),
        ("L0:3x3x36|L1:5x5x48|L2:1x7x24|L3:3x5x64<1,0", "ascending"),
        ("L0:3x3x36|L1:5x5x48|L2:1x7x24|L3:3x5x64<0,0", "ascending"),
        ("L0:3x3x36|L1:5x5x48<0|L2:1x7x24|L3:3x5x64", r"'L1:5x5x48<0'"),
        ("", "1 layer"),
    ],
)
def test_bad_strings(text: str, match: str) -> None:
    space = MacroSearchSpace(num_layers=4)
    with pytest.raises(InvalidArchitectureError, match=match):
        space.from_string(text)


def test_bad_params_and_arguments() -> None:
    space = MacroSearchSpace()
    params = space.to_params(space.sample(np.random.default_rng(0)))
    missing = dict(params)
    del missing["macro/layer3/skip_from1"]
    with pytest.raises(InvalidArchitectureError, match="macro/layer3/skip_from1"):
        space.from_params(missing)
    with pytest.raises(InvalidArchitectureError, match="macro/layer2/num_filters"):
        space.from_params({**params, "macro/layer2/num_filters": 100})
    with pytest.raises(InvalidArchitectureError, match="macro/layer0/filter_height"):
        space.from_params({**params, "macro/layer0/filter_height": True})  # True == 1
    with pytest.raises(InvalidArchitectureError, match="macro/layer4/skip_from0"):
        space.from_params({**params, "macro/layer4/skip_from0": "yes"})
    # Foreign parameters (the user's own) are ignored.
    assert space.from_params({**params, "lr": 0.1}) == space.from_params(params)

    with pytest.raises(ValueError, match="num_layers"):
        MacroSearchSpace(num_layers=0)
    with pytest.raises(ValueError, match="filter_sizes"):
        MacroSearchSpace(filter_sizes=(2, 3))
    with pytest.raises(ValueError, match="filter_sizes"):
        MacroSearchSpace(filter_sizes=())
    with pytest.raises(ValueError, match="num_filters"):
        MacroSearchSpace(num_filters=(8, 8))
    with pytest.raises(ValueError, match="pool_after"):
        MacroSearchSpace(num_layers=6, pool_after=(5,))

    arch = space.sample(np.random.default_rng(1))
    with pytest.raises(ValueError, match="foo"):
        space.build(arch, num_classes=10, foo=1)
    with pytest.raises(ValueError, match="num_classes"):
        space.build(arch, num_classes=0)
    small = MacroSearchSpace(num_layers=2)
    with pytest.raises(InvalidArchitectureError, match="this space has 2"):
        small.to_string(arch)
    narrow = MacroSearchSpace(num_filters=(24,))
    with pytest.raises(InvalidArchitectureError, match="num_filters=36"):
        narrow.to_params(space.from_string("|".join(f"L{i}:3x3x36" for i in range(6))))
    with pytest.raises(InvalidArchitectureError, match="MacroArchitecture"):
        space.to_string("L0:3x3x36")  # type: ignore[arg-type]
