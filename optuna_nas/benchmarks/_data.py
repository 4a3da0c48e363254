"""Where the benchmark data lives: an explicit path, else ``$OPTUNA_NAS_DATA``."""

from __future__ import annotations

import os
from pathlib import Path


#: Environment variable naming the folder that holds ``nasbench201/`` and ``nasbench301/``.
DATA_ENV_VAR = "OPTUNA_NAS_DATA"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Find the benchmark data folder.

    The folder holds ``nasbench201/`` (``cifar10.csv``, ``hardware.csv``) and ``nasbench301/``
    (``model.onnx``, ``encoding.json``, ``config_space.json``). The library has no default
    location: the folder is ``data_dir``, else the environment variable ``$OPTUNA_NAS_DATA``.

    Args:
        data_dir: The folder. If ``None``, ``$OPTUNA_NAS_DATA`` is used.

    Returns:
        The folder, as an absolute path.

    Raises:
        FileNotFoundError: No folder was given and ``$OPTUNA_NAS_DATA`` is not set, or the
            folder does not exist; the message names it and says how to point at the data.
    """
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV_VAR) or None
        if data_dir is None:
            raise FileNotFoundError(
                "No benchmark data folder: pass data_dir=... or set the environment variable "
                f"{DATA_ENV_VAR} to the folder holding nasbench201/ and nasbench301/."
            )
        source = f" (from ${DATA_ENV_VAR})"
    else:
        source = ""
    path = Path(data_dir).expanduser().resolve()
    if not path.is_dir():
        raise FileNotFoundError(
            f"Benchmark data folder {str(path)!r}{source} does not exist; pass data_dir=... or "
            f"set {DATA_ENV_VAR} to the folder holding nasbench201/ and nasbench301/."
        )
    return path
