"""The light subpackages must not import Lightning, optuna-integration or the training stack."""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys

import pytest


# Top-level module names (and optuna_nas subpackages) that only training and DARTS may import.
HEAVY = (
    "lightning",
    "lightning_fabric",
    "pytorch_lightning",
    "optuna_integration",
    "optuna_nas.training",
    "optuna_nas.darts",
)

LIGHT = [
    "optuna_nas",
    "optuna_nas.samplers",
    "optuna_nas.search_spaces",
    "optuna_nas.pruners",
    "optuna_nas.benchmarks",
    "optuna_nas.visualization",
    "optuna_nas.export",
    "optuna_nas.estimators",
]

_PROBE = """
import json, sys
import {module}
heavy = {heavy!r}
print(json.dumps(sorted(
    name for name in sys.modules
    if any(name == h or name.startswith(h + ".") for h in heavy)
)))
"""


def _imported_heavy_modules(module: str, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    # A fresh interpreter per module: this test process has imported everything already.
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, "-c", _PROBE.format(module=module, heavy=heavy)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", LIGHT)
def test_light_subpackage_does_not_import_training_stack(module: str) -> None:
    assert _imported_heavy_modules(module) == []


def test_samplers_need_only_optuna_numpy_and_torch() -> None:
    # A user with a tabular objective pays for no search space, vision or plotting stack.
    others = ("torchvision", "matplotlib", "scipy", "sklearn", "optuna_nas.search_spaces")
    assert _imported_heavy_modules("optuna_nas.samplers", HEAVY + others) == []


def test_lazy_top_level_names_resolve() -> None:
    import optuna_nas

    for name in optuna_nas.__all__:
        assert getattr(optuna_nas, name) is not None, name
    assert set(optuna_nas.__all__) <= set(dir(optuna_nas))
    with pytest.raises(AttributeError, match="no_such_name"):
        optuna_nas.no_such_name  # noqa: B018


def test_training_import_still_brings_lightning() -> None:
    # The probe itself works: the heavy stack is seen when it is imported.
    assert "lightning" in _imported_heavy_modules("optuna_nas.training")


@pytest.mark.parametrize("module", ["optuna_nas.search_spaces", "optuna_nas.benchmarks"])
def test_spaces_and_benchmarks_need_no_vision_or_plotting_stack(module: str) -> None:
    others = ("torchvision", "matplotlib", "scipy", "sklearn", "mlxtend")
    assert _imported_heavy_modules(module, HEAVY + others) == []
