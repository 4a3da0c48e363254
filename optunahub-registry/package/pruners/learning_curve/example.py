"""Learning-curve pruning of synthetic training runs.

Each trial "trains" for up to 30 epochs along a saturating curve whose rate and ceiling depend
on its hyperparameters, reporting the accuracy after every epoch; the pruner stops a run once
even an optimistic extrapolation of its curve cannot reach the study's top-k. Replace the
curve with real training to prune for real.

Environment variables (both optional): ``N_TRIALS`` sets the budget (default 100);
``OPTUNAHUB_REGISTRY_ROOT`` loads the package from a local copy of the registry's ``package/``
folder instead of from OptunaHub (how the optuna-nas tests run this file).
"""

from __future__ import annotations

import os
from types import ModuleType

import optuna
import optunahub


PACKAGE = "pruners/learning_curve"
MAX_EPOCHS = 30


def load_package() -> ModuleType:
    registry_root = os.environ.get("OPTUNAHUB_REGISTRY_ROOT")
    if registry_root:
        return optunahub.load_local_module(package=PACKAGE, registry_root=registry_root)
    return optunahub.load_module(package=PACKAGE)


def objective(trial: optuna.Trial) -> float:
    rate = trial.suggest_float("rate", 0.05, 1.0)
    ceiling = trial.suggest_float("ceiling", 0.6, 0.95)
    accuracy = 0.0
    for epoch in range(MAX_EPOCHS):  # 0-based epochs: step t holds the value after t + 1
        accuracy = ceiling - (ceiling - 0.1) * (epoch + 1) ** -rate
        trial.report(accuracy, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return accuracy


def main(n_trials: int, seed: int = 0) -> optuna.Study:
    package = load_package()
    pruner = package.LearningCurvePruner(max_resource=MAX_EPOCHS, top_k=3, n_warmup_trials=5)
    sampler = optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    study.optimize(objective, n_trials=n_trials)
    return study


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = main(int(os.environ.get("N_TRIALS", "100")))
    package = load_package()
    pruned = study.get_trials(states=(optuna.trial.TrialState.PRUNED,))
    epochs = sum(len(t.intermediate_values) for t in study.trials)
    print(f"best value {study.best_value:.4f}; {len(pruned)} of {len(study.trials)} pruned")
    print(f"{epochs} epochs trained instead of {MAX_EPOCHS * len(study.trials)}")
    if pruned:
        print(package.pruned_reason(pruned[0]))
