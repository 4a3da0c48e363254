"""Regularized evolution with learning-curve pruning on the NAS-Bench-301 surrogate.

The surrogate's files (``model.onnx``, ``encoding.json``, ``config_space.json``, from
NAS-Bench-301 through YAHPO Gym) must lie in ``<data_dir>/nasbench301/``: pass ``data_dir`` as
the first argument or set ``OPTUNA_NAS_DATA``.

Environment variables (optional): ``N_TRIALS`` sets the budget (default 100), ``MAX_EPOCHS``
the epochs of a full run (default 98); ``OPTUNAHUB_REGISTRY_ROOT`` loads the packages from a
local copy of the registry's ``package/`` folder instead of from OptunaHub (how the optuna-nas
tests run this file).
"""

from __future__ import annotations

import os
import sys
from types import ModuleType

import optuna
import optunahub


def load_package(package: str) -> ModuleType:
    registry_root = os.environ.get("OPTUNAHUB_REGISTRY_ROOT")
    if registry_root:
        return optunahub.load_local_module(package=package, registry_root=registry_root)
    return optunahub.load_module(package=package)


def main(n_trials: int, max_epochs: int, data_dir: str | None, seed: int = 0) -> optuna.Study:
    problem = load_package("benchmarks/nasbench301").Problem(
        max_epochs=max_epochs, data_dir=data_dir
    )
    sampler = load_package("samplers/regularized_evolution").RegularizedEvolutionSampler(seed=seed)
    pruner = load_package("pruners/learning_curve").LearningCurvePruner(max_resource=max_epochs)
    study = optuna.create_study(directions=problem.directions, sampler=sampler, pruner=pruner)
    study.optimize(problem, n_trials=n_trials)
    return study


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = main(
        n_trials=int(os.environ.get("N_TRIALS", "100")),
        max_epochs=int(os.environ.get("MAX_EPOCHS", "98")),
        data_dir=sys.argv[1] if len(sys.argv) > 1 else None,
    )
    pruned = study.get_trials(states=(optuna.trial.TrialState.PRUNED,))
    print(f"best accuracy {study.best_value:.2f}% ({len(pruned)} of {len(study.trials)} pruned)")
    print(study.best_trial.user_attrs["arch"])
