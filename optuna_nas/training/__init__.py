"""Child-network training with Lightning: ChildModule, DataModules and NASObjective."""

from optuna_nas.data import DeviceTensorLoader
from optuna_nas.data import RandomCropFlip
from optuna_nas.data import stratified_split
from optuna_nas.training._callbacks import LearningCurveCallback
from optuna_nas.training._datamodules import CIFAR10DataModule
from optuna_nas.training._datamodules import EmbeddedDataModule
from optuna_nas.training._imagefolder import ImageFolderDataModule
from optuna_nas.training._measure import count_flops
from optuna_nas.training._measure import count_parameters
from optuna_nas.training._measure import measure_latency
from optuna_nas.training._module import ChildModule
from optuna_nas.training._module import split_logits
from optuna_nas.training._objective import NASObjective
from optuna_nas.training._objective import known_direction
from optuna_nas.trial_outcome import NonFiniteError


__all__ = [
    "CIFAR10DataModule",
    "ChildModule",
    "DeviceTensorLoader",
    "EmbeddedDataModule",
    "ImageFolderDataModule",
    "LearningCurveCallback",
    "NASObjective",
    "NonFiniteError",
    "RandomCropFlip",
    "count_flops",
    "count_parameters",
    "known_direction",
    "measure_latency",
    "split_logits",
    "stratified_split",
]
