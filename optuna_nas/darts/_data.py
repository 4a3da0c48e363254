"""Data for a DARTS search: the training set split into a weight half and an architecture half."""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence
from typing import Any
from typing import Union

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset

from optuna_nas._validation import check_fraction
from optuna_nas._validation import check_int
from optuna_nas._validation import check_seed
from optuna_nas.data import DeviceTensorLoader
from optuna_nas.data import RandomCropFlip
from optuna_nas.data import black_fill
from optuna_nas.data import trainer_epoch
from optuna_nas.data._loader import Augment


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
    A ``Dataset``'s transforms run once: random augmentation is frozen (``DartsDataModule``
    applies DARTS' crop-and-flip itself, on every epoch).
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


class _PairedLoader:
    """Yields ``((x_w, y_w), (x_a, y_a))``: a weight batch and an architecture batch per step.

    Two :class:`~optuna_nas.data.DeviceTensorLoader`\\ s, one per half, with the same seed and
    epoch but their own stream, so the order and the augmentation of both are a pure function of
    ``(seed, epoch)`` (a run resumed from a checkpoint sees the batches of an uninterrupted one)
    and the tensors may stay on the GPU. An epoch is one pass over the weight half; the
    architecture half starts over if it runs out first.
    """

    def __init__(self, weights: DeviceTensorLoader, arch: DeviceTensorLoader) -> None:
        self.weights = weights
        self.arch = arch

    def __len__(self) -> int:
        return len(self.weights)

    def __iter__(self) -> Iterator[tuple[Batch, Batch]]:
        arch = iter(self.arch)
        for batch in self.weights:
            arch_batch = next(arch, None)
            if arch_batch is None:
                arch = iter(self.arch)
                arch_batch = next(arch)
            yield batch, arch_batch


class DartsDataModule(pl.LightningDataModule):
    """DARTS' data: the training set split into weight and architecture halves.

    Each training step receives ``((x_w, y_w), (x_a, y_a))``: a batch for the weight step and a
    batch for the architecture step (DARTS splits CIFAR-10's 50k training images 25k/25k). The
    validation loader is the architecture half (DARTS reports the supernet's accuracy on it),
    unless ``val_data`` is given.

    Augmentation is DARTS' search augmentation by default, on both halves and every epoch: the
    raw image is padded with 4 black pixels, randomly cropped back to its size and flipped
    horizontally with probability 0.5 (torchvision's ``RandomCrop(32, padding=4)`` and
    ``RandomHorizontalFlip()`` before ``Normalize`` in DARTS' CIFAR-10 pipeline). The tensors
    here are already normalized, so the border gets the value that black has after
    normalization, ``-mean / std`` per channel (:func:`~optuna_nas.data.black_fill`). The
    normalization is ``mean``/``std`` when given, else the ``mean``/``std`` attributes of
    ``data`` (``CIFAR10DataModule`` and ``EmbeddedDataModule`` have them); without either, the
    tensors are taken as raw images (black is 0) and padded with zeros.

    Batches of epoch ``e`` are drawn from :func:`~optuna_nas.data.epoch_seed` ``(seed, e)``
    with ``e`` the trainer's ``current_epoch``, so a search resumed from a checkpoint
    (``ckpt_path=``) sees the batches of an uninterrupted one. Without a trainer, each
    ``iter()`` of the training loader is the next epoch.

    Args:
        data: ``(inputs, targets)`` tensors, a ``Dataset`` or a ``LightningDataModule`` (read
            once through its ``train_dataloader()``: give it ``augment=False``, or its random
            augmentation is frozen into the data).
        batch_size: Batch size of both halves (64 in DARTS).
        train_portion: Fraction of ``data`` used for the weights (0.5 in DARTS).
        val_data: Optional separate validation data (same kinds as ``data``).
        seed: Seed of the split and of the per-epoch batch order and augmentation.
        augment: ``True`` (default) for DARTS' augmentation above, ``False`` for none, or a
            batch transform ``augment(x, generator)`` (e.g. a
            :class:`~optuna_nas.data.RandomCropFlip` without flips for digits), applied on the
            batch's device to both halves.
        mean: Per-channel mean the tensors were normalized with (with ``std``).
        std: Per-channel standard deviation the tensors were normalized with (with ``mean``).
        device_resident: Keep the tensors on the trainer's GPU; ``None`` means yes on CUDA.
        num_classes: Number of classes; ``None`` infers ``max(label) + 1``.

    Example:
        >>> import torch
        >>> from optuna_nas.darts import DartsDataModule
        >>> x, y = torch.rand(100, 3, 8, 8), torch.randint(0, 10, (100,))
        >>> dm = DartsDataModule(data=(x, y), batch_size=16)
        >>> dm.setup("fit")
        >>> (xw, yw), (xa, ya) = next(iter(dm.train_dataloader()))
        >>> tuple(xw.shape), tuple(xa.shape)
        ((16, 3, 8, 8), (16, 3, 8, 8))
    """

    def __init__(
        self,
        *,
        data: DataSource,
        batch_size: int = 64,
        train_portion: float = 0.5,
        val_data: DataSource | None = None,
        seed: int = 0,
        augment: bool | Augment = True,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        device_resident: bool | None = None,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        check_int("batch_size", batch_size, minimum=1)
        check_fraction("train_portion", train_portion)
        check_seed(seed, allow_none=False)
        if num_classes is not None:
            check_int("num_classes", num_classes, minimum=1)
        if (mean is None) != (std is None):
            raise ValueError(f"Give both mean and std or neither; got mean={mean!r}, std={std!r}.")
        if not isinstance(augment, bool) and not callable(augment):
            raise ValueError(f"augment must be a bool or a batch transform, got {augment!r}.")
        self.data = data
        self.val_data = val_data
        self.batch_size = int(batch_size)
        self.train_portion = float(train_portion)
        self.seed = int(seed)
        self.augment = augment
        self.mean: tuple[float, ...] | None = None if mean is None else tuple(map(float, mean))
        self.std: tuple[float, ...] | None = None if std is None else tuple(map(float, std))
        if self.mean is not None and self.std is not None:
            black_fill(self.mean, self.std)  # validates
        self.device_resident = device_resident
        self._num_classes = num_classes
        self._weight_half: Batch | None = None
        self._arch_half: Batch | None = None
        self._val: Batch | None = None

    def setup(self, stage: str | None = None) -> None:
        if self._weight_half is None:
            x, y = materialize(self.data)
            if self.mean is None:
                self.mean, self.std = _normalization_of(self.data)
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

    def batch_augmentation(self) -> Augment | None:
        """The transform applied to both halves' training batches, or ``None``."""
        if callable(self.augment):
            return self.augment
        if not self.augment:
            return None
        channels = self.input_shape[0]
        fill: tuple[float, ...] = (0.0,) * channels
        if self.mean is not None and self.std is not None:
            fill = black_fill(self.mean, self.std)
            if len(fill) == 1:
                fill *= channels
            if len(fill) != channels:
                raise ValueError(
                    f"mean/std have {len(fill)} channels but the images have {channels}."
                )
        return RandomCropFlip(padding=4, hflip=True, fill=fill)

    def _loader(self, half: Batch, *, train: bool, stream: int = 0) -> DeviceTensorLoader:
        return DeviceTensorLoader(
            *half,
            batch_size=self.batch_size,
            shuffle=train,
            augment=self.batch_augmentation() if train else None,
            seed=self.seed,
            epoch_fn=trainer_epoch(self),
            stream=stream,
        )

    def train_dataloader(self) -> Any:
        weight_half, arch_half = self._halves()
        return _PairedLoader(
            self._loader(weight_half, train=True, stream=0),
            self._loader(arch_half, train=True, stream=1),
        )

    def val_dataloader(self) -> Any:
        _, arch_half = self._halves()
        return self._loader(self._val if self._val is not None else arch_half, train=False)


def _normalization_of(source: Any) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """The ``mean``/``std`` a data source normalized its images with, or ``(None, None)``."""
    mean, std = getattr(source, "mean", None), getattr(source, "std", None)
    if mean is None or std is None or isinstance(source, (tuple, list)):
        return None, None
    return tuple(map(float, mean)), tuple(map(float, std))


def _to(batch: Batch, device: torch.device) -> Batch:
    return batch[0].to(device), batch[1].to(device)
