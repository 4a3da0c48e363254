"""Tests of optuna_nas.data._loader."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from optuna_nas.data import DeviceTensorLoader
from optuna_nas.data import EpochSampler
from optuna_nas.data import epoch_seed
from optuna_nas.data import trainer_epoch


def _indexed(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose every pixel holds the sample's index, so batches reveal which samples."""
    images = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 3, 3).clone()
    return images, torch.arange(n) % 7


def _epoch_ids(loader: DeviceTensorLoader) -> list[int]:
    ids: list[int] = []
    for x, y in loader:
        batch_ids = x[:, 0, 0, 0].long()
        assert torch.equal(y, batch_ids % 7)  # images and labels stay paired
        ids.extend(batch_ids.tolist())
    return ids


def test_device_loader_covers_every_sample_once_per_epoch() -> None:
    x, y = _indexed(103)
    loader = DeviceTensorLoader(x, y, batch_size=10, shuffle=True, seed=1)
    assert len(loader) == 11
    first, second = _epoch_ids(loader), _epoch_ids(loader)
    assert sorted(first) == sorted(second) == list(range(103))
    assert first != second  # a new permutation each epoch
    assert _epoch_ids(DeviceTensorLoader(x, y, batch_size=10, shuffle=True, seed=1)) == first


def test_device_loader_drop_last_and_no_shuffle() -> None:
    x, y = _indexed(25)
    loader = DeviceTensorLoader(x, y, batch_size=10, drop_last=True)
    assert len(loader) == 2
    assert _epoch_ids(loader) == list(range(20))


def test_device_loader_shards_are_disjoint_across_ranks() -> None:
    x, y = _indexed(50)
    shards = [
        _epoch_ids(DeviceTensorLoader(x, y, batch_size=8, shuffle=True, rank=r, world_size=3))
        for r in range(3)
    ]
    assert all(len(s) == 16 for s in shards)
    assert len(set().union(*map(set, shards))) == 48


def test_device_loader_applies_augmentation_and_keeps_device() -> None:
    x, y = _indexed(20)
    calls = []

    def augment(batch: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        calls.append(batch.shape[0])
        return batch + 1000

    loader = DeviceTensorLoader(x, y, batch_size=8, augment=augment)
    batches = list(loader)
    assert calls == [8, 8, 4]
    assert all(b[0].min() >= 1000 and b[0].device == x.device for b in batches)


def test_device_loader_validates() -> None:
    x, y = _indexed(10)
    with pytest.raises(ValueError, match="differ in length"):
        DeviceTensorLoader(x, y[:5], batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        DeviceTensorLoader(x, y, batch_size=0)
    with pytest.raises(ValueError, match="rank"):
        DeviceTensorLoader(x, y, batch_size=2, rank=2, world_size=2)


def test_epoch_fn_decides_the_epoch_not_the_number_of_iterations() -> None:
    x, y = _indexed(40)
    counting = DeviceTensorLoader(x, y, batch_size=8, shuffle=True, seed=5)
    epochs = [_epoch_ids(counting) for _ in range(3)]
    # A loader told "epoch 2" straight away (a resumed run) serves what the third pass served.
    resumed = DeviceTensorLoader(x, y, batch_size=8, shuffle=True, seed=5, epoch_fn=lambda: 2)
    assert _epoch_ids(resumed) == _epoch_ids(resumed) == epochs[2]
    # None from epoch_fn (no trainer attached) falls back to counting.
    detached = DeviceTensorLoader(x, y, batch_size=8, shuffle=True, seed=5, epoch_fn=lambda: None)
    assert [_epoch_ids(detached) for _ in range(3)] == epochs


def test_streams_draw_other_orders_for_one_seed() -> None:
    x, y = _indexed(40)
    orders = [
        _epoch_ids(DeviceTensorLoader(x, y, batch_size=8, shuffle=True, seed=5, stream=s))
        for s in (0, 1)
    ]
    assert orders[0] != orders[1]
    assert epoch_seed(5, 0) == epoch_seed(5, 0, 0) != epoch_seed(5, 0, 1)


def test_trainer_epoch_reads_the_attached_trainer() -> None:
    class Owner:
        trainer: Any = None

    owner = Owner()
    epoch = trainer_epoch(owner)
    assert epoch() is None
    owner.trainer = type("T", (), {"current_epoch": 7})()
    assert epoch() == 7


def test_lightning_uses_device_resident_batches_without_copying() -> None:
    import lightning.pytorch as pl

    from optuna_nas.training import ChildModule

    yielded: list[int] = []
    received: list[int] = []

    class Recording(DeviceTensorLoader):
        def __iter__(self) -> Any:
            for x, y in super().__iter__():
                yielded.append(id(x))
                yield x, y

    class Module(ChildModule):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            received.append(id(batch[0]))
            return super().training_step(batch, batch_idx)

    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
    module = Module(
        network=torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)), num_classes=10
    )
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(
        module,
        train_dataloaders=Recording(x, y, batch_size=16, shuffle=True),
        val_dataloaders=DeviceTensorLoader(x, y, batch_size=32),  # ChildModule validates
    )
    # The very tensors the loader produced reach training_step: no per-step copy or move.
    assert received == yielded and len(received) == 4


def test_epoch_sampler_draws_the_device_loaders_permutation() -> None:
    x, y = _indexed(30)
    loader = DeviceTensorLoader(x, y, batch_size=30, shuffle=True, seed=4)
    sampler = EpochSampler(30, seed=4)
    for _ in range(3):  # both count their epochs when no epoch_fn is given
        assert list(sampler) == _epoch_ids(loader)
    resumed = DeviceTensorLoader(x, y, batch_size=30, shuffle=True, seed=4, epoch_fn=lambda: 1)
    assert list(EpochSampler(30, seed=4, epoch_fn=lambda: 1)) == _epoch_ids(resumed)
    with pytest.raises(ValueError, match="got 0"):
        EpochSampler(0)
