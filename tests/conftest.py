"""Test-session defaults: the benchmark data of a source checkout.

The library finds its data through ``$OPTUNA_NAS_DATA`` only. In a checkout the data sits
beside the repository (``<repo>/../shared/data``): when the variable is unset and that folder
exists, the session points the variable at it (subprocesses inherit it). Tests that need the
data skip when it is absent (the ``data_dir`` fixture, or ``FileNotFoundError`` from the
loaders).
"""

from __future__ import annotations

import os
from pathlib import Path

from _common import CHECKOUT_DATA_DIR  # benchmarks/ is on pyproject's pythonpath
from postgres import postgres_db_url  # noqa: F401  (PostgreSQL fixtures, tests/helpers/)
from postgres import postgres_server  # noqa: F401
from postgres import postgres_url  # noqa: F401
import pytest

from optuna_nas.benchmarks import DATA_ENV_VAR
from optuna_nas.benchmarks import resolve_data_dir


if not os.environ.get(DATA_ENV_VAR) and CHECKOUT_DATA_DIR.is_dir():
    os.environ[DATA_ENV_VAR] = str(CHECKOUT_DATA_DIR)


@pytest.fixture
def data_dir() -> Path:
    """The benchmark data folder; skips the test when there is none."""
    try:
        return resolve_data_dir()
    except FileNotFoundError as error:
        pytest.skip(str(error))
