"""Helpers of the CLI tests: image folders generated with PIL, and user DataModules that
``optuna-nas search --dataset cli_helpers:TinyDataModule`` imports (tests/helpers/ is on the
tests' import path, and on the subprocesses' PYTHONPATH where they need it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data import TensorDataset


def make_image_folder(
    root: Path, *, classes: int = 3, per_class: int = 8, size: int = 12, gray: bool = False
) -> Path:
    """``classes`` folders of coloured shapes (square, disc, bar...) as PNG files."""
    from PIL import Image
    from PIL import ImageDraw

    rng = np.random.default_rng(0)
    colours = [(220, 40, 40), (40, 200, 40), (40, 40, 220), (200, 200, 40)]
    for c in range(classes):
        folder = root / f"class_{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            image = Image.new("L" if gray else "RGB", (size, size), 0)
            draw = ImageDraw.Draw(image)
            o = int(rng.integers(0, 3))
            box = (o, o, size - 1 - o, size - 1 - o)
            fill = 255 if gray else colours[c % len(colours)]
            if c % 3 == 0:
                draw.rectangle(box, fill=fill)
            elif c % 3 == 1:
                draw.ellipse(box, fill=fill)
            else:
                draw.rectangle((o, size // 3, size - 1 - o, 2 * size // 3), fill=fill)
            image.save(folder / f"img_{i}.png")
    return root


class TinyDataModule(pl.LightningDataModule):
    """A user's own DataModule: random 3-channel images whose class shifts the mean."""

    in_channels = 3

    def __init__(self, *, n: int = 64, num_classes: int = 3, image_size: int = 8) -> None:
        super().__init__()
        self.n = n
        self.num_classes = num_classes
        self.image_size = image_size

    def setup(self, stage: str | None = None) -> None:
        g = torch.Generator().manual_seed(0)
        y = torch.randint(0, self.num_classes, (self.n,), generator=g)
        x = torch.randn(self.n, 3, self.image_size, self.image_size, generator=g)
        x[:, 0] += y.view(-1, 1, 1).float()
        self.data = TensorDataset(x, y)

    def train_dataloader(self) -> Any:
        return DataLoader(self.data, batch_size=16, shuffle=True)

    def val_dataloader(self) -> Any:
        return DataLoader(self.data, batch_size=32)


class NoImageSize(pl.LightningDataModule):
    """Lacks ``image_size`` (and ``in_channels``): refused by the CLI."""

    num_classes = 2
