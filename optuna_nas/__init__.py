"""optuna-nas: Neural Architecture Search for Optuna."""

from optuna_nas import search_spaces
from optuna_nas.search_spaces import create_search_space
from optuna_nas.search_spaces import list_search_spaces
from optuna_nas.search_spaces import SearchSpace


__version__ = "0.1.0"

__all__ = [
    "SearchSpace",
    "__version__",
    "create_search_space",
    "list_search_spaces",
    "search_spaces",
]
