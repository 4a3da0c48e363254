"""Tests of optuna_nas.data._augment."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from optuna_nas.data import ChainAugment
from optuna_nas.data import Cutout
from optuna_nas.data import RandomCropFlip
from optuna_nas.data import black_fill
from optuna_nas.training import EmbeddedDataModule


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


# ------------------------------------------------------------------------------------ Cutout
def _reference_cutout_mask(h: int, w: int, length: int, cy: int, cx: int) -> torch.Tensor:
    # DARTS' utils.Cutout for an even length, written out: mask[y1:y2, x1:x2] = 0.
    mask = torch.ones(h, w)
    y1, y2 = max(cy - length // 2, 0), min(cy + length // 2, h)
    x1, x2 = max(cx - length // 2, 0), min(cx + length // 2, w)
    mask[y1:y2, x1:x2] = 0
    return mask


def test_cutout_zeroes_one_clipped_square_per_image_in_every_channel() -> None:
    x = torch.randn(64, 3, 12, 12) + 10.0  # no pixel is zero before the cutout
    length = 6
    out = Cutout(length=length)(x, torch.Generator().manual_seed(0))
    zero = out == 0
    # The same pixels in every channel; elsewhere the image is unchanged.
    assert bool((zero == zero[:, :1]).all())
    assert torch.equal(out[~zero], x[~zero])
    # Reproduce the draws: the centres come first from the same generator.
    generator = torch.Generator().manual_seed(0)
    cy = torch.randint(0, 12, (64,), generator=generator)
    cx = torch.randint(0, 12, (64,), generator=generator)
    areas = []
    for b in range(64):
        expected = _reference_cutout_mask(12, 12, length, int(cy[b]), int(cx[b])) == 0
        assert torch.equal(zero[b, 0], expected)
        areas.append(int(expected.sum()))
    # A full square inside the image, and clipped ones at the borders (at most the full area).
    assert max(areas) == length * length
    assert min(areas) < length * length
    assert min(areas) >= (length // 2) ** 2


def test_cutout_is_clipped_at_the_border() -> None:
    x = torch.ones(400, 1, 8, 8)
    out = Cutout(length=4)(x, torch.Generator().manual_seed(1))
    zeroed = (out == 0).sum(dim=(1, 2, 3))
    # Centre in a corner pixel (0, 0): rows and columns [-2, 2) clip to [0, 2): 4 pixels.
    assert int(zeroed.min()) == 4
    assert int(zeroed.max()) == 16
    assert out.shape == x.shape


def test_cutout_is_reproducible_with_a_seed_and_off_at_zero() -> None:
    x = torch.randn(16, 2, 10, 10)
    a = Cutout(length=5)(x, torch.Generator().manual_seed(3))
    b = Cutout(length=5)(x, torch.Generator().manual_seed(3))
    c = Cutout(length=5)(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert Cutout(length=0)(x) is x
    with pytest.raises(ValueError, match="length.*-1"):
        Cutout(length=-1)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        Cutout(length=2)(torch.zeros(3, 4, 4))


def test_chain_augment_applies_in_order_with_one_generator() -> None:
    x = torch.randn(8, 1, 6, 6) + 10.0
    crop = RandomCropFlip(padding=1, hflip=True)
    chained = ChainAugment(crop, Cutout(length=2))(x, torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(0)
    by_hand = Cutout(length=2)(crop(x, generator), generator)
    assert torch.equal(chained, by_hand)


def _first_train_batch(dm: EmbeddedDataModule) -> torch.Tensor:
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    if not dm.device_resident:
        # A DataLoader's batches are augmented on the device after the transfer, in training.
        dm.trainer = SimpleNamespace(training=True, current_epoch=0)  # type: ignore[assignment]
        batch = dm.on_after_batch_transfer(batch, 0)
        dm.trainer = None
    return batch[0]


@pytest.mark.parametrize("device_resident", [True, False])
def test_datamodule_cutout_is_off_by_default_and_zeroes_training_batches_only(
    device_resident: bool,
) -> None:
    kwargs: dict = {
        "dataset": "digits",
        "subset": 200,
        "batch_size": 32,
        "seed": 0,
        "device_resident": device_resident,
    }
    plain = EmbeddedDataModule(**kwargs)
    assert plain.cutout == 0
    cut = EmbeddedDataModule(**kwargs, cutout=4)
    x_plain, x_cut = _first_train_batch(plain), _first_train_batch(cut)
    changed = x_plain != x_cut
    # Only pixels set to exactly 0 changed (no normalized pixel is 0 before), at most 4 x 4
    # per image and at least one (the centre) in every image.
    assert bool((x_cut[changed] == 0).all())
    per_image = changed.flatten(1).sum(1)
    assert 1 <= int(per_image.min()) <= int(per_image.max()) <= 16
    # Reproducible: a second module with the same seed serves the same batch.
    assert torch.equal(x_cut, _first_train_batch(EmbeddedDataModule(**kwargs, cutout=4)))
    # Validation batches are never cut.
    assert torch.equal(next(iter(cut.val_dataloader()))[0], next(iter(plain.val_dataloader()))[0])
    assert "cutout=4" in repr(cut)


def test_datamodule_cutout_follows_the_crop() -> None:
    kwargs: dict = {"dataset": "digits", "subset": 200, "batch_size": 32, "augment": True}
    crop_only = _first_train_batch(EmbeddedDataModule(**kwargs))
    both = _first_train_batch(EmbeddedDataModule(**kwargs, cutout=3))
    changed = crop_only != both
    assert bool(changed.any())
    assert bool((both[changed] == 0).all())


@pytest.mark.parametrize("cutout", [-1, 1.5, True, 8, 9])
def test_datamodule_rejects_a_bad_cutout(cutout: object) -> None:
    with pytest.raises(ValueError, match=f"cutout.*{cutout!r}"):
        EmbeddedDataModule(dataset="digits", cutout=cutout)  # 8x8 images
