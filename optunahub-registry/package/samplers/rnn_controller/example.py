"""An LSTM controller trained by REINFORCE on a define-by-run architecture space.

The objective is a stand-in for "train the network, return its validation accuracy": a cheap
function of the architecture, so that the example runs in seconds. Replace it with real
training (or with an optuna-nas benchmark) to search for real.

Environment variables (both optional): ``N_TRIALS`` sets the budget (default 200);
``OPTUNAHUB_REGISTRY_ROOT`` loads the package from a local copy of the registry's ``package/``
folder instead of from OptunaHub (how the optuna-nas tests run this file).
"""

from __future__ import annotations

import math
import os
from types import ModuleType

import optuna
import optunahub


PACKAGE = "samplers/rnn_controller"
OPERATIONS = ["conv3x3", "conv1x1", "max_pool", "skip"]
GAIN = {"conv3x3": 1.0, "conv1x1": 0.7, "max_pool": 0.3, "skip": 0.1}


def load_package() -> ModuleType:
    registry_root = os.environ.get("OPTUNAHUB_REGISTRY_ROOT")
    if registry_root:
        return optunahub.load_local_module(package=PACKAGE, registry_root=registry_root)
    return optunahub.load_module(package=PACKAGE)


def objective(trial: optuna.Trial) -> float:
    # Each categorical (and each int with at most 16 values) is one step of the controller;
    # the float learning rate goes to the independent sampler.
    n_layers = trial.suggest_int("n_layers", 1, 12)
    score = 0.0
    for i in range(n_layers):
        operation = trial.suggest_categorical(f"layer{i}/op", OPERATIONS)
        score += GAIN[operation] / math.sqrt(i + 1)
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    return score - 0.35 * n_layers - (math.log10(lr) + 2.5) ** 2


def main(n_trials: int, seed: int = 0) -> optuna.Study:
    package = load_package()
    sampler = package.RNNControllerSampler(seed=seed, batch_size=4, hidden_size=32)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=n_trials)
    return study


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = main(int(os.environ.get("N_TRIALS", "200")))
    log_prob = study.best_trial.user_attrs["rnn_controller:log_prob"]
    print(f"best value {study.best_value:.4f} with {study.best_params}")
    print(
        f"{len(study.trials)} trials; log-probability of the best trial's decisions {log_prob:.2f}"
    )
