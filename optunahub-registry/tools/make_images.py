"""Redraw the README images of the packages (``package/<category>/<name>/images/*.png``).

Runs each package's ``example.py`` objective (loaded from this folder, not from OptunaHub)
against a baseline and plots the result, small enough for the registry's guideline (about
100 KB per package). Needs matplotlib; the NAS-Bench-301 image also needs its data
(``$OPTUNA_NAS_DATA``), and is skipped without it. Not part of what goes to the registry.

    python optunahub-registry/tools/make_images.py [NAME ...]
"""

from __future__ import annotations

from collections.abc import Callable
import importlib.util
import os
from pathlib import Path
import sys
from types import ModuleType
from typing import Any

import matplotlib


matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402


PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "package"
SEEDS = (0, 1, 2)


def _example(package: str) -> ModuleType:
    os.environ["OPTUNAHUB_REGISTRY_ROOT"] = str(PACKAGE_ROOT)
    path = PACKAGE_ROOT / package / "example.py"
    spec = importlib.util.spec_from_file_location(f"_example_{package.replace('/', '_')}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _best_so_far(study: optuna.Study) -> np.ndarray:
    values = [t.value if t.value is not None else -np.inf for t in study.trials]
    return np.maximum.accumulate(np.array(values, dtype=float))


def _save(fig: Any, package: str, name: str) -> None:
    folder = PACKAGE_ROOT / package / "images"
    folder.mkdir(exist_ok=True)
    path = folder / name
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    print(f"{path}: {path.stat().st_size} bytes")


def _compare(
    package: str,
    label: str,
    run: Callable[[int], optuna.Study],
    baseline: Callable[[int], optuna.Study],
    baseline_label: str,
    ylabel: str,
) -> None:
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    for make, name, color in ((run, label, "C0"), (baseline, baseline_label, "C7")):
        curves = np.array([_best_so_far(make(seed)) for seed in SEEDS])
        x = np.arange(1, curves.shape[1] + 1)
        ax.plot(x, curves.mean(axis=0), color=color, label=f"{name} (mean of {len(SEEDS)})")
        ax.fill_between(x, curves.min(axis=0), curves.max(axis=0), color=color, alpha=0.2)
    ax.set_xlabel("trial")
    ax.set_ylabel(ylabel)
    ax.legend(loc="lower right", fontsize=8)
    _save(fig, package, "best_so_far.png")


def _random_study(objective: Callable[[optuna.Trial], float], n_trials: int, seed: int) -> Any:
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed)
    )
    study.optimize(objective, n_trials=n_trials)
    return study


def regularized_evolution() -> None:
    example = _example("samplers/regularized_evolution")
    _compare(
        "samplers/regularized_evolution",
        "RegularizedEvolutionSampler",
        lambda seed: example.main(200, seed=seed),
        lambda seed: _random_study(example.objective, 200, seed),
        "RandomSampler",
        "best value (example.py objective)",
    )


def rnn_controller() -> None:
    example = _example("samplers/rnn_controller")
    _compare(
        "samplers/rnn_controller",
        "RNNControllerSampler",
        lambda seed: example.main(200, seed=seed),
        lambda seed: _random_study(example.objective, 200, seed),
        "RandomSampler",
        "best value (example.py objective)",
    )


def zero_cost_warm_start() -> None:
    example = _example("samplers/zero_cost_warm_start")
    package = example.load_package()
    space = package.create_search_space("nasbench201")

    def plain(seed: int) -> optuna.Study:
        sampler = package.RegularizedEvolutionSampler(
            search_space=space, population_size=10, sample_size=5, seed=seed
        )
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(example.make_objective(space), n_trials=60)
        return study

    _compare(
        "samplers/zero_cost_warm_start",
        "warm start + move proposal",
        lambda seed: example.main(60, n_candidates=100, seed=seed),
        plain,
        "plain evolution",
        "best value (stand-in objective)",
    )


def learning_curve() -> None:
    example = _example("pruners/learning_curve")
    study = example.main(60, seed=0)
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    for trial in study.trials:
        steps = sorted(trial.intermediate_values)
        values = [trial.intermediate_values[s] for s in steps]
        pruned = trial.state == optuna.trial.TrialState.PRUNED
        ax.plot(
            np.array(steps) + 1,
            values,
            color="C7" if pruned else "C0",
            alpha=0.5 if pruned else 0.9,
            linewidth=0.8,
        )
    ax.plot([], [], color="C0", label="completed")
    ax.plot([], [], color="C7", label="pruned by LearningCurvePruner")
    ax.set_xlabel("epochs trained")
    ax.set_ylabel("accuracy (example.py curves)")
    ax.legend(loc="lower right", fontsize=8)
    _save(fig, "pruners/learning_curve", "learning_curves.png")


def nasbench301() -> None:
    try:
        from optuna_nas.benchmarks import resolve_data_dir

        resolve_data_dir()
    except FileNotFoundError as error:
        print(f"nasbench301 skipped: {error}")
        return
    example = _example("benchmarks/nasbench301")
    max_epochs = 98
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    problem = example.load_package("benchmarks/nasbench301").Problem(max_epochs=max_epochs)
    for seed, color in zip(SEEDS, ("C0", "C1", "C2")):
        study = example.main(100, max_epochs, None, seed=seed)
        epochs = np.cumsum([len(t.intermediate_values) for t in study.trials])
        ax.plot(epochs, _best_so_far(study), color=color, label=f"evolution + pruner, seed {seed}")
        random = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed)
        )
        random.optimize(problem, n_trials=100)
        epochs = np.cumsum([len(t.intermediate_values) for t in random.trials])
        ax.plot(epochs, _best_so_far(random), color=color, linestyle=":", linewidth=1)
    ax.plot([], [], color="k", linestyle=":", linewidth=1, label="random, no pruning")
    ax.set_xlabel("epochs trained (surrogate)")
    ax.set_ylabel("best validation accuracy (%)")
    ax.set_xscale("log")
    ax.legend(loc="lower right", fontsize=7)
    _save(fig, "benchmarks/nasbench301", "best_so_far.png")


IMAGES = {
    "regularized_evolution": regularized_evolution,
    "rnn_controller": rnn_controller,
    "zero_cost_warm_start": zero_cost_warm_start,
    "learning_curve": learning_curve,
    "nasbench301": nasbench301,
}


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in sys.argv[1:] or list(IMAGES):
        IMAGES[name]()
