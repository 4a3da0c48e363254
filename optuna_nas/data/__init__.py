"""Pure-torch data pieces shared by child training and DARTS (no Lightning here).

* :func:`stratified_split`: seeded, class-stratified splits of a labelled dataset.
* :class:`RandomCropFlip` and :func:`black_fill`: batched crop-and-flip augmentation on the
  tensor's device, padding with the value of black in the raw image; :class:`Cutout` (one
  zeroed square per image) and :class:`ChainAugment` to apply several in a row.
* :class:`DeviceTensorLoader`, :class:`EpochSampler`, :func:`epoch_seed` and
  :func:`trainer_epoch`: batches sliced where the tensors live (or a ``DataLoader`` sampler),
  each epoch drawn from ``(seed, epoch)`` so a resumed fit repeats an uninterrupted one.

The Lightning DataModules built on them live in :mod:`optuna_nas.training`
(``CIFAR10DataModule``, ``EmbeddedDataModule``) and :mod:`optuna_nas.darts`
(``DartsDataModule``).
"""

from optuna_nas.data._augment import ChainAugment
from optuna_nas.data._augment import Cutout
from optuna_nas.data._augment import RandomCropFlip
from optuna_nas.data._augment import black_fill
from optuna_nas.data._loader import DeviceTensorLoader
from optuna_nas.data._loader import EpochSampler
from optuna_nas.data._loader import epoch_seed
from optuna_nas.data._loader import trainer_epoch
from optuna_nas.data._split import stratified_split


__all__ = [
    "ChainAugment",
    "Cutout",
    "DeviceTensorLoader",
    "EpochSampler",
    "RandomCropFlip",
    "black_fill",
    "epoch_seed",
    "stratified_split",
    "trainer_epoch",
]
