"""One-shot NAS with DARTS (Liu et al., ICLR 2019) for the ``darts`` and ``nasbench201`` spaces.

A supernet relaxes every edge into a softmax-weighted :class:`MixedOp`; :class:`DartsModule`
trains weights and architecture parameters alternately (first or second order);
:class:`DartsSearch` runs the search as one Optuna trial and enqueues the derived architecture
in the same study for re-training.
"""

from optuna_nas.darts._architect import Architect
from optuna_nas.darts._architect import finite_difference_hvp
from optuna_nas.darts._data import DartsDataModule
from optuna_nas.darts._derive import count_skip_connections
from optuna_nas.darts._derive import derive_darts_genotype
from optuna_nas.darts._derive import derive_nb201_cell
from optuna_nas.darts._mixed_op import MixedOp
from optuna_nas.darts._module import DartsModule
from optuna_nas.darts._module import cosine_lr
from optuna_nas.darts._search import DartsSearch
from optuna_nas.darts._search import DartsSearchResult
from optuna_nas.darts._search import DartsTrialRecorder
from optuna_nas.darts._search import SkipConnectionEarlyStopping
from optuna_nas.darts._supernet import DartsSupernet
from optuna_nas.darts._supernet import NB201Supernet
from optuna_nas.darts._supernet import Supernet
from optuna_nas.darts._supernet import create_supernet
from optuna_nas.trial_outcome import NonFiniteError


__all__ = [
    "Architect",
    "DartsDataModule",
    "DartsModule",
    "DartsSearch",
    "DartsSearchResult",
    "DartsSupernet",
    "DartsTrialRecorder",
    "MixedOp",
    "NB201Supernet",
    "NonFiniteError",
    "SkipConnectionEarlyStopping",
    "Supernet",
    "count_skip_connections",
    "cosine_lr",
    "create_supernet",
    "derive_darts_genotype",
    "derive_nb201_cell",
    "finite_difference_hvp",
]
