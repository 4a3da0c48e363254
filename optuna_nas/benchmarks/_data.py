"""Where the benchmark data lives: an explicit path, ``$OPTUNA_NAS_DATA`` or a default."""

from __future__ import annotations

import os
from pathlib import Path


#: Environment variable naming the folder that holds ``nasbench201/`` and ``nasbench301/``.
DATA_ENV_VAR = "OPTUNA_NAS_DATA"

# A source checkout keeps the data beside the repository (``<repo>/../shared/data``).
_DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Find the benchmark data folder.

    The folder holds ``nasbench201/`` (``cifar10.csv``, ``hardware.csv``) and ``nasbench301/``
    (``model.onnx``, ``encoding.json``, ``config_space.json``).

    Args:
        data_dir: The folder. If ``None``, ``$OPTUNA_NAS_DATA`` is used, then
            ``<repo>/../shared/data`` when it exists.

    Returns:
        The folder, as an absolute path.

    Raises:
        FileNotFoundError: No folder was given and none of the defaults exists, or the given
            folder does not exist.
    """
    if data_dir is None:
        env = os.environ.get(DATA_ENV_VAR)
        if env:
            data_dir = env
        elif _DEFAULT_DATA_DIR.is_dir():
            return _DEFAULT_DATA_DIR
        else:
            raise FileNotFoundError(
                "No benchmark data folder: pass data_dir=... or set "
                f"${DATA_ENV_VAR} to the folder holding nasbench201/ and nasbench301/ "
                f"(default {str(_DEFAULT_DATA_DIR)!r} does not exist)."
            )
    path = Path(data_dir).expanduser().resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"Benchmark data folder {str(path)!r} does not exist.")
    return path
