"""Search spaces: architecture as data, suggested define-by-run, built into ``nn.Module``s."""

from optuna_nas.search_spaces._base import CellGraph
from optuna_nas.search_spaces._base import Decision
from optuna_nas.search_spaces._base import SearchSpace
from optuna_nas.search_spaces._darts import AMOEBANET_A
from optuna_nas.search_spaces._darts import DARTS_V1
from optuna_nas.search_spaces._darts import DARTS_V2
from optuna_nas.search_spaces._darts import ENAS
from optuna_nas.search_spaces._darts import NASNET_A
from optuna_nas.search_spaces._darts import PRIMITIVES
from optuna_nas.search_spaces._darts import DartsNetwork
from optuna_nas.search_spaces._darts import DartsSearchSpace
from optuna_nas.search_spaces._darts import Genotype
from optuna_nas.search_spaces._darts import parse_genotype
from optuna_nas.search_spaces._macro import MacroArchitecture
from optuna_nas.search_spaces._macro import MacroLayer
from optuna_nas.search_spaces._macro import MacroNetwork
from optuna_nas.search_spaces._macro import MacroSearchSpace
from optuna_nas.search_spaces._nasbench201 import NB201_OPERATIONS
from optuna_nas.search_spaces._nasbench201 import NASBench201SearchSpace
from optuna_nas.search_spaces._nasbench201 import NB201Cell
from optuna_nas.search_spaces._ops import DARTS_OPS
from optuna_nas.search_spaces._ops import NB201_OPS
from optuna_nas.search_spaces._registry import create_search_space
from optuna_nas.search_spaces._registry import list_search_spaces
from optuna_nas.search_spaces._registry import register_search_space
from optuna_nas.trial_outcome import InvalidArchitectureError


__all__ = [
    "AMOEBANET_A",
    "CellGraph",
    "DARTS_OPS",
    "DARTS_V1",
    "DARTS_V2",
    "DartsNetwork",
    "DartsSearchSpace",
    "Decision",
    "ENAS",
    "Genotype",
    "InvalidArchitectureError",
    "MacroArchitecture",
    "MacroLayer",
    "MacroNetwork",
    "MacroSearchSpace",
    "NASBench201SearchSpace",
    "NASNET_A",
    "NB201Cell",
    "NB201_OPERATIONS",
    "NB201_OPS",
    "PRIMITIVES",
    "SearchSpace",
    "create_search_space",
    "list_search_spaces",
    "parse_genotype",
    "register_search_space",
]
