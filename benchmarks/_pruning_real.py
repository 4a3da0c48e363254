"""The real-training part of ``benchmarks/pruning.py``: NB201 cells trained on embedded MNIST,
each distinct cell once, its curve replayed to every pruner's study."""

from __future__ import annotations

from collections.abc import Sequence
import math
import time
from typing import Any

from _pruning_specs import pruner_factories
from _pruning_specs import sampler_factories
from _pruning_study import Result
from _pruning_study import Task
from _pruning_study import summarize
import optuna


REAL_EPOCHS = 10


def real_objective(
    seed: int, epochs: int, subset: int, prune: bool, train_seed: int | None = None
) -> Any:
    """``seed`` picks the data subset and, unless ``train_seed`` is given, the training seeds."""
    from optuna_nas.search_spaces import create_search_space
    from optuna_nas.training import EmbeddedDataModule
    from optuna_nas.training import NASObjective

    return NASObjective(
        create_search_space("nasbench201"),
        EmbeddedDataModule(subset=subset, image_size=16, seed=seed),
        max_epochs=epochs,
        build_kwargs={"channels": 8, "cells_per_stage": 1},
        trainer_kwargs={"accelerator": "cpu"},
        measure_latency=False,
        seed=seed if train_seed is None else train_seed,
        prune=prune,
    )


class TrainOnceObjective:
    """Real training, each distinct cell trained once to the end and its curve replayed.

    The first trial that proposes a cell trains it without pruning (seed ``seed + trial
    number``, as ``NASObjective`` does); that trial and every later one proposing the same cell,
    in any study of this process, re-report the recorded validation curve and obey the pruner.
    So the pruners of one seed share their training runs, and any sampler works: evolution's
    trajectories differ per pruner and simply train the cells they reach. Unlike a live run,
    a re-proposed cell gets the same curve again (like the NB301 surrogate).
    """

    def __init__(self, seed: int, epochs: int, subset: int) -> None:
        from optuna_nas.search_spaces import create_search_space

        self.space = create_search_space("nasbench201")
        self.seed, self.epochs, self.subset = seed, epochs, subset
        self.curves: dict[str, tuple[float, ...]] = {}
        self.trained_s = 0.0

    def _train(self, params: dict[str, Any], train_seed: int) -> tuple[float, ...]:
        start = time.perf_counter()
        # A fresh one-trial study: its trial 0 trains with the base seed `train_seed`.
        study = optuna.create_study(direction="maximize")
        study.enqueue_trial(params)
        objective = real_objective(
            self.seed, self.epochs, self.subset, prune=False, train_seed=train_seed
        )
        study.optimize(objective, n_trials=1)
        # Without pruning NASObjective reports nothing; it records the curve as a user attr.
        values = list(study.trials[0].user_attrs.get("val_acc_curve", []))
        values += [math.nan] * (self.epochs - len(values))  # a failed run: pruned at its NaN
        self.trained_s += time.perf_counter() - start
        return tuple(float(v) for v in values)

    def __call__(self, trial: optuna.Trial) -> float:
        arch = self.space.to_string(self.space.suggest(trial))
        if arch not in self.curves:
            self.curves[arch] = self._train(dict(trial.params), self.seed + trial.number)
        curve = self.curves[arch]
        for step, value in enumerate(curve):
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(curve[-1])


def run_real_seed(
    sampler: str,
    seed: int,
    pruners: Sequence[str],
    n_trials: int,
    epochs: int,
    subset: int,
    sweep: bool,
) -> tuple[list[Result], int, float]:
    """Every pruner on one (sampler, seed) with real training shared through one cache.

    Returns the results, the number of cells trained and the seconds spent training them.
    """
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    objective = TrainOnceObjective(seed, epochs, subset)
    factories = pruner_factories(epochs, sweep)
    results = []
    # "none" first: it trains the cells that the pruned studies of the random sampler reuse.
    for name in sorted(pruners, key=lambda p: p != "none"):
        start = time.perf_counter()
        study = optuna.create_study(
            study_name=f"real-{sampler}-{name}-{seed}",
            direction="maximize",
            sampler=sampler_factories([sampler])[sampler](seed),
            pruner=factories[name](),
        )
        study.optimize(objective, n_trials=n_trials)
        task = Task("real", sampler, name, seed, n_trials, sweep, None, (sampler,))
        results.append(summarize(study, task, time.perf_counter() - start))
    return results, len(objective.curves), objective.trained_s


def live_check(seed: int, n_trials: int, epochs: int, subset: int, replayed: Result) -> str:
    """Run the LearningCurvePruner with real training and compare with its replay."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # with --jobs it runs in this process
    start = time.perf_counter()
    study = optuna.create_study(
        direction="maximize",
        sampler=sampler_factories(["random"])["random"](seed),
        pruner=pruner_factories(epochs, sweep=False)["learning_curve"](),
    )
    study.optimize(real_objective(seed, epochs, subset, prune=True), n_trials=n_trials)
    task = Task("real", "random", "learning_curve", seed, n_trials, False, None, ("random",))
    live = summarize(study, task, time.perf_counter() - start)
    same = (live.epochs, live.best) == (replayed.epochs, replayed.best)
    return (
        f"live LearningCurvePruner run (seed {seed}): {live.epochs} epochs, best "
        f"{100 * live.best:.2f}%; replay: {replayed.epochs} epochs, best "
        f"{100 * replayed.best:.2f}% -> {'identical' if same else 'DIFFERENT'}"
    )
