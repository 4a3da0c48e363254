"""Data for a DARTS search: the training set split into a weight half and an architecture half."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import math
from typing import Any
from typing import Union

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset


DataSource = Union[tuple[torch.Tensor, torch.Tensor], Dataset, pl.LightningDataModule]  # noqa: UP007
Batch = tuple[torch.Tensor, torch.Tensor]


def _concat_batches(batches: Any) -> tuple[torch.Tensor, torch.Tensor]:
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    for batch in batches:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError(f"Expected (inputs, targets) batches, got {type(batch).__name__}.")
        xs.append(torch.as_tensor(batch[0]).cpu())
        ys.append(torch.as_tensor(batch[1]).cpu())
    if not xs:
        raise ValueError("The data source is empty.")
    return torch.cat(xs), torch.cat(ys)


def materialize(source: DataSource) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn ``(x, y)`` tensors, a ``Dataset`` or a ``LightningDataModule`` into CPU tensors.

    A DataModule is read through its ``train_dataloader()`` (one pass, after ``prepare_data``
    and ``setup("fit")``), so any DataModule works, including ones whose loaders live on a GPU.
    A ``Dataset``'s transforms run once: random augmentation is frozen (use
    ``DartsDataModule(augment=True)`` for DARTS' crop-and-flip on every epoch).
    """
    if isinstance(source, (tuple, list)):
        if len(source) != 2:
            raise ValueError(f"Expected (inputs, targets), got a sequence of {len(source)}.")
        x, y = torch.as_tensor(source[0]), torch.as_tensor(source[1])
    elif isinstance(source, pl.LightningDataModule):
        source.prepare_data()
        source.setup("fit")
        x, y = _concat_batches(source.train_dataloader())
    elif isinstance(source, Dataset):
        x, y = _concat_batches(DataLoader(source, batch_size=512, shuffle=False))
    else:
        raise ValueError(
            "data must be (inputs, targets) tensors, a torch Dataset or a LightningDataModule; "
            f"got {type(source).__name__}."
        )
    if x.ndim != 4:
        raise ValueError(f"Expected images of shape (N, C, H, W), got {tuple(x.shape)}.")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"Expected {len(x)} integer labels, got shape {tuple(y.shape)}.")
    return x.float().contiguous(), y.long()


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """DARTS' CIFAR augmentation on a batch, on its device: random crop (pad 4) and flip."""
    n, _, h, w = x.shape
    pad = 4
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (n, 1), device=x.device, generator=generator)
    ox = torch.randint(0, 2 * pad + 1, (n, 1), device=x.device, generator=generator)
    rows = (oy + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = (ox + torch.arange(w, device=x.device)).view(n, 1, 1, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    channel = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    out = padded[batch, channel, rows, cols]
    flip = torch.rand(n, device=x.device, generator=generator) < 0.5
    return torch.where(flip.view(n, 1, 1, 1), out.flip(3), out)


class _PairedBatches:
    """Yields ``((x_w, y_w), (x_a, y_a))``: a weight batch and an architecture batch per step.

    Hand-written instead of two ``DataLoader``\\ s: the order is a pure function of
    ``(seed, epoch)``, so a run resumed from a checkpoint sees the same batches as an
    uninterrupted one, and the tensors may stay on the GPU (no host-to-device copies).
    """

    def __init__(
        self,
        weight_half: Batch,
        arch_half: Batch,
        *,
        batch_size: int,
        seed: int,
        epoch_fn: Callable[[], int],
        augment: bool,
    ) -> None:
        self.weight_half = weight_half
        self.arch_half = arch_half
        self.batch_size = batch_size
        self.seed = seed
        self.epoch_fn = epoch_fn
        self.augment = augment

    def __len__(self) -> int:
        return math.ceil(len(self.weight_half[0]) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Batch, Batch]]:
        epoch = self.epoch_fn()
        xw, yw = self.weight_half
        xa, ya = self.arch_half
        device = xw.device
        cpu_gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        perm_w = torch.randperm(len(xw), generator=cpu_gen).to(device)
        perm_a = torch.randperm(len(xa), generator=cpu_gen).to(device)
        aug_gen = torch.Generator(device=device).manual_seed(self.seed * 100_003 + epoch + 1)
        for b in range(len(self)):
            iw = perm_w[b * self.batch_size : (b + 1) * self.batch_size]
            # The architecture half is cycled if it is smaller than the weight half.
            ia = perm_a[torch.arange(b * self.batch_size, b * self.batch_size + len(iw),
                                     device=device) % len(xa)]
            bw, ba = xw[iw], xa[ia]
            if self.augment:
                bw, ba = _augment(bw, aug_gen), _augment(ba, aug_gen)
            yield (bw, yw[iw]), (ba, ya[ia])


class _Batches:
    def __init__(self, data: Batch, batch_size: int) -> None:
        self.data = data
        self.batch_size = batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.data[0]) / self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        x, y = self.data
        for b in range(len(self)):
            sl = slice(b * self.batch_size, (b + 1) * self.batch_size)
            yield x[sl], y[sl]


class DartsDataModule(pl.LightningDataModule):
    """DARTS' data: the training set split into weight and architecture halves.

    Each training step receives ``((x_w, y_w), (x_a, y_a))``: a batch for the weight step and a
    batch for the architecture step (DARTS splits CIFAR-10's 50k training images 25k/25k). The
    validation loader is the architecture half (DARTS reports the supernet's accuracy on it),
    unless ``val_data`` is given.

    Args:
        data: ``(inputs, targets)`` tensors, a ``Dataset`` or a ``LightningDataModule`` (read
            once through its ``train_dataloader()``).
        batch_size: Batch size of both halves (64 in DARTS).
        train_portion: Fraction of ``data`` used for the weights (0.5 in DARTS).
        val_data: Optional separate validation data (same kinds as ``data``).
        seed: Seed of the split and of the per-epoch batch order.
        augment: DARTS' random crop (padding 4) and horizontal flip on every batch, done on the
            batch's device.
        device_resident: Keep the tensors on the trainer's GPU; ``None`` means yes on CUDA.
        num_classes: Number of classes; ``None`` infers ``max(label) + 1``.

    Example:
        .. code-block:: python

            import torch
            from optuna_nas.darts import DartsDataModule

            x, y = torch.randn(100, 3, 8, 8), torch.randint(0, 10, (100,))
            dm = DartsDataModule(data=(x, y), batch_size=16)
            dm.setup("fit")
            (xw, yw), (xa, ya) = next(iter(dm.train_dataloader()))
    """

    def __init__(
        self,
        *,
        data: DataSource,
        batch_size: int = 64,
        train_portion: float = 0.5,
        val_data: DataSource | None = None,
        seed: int = 0,
        augment: bool = False,
        device_resident: bool | None = None,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        if not 0.0 < train_portion < 1.0:
            raise ValueError(f"train_portion must be in (0, 1), got {train_portion!r}.")
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes!r}.")
        self.data = data
        self.val_data = val_data
        self.batch_size = batch_size
        self.train_portion = train_portion
        self.seed = seed
        self.augment = augment
        self.device_resident = device_resident
        self._num_classes = num_classes
        self.epoch = 0  # used when no trainer is attached
        self._weight_half: Batch | None = None
        self._arch_half: Batch | None = None
        self._val: Batch | None = None

    def setup(self, stage: str | None = None) -> None:
        if self._weight_half is None:
            x, y = materialize(self.data)
            n_weights = int(round(len(x) * self.train_portion))
            if n_weights < 1 or n_weights >= len(x):
                raise ValueError(
                    f"train_portion={self.train_portion} leaves an empty half of "
                    f"{len(x)} examples."
                )
            perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.seed))
            iw, ia = perm[:n_weights], perm[n_weights:]
            self._weight_half = (x[iw], y[iw])
            self._arch_half = (x[ia], y[ia])
            self._val = materialize(self.val_data) if self.val_data is not None else None
            if self._num_classes is None:
                self._num_classes = int(y.max()) + 1
        device = self._target_device()
        if device is not None:
            assert self._weight_half is not None and self._arch_half is not None
            self._weight_half = _to(self._weight_half, device)
            self._arch_half = _to(self._arch_half, device)
            self._val = _to(self._val, device) if self._val is not None else None

    def _target_device(self) -> torch.device | None:
        if self.device_resident is False or self.trainer is None:
            return None
        device = self.trainer.strategy.root_device
        if device.type == "cpu":
            return None
        if self.device_resident is None and device.type != "cuda":
            return None
        return device

    def _current_epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else self.epoch

    def _halves(self) -> tuple[Batch, Batch]:
        if self._weight_half is None or self._arch_half is None:
            self.setup("fit")
        assert self._weight_half is not None and self._arch_half is not None
        return self._weight_half, self._arch_half

    @property
    def num_classes(self) -> int:
        """Number of classes (after :meth:`setup`, or as given)."""
        if self._num_classes is None:
            self.setup("fit")
        assert self._num_classes is not None
        return self._num_classes

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of the images."""
        x = self._halves()[0][0]
        return int(x.shape[1]), int(x.shape[2]), int(x.shape[3])

    @property
    def num_weight_examples(self) -> int:
        """Size of the weight half."""
        return len(self._halves()[0][0])

    def train_dataloader(self) -> Any:
        weight_half, arch_half = self._halves()
        return _PairedBatches(
            weight_half,
            arch_half,
            batch_size=self.batch_size,
            seed=self.seed,
            epoch_fn=self._current_epoch,
            augment=self.augment,
        )

    def val_dataloader(self) -> Any:
        _, arch_half = self._halves()
        return _Batches(self._val if self._val is not None else arch_half, self.batch_size)


def _to(batch: Batch, device: torch.device) -> Batch:
    return batch[0].to(device), batch[1].to(device)
