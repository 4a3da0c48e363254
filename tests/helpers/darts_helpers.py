"""Shared helpers of the DARTS tests: tiny supernet sizes, learnable data, a quiet Trainer."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch


TINY: dict[str, dict[str, Any]] = {
    "darts": {"channels": 4, "layers": 3},
    "nasbench201": {"channels": 4, "cells_per_stage": 1},
}


def make_data(n: int = 96, size: int = 8, classes: int = 4, seed: int = 0) -> tuple[Any, Any]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    # Learnable signal: the class shifts the mean of the first channel.
    x = torch.randn(n, 3, size, size, generator=g)
    x[:, 0] += y.view(-1, 1, 1).float()
    return x, y


def make_trainer(**kwargs: Any) -> pl.Trainer:
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


def flat(tensors: Any) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])
