"""Tests of optuna_nas.darts.mixed_op."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optuna_nas.darts import MixedOp
from optuna_nas.search_spaces import PRIMITIVES


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
