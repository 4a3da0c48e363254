"""Tests of optuna_nas.darts.data."""

from __future__ import annotations

import math

from darts_helpers import make_data
import pytest
import torch

from optuna_nas.darts import DartsDataModule


def test_data_module_splits_and_orders_deterministically() -> None:
    x, y = make_data(50)
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
