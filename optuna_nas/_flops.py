"""Forward FLOPs of a network, counted by ``torch.utils.flop_counter`` (shared by the training
stack's cost measures and the ``flops`` zero-cost proxy)."""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


class _NoModuleTracking:
    """Stands in for ``FlopCounterMode``'s module tracker: every count goes to "Global"."""

    parents = frozenset({"Global"})

    def __enter__(self) -> _NoModuleTracking:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


class _TotalFlopCounter(FlopCounterMode):
    """``FlopCounterMode`` (torch's formulas and dispatch) without its per-module breakdown.

    Why: the stock mode's module tracker hooks every module call and looks its name up by
    walking the module tree; on a NAS network of a few hundred small modules that costs ~10x
    the forward pass itself (measured: 0.07 s vs 0.006 s for an NB201 network, C=16, N=5, on
    one CPU thread), and only the total is read here. When a torch release changes the
    tracker's attribute, the stock mode is used as it is (the counts are the same).
    """

    def __init__(self) -> None:
        super().__init__(display=False)
        if hasattr(self, "mod_tracker"):
            self.mod_tracker = _NoModuleTracking()  # type: ignore[assignment]


@contextlib.contextmanager
def evaluation_mode(network: nn.Module) -> Iterator[None]:
    """Every module in evaluation mode, each module's own mode restored afterwards."""
    modes = [(module, module.training) for module in network.modules()]
    network.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def count_flops(network: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Forward FLOPs for one input of ``input_shape`` (``(C, H, W)``), in evaluation mode.

    Counted with ``torch.utils.flop_counter``'s formulas: convolutions and matrix products,
    two FLOPs per multiply-add (so MACs, the "mult-adds" of NAS papers, are ``flops / 2``).
    Evaluation mode leaves auxiliary heads out, as papers do. The network is left as it was
    (each module's training mode restored, no gradients).

    Example:
        .. code-block:: python

            from torch import nn
            from optuna_nas.training import count_flops

            assert count_flops(nn.Linear(4, 3), (4,)) == 2 * 4 * 3
    """
    first = next(iter(network.parameters()), torch.empty(0))
    x = torch.zeros((1, *input_shape), device=first.device, dtype=first.dtype)
    counter = _TotalFlopCounter()
    with evaluation_mode(network), torch.no_grad(), counter:
        network(x)
    return int(counter.get_total_flops())
