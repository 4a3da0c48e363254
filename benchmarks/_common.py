"""What the benchmark scripts share: the data folder of a source checkout, the sampler factory.

The scripts run from a checkout (``python benchmarks/<script>.py``), where the benchmark data
sits beside the repository in ``../shared/data``. The library has no default location
(:func:`optuna_nas.benchmarks.resolve_data_dir`: an explicit folder, else
``$OPTUNA_NAS_DATA``); this module adds the checkout's default, for the scripts only.
"""

from __future__ import annotations

import os
from pathlib import Path

from optuna_nas.benchmarks import DATA_ENV_VAR
from optuna_nas.benchmarks import resolve_data_dir
from optuna_nas.samplers import create_sampler
from optuna_nas.samplers import list_samplers


__all__ = ["CHECKOUT_DATA_DIR", "create_sampler", "data_dir", "list_samplers"]

#: The data folder of a source checkout: ``<repo>/../shared/data``.
CHECKOUT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def data_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The benchmark data folder: ``path``, else ``$OPTUNA_NAS_DATA``, else the checkout's.

    Raises:
        FileNotFoundError: None of them exists (the message says how to point at the data).
    """
    if path is None and not os.environ.get(DATA_ENV_VAR) and CHECKOUT_DATA_DIR.is_dir():
        path = CHECKOUT_DATA_DIR
    return resolve_data_dir(path)
