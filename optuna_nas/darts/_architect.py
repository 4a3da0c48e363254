"""Architecture gradients of DARTS: first order and second order (unrolled)."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import contextlib
import math
from typing import Any
from typing import Protocol

import torch
from torch import nn
import torch.nn.functional as F

from optuna_nas._validation import check_number
from optuna_nas.darts._supernet import Supernet


Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class _Steppable(Protocol):
    def step(self) -> Any: ...


def _grad(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    # Parameters that the loss does not reach get zeros, not None.
    return list(torch.autograd.grad(loss, params, allow_unused=True, materialize_grads=True))


def finite_difference_hvp(
    loss_fn: Callable[[], torch.Tensor],
    weights: Sequence[torch.Tensor],
    arch: Sequence[torch.Tensor],
    vector: Sequence[torch.Tensor],
    *,
    eps_scale: float = 0.01,
) -> list[torch.Tensor]:
    """Mixed second derivative ``d/d(arch) (grad_w L . vector)`` by central differences.

    DARTS' approximation (Liu et al., 2019, Eq. 8)::

        (grad_arch L(w + eps v) - grad_arch L(w - eps v)) / (2 eps),   eps = 0.01 / ||v||

    The weights are perturbed in place and restored exactly (copied back, not re-added) before
    returning, also when ``loss_fn`` raises.

    Args:
        loss_fn: Recomputes the loss from the current weights (a forward pass).
        weights: The weights ``w`` (leaf tensors, perturbed in place).
        arch: The architecture parameters to differentiate with respect to.
        vector: ``v``, one tensor per weight.
        eps_scale: The step ``eps * ||v||`` (``0.01`` in DARTS).

    Returns:
        One tensor per architecture parameter. Zeros when ``v`` is zero; NaNs when ``v`` is not
        finite (so the caller's non-finite check catches it).
    """
    if len(vector) != len(weights):
        raise ValueError(f"vector has {len(vector)} tensors for {len(weights)} weights.")
    check_number("eps_scale", eps_scale, minimum=0.0, min_inclusive=False)
    if not weights:
        return [torch.zeros_like(a) for a in arch]
    norms = torch.stack([torch.linalg.vector_norm(v.float()) for v in vector])
    norm = float(torch.linalg.vector_norm(norms))
    if not math.isfinite(norm):
        return [torch.full_like(a, math.nan) for a in arch]
    if norm == 0.0:
        return [torch.zeros_like(a) for a in arch]
    eps = eps_scale / norm
    weights = list(weights)
    vector = list(vector)
    saved = [w.detach().clone() for w in weights]
    try:
        with torch.no_grad():
            torch._foreach_add_(weights, vector, alpha=eps)
        g_plus = _grad(loss_fn(), arch)
        with torch.no_grad():
            torch._foreach_add_(weights, vector, alpha=-2.0 * eps)
        g_minus = _grad(loss_fn(), arch)
    finally:
        with torch.no_grad():
            for w, s in zip(weights, saved):
                w.copy_(s)
    return [(p - m) / (2.0 * eps) for p, m in zip(g_plus, g_minus)]


class Architect:
    """Computes DARTS' architecture gradient; the weights are left as they were.

    First order (DARTS-V1): ``grad_alpha L_val(w, alpha)``. Second order (DARTS-V2):
    ``grad_alpha L_val(w', alpha) - xi * H v`` with the virtual step
    ``w' = w - xi (momentum * buffer + grad_w L_train + wd * w)`` taken with the weight
    optimizer's own ``lr`` (``xi``), momentum, weight decay and momentum buffers, ``v =
    grad_w' L_val(w', alpha)`` and ``H v`` the finite-difference mixed Hessian-vector product of
    :func:`finite_difference_hvp` on the training batch. The virtual step runs in place on the
    weights and is undone by copying them back, instead of DARTS' copy of the whole model.

    With several parameter groups, ``xi`` is each group's own ``lr`` (``H (xi * v)``); with one
    group this is exactly DARTS' ``xi * H v``.

    Args:
        supernet: The supernet.
        weight_optimizer: The weights' ``torch.optim.SGD`` (or any optimizer with ``lr``,
            ``momentum`` and ``weight_decay`` in its groups).
        second_order: Use the unrolled (second order) gradient.
        eps_scale: The finite-difference step (``0.01`` in DARTS).
        criterion: ``criterion(logits, target) -> loss``; cross entropy by default.
        hvp_autocast_off: Run the two finite-difference passes in float32 even under autocast:
            with bfloat16 activations the difference of two nearby gradients would be mostly
            rounding noise.

    Example:
        .. code-block:: python

            import torch
            from optuna_nas.darts import Architect, NB201Supernet

            net = NB201Supernet(num_classes=10, channels=4, cells_per_stage=1)
            w_opt = torch.optim.SGD(net.weight_parameters(), lr=0.025, momentum=0.9)
            a_opt = torch.optim.Adam(net.arch_parameters(), lr=3e-4, betas=(0.5, 0.999))
            x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 10, (8,))
            architect = Architect(supernet=net, weight_optimizer=w_opt, second_order=True)
            val_loss = architect.step(a_opt, x[:4], y[:4], x[4:], y[4:])  # alphas move
    """

    def __init__(
        self,
        *,
        supernet: Supernet,
        weight_optimizer: torch.optim.Optimizer,
        second_order: bool = False,
        eps_scale: float = 0.01,
        criterion: Criterion = F.cross_entropy,
        hvp_autocast_off: bool = True,
    ) -> None:
        check_number("eps_scale", eps_scale, minimum=0.0, min_inclusive=False)
        self.supernet = supernet
        # Lightning wraps optimizers; the momentum buffers live in the wrapped one.
        self.weight_optimizer: torch.optim.Optimizer = getattr(
            weight_optimizer, "optimizer", weight_optimizer
        )
        self.second_order = second_order
        self.eps_scale = eps_scale
        self.criterion = criterion
        self.hvp_autocast_off = hvp_autocast_off

    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.criterion(self.supernet(x), y)

    def gradients(
        self,
        x_train: torch.Tensor,
        y_train: torch.Tensor,
        x_val: torch.Tensor,
        y_val: torch.Tensor,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Return ``(validation loss, gradient per architecture parameter)``."""
        arch = self.supernet.arch_parameters()
        if not self.second_order:
            loss = self._loss(x_val, y_val)
            # Only the alphas' gradient: the weight-gradient kernels are skipped.
            return loss.detach(), _grad(loss, arch)
        return self._second_order(x_train, y_train, x_val, y_val, arch)

    def _second_order(
        self,
        x_train: torch.Tensor,
        y_train: torch.Tensor,
        x_val: torch.Tensor,
        y_val: torch.Tensor,
        arch: list[nn.Parameter],
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        groups = self.weight_optimizer.param_groups
        weights: list[torch.Tensor] = [p for g in groups for p in g["params"]]
        saved = [w.detach().clone() for w in weights]
        grads = _grad(self._loss(x_train, y_train), weights)
        try:
            with torch.no_grad():
                start = 0
                for group in groups:
                    params = list(group["params"])
                    step = torch._foreach_add(
                        grads[start : start + len(params)], params, alpha=group["weight_decay"]
                    )
                    momentum = group.get("momentum", 0.0)
                    if momentum:
                        for k, p in enumerate(params):
                            buf = self.weight_optimizer.state.get(p, {}).get("momentum_buffer")
                            if buf is not None:
                                step[k].add_(buf, alpha=momentum)
                    torch._foreach_add_(params, step, alpha=-group["lr"])
                    start += len(params)
            val_loss = self._loss(x_val, y_val)
            g_all = _grad(val_loss, [*arch, *weights])
        finally:
            with torch.no_grad():
                for w, s in zip(weights, saved):
                    w.copy_(s)
        d_alpha, v = g_all[: len(arch)], g_all[len(arch) :]
        scaled: list[torch.Tensor] = []
        start = 0
        for group in groups:
            n = len(group["params"])
            scaled.extend(torch._foreach_mul(v[start : start + n], float(group["lr"])))
            start += n
        context = (
            torch.autocast(x_train.device.type, enabled=False)
            if self.hvp_autocast_off
            else contextlib.nullcontext()
        )
        with context:
            hvp = finite_difference_hvp(
                lambda: self._loss(x_train, y_train),
                weights,
                arch,
                scaled,
                eps_scale=self.eps_scale,
            )
        return val_loss.detach(), [da - h for da, h in zip(d_alpha, hvp)]

    def step(
        self,
        arch_optimizer: _Steppable,
        x_train: torch.Tensor,
        y_train: torch.Tensor,
        x_val: torch.Tensor,
        y_val: torch.Tensor,
    ) -> torch.Tensor:
        """Set the alphas' gradients and take one ``arch_optimizer`` step; return the val loss."""
        loss, grads = self.gradients(x_train, y_train, x_val, y_val)
        for p, g in zip(self.supernet.arch_parameters(), grads):
            p.grad = g.to(p.dtype)
        arch_optimizer.step()
        return loss
