"""Training-free performance estimation: zero-cost proxies of untrained networks.

A proxy (:func:`create_proxy`, :func:`list_proxies`) scores one network from at most one
batch: ``synflow``, ``snip``, ``grad_norm``, ``grasp``, ``fisher``, ``jacob_cov``, ``naswot``,
``params`` and ``flops``. :class:`ProxyScorer` scores architectures of a search space, each
built with an initialisation derived from the architecture, and is a ``Callable[[arch], float]``
for warm-starts and training-free objectives; :func:`vote` combines proxies by rank.
"""

from optuna_nas.estimators._base import Proxy
from optuna_nas.estimators._proxies import NASWOT
from optuna_nas.estimators._proxies import Fisher
from optuna_nas.estimators._proxies import Flops
from optuna_nas.estimators._proxies import GradNorm
from optuna_nas.estimators._proxies import Grasp
from optuna_nas.estimators._proxies import JacobCov
from optuna_nas.estimators._proxies import Params
from optuna_nas.estimators._proxies import Snip
from optuna_nas.estimators._proxies import SynFlow
from optuna_nas.estimators._registry import create_proxy
from optuna_nas.estimators._registry import list_proxies
from optuna_nas.estimators._registry import register_proxy
from optuna_nas.estimators._scorer import ProxyScorer
from optuna_nas.estimators._scorer import vote


__all__ = [
    "NASWOT",
    "Fisher",
    "Flops",
    "GradNorm",
    "Grasp",
    "JacobCov",
    "Params",
    "Proxy",
    "ProxyScorer",
    "Snip",
    "SynFlow",
    "create_proxy",
    "list_proxies",
    "register_proxy",
    "vote",
]
