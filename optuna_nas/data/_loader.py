"""The device-resident batch loader and the one epoch-seeding convention of the package."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import dataclasses
import math

import numpy as np
import torch
from torch.utils.data import Sampler

from optuna_nas._validation import check_int
from optuna_nas._validation import check_seed


Batch = tuple[torch.Tensor, torch.Tensor]
Augment = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """The seed of one epoch's shuffle and augmentation: a pure function of its arguments.

    Every loader of the package (child training and DARTS) draws epoch ``epoch`` from a
    generator seeded with this value, so the batches of an epoch depend only on ``(seed,
    epoch)``, not on how many epochs this process has run: a fit resumed from a checkpoint sees
    the batches of an uninterrupted one.

    Args:
        seed: The run's data seed.
        epoch: The 0-based epoch.
        stream: Tells apart loaders that share a seed and an epoch (DARTS' weight and
            architecture halves); ``0`` for a single loader.

    Returns:
        A 32-bit seed.

    Example:
        >>> epoch_seed(0, 3) == epoch_seed(0, 3) != epoch_seed(0, 4)
        True
    """
    key = [int(seed), int(epoch)] + ([int(stream)] if stream else [])
    return int(np.random.SeedSequence(key).generate_state(1)[0])


def trainer_epoch(owner: object) -> Callable[[], int | None]:
    """A callable that reads ``owner.trainer.current_epoch`` when an epoch starts.

    For a ``LightningDataModule`` that hands out loaders: the epoch comes from the trainer when
    one is attached (Lightning restores it from a checkpoint on resume), and ``None`` (the
    loader counts its own epochs) when none is.

    Args:
        owner: Anything with a ``trainer`` attribute (``None`` while detached).

    Returns:
        A callable returning the trainer's 0-based ``current_epoch``, or ``None``.
    """

    def current_epoch() -> int | None:
        trainer = getattr(owner, "trainer", None)
        return None if trainer is None else int(trainer.current_epoch)

    return current_epoch


def _permutation(n: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randperm(n, device=generator.device, generator=generator)


class EpochSampler(Sampler[int]):
    """A ``DataLoader`` sampler whose order of epoch ``e`` is drawn from ``(seed, e)``.

    The ``DataLoader`` counterpart of :class:`DeviceTensorLoader`'s shuffle: epoch ``e`` is the
    permutation that a CPU :class:`DeviceTensorLoader` with the same ``seed`` draws for ``e``,
    so a fit resumed from a checkpoint sees the order of an uninterrupted one (a
    ``RandomSampler`` with a seeded generator would start its sequence over).

    Args:
        num_samples: Size of the dataset.
        seed: Seed of the permutations.
        epoch_fn: Returns the 0-based epoch when an epoch starts (``None``: count epochs).

    Example:
        >>> sampler = EpochSampler(5, seed=0, epoch_fn=lambda: 3)
        >>> sorted(sampler) == list(range(5)) and list(sampler) == list(sampler)
        True
    """

    def __init__(
        self, num_samples: int, *, seed: int = 0, epoch_fn: Callable[[], int | None] | None = None
    ) -> None:
        check_int("num_samples", num_samples, minimum=1)
        check_seed(seed, allow_none=False)
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.epoch_fn = epoch_fn
        self._epoch = 0

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        epoch = self.epoch_fn() if self.epoch_fn is not None else None
        if epoch is None:
            epoch = self._epoch
        self._epoch = epoch + 1
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        return iter(_permutation(self.num_samples, generator).tolist())


@dataclasses.dataclass(eq=False)
class DeviceTensorLoader:
    """Batches of an in-memory tensor dataset sliced where the tensors live (e.g. on the GPU).

    A drop-in replacement for a ``DataLoader`` over a small ``TensorDataset``: the shuffle, the
    slicing and the optional augmentation all run on the tensors' device, so there are no worker
    processes, no collation and no host-to-device copies. Lightning's batch transfer is a no-op
    because the batches are already on the training device.

    Each ``iter()`` is one epoch. Its permutation and augmentation come from one generator
    seeded with :func:`epoch_seed` ``(seed, epoch, stream)``, where the epoch is ``epoch_fn()``
    when that is given and not ``None`` (the DataModules pass the trainer's ``current_epoch``,
    see :func:`trainer_epoch`, so a resumed fit sees the batches of an uninterrupted one), and
    otherwise the number of epochs this loader has served (0, 1, ...). Under data parallelism,
    every rank draws the same permutation and takes the disjoint shard
    ``perm[rank::world_size]``.

    Args:
        images: ``(N, C, H, W)`` tensor.
        labels: ``(N,)`` tensor of class indices, on the same device as ``images``.
        batch_size: Samples per batch.
        shuffle: Draw a new permutation each epoch.
        drop_last: Drop the last, incomplete batch.
        augment: Optional batch transform ``augment(x, generator)`` (e.g. :class:`RandomCropFlip`).
        seed: Seed of the permutation and augmentation.
        epoch_fn: Returns the 0-based epoch when an epoch starts (``None``: count epochs).
        stream: Tells apart loaders that share ``seed`` (see :func:`epoch_seed`).
        rank: This process's rank under data parallelism.
        world_size: Number of data-parallel processes.

    Example:
        .. code-block:: python

            import torch
            from optuna_nas.data import DeviceTensorLoader

            x, y = torch.randn(100, 1, 8, 8), torch.randint(0, 10, (100,))
            loader = DeviceTensorLoader(x, y, batch_size=32, shuffle=True)
            assert len(loader) == 4 and sum(len(b[1]) for b in loader) == 100
    """

    images: torch.Tensor = dataclasses.field(repr=False)
    labels: torch.Tensor = dataclasses.field(repr=False)
    _: dataclasses.KW_ONLY
    batch_size: int
    shuffle: bool = False
    drop_last: bool = False
    augment: Augment | None = None
    seed: int = 0
    epoch_fn: Callable[[], int | None] | None = dataclasses.field(default=None, repr=False)
    stream: int = 0
    rank: int = 0
    world_size: int = 1
    _epoch: int = dataclasses.field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"images and labels differ in length: {images.shape[0]} vs {labels.shape[0]}."
            )
        if images.device != labels.device:
            raise ValueError(f"images on {images.device} but labels on {labels.device}.")
        check_int("batch_size", self.batch_size, minimum=1)
        check_seed(self.seed, allow_none=False)
        check_int("stream", self.stream, minimum=0)
        check_int("world_size", self.world_size, minimum=1)
        check_int("rank", self.rank, minimum=0)
        if self.rank >= self.world_size:
            raise ValueError(
                f"Need 0 <= rank < world_size; got rank={self.rank}, world={self.world_size}."
            )

    @property
    def device(self) -> torch.device:
        """The device the batches live on."""
        return self.images.device

    def _num_local(self) -> int:
        return self.images.shape[0] // self.world_size

    def __len__(self) -> int:
        n = self._num_local()
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        # A generator: Lightning calls iter() once just to check iterability, so the epoch is
        # read (and the own count advanced) only when an epoch is actually consumed.
        epoch = self.epoch_fn() if self.epoch_fn is not None else None
        if epoch is None:
            epoch = self._epoch
        self._epoch = epoch + 1
        n = self.images.shape[0]
        generator = torch.Generator(device=self.device)
        generator.manual_seed(epoch_seed(self.seed, epoch, self.stream))
        if self.shuffle:
            order = _permutation(n, generator)
        else:
            order = torch.arange(n, device=self.device)
        if self.world_size > 1:
            order = order[: self._num_local() * self.world_size][self.rank :: self.world_size]
        for k in range(len(self)):
            idx = order[k * self.batch_size : (k + 1) * self.batch_size]
            x = self.images.index_select(0, idx)
            if self.augment is not None:
                x = self.augment(x, generator)
            yield x, self.labels.index_select(0, idx)
