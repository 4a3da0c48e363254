"""NAS search strategies as Optuna samplers."""

from optuna_nas.samplers._evolution import RegularizedEvolutionSampler
from optuna_nas.samplers._factory import create_sampler
from optuna_nas.samplers._factory import list_samplers
from optuna_nas.samplers._rnn_controller import RNNControllerSampler


__all__ = [
    "RNNControllerSampler",
    "RegularizedEvolutionSampler",
    "create_sampler",
    "list_samplers",
]
