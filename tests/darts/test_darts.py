"""Tests of optuna_nas.darts on tiny supernets (CPU, C=4, 8x8 inputs, a few steps)."""

from __future__ import annotations

from collections.abc import Sequence
import math
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint
import optuna
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from optuna_nas.darts import Architect
from optuna_nas.darts import DartsDataModule
from optuna_nas.darts import DartsModule
from optuna_nas.darts import DartsSearch
from optuna_nas.darts import DartsSupernet
from optuna_nas.darts import MixedOp
from optuna_nas.darts import NB201Supernet
from optuna_nas.darts import SkipConnectionEarlyStopping
from optuna_nas.darts import Supernet
from optuna_nas.darts import cosine_lr
from optuna_nas.darts import count_skip_connections
from optuna_nas.darts import create_supernet
from optuna_nas.darts import derive_darts_genotype
from optuna_nas.darts import derive_nb201_cell
from optuna_nas.darts import finite_difference_hvp
from optuna_nas.search_spaces import NB201_OPERATIONS
from optuna_nas.search_spaces import PRIMITIVES
from optuna_nas.search_spaces import Genotype
from optuna_nas.search_spaces import NB201Cell
from optuna_nas.search_spaces import create_search_space


optuna.logging.set_verbosity(optuna.logging.WARNING)

TINY: dict[str, dict[str, Any]] = {
    "darts": {"channels": 4, "layers": 3},
    "nasbench201": {"channels": 4, "cells_per_stage": 1},
}


def _data(n: int = 96, size: int = 8, classes: int = 4, seed: int = 0) -> tuple[Any, Any]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    # Learnable signal: the class shifts the mean of the first channel.
    x = torch.randn(n, 3, size, size, generator=g)
    x[:, 0] += y.view(-1, 1, 1).float()
    return x, y


def _trainer(**kwargs: Any) -> pl.Trainer:
    options: dict[str, Any] = {
        "accelerator": "cpu",
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
    }
    options.update(kwargs)
    return pl.Trainer(**options)


def _flat(tensors: Any) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


# ----------------------------------------------------------------------------- supernets
@pytest.mark.parametrize("space_name", ["darts", "nasbench201"])
def test_supernet_forward_backward_and_parameter_split(space_name: str) -> None:
    space = create_search_space(space_name)
    net = create_supernet(space, num_classes=5, **TINY[space_name])
    out = net(torch.randn(3, 3, 8, 8))
    assert out.shape == (3, 5)
    out.square().sum().backward()
    arch, weights = net.arch_parameters(), net.weight_parameters()
    assert all(a.grad is not None and bool(a.grad.abs().sum() > 0) for a in arch)
    assert sum(w.grad is not None for w in weights) > 0.9 * len(weights)
    arch_ids, weight_ids = {id(p) for p in arch}, {id(p) for p in weights}
    assert not arch_ids & weight_ids
    assert arch_ids | weight_ids == {id(p) for p in net.parameters()}
    # The alphas have one row per edge and one column per candidate, ``none`` included.
    num_edges = 14 if space_name == "darts" else 6
    for alpha in arch:
        assert alpha.shape == (num_edges, len(net.operations))
    assert net.operations[0] == "none"
    # Alphas are saved with the weights.
    state = net.state_dict()
    assert any("alpha" in key for key in state)


@pytest.mark.parametrize("space_name", ["darts", "nasbench201"])
def test_fused_path_equals_reference(space_name: str) -> None:
    torch.manual_seed(0)
    net = create_supernet(
        create_search_space(space_name),
        num_classes=4,
        alpha_init_std=1.0,
        **TINY[space_name],
    ).double()
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    grads = []
    outs = []
    for fused in (True, False):
        net.fused = fused
        net.zero_grad()
        out = net(x)
        out.square().sum().backward()
        outs.append(out.detach())
        grads.append(_flat(p.grad if p.grad is not None else torch.zeros_like(p)
                           for p in net.parameters()))
    torch.testing.assert_close(outs[0], outs[1])
    torch.testing.assert_close(grads[0], grads[1])


def test_darts_mixed_op_pooling_has_bn_and_none_is_skipped() -> None:
    op = MixedOp.for_darts(channels=4, stride=1, operations=PRIMITIVES)
    pool = op.ops[op.names.index("max_pool_3x3")]
    assert isinstance(pool, nn.Sequential)
    assert isinstance(pool[1], nn.BatchNorm2d) and not pool[1].affine
    x = torch.randn(2, 4, 8, 8)
    only_none = torch.zeros(len(PRIMITIVES))
    only_none[0] = 1.0
    assert torch.count_nonzero(op(x, only_none)) == 0
    with pytest.raises(ValueError, match="unknown_op"):
        MixedOp.for_darts(channels=4, stride=1, operations=["unknown_op"])
    with pytest.raises(ValueError, match="other than 'none'"):
        MixedOp.for_darts(channels=4, stride=1, operations=["none"])


def test_supernet_argument_validation() -> None:
    with pytest.raises(ValueError, match="even"):
        DartsSupernet(num_classes=10, channels=5)
    with pytest.raises(ValueError, match="layers"):
        DartsSupernet(num_classes=10, layers=0)
    with pytest.raises(ValueError, match="macro"):
        create_supernet(create_search_space("macro"), num_classes=10)


# ----------------------------------------------------------------------------- derivation
def test_derive_darts_takes_top2_non_none_inputs() -> None:
    ops = PRIMITIVES
    k = {name: i for i, name in enumerate(ops)}
    weights = torch.full((14, len(ops)), 0.01)
    # Node 2 (edges 0, 1): input 1 strongest with sep_conv_3x3; input 0 has a huge ``none``
    # that must be ignored, and dil_conv_5x5 as its best real operation.
    weights[0, k["none"]] = 0.99
    weights[0, k["dil_conv_5x5"]] = 0.2
    weights[1, k["sep_conv_3x3"]] = 0.5
    # Node 3 (edges 2, 3, 4 for inputs 0, 1, 2): inputs 2 and 0.
    weights[4, k["skip_connect"]] = 0.6
    weights[2, k["max_pool_3x3"]] = 0.4
    weights[3, k["avg_pool_3x3"]] = 0.3
    # Node 4 (edges 5..8): inputs 3 and 1; node 5 (edges 9..13): inputs 4 and 0.
    weights[8, k["sep_conv_5x5"]] = 0.7
    weights[6, k["dil_conv_3x3"]] = 0.6
    weights[13, k["avg_pool_3x3"]] = 0.9
    weights[9, k["skip_connect"]] = 0.8
    genotype = derive_darts_genotype(weights, weights, operations=ops)
    expected = [
        ("sep_conv_3x3", 1), ("dil_conv_5x5", 0),
        ("skip_connect", 2), ("max_pool_3x3", 0),
        ("sep_conv_5x5", 3), ("dil_conv_3x3", 1),
        ("avg_pool_3x3", 4), ("skip_connect", 0),
    ]  # fmt: skip
    assert list(genotype.normal) == expected
    assert list(genotype.normal_concat) == [2, 3, 4, 5]
    assert count_skip_connections(genotype) == 2
    with pytest.raises(ValueError, match="shape"):
        derive_darts_genotype(weights[:5], weights, operations=ops)


def test_derive_nb201_none_handling() -> None:
    ops = NB201_OPERATIONS
    weights = torch.zeros(6, len(ops))
    weights[:, ops.index("nor_conv_3x3")] = 0.3
    weights[0, ops.index("none")] = 0.9
    weights[5, ops.index("skip_connect")] = 0.8
    faithful = derive_nb201_cell(weights, operations=ops)
    assert faithful.ops == ("none",) + ("nor_conv_3x3",) * 4 + ("skip_connect",)
    without_none = derive_nb201_cell(weights, operations=ops, include_none=False)
    assert without_none.ops == ("nor_conv_3x3",) * 5 + ("skip_connect",)
    assert count_skip_connections(without_none) == 1


@pytest.mark.parametrize("space_name", ["darts", "nasbench201"])
def test_derived_architecture_is_valid_for_the_space(space_name: str) -> None:
    space = create_search_space(space_name)
    for seed in range(3):
        torch.manual_seed(seed)
        net = create_supernet(space, num_classes=4, alpha_init_std=1.0, **TINY[space_name])
        arch = net.derive()
        assert space.from_string(space.to_string(arch)) == arch
        assert space.from_params(space.to_params(arch)) == arch
        kwargs = TINY[space_name]
        model = space.build(arch, num_classes=4, **kwargs)
        assert model(torch.randn(2, 3, 8, 8)).shape[-1] == 4


def test_nb201_supernet_without_none_in_space() -> None:
    space = create_search_space(
        "nasbench201", operations=["skip_connect", "nor_conv_3x3", "avg_pool_3x3"]
    )
    net = create_supernet(space, num_classes=4, alpha_init_std=5.0, **TINY["nasbench201"])
    assert isinstance(net, NB201Supernet)
    assert net.operations[0] == "none"  # the supernet still has ``none``...
    with torch.no_grad():
        net.alphas[:, 0] = 100.0
    arch = net.derive()  # ...but never derives it when the space lacks it
    assert "none" not in arch.ops
    space.to_string(arch)
    with pytest.raises(ValueError, match="none"):
        net.derive(include_none=True)


# ----------------------------------------------------------------------------- architect
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
    before = _flat(weights).clone()
    exact = _exact_mixed_hvp(F.cross_entropy(net(x), y), weights, arch, v)
    approx = finite_difference_hvp(lambda: F.cross_entropy(net(x), y), weights, arch, v)
    torch.testing.assert_close(_flat(approx), _flat(exact), rtol=1e-3, atol=1e-6)
    assert torch.equal(_flat(weights), before)  # restored exactly
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
    e, a = _flat(exact), _flat(approx)
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
    before = _flat(net.weight_parameters()).clone()
    _, grads = Architect(supernet=net, weight_optimizer=opt, second_order=True).gradients(
        xt, yt, xv, yv
    )
    assert torch.equal(_flat(net.weight_parameters()), before)

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
    x, y = _data(16)
    alphas, weights = _flat(net.arch_parameters()).clone(), _flat(net.weight_parameters()).clone()
    Architect(supernet=net, weight_optimizer=w_opt, second_order=second_order).step(
        a_opt, x[:8], y[:8], x[8:], y[8:]
    )
    assert not torch.equal(_flat(net.arch_parameters()), alphas)
    assert torch.equal(_flat(net.weight_parameters()), weights)
    assert all(p.grad is None for p in net.weight_parameters())


# ----------------------------------------------------------------------------- module, data
def test_cosine_lr_matches_torch_scheduler() -> None:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.025)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=7, eta_min=0.001)
    for epoch in range(8):
        assert math.isclose(
            cosine_lr(epoch, lr=0.025, lr_min=0.001, max_epochs=7), opt.param_groups[0]["lr"]
        )
        opt.step()
        sched.step()


def test_module_optimizers_follow_the_paper() -> None:
    net = NB201Supernet(num_classes=4, **TINY["nasbench201"])
    w_opt, a_opt = DartsModule(supernet=net).configure_optimizers()
    assert isinstance(w_opt, torch.optim.SGD) and isinstance(a_opt, torch.optim.Adam)
    assert {id(p) for p in w_opt.param_groups[0]["params"]} == {
        id(p) for p in net.weight_parameters()
    }
    assert [id(p) for p in a_opt.param_groups[0]["params"]] == [id(net.alphas)]
    w, a = w_opt.param_groups[0], a_opt.param_groups[0]
    assert (w["lr"], w["momentum"], w["weight_decay"]) == (0.025, 0.9, 3e-4)
    assert (a["lr"], a["betas"], a["weight_decay"]) == (3e-4, (0.5, 0.999), 1e-3)
    with pytest.raises(ValueError, match="lr_min"):
        DartsModule(supernet=net, lr_min=1.0)
    with pytest.raises(ValueError, match="Supernet"):
        DartsModule(supernet=nn.Linear(2, 2))  # type: ignore[arg-type]


def test_data_module_splits_and_orders_deterministically() -> None:
    x, y = _data(50)
    dm = DartsDataModule(data=(x, y), batch_size=8, augment=True)
    dm.setup("fit")
    assert dm.num_weight_examples == 25 and dm.num_classes == 4 and dm.input_shape == (3, 8, 8)
    loader = dm.train_dataloader()
    assert len(loader) == math.ceil(25 / 8)
    (xw, yw), (xa, ya) = next(iter(loader))
    assert xw.shape == xa.shape == (8, 3, 8, 8) and yw.shape == ya.shape == (8,)
    epoch0 = [b[0][1] for b in loader]
    assert all(torch.equal(a, b) for a, b in zip(epoch0, [b[0][1] for b in loader]))
    dm.epoch = 1
    assert not all(torch.equal(a, b) for a, b in zip(epoch0, [b[0][1] for b in loader]))
    # The halves are disjoint (each example once), and validation is the architecture half.
    wh, ah = dm._halves()
    assert len(wh[0]) + len(ah[0]) == 50
    val = torch.cat([b[1] for b in dm.val_dataloader()])
    assert torch.equal(val, ah[1])
    with pytest.raises(ValueError, match="train_portion"):
        DartsDataModule(data=(x, y), train_portion=1.0)


# ----------------------------------------------------------------------------- optuna
@pytest.mark.parametrize("space_name", ["darts", "nasbench201"])
def test_search_reports_records_and_enqueues(space_name: str) -> None:
    space = create_search_space(space_name)
    search = DartsSearch(
        space,
        _data(64),
        max_epochs=2,
        batch_size=16,
        second_order=space_name == "nasbench201",
        supernet_kwargs=TINY[space_name],
        trainer_kwargs={"accelerator": "cpu"},
    )
    study = optuna.create_study(direction="maximize")
    study.optimize(search, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert sorted(trial.intermediate_values) == [0, 1]
    assert 0.0 <= trial.value <= 1.0  # type: ignore[operator]
    attrs = trial.user_attrs
    for epoch in range(2):
        alphas = attrs[f"darts:epoch_{epoch:03d}:alphas"]
        assert alphas["operations"][0] == "none"
        for name in ("normal", "reduce") if space_name == "darts" else ("cell",):
            rows = alphas[name]
            assert all(math.isclose(sum(row), 1.0, abs_tol=1e-3) for row in rows)
        space.from_string(attrs[f"darts:epoch_{epoch:03d}:arch"])
    assert search.result is not None
    arch = space.from_string(attrs["darts:arch"])
    assert arch == search.result.arch

    # The derived architecture is the next trial of the study, ready for NASObjective.
    def retrain(t: optuna.Trial) -> float:
        assert space.suggest(t) == arch
        return 0.5

    study.optimize(retrain, n_trials=1)
    child = study.trials[1]
    assert child.state == optuna.trial.TrialState.COMPLETE
    assert child.params == space.to_params(arch)
    assert child.user_attrs["source"] == "darts"
    assert child.user_attrs["darts:search_trial"] == 0


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


def test_pruned_search_does_not_stop_the_study() -> None:
    search = DartsSearch(
        create_search_space("nasbench201"),
        _data(32),
        max_epochs=3,
        batch_size=16,
        supernet_kwargs=TINY["nasbench201"],
        trainer_kwargs={"accelerator": "cpu"},
    )
    study = optuna.create_study(direction="maximize", pruner=_AlwaysPrune())
    study.optimize(search, n_trials=2)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.PRUNED] * 2
    assert all(len(t.intermediate_values) == 1 for t in study.trials)
    assert "darts:epoch_000:arch" in study.trials[0].user_attrs
    assert len(study.trials) == 2  # nothing enqueued


def test_nan_ends_the_trial_with_a_reason() -> None:
    x, y = _data(32)
    x[:] = math.nan
    search = DartsSearch(
        create_search_space("nasbench201"),
        (x, y),
        max_epochs=2,
        batch_size=16,
        supernet_kwargs=TINY["nasbench201"],
        trainer_kwargs={"accelerator": "cpu"},
    )
    study = optuna.create_study(direction="maximize")
    study.optimize(search, n_trials=2)  # does not raise
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.PRUNED] * 2
    assert "Non-finite" in study.trials[0].user_attrs["fail_reason"]
    assert search.result is not None and search.result.fail_reason is not None


# ----------------------------------------------------------------------------- resume
@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")
def test_resume_from_checkpoint_reproduces_the_alphas(tmp_path: Path) -> None:
    data = _data(48)

    def run(max_epochs: int, ckpt_path: str | None = None, save: bool = False) -> Any:
        pl.seed_everything(0, verbose=False)
        net = NB201Supernet(num_classes=4, **TINY["nasbench201"])
        module = DartsModule(supernet=net, second_order=True, max_epochs=3)
        callbacks = (
            [ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, filename="{epoch}")]
            if save
            else []
        )
        trainer = _trainer(
            max_epochs=max_epochs, callbacks=callbacks, enable_checkpointing=save
        )
        trainer.fit(module, DartsDataModule(data=data, batch_size=8, augment=True),
                    ckpt_path=ckpt_path)
        return net

    full = run(3)
    run(1, save=True)
    ckpt = tmp_path / "epoch=0.ckpt"
    assert ckpt.exists()
    saved = torch.load(ckpt, weights_only=False)
    assert "supernet.alphas" in saved["state_dict"]
    assert len(saved["optimizer_states"]) == 2  # weights' SGD and alphas' Adam
    resumed = run(3, ckpt_path=str(ckpt))
    for a, b in zip(full.arch_parameters(), resumed.arch_parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert full.derive() == resumed.derive()


# ----------------------------------------------------------------------------- collapse
def test_darts_plus_early_stop_on_skip_collapse() -> None:
    space = create_search_space("nasbench201")

    def collapsed_search(early_stop: int | None) -> DartsSearch:
        search = DartsSearch(
            space,
            _data(32),
            max_epochs=4,
            batch_size=16,
            supernet_kwargs=TINY["nasbench201"],
            trainer_kwargs={"accelerator": "cpu"},
            early_stop_skip_connections=early_stop,
            enqueue=False,
        )
        return search

    class _ForceSkips(pl.Callback):
        # Simulates a collapse: skip connections dominate from the start.
        def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
            with torch.no_grad():
                pl_module.supernet.alphas[:, NB201_OPERATIONS.index("skip_connect")] = 5.0

    results = {}
    for early_stop in (None, 2):
        search = collapsed_search(early_stop)
        search.trainer_kwargs["callbacks"] = [_ForceSkips()]
        study = optuna.create_study(direction="maximize")
        study.optimize(search, n_trials=1)
        results[early_stop] = study.trials[0]
    assert len(results[None].intermediate_values) == 4
    assert len(results[2].intermediate_values) == 1
    assert "DARTS+" in results[2].user_attrs["darts:stop_reason"]
    with pytest.raises(ValueError, match="max_skip_connections"):
        SkipConnectionEarlyStopping(max_skip_connections=0)


def test_darts_minus_auxiliary_skip_decays() -> None:
    torch.manual_seed(0)
    plain = NB201Supernet(num_classes=4, **TINY["nasbench201"])
    aux = NB201Supernet(num_classes=4, aux_skip=True, **TINY["nasbench201"])
    aux.load_state_dict(plain.state_dict())
    plain.eval(), aux.eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert not torch.allclose(plain(x), aux(x))  # beta = 1 at the start
        aux.aux_skip_beta.fill_(0.0)
        torch.testing.assert_close(plain(x), aux(x))  # beta = 0: the plain supernet

    betas: list[float] = []

    class _Watch(pl.Callback):
        def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
            betas.append(float(pl_module.supernet.aux_skip_beta))

    aux.train()
    module = DartsModule(supernet=aux)
    # Callbacks run before the module's hook: read beta at the next epoch's start instead.
    trainer = _trainer(max_epochs=3, callbacks=[_Watch()], limit_train_batches=1)
    trainer.fit(module, DartsDataModule(data=_data(16), batch_size=8))
    assert betas[1:] == [1.0, 0.5]
    assert float(aux.aux_skip_beta) == 0.0
    # DARTS' reduction edges get a factorized-reduce auxiliary skip.
    DartsSupernet(num_classes=4, aux_skip=True, **TINY["darts"])(torch.randn(2, 3, 8, 8))


def test_derive_and_count_reject_unknown_architectures() -> None:
    with pytest.raises(ValueError, match="Genotype"):
        count_skip_connections("not an arch")
    assert count_skip_connections(NB201Cell(("skip_connect",) * 6)) == 6
    genotype = Genotype(
        normal=[("skip_connect", 0), ("skip_connect", 1)] * 4,
        normal_concat=range(2, 6),
        reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1)] * 4,
        reduce_concat=range(2, 6),
    )
    assert count_skip_connections(genotype) == 8


def test_search_on_a_lightning_datamodule_and_a_dataset() -> None:
    from optuna_nas.training import EmbeddedDataModule

    space = create_search_space("nasbench201")
    # Real 8x8 digits (scikit-learn), 1 channel, read through the DataModule's train loader.
    source = EmbeddedDataModule(dataset="digits", subset=200, batch_size=50)
    search = DartsSearch(
        space,
        source,
        max_epochs=1,
        batch_size=32,
        supernet_kwargs=TINY["nasbench201"],
        trainer_kwargs={"accelerator": "cpu"},
        include_none=False,
        enqueue=False,
    )
    study = optuna.create_study(direction="maximize")
    study.optimize(search, n_trials=1)
    assert study.trials[0].state == optuna.trial.TrialState.COMPLETE
    assert search.datamodule.num_classes == 10 and search.datamodule.input_shape[0] == 1
    assert search.result is not None and "none" not in search.result.arch.ops
    assert len(study.trials) == 1  # enqueue=False

    x, y = _data(40)
    dm = DartsDataModule(data=torch.utils.data.TensorDataset(x, y), batch_size=8)
    dm.setup("fit")
    assert dm.num_weight_examples == 20 and dm.input_shape == (3, 8, 8)
    with pytest.raises(ValueError, match="include_none"):
        DartsSearch(create_search_space("darts"), (x, y), include_none=True)
    with pytest.raises(ValueError, match="macro"):
        DartsSearch(create_search_space("macro"), (x, y))


@pytest.mark.parametrize("second_order", [False, True])
def test_bf16_and_channels_last_path_runs(second_order: bool) -> None:
    # The GPU defaults (bf16 autocast, channels-last), exercised on the CPU.
    net = DartsSupernet(num_classes=4, **TINY["darts"])
    alphas = _flat(net.arch_parameters()).clone()
    module = DartsModule(
        supernet=net, second_order=second_order, bf16=True, channels_last=True, max_epochs=1
    )
    trainer = _trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1)
    trainer.fit(module, DartsDataModule(data=_data(32), batch_size=8))
    assert module._use_bf16 and module._use_channels_last
    conv = next(m for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size[0] > 1)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.isfinite(_flat(net.arch_parameters())).all()
    assert not torch.equal(_flat(net.arch_parameters()), alphas)
    assert math.isfinite(float(trainer.callback_metrics["val_loss"]))
