"""NAS search strategies as Optuna samplers."""

from optuna_nas.samplers._evolution import RegularizedEvolutionSampler
from optuna_nas.samplers._factory import create_sampler
from optuna_nas.samplers._factory import list_samplers
from optuna_nas.samplers._rnn_controller import RNNControllerSampler
from optuna_nas.samplers._warm_start import WarmStartCandidate
from optuna_nas.samplers._warm_start import WarmStartResult
from optuna_nas.samplers._warm_start import warm_start


__all__ = [
    "RNNControllerSampler",
    "RegularizedEvolutionSampler",
    "WarmStartCandidate",
    "WarmStartResult",
    "create_sampler",
    "list_samplers",
    "warm_start",
]
