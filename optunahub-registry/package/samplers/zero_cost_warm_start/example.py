"""A zero-cost warm start, then proxy-guided regularized evolution, on NAS-Bench-201 cells.

``warm_start`` scores many random cells with the synflow proxy (untrained networks, no data)
and enqueues the best-scored ones as the first trials; the sampler then makes each child from
the best-scored of its parent's mutations (the "move proposal"). The objective is a stand-in
for "train the cell, return its validation accuracy"; replace it with real training (or with
optuna-nas's NAS-Bench-201 table) to search for real.

Environment variables (all optional): ``N_TRIALS`` sets the budget (default 100),
``N_CANDIDATES`` the cells scored by the warm start (default 500); ``OPTUNAHUB_REGISTRY_ROOT``
loads the package from a local copy of the registry's ``package/`` folder instead of from
OptunaHub (how the optuna-nas tests run this file).
"""

from __future__ import annotations

from collections.abc import Callable
import os
from types import ModuleType
from typing import Any

import optuna
import optunahub


PACKAGE = "samplers/zero_cost_warm_start"
GAIN = {"none": 0.0, "skip_connect": 0.3, "avg_pool_3x3": 0.2, "nor_conv_1x1": 0.7}


def load_package() -> ModuleType:
    registry_root = os.environ.get("OPTUNAHUB_REGISTRY_ROOT")
    if registry_root:
        return optunahub.load_local_module(package=PACKAGE, registry_root=registry_root)
    return optunahub.load_module(package=PACKAGE)


def make_objective(space: Any) -> Callable[[optuna.Trial], float]:
    def objective(trial: optuna.Trial) -> float:
        cell = space.suggest(trial)  # one categorical parameter per edge of the cell
        return sum(GAIN.get(op, 1.0) for op in cell.ops)  # stand-in for trained accuracy

    return objective


def main(n_trials: int, n_candidates: int, seed: int = 0) -> optuna.Study:
    package = load_package()
    space = package.create_search_space("nasbench201")
    scorer = package.ProxyScorer(
        space,
        proxies=("synflow",),
        num_classes=10,
        in_channels=3,
        image_size=32,
        build_kwargs={"channels": 4, "cells_per_stage": 1},  # tiny networks: scores are fast
    )

    sampler = package.RegularizedEvolutionSampler(
        search_space=space, mutation_score=scorer, population_size=10, sample_size=5, seed=seed
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    top_k = min(10, n_candidates, n_trials)
    result = package.warm_start(
        study, space, scorer, n_candidates=n_candidates, top_k=top_k, seed=seed
    )
    print(f"warm start: {result.n_candidates} cells scored in {result.seconds:.1f} s")
    study.optimize(make_objective(space), n_trials=n_trials)
    return study


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = main(
        n_trials=int(os.environ.get("N_TRIALS", "100")),
        n_candidates=int(os.environ.get("N_CANDIDATES", "500")),
    )
    ranks = [t.user_attrs.get("warm_start:rank") for t in study.trials]
    moves = [t.user_attrs.get("evolution:move") for t in study.trials]
    print(f"best value {study.best_value:.2f} with {study.best_params}")
    print(f"warm-start ranks of the trials: {ranks}")
    print(f"moves of the children: {[move for move in moves if move is not None]}")
