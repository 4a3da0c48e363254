from optuna_nas.estimators import list_proxies
from optuna_nas.estimators import ProxyScorer
from optuna_nas.samplers import RegularizedEvolutionSampler
from optuna_nas.samplers import warm_start
from optuna_nas.samplers import WarmStartCandidate
from optuna_nas.samplers import WarmStartResult
from optuna_nas.search_spaces import create_search_space


__all__ = [
    "ProxyScorer",
    "RegularizedEvolutionSampler",
    "WarmStartCandidate",
    "WarmStartResult",
    "create_search_space",
    "list_proxies",
    "warm_start",
]
