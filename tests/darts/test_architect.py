"""Tests of optuna_nas.darts.architect."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from darts_helpers import TINY
from darts_helpers import flat
from darts_helpers import make_data
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from optuna_nas.darts import Architect
from optuna_nas.darts import NB201Supernet
from optuna_nas.darts import Supernet
from optuna_nas.darts import create_supernet
from optuna_nas.darts import finite_difference_hvp
from optuna_nas.search_spaces import create_search_space


class _SmoothNet(Supernet):
    """A smooth (tanh) two-edge supernet, where the finite difference has no kinks to cross."""

    def __init__(self) -> None:
        super().__init__()
        self.operations = ("none", "a", "b")
        self._init_common(fused=True, aux_skip=False)
        self.layers = nn.ModuleList(nn.Linear(6, 6) for _ in range(4))
        self.head = nn.Linear(6, 3)
        self.alpha = nn.Parameter(torch.randn(2, 3))

    def named_arch_parameters(self) -> dict[str, nn.Parameter]:
        return {"cell": self.alpha}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.softmax(self.alpha, -1)
        for e in range(2):
            x = w[e, 1] * torch.tanh(self.layers[2 * e](x)) + w[e, 2] * torch.tanh(
                self.layers[2 * e + 1](x)
            )
        return self.head(x)

    def derive(self) -> Any:
        return None


def _exact_mixed_hvp(
    loss: torch.Tensor,
    weights: Sequence[torch.Tensor],
    arch: Sequence[torch.Tensor],
    v: Sequence[torch.Tensor],
) -> list[torch.Tensor]:
    g = torch.autograd.grad(loss, weights, create_graph=True)
    dot = sum((gi * vi).sum() for gi, vi in zip(g, v))
    assert isinstance(dot, torch.Tensor)
    return list(torch.autograd.grad(dot, arch, allow_unused=True, materialize_grads=True))


def test_finite_difference_hvp_matches_exact_with_darts_epsilon() -> None:
    torch.manual_seed(0)
    net = _SmoothNet().double()
    x, y = torch.randn(16, 6, dtype=torch.float64), torch.randint(0, 3, (16,))
    weights, arch = net.weight_parameters(), net.arch_parameters()
    v = [torch.randn_like(w) for w in weights]
    before = flat(weights).clone()
    exact = _exact_mixed_hvp(F.cross_entropy(net(x), y), weights, arch, v)
    approx = finite_difference_hvp(lambda: F.cross_entropy(net(x), y), weights, arch, v)
    torch.testing.assert_close(flat(approx), flat(exact), rtol=1e-3, atol=1e-6)
    assert torch.equal(flat(weights), before)  # restored exactly
    zeros = finite_difference_hvp(lambda: net(x).sum(), weights, arch, [0 * t for t in v])
    assert all(not bool(z.any()) for z in zeros)


@pytest.mark.parametrize("space_name", ["darts", "nasbench201"])
def test_finite_difference_hvp_on_supernets(space_name: str) -> None:
    # ReLU/max-pool kinks make the DARTS step (0.01) noisy on a random direction; a small step
    # in float64 checks the supernet plumbing against autograd's exact product.
    torch.manual_seed(1)
    net = create_supernet(
        create_search_space(space_name), num_classes=4, alpha_init_std=0.5, **TINY[space_name]
    ).double()
    x, y = torch.randn(6, 3, 8, 8, dtype=torch.float64), torch.randint(0, 4, (6,))
    weights, arch = net.weight_parameters(), net.arch_parameters()
    v = [torch.randn_like(w) for w in weights]
    exact = _exact_mixed_hvp(F.cross_entropy(net(x), y), weights, arch, v)
    approx = finite_difference_hvp(
        lambda: F.cross_entropy(net(x), y), weights, arch, v, eps_scale=1e-6
    )
    e, a = flat(exact), flat(approx)
    assert float((e - a).norm() / e.norm()) < 1e-3


def test_second_order_gradient_matches_exact_unrolled_gradient() -> None:
    torch.manual_seed(0)
    net = _SmoothNet().double()
    xt, yt = torch.randn(16, 6, dtype=torch.float64), torch.randint(0, 3, (16,))
    xv, yv = torch.randn(16, 6, dtype=torch.float64), torch.randint(0, 3, (16,))
    lr, momentum, wd = 0.1, 0.9, 3e-4
    opt = torch.optim.SGD(net.weight_parameters(), lr=lr, momentum=momentum, weight_decay=wd)
    # One real step so that momentum buffers exist.
    F.cross_entropy(net(xt), yt).backward()
    opt.step()
    net.zero_grad()
    before = flat(net.weight_parameters()).clone()
    _, grads = Architect(supernet=net, weight_optimizer=opt, second_order=True).gradients(
        xt, yt, xv, yv
    )
    assert torch.equal(flat(net.weight_parameters()), before)

    # Exact: d/d alpha L_val(w'(alpha), alpha) with w' = w - lr (mu buf + grad L_train + wd w).
    names = [n for n, p in net.named_parameters() if n != "alpha"]
    w = [p for n, p in net.named_parameters() if n != "alpha"]
    g = torch.autograd.grad(F.cross_entropy(net(xt), yt), w, create_graph=True)
    unrolled = {
        n: p - lr * (gi + wd * p + momentum * opt.state[p]["momentum_buffer"])
        for n, p, gi in zip(names, w, g)
    }
    unrolled["alpha"] = net.alpha
    val = F.cross_entropy(torch.func.functional_call(net, unrolled, (xv,)), yv)
    (exact,) = torch.autograd.grad(val, [net.alpha])
    torch.testing.assert_close(grads[0], exact, rtol=1e-3, atol=1e-6)
    # It differs from the first-order gradient (the implicit term matters here).
    _, first = Architect(supernet=net, weight_optimizer=opt).gradients(xt, yt, xv, yv)
    assert not torch.allclose(first[0], exact, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("second_order", [False, True])
def test_architect_step_changes_alphas_only(second_order: bool) -> None:
    torch.manual_seed(0)
    net = NB201Supernet(num_classes=4, **TINY["nasbench201"])
    w_opt = torch.optim.SGD(net.weight_parameters(), lr=0.025, momentum=0.9)
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=3e-4, betas=(0.5, 0.999))
    x, y = make_data(16)
    alphas, weights = flat(net.arch_parameters()).clone(), flat(net.weight_parameters()).clone()
    Architect(supernet=net, weight_optimizer=w_opt, second_order=second_order).step(
        a_opt, x[:8], y[:8], x[8:], y[8:]
    )
    assert not torch.equal(flat(net.arch_parameters()), alphas)
    assert torch.equal(flat(net.weight_parameters()), weights)
    assert all(p.grad is None for p in net.weight_parameters())
