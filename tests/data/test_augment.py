"""Tests of optuna_nas.data._augment."""

from __future__ import annotations

import pytest
import torch

from optuna_nas.data import RandomCropFlip
from optuna_nas.data import black_fill


def _is_shifted_crop(out: torch.Tensor, x: torch.Tensor, pad: int, fill: float) -> bool:
    padded = torch.nn.functional.pad(x, (pad,) * 4, value=fill)
    h, w = x.shape[-2:]
    return any(
        torch.equal(out, padded[:, i : i + h, j : j + w])
        for i in range(2 * pad + 1)
        for j in range(2 * pad + 1)
    )


def test_random_crop_is_a_shift_of_the_padded_image() -> None:
    x = torch.randn(16, 2, 6, 6)
    out = RandomCropFlip(padding=2, hflip=False, fill=-3.0)(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert all(_is_shifted_crop(out[b], x[b], 2, -3.0) for b in range(16))
    # With 25 possible offsets, 16 images are very unlikely to all stay centred.
    assert not torch.equal(out, x)


def test_random_flip_flips_about_half() -> None:
    x = torch.randn(400, 1, 4, 4)
    out = RandomCropFlip(padding=0, hflip=True)(x, torch.Generator().manual_seed(0))
    same = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    flipped = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, x)])
    assert bool((same | flipped).all())
    assert 120 < int(flipped.sum()) < 280


def test_random_crop_per_channel_fill() -> None:
    x = torch.zeros(32, 3, 4, 4)
    fill = (1.0, 2.0, 3.0)
    out = RandomCropFlip(padding=4, hflip=False, fill=fill)(x)
    for c, value in enumerate(fill):
        assert set(out[:, c].unique().tolist()) <= {0.0, value}


def test_random_crop_rejects_negative_padding() -> None:
    with pytest.raises(ValueError, match="-1"):
        RandomCropFlip(padding=-1)


def test_black_fill_is_black_after_normalization() -> None:
    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    fill = torch.tensor(black_fill(mean, std))
    black = torch.zeros(3)
    normalized_black = (black - torch.tensor(mean)) / torch.tensor(std)
    torch.testing.assert_close(fill, normalized_black)
    with pytest.raises(ValueError, match="std"):
        black_fill((0.5,), (0.0,))
    with pytest.raises(ValueError, match="mean"):
        black_fill((0.5, 0.5), (1.0,))
