"""Smoke tests run over every registered search space (in the spirit of timm's model tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import torch

from optuna_nas.search_spaces import CellGraph
from optuna_nas.search_spaces import SearchSpace
from optuna_nas.search_spaces import create_search_space
from optuna_nas.search_spaces import list_search_spaces
from optuna_nas.trial_outcome import InvalidArchitectureError
from optuna_nas.visualization import cell_graphs


# Small networks per space so the smoke tests stay fast; a space missing here is built with its
# defaults.
TINY_BUILD_KWARGS: dict[str, dict[str, Any]] = {
    "nasbench201": {"channels": 4, "cells_per_stage": 1},
    "darts": {"channels": 8, "layers": 3},
    "macro": {},
}
# Small supernets for the spaces that have one.
TINY_SUPERNET_KWARGS: dict[str, dict[str, Any]] = {
    "nasbench201": {"channels": 4, "cells_per_stage": 1},
    "darts": {"channels": 4, "layers": 3},
}
SPACES = list_search_spaces()


def _check_space(space: SearchSpace[Any], name: str) -> None:
    assert space.name == name
    assert space.prefix and "/" not in space.prefix


def test_expected_spaces_are_registered() -> None:
    assert {"nasbench201", "darts", "macro"} <= set(SPACES)
    assert SPACES == sorted(SPACES)


def test_unknown_name_lists_the_available_spaces() -> None:
    with pytest.raises(ValueError, match="no_such_space") as info:
        create_search_space("no_such_space")
    for name in SPACES:
        assert repr(name) in str(info.value)


@pytest.mark.parametrize("name", SPACES)
def test_decisions(name: str) -> None:
    space = create_search_space(name)
    _check_space(space, name)
    decisions = list(space.decisions)
    assert decisions
    names = [d.name for d in decisions]
    assert len(set(names)) == len(names)
    assert all(n.startswith(f"{space.prefix}/") and space.owns_param(n) for n in names)
    assert not space.owns_param("lr")
    assert any(len(d.choices) > 1 for d in decisions)
    # Only the types Optuna's storages keep exactly as categorical choices.
    for d in decisions:
        assert all(c is None or isinstance(c, (bool, int, float, str)) for c in d.choices), d
    assert space.num_architectures >= 2
    assert isinstance(repr(space), str)


@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("rng_kind", ["Generator", "RandomState"])
def test_sample_round_trips_and_mutate(name: str, rng_kind: str) -> None:
    space = create_search_space(name)

    def make_rng(seed: int) -> np.random.Generator | np.random.RandomState:
        return (
            np.random.default_rng(seed) if rng_kind == "Generator" else np.random.RandomState(seed)
        )

    assert space.sample(make_rng(3)) == space.sample(make_rng(3))  # reproducible
    rng = make_rng(0)
    archs = [space.sample(rng) for _ in range(10)]
    assert len({space.to_string(a) for a in archs}) > 1
    for arch in archs:
        params = space.to_params(arch)
        assert list(params) == [d.name for d in space.decisions]
        assert space.from_params(params) == arch
        assert space.from_params({**params, "lr": 0.1}) == arch  # foreign params are ignored
        text = space.to_string(arch)
        assert isinstance(text, str)
        assert space.from_string(text) == arch
        assert space.to_string(space.from_string(text)) == text
        child = space.mutate(arch, rng)
        child_params = space.to_params(child)
        assert sum(params[k] != child_params[k] for k in params) == 1


@pytest.mark.parametrize("name", SPACES)
def test_bad_input_raises_value_error(name: str) -> None:
    space = create_search_space(name)
    params = space.to_params(space.sample(np.random.default_rng(0)))
    first = space.decisions[0].name
    with pytest.raises(InvalidArchitectureError, match=first):
        space.from_params({k: v for k, v in params.items() if k != first})
    with pytest.raises(InvalidArchitectureError, match=first):
        space.from_params({**params, first: "<not a choice>"})
    with pytest.raises(InvalidArchitectureError):
        space.from_string("this is not an architecture")
    with pytest.raises(InvalidArchitectureError):
        space.from_string("")
    with pytest.raises(ValueError, match="no_such_option"):
        space.build(space.sample(np.random.default_rng(0)), num_classes=10, no_such_option=1)


@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize(("in_channels", "size"), [(3, 32), (1, 28)])
def test_build_forward_backward(name: str, in_channels: int, size: int) -> None:
    torch.manual_seed(0)
    space = create_search_space(name)
    arch = space.sample(np.random.default_rng(1))
    model = space.build(
        arch, num_classes=10, in_channels=in_channels, **TINY_BUILD_KWARGS.get(name, {})
    )
    assert isinstance(model, torch.nn.Module)
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in model.parameters())
    model.train()
    out = model(torch.randn(2, in_channels, size, size))
    assert isinstance(out, torch.Tensor)
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 1])).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, in_channels, size, size)).shape == (1, 10)


@pytest.mark.parametrize("name", SPACES)
def test_suggest_in_a_mixed_study_with_storage(name: str, tmp_path: Path) -> None:
    space = create_search_space(name)
    storage = f"sqlite:///{tmp_path / 'study.db'}"

    def objective(trial: optuna.Trial) -> float:
        arch = space.suggest(trial)
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        assert space.from_params(trial.params) == arch
        trial.set_user_attr("arch", space.to_string(arch))
        return lr

    study = optuna.create_study(
        storage=storage, study_name="s", sampler=optuna.samplers.RandomSampler(seed=0)
    )
    enqueued = space.sample(np.random.default_rng(5))
    study.enqueue_trial(space.to_params(enqueued))
    study.optimize(objective, n_trials=3)

    # Reloaded from storage, every trial's parameters rebuild the recorded architecture.
    reloaded = optuna.load_study(study_name="s", storage=storage)
    trials = reloaded.get_trials()
    assert len(trials) == 3
    assert trials[0].user_attrs["arch"] == space.to_string(enqueued)
    for trial in trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert set(trial.params) == {"lr"} | {d.name for d in space.decisions}
        assert space.to_string(space.from_params(trial.params)) == trial.user_attrs["arch"]


@pytest.mark.parametrize("name", SPACES)
def test_diagram_and_supernet_hooks_work_or_say_they_are_absent(name: str) -> None:
    space = create_search_space(name)
    arch = space.sample(np.random.default_rng(2))
    try:
        graphs = space.cell_graphs(arch)
    except NotImplementedError as error:
        assert repr(name) in str(error) and "cell_graphs" in str(error)
    else:
        assert graphs and all(isinstance(g, CellGraph) and g.title and g.nodes for g in graphs)
        for graph in graphs:
            nodes = range(len(graph.nodes))
            assert all(a in nodes and b in nodes for a, b, _ in graph.edges)
        assert cell_graphs(arch) == graphs  # found from the architecture (architecture_type)
    if not space.has_supernet:
        with pytest.raises(NotImplementedError, match=rf"{name!r}.*create_supernet"):
            space.create_supernet(num_classes=3)
        return
    from optuna_nas.darts import Supernet  # the one-shot stack, imported only when needed
    from optuna_nas.darts import create_supernet

    torch.manual_seed(0)
    supernet = create_supernet(space, num_classes=3, **TINY_SUPERNET_KWARGS.get(name, {}))
    assert isinstance(supernet, Supernet)
    assert supernet(torch.randn(2, 3, 16, 16)).shape == (2, 3)
    derived = supernet.derive()
    assert space.from_string(space.to_string(derived)) == derived
    assert space.from_params(space.to_params(derived)) == derived
