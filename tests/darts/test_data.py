"""Tests of optuna_nas.darts._data."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from darts_helpers import TINY
from darts_helpers import make_data
from darts_helpers import make_trainer
import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint
import pytest
import torch

from optuna_nas.darts import DartsDataModule
from optuna_nas.darts import DartsModule
from optuna_nas.darts import NB201Supernet
from optuna_nas.data import RandomCropFlip


MEAN = (0.5, 0.4, 0.3)
STD = (0.25, 0.2, 0.1)


def _labels_of_epoch(loader: Any) -> list[torch.Tensor]:
    return [torch.cat([w[1], a[1]]) for w, a in loader]


def test_data_module_splits_and_orders_deterministically() -> None:
    x, y = make_data(50)
    dm = DartsDataModule(data=(x, y), batch_size=8)
    dm.setup("fit")
    assert dm.num_weight_examples == 25 and dm.num_classes == 4 and dm.input_shape == (3, 8, 8)
    loader = dm.train_dataloader()
    assert len(loader) == math.ceil(25 / 8)
    (xw, yw), (xa, ya) = next(iter(loader))
    assert xw.shape == xa.shape == (8, 3, 8, 8) and yw.shape == ya.shape == (8,)
    # Without a trainer each iter() is the next epoch; the order depends on (seed, epoch) only.
    loader = dm.train_dataloader()
    epoch0, epoch1 = _labels_of_epoch(loader), _labels_of_epoch(loader)
    assert not all(torch.equal(a, b) for a, b in zip(epoch0, epoch1))
    again = DartsDataModule(data=(x, y), batch_size=8)
    assert all(
        torch.equal(a, b) for a, b in zip(epoch0, _labels_of_epoch(again.train_dataloader()))
    )
    # The halves are disjoint (each example once), and validation is the architecture half.
    wh, ah = dm._halves()
    assert len(wh[0]) + len(ah[0]) == 50
    val = torch.cat([b[1] for b in dm.val_dataloader()])
    assert torch.equal(val, ah[1])


def test_smaller_architecture_half_is_cycled() -> None:
    x, y = make_data(40)
    dm = DartsDataModule(data=(x, y), batch_size=8, train_portion=0.8, augment=False)
    steps = list(dm.train_dataloader())
    assert len(steps) == 4  # one pass over the 32 weight examples
    assert all(len(w[1]) == 8 and len(a[1]) == 8 for w, a in steps)


def _white_normalized(n: int = 64, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """White raw images (all ones), normalized with MEAN/STD."""
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (torch.ones(n, 3, size, size) - mean) / std, torch.arange(n) % 4


def _raw(x: torch.Tensor) -> torch.Tensor:
    return x * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)


def _assert_padded_with_black(dm: DartsDataModule) -> None:
    crops = 0
    for (xw, _), (xa, _) in dm.train_dataloader():
        for half in (xw, xa):
            values = set(_raw(half).round(decimals=5).unique().tolist())
            assert values <= {0.0, 1.0}  # only the white image and a black border
            crops += int((_raw(half) < 0.5).flatten(1).any(1).sum())
    assert crops > 0  # a padding of 4 shows a border in almost every crop


class _NormalizedSource(pl.LightningDataModule):
    """A DataModule with ``mean``/``std`` attributes, like CIFAR10DataModule."""

    mean = MEAN
    std = STD

    def train_dataloader(self) -> Any:
        x, y = _white_normalized()
        return [(x[:32], y[:32]), (x[32:], y[32:])]


def test_augmentation_pads_with_black_before_normalization_from_the_source() -> None:
    dm = DartsDataModule(data=_NormalizedSource(), batch_size=16)  # augment on by default
    dm.setup("fit")
    assert dm.mean == MEAN and dm.std == STD
    augment = dm.batch_augmentation()
    assert isinstance(augment, RandomCropFlip) and (augment.padding, augment.hflip) == (4, True)
    _assert_padded_with_black(dm)


def test_augmentation_with_explicit_normalization() -> None:
    dm = DartsDataModule(data=_white_normalized(), batch_size=16, mean=MEAN, std=STD)
    _assert_padded_with_black(dm)
    with pytest.raises(ValueError, match="mean=.*std=None"):
        DartsDataModule(data=_white_normalized(), mean=MEAN)
    bad = DartsDataModule(data=_white_normalized(), mean=(0.5, 0.5), std=(1.0, 1.0))
    with pytest.raises(ValueError, match="2 channels"):
        bad.batch_augmentation()


def test_raw_tensors_are_padded_with_zeros_and_augmentation_can_be_off() -> None:
    x = torch.ones(32, 3, 8, 8)
    y = torch.arange(32) % 4
    dm = DartsDataModule(data=(x, y), batch_size=8)
    values = {
        v for w, a in dm.train_dataloader() for v in torch.cat([w[0], a[0]]).unique().tolist()
    }
    assert values == {0.0, 1.0}
    off = DartsDataModule(data=(x, y), batch_size=8, augment=False)
    assert off.batch_augmentation() is None
    assert all(bool((w[0] == 1).all() and (a[0] == 1).all()) for w, a in off.train_dataloader())
    # A transform of one's own (digits: no flip) is applied to both halves.
    mine = RandomCropFlip(padding=1, hflip=False, fill=-7.0)
    custom = DartsDataModule(data=(x, y), batch_size=8, augment=mine)
    assert custom.batch_augmentation() is mine
    values = {
        v for w, a in custom.train_dataloader() for v in torch.cat([w[0], a[0]]).unique().tolist()
    }
    assert values == {-7.0, 1.0}
    with pytest.raises(ValueError, match="augment"):
        DartsDataModule(data=(x, y), augment="yes")  # type: ignore[arg-type]


def test_validation_is_not_augmented() -> None:
    x, y = torch.ones(32, 3, 8, 8), torch.arange(32) % 4
    dm = DartsDataModule(data=(x, y), batch_size=8)
    assert all(bool((b[0] == 1).all()) for b in dm.val_dataloader())


def test_bad_arguments() -> None:
    x, y = make_data(10)
    with pytest.raises(ValueError, match="train_portion"):
        DartsDataModule(data=(x, y), train_portion=1.0)
    with pytest.raises(ValueError, match="batch_size"):
        DartsDataModule(data=(x, y), batch_size=0)


class _Recording(DartsModule):
    def __init__(self, seen: dict[int, list[float]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seen = seen

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        (xw, yw), (xa, ya) = batch
        fingerprint = float(xw.double().sum() + 3 * xa.double().sum() + yw.sum() + 7 * ya.sum())
        self.seen.setdefault(self.current_epoch, []).append(fingerprint)
        return super().training_step(batch, batch_idx)


@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")
@pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty")
def test_resumed_search_sees_the_batches_of_an_uninterrupted_one(tmp_path: Path) -> None:
    data = make_data(48)

    def run(tag: str, max_epochs: int, ckpt_path: str | None = None) -> dict[int, list[float]]:
        pl.seed_everything(0, verbose=False)
        seen: dict[int, list[float]] = {}
        net = NB201Supernet(num_classes=4, **TINY["nasbench201"])
        module = _Recording(seen, supernet=net, max_epochs=3)
        checkpoint = ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, filename=tag + "-{epoch}")
        trainer = make_trainer(
            max_epochs=max_epochs, callbacks=[checkpoint], enable_checkpointing=True
        )
        trainer.fit(module, DartsDataModule(data=data, batch_size=8), ckpt_path=ckpt_path)
        return seen

    full = run("full", 3)
    run("part", 1)
    resumed = run("resumed", 3, str(tmp_path / "part-epoch=0.ckpt"))
    assert sorted(resumed) == [1, 2] and full[1] != full[2]
    assert resumed[1] == full[1] and resumed[2] == full[2]
