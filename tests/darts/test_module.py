"""Tests of optuna_nas.darts.module."""

from __future__ import annotations

import math

from darts_helpers import TINY
from darts_helpers import flat
from darts_helpers import make_data
from darts_helpers import make_trainer
import pytest
import torch
from torch import nn

from optuna_nas.darts import DartsDataModule
from optuna_nas.darts import DartsModule
from optuna_nas.darts import DartsSupernet
from optuna_nas.darts import NB201Supernet
from optuna_nas.darts import cosine_lr


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


@pytest.mark.parametrize("second_order", [False, True])
def test_bf16_and_channels_last_path_runs(second_order: bool) -> None:
    # The GPU defaults (bf16 autocast, channels-last), exercised on the CPU.
    net = DartsSupernet(num_classes=4, **TINY["darts"])
    alphas = flat(net.arch_parameters()).clone()
    module = DartsModule(
        supernet=net, second_order=second_order, bf16=True, channels_last=True, max_epochs=1
    )
    trainer = make_trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1)
    trainer.fit(module, DartsDataModule(data=make_data(32), batch_size=8))
    assert module._use_bf16 and module._use_channels_last
    conv = next(m for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size[0] > 1)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.isfinite(flat(net.arch_parameters())).all()
    assert not torch.equal(flat(net.arch_parameters()), alphas)
    assert math.isfinite(float(trainer.callback_metrics["val_loss"]))
