from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from optuna_nas.search_spaces import create_search_space
from optuna_nas.training import ChildModule
from optuna_nas.training import EmbeddedDataModule
from optuna_nas.training import NonFiniteError
from optuna_nas.training import split_logits


TINY_BUILD = {"channels": 4, "cells_per_stage": 1}


def _trainer(epochs: int = 1) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )


def _nb201(in_channels: int = 1) -> nn.Module:
    space = create_search_space("nasbench201")
    cell = space.from_string(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
    )
    return space.build(cell, num_classes=10, in_channels=in_channels, **TINY_BUILD)


def test_logs_metrics_and_keeps_network_out_of_hparams(digits: EmbeddedDataModule) -> None:
    pl.seed_everything(0, verbose=False)
    module = ChildModule(network=_nb201(), num_classes=10, lr=0.05)
    assert "network" not in module.hparams and module.hparams["lr"] == 0.05
    trainer = _trainer(epochs=2)
    trainer.fit(module, digits)
    metrics = trainer.callback_metrics
    assert {"train_loss", "val_loss", "val_acc"} <= set(metrics)
    assert 0.0 <= float(metrics["val_acc"]) <= 1.0
    # Two epochs on real digits beat chance (10%) by a wide margin.
    assert float(metrics["val_acc"]) > 0.3
    # The per-step cosine schedule ends at lr_min (0).
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-9)
    assert isinstance(trainer.optimizers[0], torch.optim.SGD)
    assert trainer.optimizers[0].param_groups[0]["nesterov"]
    with_test = EmbeddedDataModule(dataset="digits", subset=400, test_fraction=0.2)
    result = trainer.test(module, with_test, verbose=False)
    assert 0.0 <= result[0]["test_acc"] <= 1.0


class _WithAux(nn.Module):
    """Returns (logits, aux) in training with a constant auxiliary output: CE(aux) = log(10)."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(64, 10)
        self.drop_path_prob = 0.0

    def forward(self, x: torch.Tensor) -> Any:
        logits = self.inner(torch.flatten(x, 1))
        if self.training:
            return logits, torch.zeros_like(logits)
        return logits


@pytest.mark.parametrize("aux_weight", [0.0, 1.0])
def test_auxiliary_logits_add_weighted_loss(digits: EmbeddedDataModule, aux_weight: float) -> None:
    losses = {}
    for weight in (0.0, aux_weight):
        pl.seed_everything(0, verbose=False)
        # A learning rate of ~0 keeps the weights fixed, so the losses differ by the aux term.
        module = ChildModule(
            network=_WithAux(), num_classes=10, lr=1e-12, scheduler="none", aux_weight=weight
        )
        trainer = _trainer()
        trainer.fit(module, digits)
        losses[weight] = float(trainer.callback_metrics["train_loss"])
    assert losses[aux_weight] - losses[0.0] == pytest.approx(aux_weight * math.log(10), abs=1e-4)


def test_drop_path_probability_ramps_linearly(digits: EmbeddedDataModule) -> None:
    network = _WithAux()
    module = ChildModule(network=network, num_classes=10, drop_path_prob=0.3, optimizer="adamw")
    trainer = _trainer(epochs=3)
    trainer.fit(module, digits)
    assert network.drop_path_prob == pytest.approx(0.3 * 2 / 3)
    assert isinstance(trainer.optimizers[0], torch.optim.AdamW)


def test_non_finite_loss_raises(digits: EmbeddedDataModule, make_fake_net: Any) -> None:
    network = make_fake_net("nan", 1, 10)
    module = ChildModule(network=network, num_classes=10, finite_check_interval=3)
    trainer = _trainer(epochs=2)
    with pytest.raises(NonFiniteError, match="Non-finite training loss"):
        trainer.fit(module, digits)
    # Raised at the first check (step 3), long before the end of the first epoch (10 steps).
    assert trainer.global_step == 3


def test_split_logits() -> None:
    t = torch.zeros(2, 3)
    assert split_logits(t) == (t, None)
    logits, aux = split_logits((t, t + 1))
    assert logits is t and aux is not None and float(aux.sum()) == 6
    assert split_logits((t, None)) == (t, None)
    with pytest.raises(ValueError):
        split_logits(())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"optimizer": "rmsprop"}, "rmsprop"),
        ({"scheduler": "step"}, "step"),
        ({"lr": 0.0}, "lr"),
        ({"lr_min": 1.0}, "lr_min"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"num_classes": 1}, "num_classes"),
        ({"network": "resnet"}, "network"),
        ({"finite_check_interval": 0}, "finite_check_interval"),
    ],
)
def test_rejects_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    arguments: dict[str, Any] = {"network": nn.Linear(2, 2), "num_classes": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        ChildModule(**arguments)
