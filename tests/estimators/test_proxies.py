"""Zero-cost proxies: hand-derived values on tiny networks, invariances, every space."""

from __future__ import annotations

import copy
import itertools
import math
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from optuna_nas.estimators import create_proxy
from optuna_nas.estimators import list_proxies
from optuna_nas.search_spaces import create_search_space


ALL = ["fisher", "flops", "grad_norm", "grasp", "jacob_cov", "naswot", "params", "snip", "synflow"]


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _batch(n: int = 6, shape: tuple[int, ...] = (3, 8, 8), classes: int = 5) -> Any:
    g = torch.Generator().manual_seed(1)
    return torch.randn((n, *shape), generator=g), torch.randint(0, classes, (n,), generator=g)


def _small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 5),
    )


# --------------------------------------------------------------------------- registry
def test_registry_lists_every_proxy_with_its_metadata() -> None:
    assert list_proxies() == ALL
    for name in ALL:
        proxy = create_proxy(name)
        assert proxy.name == name
        assert proxy.higher_is_better is True
        assert proxy.reference
        assert isinstance(proxy.needs_data, bool)
    assert not create_proxy("synflow").needs_data and not create_proxy("params").needs_data
    assert create_proxy("snip").needs_data and create_proxy("naswot").needs_data


def test_unknown_proxy_names_the_available_ones() -> None:
    with pytest.raises(ValueError, match=r"'nope'.*'grad_norm'.*'synflow'"):
        create_proxy("nope")


def test_missing_data_is_refused() -> None:
    net, (x, _) = _small_cnn(), _batch()
    with pytest.raises(ValueError, match="inputs"):
        create_proxy("snip")(net)
    with pytest.raises(ValueError, match="targets"):
        create_proxy("snip")(net, x)
    with pytest.raises(ValueError, match="input_shape"):
        create_proxy("synflow")(net)
    with pytest.raises(ValueError, match=r"input_shape\[1\].*0"):
        create_proxy("synflow", input_shape=(3, 0))
    with pytest.raises(ValueError, match="k must be"):
        create_proxy("jacob_cov", k=0.0)


# --------------------------------------------------------------------------- synflow
def _abs_path_sum(*weights: torch.Tensor) -> float:
    """Sum over every input-to-output path of the product of |w| (explicit loops)."""
    w = [t.detach().abs().double().numpy() for t in weights]  # w[l] is (out, in)
    total = 0.0
    sizes = [w[0].shape[1]] + [t.shape[0] for t in w]
    for path in itertools.product(*(range(s) for s in sizes)):
        total += math.prod(float(w[i][path[i + 1], path[i]]) for i in range(len(w)))
    return total


def test_synflow_of_bias_free_linear_net_is_depth_times_path_sum() -> None:
    # Every layer's sum of |w * dR/dw| equals R, the sum of |w| products over all paths.
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(3, 4, bias=False), nn.Linear(4, 2, bias=False))
    expected = 2 * _abs_path_sum(net[0].weight, net[1].weight)
    assert create_proxy("synflow", input_shape=(3,))(net) == pytest.approx(expected, rel=1e-12)


def test_synflow_removes_batchnorm_and_reads_only_the_input_shape() -> None:
    torch.manual_seed(4)
    plain = nn.Sequential(nn.Linear(3, 4, bias=False), nn.Linear(4, 2, bias=False))
    with_bn = nn.Sequential(plain[0], nn.BatchNorm1d(4), plain[1])
    with torch.no_grad():  # BN statistics and affine that would change the flow if kept
        with_bn[1].running_mean.fill_(3.0)
        with_bn[1].running_var.fill_(9.0)
        with_bn[1].weight.fill_(-5.0)
    synflow = create_proxy("synflow")
    expected = synflow(plain, torch.randn(1, 3))
    assert synflow(with_bn, torch.randn(7, 3)) == pytest.approx(expected, rel=1e-12)
    assert synflow(with_bn, 100 * torch.randn(2, 3)) == pytest.approx(expected, rel=1e-12)


def test_synflow_unchanged_by_batch_size() -> None:
    net = _small_cnn()
    synflow = create_proxy("synflow")
    one = synflow(net, torch.randn(1, 3, 8, 8))
    assert synflow(net, torch.randn(9, 3, 8, 8)) == one
    assert create_proxy("synflow", input_shape=(3, 8, 8))(net) == one


# --------------------------------------------------------------------------- gradient proxies
def _linear_problem() -> tuple[nn.Linear, torch.Tensor, torch.Tensor, np.ndarray]:
    """A bias-free linear classifier, a batch and its cross-entropy gradient in closed form."""
    torch.manual_seed(5)
    net = nn.Linear(4, 3, bias=False)
    x = torch.randn(5, 4)
    y = torch.tensor([0, 2, 1, 1, 0])
    w, xn = net.weight.detach().double().numpy(), x.double().numpy()
    logits = xn @ w.T
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    onehot = np.eye(3)[y.numpy()]
    grad = (p - onehot).T @ xn / len(xn)  # dL/dW of the mean cross-entropy
    return net, x, y, grad


def test_snip_and_grad_norm_of_a_linear_classifier() -> None:
    net, x, y, grad = _linear_problem()
    w = net.weight.detach().double().numpy()
    assert create_proxy("snip")(net, x, y) == pytest.approx(np.abs(w * grad).sum(), rel=1e-5)
    assert create_proxy("grad_norm")(net, x, y) == pytest.approx(
        np.sqrt((grad**2).sum()), rel=1e-5
    )


def test_grasp_of_a_linear_classifier_is_minus_w_hessian_g() -> None:
    net, x, y, grad = _linear_problem()
    w0 = net.weight.detach().double()

    def loss(flat: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(x.double() @ flat.reshape(3, 4).T, y)

    hessian = torch.autograd.functional.hessian(loss, w0.flatten()).numpy()
    expected = float(-w0.flatten().numpy() @ hessian @ grad.flatten())
    assert create_proxy("grasp")(net, x, y) == pytest.approx(expected, rel=1e-4, abs=1e-9)


def test_fisher_of_a_linear_classifier() -> None:
    # The layer's output a = W x is the logits; dL/da = (softmax - onehot) / N.
    net, x, y, _ = _linear_problem()
    a = (x.double() @ net.weight.detach().double().T).numpy()
    p = np.exp(a - a.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    g = (p - np.eye(3)[y.numpy()]) / len(a)
    expected = (0.5 * ((a * g) ** 2).mean(axis=0)).sum()
    assert create_proxy("fisher")(net, x, y) == pytest.approx(expected, rel=1e-4)


def test_jacob_cov_matches_per_image_jacobians() -> None:
    torch.manual_seed(6)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    x = torch.randn(5, 4)
    rows = [
        torch.autograd.functional.jacobian(lambda v: net(v).sum(), x[i]).numpy() for i in range(5)
    ]
    eig = np.linalg.eigvals(np.corrcoef(np.stack(rows).astype(np.float64))).real
    expected = -np.sum(np.log(eig + 1e-5) + 1 / (eig + 1e-5))
    assert create_proxy("jacob_cov")(net, x) == pytest.approx(expected, rel=1e-3)


def test_jacob_cov_of_a_linear_net_and_of_a_constant_one() -> None:
    # A linear net gives every image the same Jacobian: all correlations 1, eigenvalues
    # n and 0 (n - 1 times).
    k, n = 1e-5, 5
    expected = -(math.log(n + k) + 1 / (n + k) + (n - 1) * (math.log(k) + 1 / k))
    value = create_proxy("jacob_cov")(nn.Linear(4, 3), torch.randn(n, 4))
    assert value == pytest.approx(expected, rel=1e-6)
    # A zero Jacobian has no correlation at all: the worst score.
    constant = nn.Linear(4, 3)
    with torch.no_grad():
        constant.weight.zero_()
    assert create_proxy("jacob_cov")(constant, torch.randn(n, 4)) == -math.inf


# --------------------------------------------------------------------------- naswot
def test_naswot_of_known_activation_codes() -> None:
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU())
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(2))
    x = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])
    # Codes 11, 10, 00: K = N_A - Hamming = [[2, 1, 0], [1, 2, 1], [0, 1, 2]], det 4.
    assert create_proxy("naswot")(net, x) == pytest.approx(math.log(4.0))
    twice = nn.Sequential(net[0], nn.ReLU(), nn.Identity(), nn.ReLU())  # codes repeat: K doubles
    assert create_proxy("naswot")(twice, x) == pytest.approx(math.log(4.0 * 2**3))


def test_naswot_needs_relu_modules_and_equal_codes_are_singular() -> None:
    with pytest.raises(ValueError, match=r"nn\.ReLU.*Linear"):
        create_proxy("naswot")(nn.Linear(2, 2), torch.randn(3, 2))
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    assert create_proxy("naswot")(net, torch.ones(3, 2)) == -math.inf


# --------------------------------------------------------------------------- params, flops
def test_params_counts_trainable_tensors_once() -> None:
    shared = nn.Linear(4, 3)
    net = nn.Sequential(shared, nn.ReLU(), shared, nn.Conv2d(3, 2, 3))
    assert create_proxy("params")(net) == (4 * 3 + 3) + (3 * 2 * 9 + 2)
    net[3].bias.requires_grad_(False)
    assert create_proxy("params")(net) == 15 + 54


def test_flops_of_linear_and_conv_layers() -> None:
    assert create_proxy("flops", input_shape=(4,))(nn.Linear(4, 3)) == 2 * 4 * 3
    conv = nn.Conv2d(3, 8, 3)  # 8x8 output positions from a 10x10 image
    assert create_proxy("flops")(conv, torch.randn(5, 3, 10, 10)) == 2 * 8 * 3 * 9 * 64


# --------------------------------------------------------------------------- invariances
@pytest.mark.parametrize("name", ALL)
def test_proxy_leaves_network_unchanged_and_is_deterministic(name: str) -> None:
    net = _small_cnn()
    for module in list(net.modules())[::3]:
        module.eval()  # mixed modes: each module's flag must come back as it was
    net[0].weight.requires_grad_(False)
    before = copy.deepcopy(net.state_dict())
    modes = [m.training for m in net.modules()]
    x, y = _batch()
    rng = torch.get_rng_state()
    proxy = create_proxy(name)
    first = proxy(net, x, y)
    assert proxy(net, x, y) == first
    assert isinstance(first, float) and math.isfinite(first)
    assert torch.equal(torch.get_rng_state(), rng)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [m.training for m in net.modules()] == modes
    assert [p.requires_grad for p in net.parameters()] == [False] + [True] * 8
    assert all(p.grad is None for p in net.parameters())


@pytest.mark.parametrize("name", ALL)
def test_consume_scores_the_network_itself_and_keeping_proxies_still_leave_it(name: str) -> None:
    proxy = create_proxy(name)
    x, y = _batch()
    torch.manual_seed(0)
    copied = proxy(_small_cnn(), x, y)
    torch.manual_seed(0)
    net = _small_cnn()
    before = copy.deepcopy(net.state_dict())
    assert proxy(net, x, y, consume=True) == copied
    if not proxy.modifies_network:  # what ProxyScorer relies on to share one network
        assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
        assert net.training and all(p.grad is None for p in net.parameters())


# --------------------------------------------------------------------------- every space
SPACES = {
    "nasbench201": ({}, {"channels": 4, "cells_per_stage": 1}),
    "darts": ({}, {"channels": 4, "layers": 3}),
    "darts_aux": ({}, {"channels": 4, "layers": 3, "auxiliary": True}),
    "macro": ({"num_layers": 3, "num_filters": (4, 8)}, {}),
}


def _space_network(key: str) -> nn.Module:
    space_kwargs, build_kwargs = SPACES[key]
    space = create_search_space(key.removesuffix("_aux"), **space_kwargs)
    arch = space.sample(np.random.RandomState(2))
    torch.manual_seed(0)
    return space.build(arch, num_classes=5, **build_kwargs)


@pytest.mark.parametrize("key", list(SPACES))
def test_every_proxy_scores_every_space(key: str) -> None:
    net = _space_network(key)
    x, y = _batch(n=4, shape=(3, 16, 16))
    before = copy.deepcopy(net.state_dict())
    for name in ALL:
        value = create_proxy(name)(net, x, y)
        assert isinstance(value, float), name
        assert not math.isnan(value), name
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert net.training


def test_auxiliary_head_is_ignored() -> None:
    # The same weights with and without DARTS' auxiliary head score alike under every proxy.
    with_aux = _space_network("darts_aux")
    without = _space_network("darts")
    without.load_state_dict(
        {k: v for k, v in with_aux.state_dict().items() if not k.startswith("auxiliary_head.")}
    )
    x, y = _batch(n=4, shape=(3, 16, 16))
    assert isinstance(with_aux(x), tuple)
    for name in ALL:
        assert create_proxy(name)(with_aux, x, y) == pytest.approx(
            create_proxy(name)(without, x, y), rel=1e-9
        ), name
