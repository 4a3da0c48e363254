"""The continuous relaxation of one edge: a softmax-weighted sum of candidate operations."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence

import torch
from torch import nn

from optuna_nas.search_spaces._ops import DARTS_OPS
from optuna_nas.search_spaces._ops import NB201_OPS


def _leading_relu_tail(module: nn.Module) -> nn.Module | None:
    """If ``module(x) == tail(relu(x))``, return ``tail`` (sharing ``module``'s layers).

    The DARTS and NAS-Bench-201 convolutions all start with ``ReLU``; computing ``relu(x)`` once
    per cell state instead of once per operation and edge saves kernels and, more importantly,
    the saved activations (one tensor instead of one per convolution and edge).
    """
    if not isinstance(module, nn.Sequential) or len(module) == 0:
        return None
    first, rest = module[0], list(module)[1:]
    if isinstance(first, nn.ReLU):
        # Built explicitly: slicing a Sequential subclass calls its own constructor.
        return nn.Sequential(*rest)
    inner = _leading_relu_tail(first)
    if inner is None:
        return None
    return nn.Sequential(inner, *rest)


def _accumulate(
    acc: torch.Tensor | None, weight: torch.Tensor, value: torch.Tensor
) -> torch.Tensor:
    # One fused multiply-add kernel per term instead of a multiply and an add.
    if acc is None:
        return value * weight
    return torch.addcmul(acc, weight, value)


class MixedOp(nn.Module):
    """One edge of a supernet: ``sum_k softmax(alpha)_k * op_k(x)`` (DARTS' continuous relaxation).

    The mixing weights are passed to :meth:`forward`, so the architecture parameters live in the
    supernet, apart from the operations' weights. ``none`` (the zero operation) takes part in the
    softmax like in DARTS, but its term is exactly zero, so the fused path never computes it: the
    result and every gradient are the same as computing ``0 * w_none``.

    Args:
        candidates: Operation name -> module, in the order of the mixing weights.

    Example:
        .. code-block:: python

            import torch
            from optuna_nas.darts import MixedOp

            op = MixedOp.for_darts(channels=4, stride=1, operations=["none", "skip_connect"])
            out = op(torch.randn(2, 4, 8, 8), torch.softmax(torch.zeros(2), 0))
    """

    def __init__(self, *, candidates: Mapping[str, nn.Module]) -> None:
        super().__init__()
        names = tuple(candidates)
        if not any(name != "none" for name in names):
            raise ValueError(f"A MixedOp needs an operation other than 'none', got {names!r}.")
        self.names = names
        self.ops = nn.ModuleList(candidates.values())
        # Plain lists (not registered): the tails share the layers of ``self.ops``.
        self._tails: list[nn.Module | None] = [_leading_relu_tail(op) for op in self.ops]
        self._active = [k for k, name in enumerate(names) if name != "none"]

    @classmethod
    def for_darts(cls, *, channels: int, stride: int, operations: Sequence[str]) -> MixedOp:
        """A DARTS-space edge: ``DARTS_OPS`` with ``affine=False``, pooling followed by BN.

        As in DARTS, pooling is followed by a ``BatchNorm2d(affine=False)`` so its output has the
        same scale as the normalised convolutions.
        """
        candidates: dict[str, nn.Module] = {}
        for name in operations:
            if name not in DARTS_OPS:
                raise ValueError(
                    f"Unknown DARTS operation {name!r}; known: {sorted(DARTS_OPS)!r}."
                )
            op = DARTS_OPS[name](channels, stride, False)
            if "pool" in name:
                op = nn.Sequential(op, nn.BatchNorm2d(channels, affine=False))
            candidates[name] = op
        return cls(candidates=candidates)

    @classmethod
    def for_nb201(
        cls, *, in_channels: int, out_channels: int, stride: int, operations: Sequence[str]
    ) -> MixedOp:
        """A NAS-Bench-201 edge: ``NB201_OPS`` with ``affine=False``, as NB201's DARTS baseline.

        NAS-Bench-201's search cell puts no extra BN after pooling, so neither do we here.
        """
        candidates: dict[str, nn.Module] = {}
        for name in operations:
            if name not in NB201_OPS:
                raise ValueError(
                    f"Unknown NAS-Bench-201 operation {name!r}; known: {sorted(NB201_OPS)!r}."
                )
            candidates[name] = NB201_OPS[name](in_channels, out_channels, stride, False)
        return cls(candidates=candidates)

    @property
    def uses_relu_input(self) -> bool:
        """Whether some operation starts with ``ReLU`` (then the fused path wants ``relu(x)``)."""
        return any(self._tails[k] is not None for k in self._active)

    def forward(
        self,
        x: torch.Tensor,
        weights: torch.Tensor,
        *,
        x_relu: torch.Tensor | None = None,
        acc: torch.Tensor | None = None,
        fused: bool = True,
    ) -> torch.Tensor:
        """Return ``acc + sum_k weights[k] * op_k(x)``.

        Args:
            x: The edge input.
            weights: One mixing weight per candidate (a softmax row), 1-D.
            x_relu: ``relu(x)`` computed once by the caller and shared between edges (fused path).
            acc: A running sum to add to (a node sums its incoming edges); ``None`` for none.
            fused: ``False`` computes every operation, ``none`` included, as in the original
                DARTS code (``sum(w * op(x))``); kept as the reference for tests.
        """
        if not fused:
            out = sum(w * op(x) for w, op in zip(weights, self.ops))
            assert isinstance(out, torch.Tensor)
            return out if acc is None else acc + out
        for k in self._active:
            tail = self._tails[k]
            if tail is not None:
                value = tail(x_relu if x_relu is not None else torch.relu(x))
            else:
                value = self.ops[k](x)
            acc = _accumulate(acc, weights[k], value)
        assert acc is not None
        return acc
