"""Bad numeric arguments fail at construction with an error naming the argument and value.

A sweep over every numeric argument of the public constructors (samplers, pruner, search spaces
and their networks, benchmark objectives, training and DARTS modules, data modules and loaders):
ill-typed, fractional (for counts), negative, zero (where it must be positive), NaN and infinite
values. Each must raise a ``ValueError`` whose message names the argument and the value, instead
of failing later inside NumPy, torch or Lightning, or silently switching a feature off.
Constructors with required arguments get cheap valid ones from ``BASELINES`` (nothing is
downloaded or loaded: the data modules read their data in ``setup``).
"""

from __future__ import annotations

from collections.abc import Callable
import functools
import math
from pathlib import Path
import tempfile
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from optuna_nas.benchmarks import NB201Benchmark
from optuna_nas.benchmarks import NB201MultiObjective
from optuna_nas.benchmarks import NB201Objective
from optuna_nas.benchmarks import NB301Objective
from optuna_nas.darts import Architect
from optuna_nas.darts import DartsDataModule
from optuna_nas.darts import DartsModule
from optuna_nas.darts import DartsSearch
from optuna_nas.darts import DartsSupernet
from optuna_nas.darts import NB201Supernet
from optuna_nas.darts import SkipConnectionEarlyStopping
from optuna_nas.dashboard import NASDashboardCallback
from optuna_nas.data import Cutout
from optuna_nas.data import DeviceTensorLoader
from optuna_nas.data import EpochSampler
from optuna_nas.data import RandomCropFlip
from optuna_nas.estimators import ProxyScorer
from optuna_nas.estimators._proxies import Flops
from optuna_nas.estimators._proxies import JacobCov
from optuna_nas.estimators._proxies import SynFlow
from optuna_nas.pruners import LearningCurvePruner
from optuna_nas.retrain import RetrainProtocol
from optuna_nas.samplers import RegularizedEvolutionSampler
from optuna_nas.samplers import RNNControllerSampler
from optuna_nas.search_spaces import DARTS_V2
from optuna_nas.search_spaces import DartsNetwork
from optuna_nas.search_spaces import DartsSearchSpace
from optuna_nas.search_spaces import MacroArchitecture
from optuna_nas.search_spaces import MacroLayer
from optuna_nas.search_spaces import MacroNetwork
from optuna_nas.search_spaces import MacroSearchSpace
from optuna_nas.search_spaces import NASBench201SearchSpace
from optuna_nas.search_spaces._nasbench201 import NASBench201Network
from optuna_nas.training import ChildModule
from optuna_nas.training import CIFAR10DataModule
from optuna_nas.training import EmbeddedDataModule
from optuna_nas.training import ImageFolderDataModule
from optuna_nas.training import NASObjective


NAN, INF = math.nan, math.inf
#: Bad values of every count (an int with a minimum) and of every real-valued argument.
_ILL_TYPED = ["a", None, [1], True]
_COUNT = [*_ILL_TYPED, 1.5, 2.0, NAN, INF, -1]
_REAL = [*_ILL_TYPED, NAN, INF, -INF, -1.0]
#: For the arguments where ``None`` means "off" or "the default".
_REAL_OR_NONE = [v for v in _REAL if v is not None]
_COUNT_OR_NONE = [v for v in _COUNT if v is not None]
#: Bad seeds (``None`` is added where a seed is required).
_SEED = ["a", 1.5, NAN, INF, -1, 2**32, True]
#: A probability or decay rate in [0, 1).
_UNIT = [*_REAL, 1.0, 1.5]

_CELL = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)


def _tiny_nb201_supernet() -> NB201Supernet:
    return NB201Supernet(num_classes=10, channels=2, cells_per_stage=1)


def _architect_baseline() -> dict[str, Any]:
    supernet = _tiny_nb201_supernet()
    optimizer = torch.optim.SGD(supernet.weight_parameters(), lr=0.1)
    return {"supernet": supernet, "weight_optimizer": optimizer}


def _nb201_bench() -> NB201Benchmark:
    return NB201Benchmark(archs=[_CELL], accuracies=[90.0], hardware={"latency": [1.0]})


@functools.cache
def _image_folder() -> str:
    """Two class folders of two tiny PNGs (listed by the constructor, never read here)."""
    from cli_helpers import make_image_folder

    return str(make_image_folder(Path(tempfile.mkdtemp()) / "images", classes=2, per_class=2))


def _images() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(8, 1, 4, 4), torch.zeros(8, dtype=torch.long)


#: Cheap valid values of the required arguments, per constructor (called once per case).
BASELINES: dict[Callable[..., Any], Callable[[], dict[str, Any]]] = {
    DartsNetwork: lambda: {"genotype": DARTS_V2, "num_classes": 10, "channels": 2, "layers": 3},
    NASBench201Network: lambda: {"cell": _CELL, "num_classes": 10, "channels": 2},
    MacroNetwork: lambda: {"arch": MacroArchitecture((MacroLayer(3, 3, 4),)), "num_classes": 10},
    NB201Objective: lambda: {"bench": _nb201_bench(), "noise_std": 0.0, "seed": 0, "space": None},
    NB201MultiObjective: lambda: {
        "bench": _nb201_bench(),
        "metric": "latency",
        "noise_std": 0.0,
        "seed": 0,
        "space": None,
    },
    # The benchmark is not used before the call; the surrogate files are not needed here.
    NB301Objective: lambda: {"bench": None, "max_epochs": 1, "space": None},
    NASObjective: lambda: {
        "space": NASBench201SearchSpace(),
        "datamodule": EmbeddedDataModule(),
        "max_epochs": 1,
    },
    CIFAR10DataModule: lambda: {"data_dir": "never-read"},
    ChildModule: lambda: {"network": nn.Linear(2, 2), "num_classes": 10},
    DartsDataModule: lambda: {"data": _images()},
    DartsModule: lambda: {"supernet": _tiny_nb201_supernet()},
    DartsSearch: lambda: {"space": NASBench201SearchSpace(), "data": _images()},
    DartsSupernet: lambda: {"num_classes": 10, "channels": 2, "layers": 3},
    NB201Supernet: lambda: {"num_classes": 10, "channels": 2, "cells_per_stage": 1},
    Architect: _architect_baseline,
    EpochSampler: lambda: {"num_samples": 4},
    DeviceTensorLoader: lambda: {"images": _images()[0], "labels": _images()[1], "batch_size": 2},
    Cutout: lambda: {"length": 2},
    ProxyScorer: lambda: {
        "space": NASBench201SearchSpace(),
        "num_classes": 10,
        "in_channels": 3,
        "image_size": 8,
    },
    ImageFolderDataModule: lambda: {"root": _image_folder()},
    RetrainProtocol: lambda: {"epochs": 1, "batch_size": 2},
}


def _build(constructor: Callable[..., Any], **kwargs: Any) -> Any:
    return constructor(**{**BASELINES.get(constructor, dict)(), **kwargs})


# (constructor, argument, bad values); zero is added where the argument must be positive.
CASES: list[tuple[Callable[..., Any], str, list[Any]]] = [
    (RegularizedEvolutionSampler, "population_size", [*_COUNT, 0, 1]),
    (RegularizedEvolutionSampler, "sample_size", [*_COUNT, 0]),
    (RegularizedEvolutionSampler, "max_duplicate_retries", _COUNT),
    (RegularizedEvolutionSampler, "numeric_mutation_scale", [*_REAL_OR_NONE, 0.0]),
    (RegularizedEvolutionSampler, "seed", _SEED),
    (RegularizedEvolutionSampler, "random_mutation_fraction", [*_REAL, 1.5]),
    (RegularizedEvolutionSampler, "max_mutation_candidates", [*_COUNT, 0]),
    (RNNControllerSampler, "seed", _SEED),
    (RNNControllerSampler, "hidden_size", [*_COUNT, 0]),
    (RNNControllerSampler, "num_layers", [*_COUNT, 0]),
    (RNNControllerSampler, "batch_size", [*_COUNT, 0]),
    (RNNControllerSampler, "max_int_choices", _COUNT),
    (RNNControllerSampler, "imitation_top_k", _COUNT),
    (RNNControllerSampler, "max_duplicate_retries", _COUNT),
    (RNNControllerSampler, "learning_rate", [*_REAL, 0.0]),
    (RNNControllerSampler, "temperature", [*_REAL, 0.0]),
    (RNNControllerSampler, "tanh_constant", [*_REAL_OR_NONE, 0.0]),
    (RNNControllerSampler, "entropy_weight", _REAL),
    (RNNControllerSampler, "imitation_weight", _REAL),
    (RNNControllerSampler, "baseline_decay", [*_REAL, 1.0, 1.5]),
    (LearningCurvePruner, "max_resource", ["a", None, 1.5, NAN, INF, -1, 0, True]),
    (LearningCurvePruner, "top_k", [*_COUNT, 0]),
    (LearningCurvePruner, "n_warmup_trials", _COUNT),
    (LearningCurvePruner, "n_warmup_steps", _COUNT),
    (LearningCurvePruner, "interval_steps", [*_COUNT, 0]),
    (LearningCurvePruner, "optimism", _REAL),
    # Search spaces and their networks.
    (DartsSearchSpace, "num_nodes", [*_COUNT, 0]),
    (MacroSearchSpace, "num_layers", [*_COUNT, 0]),
    *[(DartsNetwork, a, [*_COUNT, 0]) for a in ("num_classes", "in_channels", "channels")],
    *[(DartsNetwork, a, [*_COUNT, 0]) for a in ("layers", "stem_multiplier")],
    (DartsNetwork, "drop_path_prob", _UNIT),
    *[(NASBench201Network, a, [*_COUNT, 0]) for a in ("num_classes", "in_channels")],
    *[(NASBench201Network, a, [*_COUNT, 0]) for a in ("channels", "cells_per_stage")],
    *[(MacroNetwork, a, [*_COUNT, 0]) for a in ("num_classes", "in_channels")],
    # Benchmark objectives.
    (NB201Objective, "noise_std", _REAL),
    (NB201Objective, "seed", [*_SEED, None]),
    (NB201MultiObjective, "noise_std", _REAL),
    (NB201MultiObjective, "seed", [*_SEED, None]),
    (NB301Objective, "max_epochs", [*_COUNT, 0, 99]),
    # Child training.
    (NASObjective, "max_epochs", [*_COUNT, 0]),
    (NASObjective, "latency_repeats", [*_COUNT, 0]),
    (NASObjective, "seed", [*_SEED, None]),
    (NASObjective, "keep_weights", _COUNT),
    (ChildModule, "num_classes", [*_COUNT, 0, 1]),
    (ChildModule, "lr", [*_REAL, 0.0]),
    (ChildModule, "lr_min", [*_REAL, 0.2]),  # above lr=0.1
    (ChildModule, "momentum", _UNIT),
    (ChildModule, "weight_decay", _REAL),
    (ChildModule, "label_smoothing", _UNIT),
    (ChildModule, "aux_weight", _REAL),
    (ChildModule, "drop_path_prob", _UNIT),
    (ChildModule, "finite_check_interval", [*_COUNT, 0]),
    # Data modules and loaders.
    *[(dm, "batch_size", [*_COUNT, 0]) for dm in (CIFAR10DataModule, EmbeddedDataModule)],
    *[
        (dm, "eval_batch_size", [*_COUNT_OR_NONE, 0])
        for dm in (CIFAR10DataModule, EmbeddedDataModule)
    ],
    *[(dm, "num_workers", _COUNT_OR_NONE) for dm in (CIFAR10DataModule, EmbeddedDataModule)],
    *[(dm, "seed", [*_SEED, None]) for dm in (CIFAR10DataModule, EmbeddedDataModule)],
    *[(dm, "val_fraction", [*_REAL, 0.0, 1.0]) for dm in (CIFAR10DataModule, EmbeddedDataModule)],
    (ImageFolderDataModule, "batch_size", [*_COUNT, 0]),
    (ImageFolderDataModule, "eval_batch_size", [*_COUNT_OR_NONE, 0]),
    (ImageFolderDataModule, "num_workers", _COUNT_OR_NONE),
    (ImageFolderDataModule, "seed", [*_SEED, None]),
    (ImageFolderDataModule, "image_size", [*_COUNT, 0, 3]),
    (ImageFolderDataModule, "val_fraction", [*_REAL, 0.0, 1.0]),
    (ImageFolderDataModule, "test_fraction", [*_REAL, 1.0]),
    (ImageFolderDataModule, "subset", [*_COUNT_OR_NONE, 0, 3]),
    (CIFAR10DataModule, "subset", [*_COUNT_OR_NONE, 0, 1]),
    (EmbeddedDataModule, "subset", [*_COUNT_OR_NONE, 0, 19]),
    (EmbeddedDataModule, "test_fraction", [*_REAL, 1.0]),
    (EmbeddedDataModule, "image_size", [*_COUNT_OR_NONE, 0, 3]),
    (NASDashboardCallback, "plot_every", [*_COUNT, 0]),
    # Zero-cost proxies.
    *[(ProxyScorer, a, [*_COUNT, 0]) for a in ("num_classes", "in_channels", "image_size")],
    (ProxyScorer, "seed", _SEED),
    (JacobCov, "k", [*_REAL, 0.0]),
    (RandomCropFlip, "padding", _COUNT),
    (Cutout, "length", _COUNT),
    # Cutout's square must fit the image (CIFAR-10: 32; EmbeddedDataModule: MNIST's 28).
    (CIFAR10DataModule, "cutout", [*_COUNT, 32]),
    (EmbeddedDataModule, "cutout", [*_COUNT, 28]),
    # Retraining protocols.
    *[(RetrainProtocol, a, [*_COUNT, 0]) for a in ("epochs", "batch_size")],
    (RetrainProtocol, "lr", [*_REAL, 0.0]),
    (RetrainProtocol, "lr_min", [*_REAL, 0.2]),  # above lr=0.1
    (RetrainProtocol, "momentum", _UNIT),
    (RetrainProtocol, "weight_decay", _REAL),
    (RetrainProtocol, "cutout", _COUNT),
    (RetrainProtocol, "drop_path_prob", _UNIT),
    (RetrainProtocol, "label_smoothing", _UNIT),
    (RetrainProtocol, "aux_weight", _REAL),
    (RetrainProtocol, "gradient_clip_val", [*_REAL_OR_NONE, 0.0]),
    (RandomCropFlip, "fill", ["a", None, True, NAN, INF, -INF]),
    (EpochSampler, "num_samples", [*_COUNT, 0]),
    (EpochSampler, "seed", [*_SEED, None]),
    (DeviceTensorLoader, "batch_size", [*_COUNT, 0]),
    (DeviceTensorLoader, "seed", [*_SEED, None]),
    (DeviceTensorLoader, "stream", _COUNT),
    (DeviceTensorLoader, "world_size", [*_COUNT, 0]),
    (DeviceTensorLoader, "rank", [*_COUNT, 1]),  # not below world_size=1
    # DARTS.
    (DartsDataModule, "batch_size", [*_COUNT, 0]),
    (DartsDataModule, "train_portion", [*_REAL, 0.0, 1.0]),
    (DartsDataModule, "seed", [*_SEED, None]),
    (DartsDataModule, "num_classes", [*_COUNT_OR_NONE, 0]),
    (DartsModule, "max_epochs", [*_COUNT_OR_NONE, 0]),
    (DartsModule, "lr", [*_REAL, 0.0]),
    (DartsModule, "lr_min", [*_REAL, 0.5]),  # above lr=0.025
    (DartsModule, "momentum", _UNIT),
    (DartsModule, "weight_decay", _REAL),
    (DartsModule, "grad_clip", [*_REAL_OR_NONE, 0.0]),
    (DartsModule, "arch_lr", [*_REAL, 0.0]),
    (DartsModule, "arch_betas", ["a", None, 0.5, (0.5,), (0.5, 0.9, 0.9)]),
    (DartsModule, "arch_weight_decay", _REAL),
    (DartsModule, "finite_check_interval", [*_COUNT, 0]),
    (DartsSearch, "max_epochs", [*_COUNT, 0]),
    (DartsSearch, "batch_size", [*_COUNT, 0]),
    (DartsSearch, "early_stop_skip_connections", [*_COUNT_OR_NONE, 0]),
    (DartsSearch, "seed", _SEED),
    (SkipConnectionEarlyStopping, "max_skip_connections", [*_COUNT, 0]),
    *[(DartsSupernet, a, [*_COUNT, 0]) for a in ("num_classes", "in_channels", "layers")],
    *[(DartsSupernet, a, [*_COUNT, 0]) for a in ("steps", "multiplier", "stem_multiplier")],
    (DartsSupernet, "channels", [*_COUNT, 0, 3]),  # odd: the factorized reduction halves it
    (DartsSupernet, "alpha_init_std", _REAL),
    *[(NB201Supernet, a, [*_COUNT, 0]) for a in ("num_classes", "in_channels", "cells_per_stage")],
    (NB201Supernet, "channels", [*_COUNT, 0, 3]),
    (NB201Supernet, "alpha_init_std", _REAL),
    (Architect, "eps_scale", [*_REAL, 0.0]),
]

_WRAP_ONE: Callable[[Any], Any] = lambda v: (v,)  # noqa: E731
#: Arguments holding numbers: (constructor, argument, how to hold one bad element, bad elements).
ELEMENT_CASES: list[tuple[Callable[..., Any], str, Callable[[Any], Any], list[Any]]] = [
    (MacroSearchSpace, "filter_sizes", _WRAP_ONE, [*_COUNT, 0, 2]),  # 2: kernels are odd
    (MacroSearchSpace, "num_filters", _WRAP_ONE, [*_COUNT, 0]),
    (MacroSearchSpace, "pool_after", _WRAP_ONE, [*_COUNT, 5]),  # 5: not before the last layer
    (DartsModule, "arch_betas", lambda v: (v, 0.999), _UNIT),
    (DartsModule, "arch_betas", lambda v: (0.5, v), _UNIT),
    (RandomCropFlip, "fill", lambda v: (0.0, v), ["a", None, True, NAN, INF, -INF]),
    *[(proxy, "input_shape", lambda v: (3, v, 8), [*_COUNT, 0]) for proxy in (SynFlow, Flops)],
]


@pytest.mark.parametrize(
    ("constructor", "argument", "value"),
    [(c, a, v) for c, a, values in CASES for v in values],
    ids=[f"{c.__name__}-{a}={v!r}" for c, a, values in CASES for v in values],
)
def test_bad_value_raises_naming_the_argument(
    constructor: Callable[..., Any], argument: str, value: Any
) -> None:
    with pytest.raises(ValueError, match=rf"\b{argument}\b") as info:
        _build(constructor, **{argument: value})
    assert repr(value) in str(info.value) or str(value) in str(info.value)


@pytest.mark.parametrize(
    ("constructor", "argument", "wrap", "element"),
    [(c, a, w, v) for c, a, w, values in ELEMENT_CASES for v in values],
    ids=[f"{c.__name__}-{a}[{v!r}]" for c, a, _, values in ELEMENT_CASES for v in values],
)
def test_bad_element_raises_naming_the_argument(
    constructor: Callable[..., Any], argument: str, wrap: Callable[[Any], Any], element: Any
) -> None:
    with pytest.raises(ValueError, match=rf"\b{argument}\b") as info:
        _build(constructor, **{argument: wrap(element)})
    assert repr(element) in str(info.value) or str(element) in str(info.value)


#: Valid values, the edges of the ranges and NumPy scalars included, that must be accepted.
ACCEPTED: list[tuple[Callable[..., Any], dict[str, Any]]] = [
    (DartsSearchSpace, {"num_nodes": np.int64(2)}),
    (MacroSearchSpace, {"num_layers": np.int64(3), "filter_sizes": [np.int64(3)]}),
    (DartsNetwork, {"channels": np.int64(2), "layers": np.int32(3), "drop_path_prob": 0.0}),
    (NASBench201Network, {"num_classes": np.int64(2), "cells_per_stage": np.int64(1)}),
    (MacroNetwork, {"num_classes": np.int64(1), "in_channels": np.int64(1)}),
    (NB201Objective, {"noise_std": np.float32(0.5), "seed": np.int64(2**32 - 1)}),
    (NB301Objective, {"max_epochs": np.int64(98)}),
    (NASObjective, {"max_epochs": np.int64(1), "latency_repeats": 1, "seed": 0}),
    (ChildModule, {"num_classes": 2, "lr": 1e-3, "lr_min": 1e-3, "momentum": 0.0}),
    (ChildModule, {"weight_decay": 0.0, "aux_weight": 0.0, "finite_check_interval": 1}),
    (CIFAR10DataModule, {"batch_size": np.int64(1), "num_workers": 0, "subset": 2}),
    (CIFAR10DataModule, {"val_fraction": np.float64(0.1), "eval_batch_size": None}),
    (EmbeddedDataModule, {"subset": 20, "image_size": 4, "test_fraction": 0.0}),
    (EmbeddedDataModule, {"val_fraction": 0.5, "test_fraction": 0.4, "seed": 2**32 - 1}),
    (RandomCropFlip, {"padding": 0, "fill": (np.float32(-1.0), 0.5)}),
    (EpochSampler, {"num_samples": np.int64(1), "seed": 0}),
    (DeviceTensorLoader, {"batch_size": np.int64(8), "rank": 1, "world_size": 2, "stream": 0}),
    (DartsDataModule, {"batch_size": 1, "train_portion": 0.25, "num_classes": 1}),
    (DartsModule, {"max_epochs": None, "grad_clip": None, "arch_betas": [0.0, 0.5]}),
    (DartsModule, {"max_epochs": np.int64(1), "momentum": 0.0, "weight_decay": 0.0}),
    (DartsSearch, {"seed": None, "early_stop_skip_connections": 1}),
    (SkipConnectionEarlyStopping, {"max_skip_connections": np.int64(1)}),
    (DartsSupernet, {"steps": 2, "multiplier": np.int64(2), "alpha_init_std": 0.0}),
    (NB201Supernet, {"channels": np.int64(2), "alpha_init_std": 0.0}),
    (Architect, {"eps_scale": 1e-6}),
]


@pytest.mark.parametrize(
    ("constructor", "kwargs"), ACCEPTED, ids=[c.__name__ for c, _ in ACCEPTED]
)
def test_valid_values_are_accepted(
    constructor: Callable[..., Any], kwargs: dict[str, Any]
) -> None:
    _build(constructor, **kwargs)


def test_embedded_fractions_must_leave_a_training_part() -> None:
    with pytest.raises(ValueError, match="val_fraction \\+ test_fraction must be < 1"):
        EmbeddedDataModule(val_fraction=0.5, test_fraction=0.5)


@pytest.mark.parametrize("constructor", [RegularizedEvolutionSampler, RNNControllerSampler])
def test_the_edges_of_the_valid_ranges_are_accepted(constructor: Callable[..., Any]) -> None:
    constructor(seed=0)
    constructor(seed=2**32 - 1)
    constructor(seed=None, max_duplicate_retries=0)


def test_pruner_edges_are_accepted() -> None:
    LearningCurvePruner(max_resource=1, top_k=1, n_warmup_trials=0, optimism=0.0)
    LearningCurvePruner(max_resource="auto", interval_steps=1, n_warmup_steps=0)
