"""optuna-nas: Neural Architecture Search for Optuna.

A NAS run is an ordinary Optuna study: a search space suggests an architecture through
``trial.suggest_categorical`` calls, :class:`NASObjective` builds and trains it with Lightning,
and NAS samplers (:mod:`optuna_nas.samplers`) and pruners (:mod:`optuna_nas.pruners`) steer
the search.
"""

from optuna_nas import search_spaces
from optuna_nas import training
from optuna_nas.search_spaces import SearchSpace
from optuna_nas.search_spaces import create_search_space
from optuna_nas.search_spaces import list_search_spaces
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
    "InvalidArchitectureError",
    "NASObjective",
    "NonFiniteError",
    "SearchSpace",
    "__version__",
    "create_search_space",
    "list_search_spaces",
    "search_spaces",
    "training",
]
