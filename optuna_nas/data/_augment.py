"""Batched image augmentation on the tensor's device, and the padding value of black."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
import numbers
from typing import Any

import torch

from optuna_nas._validation import check_int
from optuna_nas._validation import check_number


def black_fill(mean: Sequence[float], std: Sequence[float]) -> tuple[float, ...]:
    """The value of a black (all-zero) raw pixel after ``(x - mean) / std``, per channel.

    Padding a normalized image with these values is padding the raw image with black before
    normalizing it, as torchvision's ``RandomCrop(padding=...)`` followed by ``Normalize`` does.

    Args:
        mean: Per-channel mean of the normalization.
        std: Per-channel standard deviation of the normalization.

    Returns:
        ``-mean / std`` per channel.

    Raises:
        ValueError: ``mean`` and ``std`` differ in length or a ``std`` is not positive.

    Example:
        >>> black_fill((0.5, 0.25), (0.5, 0.5))
        (-1.0, -0.5)
    """
    if len(mean) != len(std) or any(not s > 0 for s in std):
        raise ValueError(
            f"mean and std must have one value per channel and std > 0; got mean={mean!r}, "
            f"std={std!r}."
        )
    return tuple(-float(m) / float(s) for m, s in zip(mean, std))


class Cutout:
    """Batched Cutout (DeVries & Taylor, 2017) on the tensor's device: one zeroed square per image.

    Each image of a ``(B, C, H, W)`` batch gets one square of side ``length`` set to zero in
    every channel. Its centre is drawn uniformly over the image's pixels and the square is
    clipped at the borders, so a centre near an edge zeroes less. This is the reference
    implementation's rule (``Cutout`` in DARTS' ``cnn/utils.py``, from the Cutout authors' code):
    rows ``[cy - length // 2, cy - length // 2 + length)`` clipped to the image (the reference
    writes ``cy + length // 2`` as the end, the same square for even lengths such as DARTS'
    16). As there, it is applied after normalization, so the square holds 0 = the dataset mean,
    not black; and it is applied to every image (no probability).

    Args:
        length: Side of the square in pixels; 0 leaves the batch unchanged.

    Example:
        .. code-block:: python

            import torch
            from optuna_nas.data import Cutout

            out = Cutout(length=16)(torch.randn(8, 3, 32, 32), torch.Generator().manual_seed(0))
            assert out.shape == (8, 3, 32, 32)
    """

    def __init__(self, *, length: int) -> None:
        check_int("length", length, minimum=0)
        self.length = int(length)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"Expected a (B, C, H, W) batch; got shape {tuple(x.shape)}.")
        if self.length == 0:
            return x
        b, _, h, w = x.shape
        cy = torch.randint(0, h, (b,), device=x.device, generator=generator)
        cx = torch.randint(0, w, (b,), device=x.device, generator=generator)
        top = cy - self.length // 2
        left = cx - self.length // 2
        rows = torch.arange(h, device=x.device)
        cols = torch.arange(w, device=x.device)
        # Comparing with the unclipped bounds clips the square at the borders.
        in_rows = (rows >= top[:, None]) & (rows < top[:, None] + self.length)  # (B, H)
        in_cols = (cols >= left[:, None]) & (cols < left[:, None] + self.length)  # (B, W)
        square = in_rows[:, :, None] & in_cols[:, None, :]  # (B, H, W)
        return x.masked_fill(square[:, None], 0.0)

    def __repr__(self) -> str:
        return f"Cutout(length={self.length})"


class ChainAugment:
    """Apply batch augmentations one after the other, all drawing from the same generator.

    Args:
        augmentations: Callables ``augment(x, generator) -> x``, applied in this order.
    """

    def __init__(self, *augmentations: Any) -> None:
        self.augmentations = tuple(augmentations)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for augment in self.augmentations:
            x = augment(x, generator)
        return x

    def __repr__(self) -> str:
        return f"ChainAugment{self.augmentations!r}"


class RandomCropFlip:
    """Batched random crop (after constant padding) and horizontal flip, on the tensor's device.

    The tensor-level equivalent of torchvision's ``RandomCrop(size, padding)`` and
    ``RandomHorizontalFlip()``, applied to a whole ``(B, C, H, W)`` batch at once: every image
    gets its own offset and flip, and no data leaves the device.

    Args:
        padding: Pixels of padding on each side before cropping back to the input size.
        hflip: Flip each image horizontally with probability 0.5.
        fill: Padding value per channel (or one for all). For normalized images pass
            ``-mean / std`` so the padding equals black in the raw image, as torchvision does.

    Example:
        .. code-block:: python

            import torch
            from optuna_nas.data import RandomCropFlip

            augment = RandomCropFlip(padding=4, hflip=True)
            out = augment(torch.randn(8, 3, 32, 32))
            assert out.shape == (8, 3, 32, 32)
    """

    def __init__(
        self, *, padding: int = 4, hflip: bool = True, fill: float | Sequence[float] = 0.0
    ) -> None:
        check_int("padding", padding, minimum=0)
        fills: tuple[Any, ...]
        if isinstance(fill, (numbers.Real, str)) or not isinstance(fill, Iterable):
            fills = (fill,)
        else:
            fills = tuple(fill)
        for value in fills:
            check_number("fill", value)
        self.padding = int(padding)
        self.hflip = bool(hflip)
        self.fill = tuple(float(value) for value in fills)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"Expected a (B, C, H, W) batch; got shape {tuple(x.shape)}.")
        b, c, h, w = x.shape
        if self.padding > 0:
            p = self.padding
            fill = torch.tensor(self.fill, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
            # A per-channel constant border (F.pad only takes one value for all channels).
            padded = fill.expand(b, c, h + 2 * p, w + 2 * p).clone()
            padded[:, :, p : p + h, p : p + w] = x
            oy = torch.randint(0, 2 * p + 1, (b,), device=x.device, generator=generator)
            ox = torch.randint(0, 2 * p + 1, (b,), device=x.device, generator=generator)
            rows = oy[:, None] + torch.arange(h, device=x.device)
            cols = ox[:, None] + torch.arange(w, device=x.device)
            batch = torch.arange(b, device=x.device)[:, None, None]
            # (B, H', W', C)[b, rows, cols] -> (B, H, W, C): one gather for the whole batch.
            x = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
            x = x.permute(0, 3, 1, 2).contiguous()
        if self.hflip:
            flip = torch.rand(b, device=x.device, generator=generator) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return x

    def __repr__(self) -> str:
        return f"RandomCropFlip(padding={self.padding}, hflip={self.hflip})"
