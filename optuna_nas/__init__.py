"""optuna-nas: Neural Architecture Search for Optuna.

A NAS run is an ordinary Optuna study: a search space suggests an architecture through
``trial.suggest_categorical`` calls, :class:`NASObjective` builds and trains it with Lightning,
and NAS samplers (:mod:`optuna_nas.samplers`) and pruners (:mod:`optuna_nas.pruners`) steer
the search.

The names below are imported on first use (PEP 562), so that ``import optuna_nas.samplers``
(or ``.search_spaces``, ``.pruners``, ``.benchmarks``, ``.visualization``, ``.export``,
``.estimators``) does not pull in Lightning and the training stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING
from typing import Any


if TYPE_CHECKING:
    from optuna_nas import estimators
    from optuna_nas import search_spaces
    from optuna_nas import storages
    from optuna_nas import training
    from optuna_nas.export import ExportedArchitecture
    from optuna_nas.export import export_trial
    from optuna_nas.export import load_architecture
    from optuna_nas.export import load_model
    from optuna_nas.search_spaces import SearchSpace
    from optuna_nas.search_spaces import create_search_space
    from optuna_nas.search_spaces import list_search_spaces
    from optuna_nas.storages import create_storage
    from optuna_nas.training import ChildModule
    from optuna_nas.training import CIFAR10DataModule
    from optuna_nas.training import EmbeddedDataModule
    from optuna_nas.training import NASObjective
    from optuna_nas.trial_outcome import InvalidArchitectureError
    from optuna_nas.trial_outcome import NonFiniteError


__version__ = "0.1.0"

__all__ = [
    "CIFAR10DataModule",
    "ChildModule",
    "EmbeddedDataModule",
    "ExportedArchitecture",
    "InvalidArchitectureError",
    "NASObjective",
    "NonFiniteError",
    "SearchSpace",
    "__version__",
    "create_search_space",
    "create_storage",
    "estimators",
    "export_trial",
    "list_search_spaces",
    "load_architecture",
    "load_model",
    "search_spaces",
    "storages",
    "training",
]

# Public name -> the module that defines it (a subpackage itself when the name is one).
_LAZY = {
    "CIFAR10DataModule": "optuna_nas.training",
    "ChildModule": "optuna_nas.training",
    "EmbeddedDataModule": "optuna_nas.training",
    "ExportedArchitecture": "optuna_nas.export",
    "InvalidArchitectureError": "optuna_nas.trial_outcome",
    "NASObjective": "optuna_nas.training",
    "NonFiniteError": "optuna_nas.trial_outcome",
    "SearchSpace": "optuna_nas.search_spaces",
    "create_search_space": "optuna_nas.search_spaces",
    "create_storage": "optuna_nas.storages",
    "estimators": "optuna_nas.estimators",
    "export_trial": "optuna_nas.export",
    "list_search_spaces": "optuna_nas.search_spaces",
    "load_architecture": "optuna_nas.export",
    "load_model": "optuna_nas.export",
    "search_spaces": "optuna_nas.search_spaces",
    "storages": "optuna_nas.storages",
    "training": "optuna_nas.training",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if module_name == f"{__name__}.{name}" else getattr(module, name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
