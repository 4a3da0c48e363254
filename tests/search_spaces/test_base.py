"""Tests of the SearchSpace hooks (supernet, cell diagram) with user-defined spaces."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
import xml.etree.ElementTree as ET

from darts_helpers import make_data
from darts_helpers import make_trainer
import pytest
import torch
from torch import nn

from optuna_nas.darts import DartsDataModule
from optuna_nas.darts import DartsModule
from optuna_nas.darts import DartsSearch
from optuna_nas.darts import Supernet
from optuna_nas.darts import create_supernet
from optuna_nas.search_spaces import CellGraph
from optuna_nas.search_spaces import Decision
from optuna_nas.search_spaces import SearchSpace
from optuna_nas.search_spaces import _registry
from optuna_nas.search_spaces._base import check_build_options
from optuna_nas.visualization import cell_diagram_svg
from optuna_nas.visualization import cell_graphs


_KERNELS = ("conv1x1", "conv3x3")


class KernelSpace(SearchSpace[str]):
    """A user-defined space without hooks: one decision, the kernel of a single conv."""

    name = "kernel"
    prefix = "kernel"

    def __init__(self) -> None:
        self._decisions = (Decision("kernel/op", _KERNELS),)

    def from_params(self, params: Mapping[str, Any]) -> str:
        return str(self._read_decisions(params)["kernel/op"])

    def to_params(self, arch: str) -> dict[str, Any]:
        return {"kernel/op": arch}

    def to_string(self, arch: str) -> str:
        return arch

    def from_string(self, text: str) -> str:
        if text not in _KERNELS:
            raise ValueError(f"Unknown kernel {text!r}.")
        return text

    def build(
        self, arch: str, *, num_classes: int, in_channels: int = 3, **kwargs: Any
    ) -> nn.Module:
        return _conv_net(arch, num_classes, in_channels)


def _conv_net(op: str, num_classes: int, in_channels: int) -> nn.Module:
    kernel = 1 if op == "conv1x1" else 3
    return nn.Sequential(
        nn.Conv2d(in_channels, 4, kernel, padding=kernel // 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, num_classes),
    )


class KernelSupernet(Supernet):
    """A DARTS supernet of :class:`KernelSpace`: both kernels mixed by one row of alphas."""

    def __init__(self, *, num_classes: int, in_channels: int = 3, aux_skip: bool = False) -> None:
        super().__init__()
        self.operations = _KERNELS
        self._init_common(fused=False, aux_skip=aux_skip)
        self.branches = nn.ModuleList(_conv_net(op, num_classes, in_channels) for op in _KERNELS)
        self.alphas = nn.Parameter(1e-3 * torch.randn(1, len(_KERNELS)))

    def named_arch_parameters(self) -> dict[str, nn.Parameter]:
        return {"cell": self.alphas}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.alphas[0], dim=-1)
        return sum(w * branch(x) for w, branch in zip(weights, self.branches))  # type: ignore

    def derive(self, *, include_none: bool | None = None) -> str:
        if include_none:
            raise ValueError("include_none=True, but the search space has no 'none' operation.")
        return _KERNELS[int(self.alphas[0].argmax())]


class PluggedKernelSpace(KernelSpace):
    """The same space with its own supernet and diagram."""

    name = "plugged_kernel"
    architecture_type = str

    def create_supernet(
        self, *, num_classes: int, in_channels: int = 3, **kwargs: Any
    ) -> Supernet:
        return KernelSupernet(num_classes=num_classes, in_channels=in_channels, **kwargs)

    def cell_graphs(self, arch: str) -> list[CellGraph]:
        return [CellGraph("kernel", ["input", "output"], [(0, 1, arch)])]


def test_a_space_without_hooks_says_so_clearly() -> None:
    space = KernelSpace()
    assert not space.has_supernet
    with pytest.raises(NotImplementedError, match=r"'kernel'.*create_supernet"):
        space.create_supernet(num_classes=2)
    with pytest.raises(NotImplementedError, match=r"'kernel'.*create_supernet"):
        create_supernet(space, num_classes=2)
    with pytest.raises(ValueError, match="'kernel' has none"):
        DartsSearch(space, make_data(16))
    with pytest.raises(NotImplementedError, match=r"'kernel'.*cell_graphs"):
        cell_graphs("conv1x1", space=space)
    # No registered space declares str architectures.
    with pytest.raises(ValueError, match="No cell diagram.*conv1x1.*space="):
        cell_diagram_svg("conv1x1")


def test_a_space_with_its_own_supernet_plugs_in() -> None:
    space = PluggedKernelSpace()
    assert space.has_supernet
    torch.manual_seed(0)
    supernet = create_supernet(space, num_classes=4, in_channels=3)
    assert isinstance(supernet, KernelSupernet)
    assert space.to_string(supernet.derive()) in _KERNELS
    # The DARTS machinery trains it like a built-in supernet.
    dm = DartsDataModule(data=make_data(32), batch_size=8)
    module = DartsModule(supernet=supernet, max_epochs=1)
    before = supernet.alphas.detach().clone()
    make_trainer(max_epochs=1).fit(module, datamodule=dm)
    assert not torch.equal(before, supernet.alphas.detach())
    assert space.from_string(space.to_string(supernet.derive())) == supernet.derive()
    DartsSearch(space, make_data(16), include_none=False)  # accepted: the space has a supernet


def test_create_supernet_checks_the_type() -> None:
    class BadSpace(PluggedKernelSpace):
        def create_supernet(
            self, *, num_classes: int, in_channels: int = 3, **kwargs: Any
        ) -> Supernet:
            return nn.Linear(2, 2)  # type: ignore[return-value]

    with pytest.raises(TypeError, match="must return a Supernet, got Linear"):
        create_supernet(BadSpace(), num_classes=2)


def test_a_space_with_its_own_diagram_plugs_in(monkeypatch: pytest.MonkeyPatch) -> None:
    space = PluggedKernelSpace()
    (graph,) = cell_graphs("conv3x3", space=space)
    assert graph.edges == [(0, 1, "conv3x3")]
    assert ET.fromstring(cell_diagram_svg("conv3x3", space=space)).tag.endswith("svg")
    # Registered with an architecture_type, the space is found from the architecture alone.
    monkeypatch.setitem(_registry._REGISTRY, "plugged_kernel", PluggedKernelSpace)
    assert isinstance(_registry.search_space_for("conv1x1"), PluggedKernelSpace)
    assert cell_graphs("conv1x1")[0].edges == [(0, 1, "conv1x1")]


def test_check_build_options_reads_the_network_signature() -> None:
    class Net(nn.Module):
        def __init__(self, arch: str, *, num_classes: int, width: int = 4) -> None:
            super().__init__()

    check_build_options("toy", {"width": 8}, Net)
    with pytest.raises(ValueError, match=r"toy: \['depth'\]; expected some of \['width'\]"):
        check_build_options("toy", {"depth": 2}, Net)
