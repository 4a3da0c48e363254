"""Tiny, fast fixtures for child-training tests: real 8x8 digits, 4-channel networks."""

from __future__ import annotations

from collections.abc import Mapping
import os
import signal
import time
from typing import Any

import pytest
import torch
from torch import nn

from optuna_nas.search_spaces import Decision
from optuna_nas.search_spaces import SearchSpace
from optuna_nas.training import EmbeddedDataModule


TINY_BUILD = {"channels": 4, "cells_per_stage": 1}
CPU = {"accelerator": "cpu"}


@pytest.fixture
def digits() -> EmbeddedDataModule:
    """320 training and 80 validation real 8x8 digits (8 per class)."""
    return EmbeddedDataModule(dataset="digits", subset=400, batch_size=32, seed=0)


class FakeNet(nn.Module):
    """A small linear classifier that misbehaves on request (in training mode only)."""

    def __init__(self, kind: str, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.kind = kind
        self.linear = nn.Linear(in_channels * 64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.linear(torch.flatten(x, 1))
        if self.training and self.kind == "nan":
            return logits * float("nan")
        if self.training and self.kind == "oom":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        if self.training and self.kind == "crash":
            raise RuntimeError("a bug in the user's network")
        if self.training and self.kind == "worker_killed":
            # A DDP worker of rank 1 dies without a Python exception. The other ranks wait, so
            # that the death is the first failure the launcher sees (a race otherwise); the
            # launcher then terminates them.
            if torch.distributed.is_initialized():
                if torch.distributed.get_rank() == 1:
                    os.kill(os.getpid(), signal.SIGKILL)
                time.sleep(60)
            raise RuntimeError("worker_killed outside a DDP worker of rank 1")
        return logits


class FakeSpace(SearchSpace[str]):
    """One decision, ``fake/kind``, choosing how the network behaves (8x8 inputs)."""

    name = "fake"
    prefix = "fake"
    KINDS = ("ok", "nan", "oom", "build_error", "crash", "worker_killed")

    @property
    def decisions(self) -> tuple[Decision, ...]:
        return (Decision("fake/kind", self.KINDS),)

    def from_params(self, params: Mapping[str, Any]) -> str:
        return str(self._read_decisions(params)["fake/kind"])

    def to_params(self, arch: str) -> dict[str, Any]:
        return {"fake/kind": arch}

    def to_string(self, arch: str) -> str:
        return arch

    def from_string(self, text: str) -> str:
        if text not in self.KINDS:
            raise ValueError(f"Unknown kind {text!r}.")
        return text

    def sample(self, rng: Any) -> str:
        return "ok"

    def build(
        self, arch: str, *, num_classes: int, in_channels: int = 3, **kwargs: Any
    ) -> nn.Module:
        if arch == "build_error":
            raise ValueError("cannot build 'build_error'")
        return FakeNet(arch, in_channels, num_classes)


@pytest.fixture
def fake_space() -> FakeSpace:
    """A search space whose architectures are failure modes ("nan", "oom", ...) or "ok"."""
    return FakeSpace()


@pytest.fixture
def make_fake_net() -> type[FakeNet]:
    """``make_fake_net(kind, in_channels, num_classes)`` (a fixture: test files import nothing)."""
    return FakeNet
