"""Tune RegularizedEvolutionSampler's defaults on the NAS-Bench-201 CIFAR-10 table.

Each run searches the NB201 cell space for ``max(budgets)`` trials; the objective looks up the
cell's CIFAR-10 test accuracy (optionally plus seeded Gaussian noise: the *search signal*). At
each budget the *returned* cell is the one with the best observed (noisy) value so far, and its
TRUE accuracy is reported. Results are cached per (sampler, noise, seed) in a JSON file, so TPE
(the slow one) runs once.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/tune_evolution.py \
        --samplers random tpe "rea:p=10,s=3" "rea:p=20,s=5" --seeds 30 --noise 0 0.5 2

``--overhead N`` instead measures the sampler's CPU time per trial against RandomSampler on an
InMemoryStorage (NB201 cell plus one float, trivial objective) over trials 500-1,000 and the
last 500 of ``N``, repeated ``--repeats`` times (minimum kept, to shave off noise from other
processes)::

    OMP_NUM_THREADS=1 python benchmarks/tune_evolution.py --overhead 10000

A sampler spec is ``random``, ``tpe`` or ``rea:key=value,...`` with keys ``p``
(population_size), ``s`` (sample_size), ``dup`` (skip_duplicates, 0/1), ``retries``
(max_duplicate_retries) and ``space`` (1: pass the search space for architecture-aware
mutation, 0: generic mutation).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path
import time
from typing import Any

from _common import create_sampler
from _common import data_dir
import numpy as np
import optuna

from optuna_nas.search_spaces import create_search_space


def load_table(data_dir: Path) -> dict[str, float]:
    with open(data_dir / "nasbench201" / "cifar10.csv", newline="") as f:
        return {row["arch"]: float(row["cifar10_test_acc"]) for row in csv.DictReader(f)}


def make_sampler(spec: str, seed: int, space: Any) -> optuna.samplers.BaseSampler:
    if spec in ("random", "tpe"):
        return create_sampler(spec, seed=seed)
    name, _, opts = spec.partition(":")
    if name != "rea":
        raise ValueError(f"Unknown sampler spec {spec!r}.")
    kv = dict(item.split("=") for item in opts.split(",") if item)
    kwargs: dict[str, Any] = {}
    if "p" in kv:
        kwargs["population_size"] = int(kv["p"])
    if "s" in kv:
        kwargs["sample_size"] = int(kv["s"])
    if "dup" in kv:
        kwargs["skip_duplicates"] = bool(int(kv["dup"]))
    if "retries" in kv:
        kwargs["max_duplicate_retries"] = int(kv["retries"])
    search_space = space if int(kv.get("space", "1")) else None
    return create_sampler("evolution", seed=seed, search_space=search_space, **kwargs)


def run_one(
    spec: str, noise: float, seed: int, n_trials: int, table: dict[str, float]
) -> list[list[float]]:
    """Return ``[observed, true]`` per trial, in trial order."""
    space = create_search_space("nasbench201")
    history: list[list[float]] = []

    def objective(trial: optuna.Trial) -> float:
        true = table[space.to_string(space.suggest(trial))]
        # Noise depends on (seed, trial number) only, so every sampler sees the same stream.
        rng = np.random.default_rng([seed, trial.number])
        observed = true + (rng.normal(0.0, noise) if noise > 0 else 0.0)
        history.append([observed, true])
        return observed

    study = optuna.create_study(direction="maximize", sampler=make_sampler(spec, seed, space))
    study.optimize(objective, n_trials=n_trials)
    return history


def returned_true(history: list[list[float]], budget: int) -> float:
    observed = [h[0] for h in history[:budget]]
    return history[int(np.argmax(observed))][1]


def measure_overhead(n_trials: int, repeats: int) -> None:
    space = create_search_space("nasbench201")

    def run(sampler: optuna.samplers.BaseSampler) -> np.ndarray:
        stamps: list[float] = []

        def objective(trial: optuna.Trial) -> float:
            cell = space.suggest(trial)
            lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
            stamps.append(time.process_time())
            return sum(op == "nor_conv_3x3" for op in cell.ops) + lr

        storage = optuna.storages.InMemoryStorage()
        optuna.create_study(sampler=sampler, storage=storage).optimize(objective, n_trials)
        return np.array(stamps)

    makers = {
        "random": lambda: create_sampler("random", seed=0),
        "evolution": lambda: create_sampler("evolution", seed=0),
        "evolution+space": lambda: create_sampler("evolution", seed=0, search_space=space),
    }
    best: dict[str, list[float]] = {name: [math.inf, math.inf] for name in makers}
    for _ in range(repeats):
        for name, make in makers.items():
            s = run(make())
            early = (s[999] - s[499]) / 500 * 1e3
            late = (s[n_trials - 1] - s[n_trials - 501]) / 500 * 1e3
            best[name] = [min(best[name][0], early), min(best[name][1], late)]
    rnd = best["random"]
    print(f"CPU ms per trial (min of {repeats}): trials 500-1000 | last 500 of {n_trials}")
    for name, (early, late) in best.items():
        print(
            f"{name:16s} {early:.3f} | {late:.3f}   late/early {late / early:.2f}   "
            f"vs random {early / rnd[0]:.2f} | {late / rnd[1]:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samplers", nargs="+", default=["random", "tpe", "rea"])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.5, 2.0])
    parser.add_argument("--budgets", type=int, nargs="+", default=[50, 100, 300])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/tune_evolution_cache.json"))
    parser.add_argument("--overhead", type=int, default=0, metavar="N")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.overhead:
        measure_overhead(args.overhead, args.repeats)
        return

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table = load_table(data_dir(args.data))
    cache: dict[str, list[list[float]]] = {}
    if args.cache.exists():
        cache = json.loads(args.cache.read_text())
    n_trials = max(args.budgets)

    results: dict[tuple[str, float], np.ndarray] = {}
    for noise in args.noise:
        for spec in args.samplers:
            start = time.perf_counter()
            rows = []
            for seed in range(args.seeds):
                key = f"{spec}|{noise}|{seed}|{n_trials}"
                if key not in cache:
                    cache[key] = run_one(spec, noise, seed, n_trials, table)
                    args.cache.write_text(json.dumps(cache))
                rows.append([returned_true(cache[key], b) for b in args.budgets])
            results[(spec, noise)] = np.array(rows)
            print(f"# {spec} noise={noise}: {time.perf_counter() - start:.1f}s", flush=True)

    from scipy.stats import mannwhitneyu

    optimum = max(table.values())
    print(
        f"\nTrue CIFAR-10 test accuracy of the returned cell, mean (s.e.), {args.seeds} seeds; "
        f"optimum {optimum:.2f}. p: one-sided Mann-Whitney U vs random / vs tpe at each budget."
    )
    header = "| noise | sampler | " + " | ".join(f"{b} evals" for b in args.budgets) + " |"
    print(header)
    print("|" + "---|" * (2 + len(args.budgets)))
    for noise in args.noise:
        for spec in args.samplers:
            r = results[(spec, noise)]
            cells = []
            for j in range(len(args.budgets)):
                text = f"{r[:, j].mean():.2f} ({r[:, j].std(ddof=1) / np.sqrt(len(r)):.2f})"
                ps = []
                for ref in ("random", "tpe"):
                    if ref != spec and (ref, noise) in results:
                        p = mannwhitneyu(
                            r[:, j], results[(ref, noise)][:, j], alternative="greater"
                        ).pvalue
                        ps.append(f"{p:.3f}")
                if ps:
                    text += " p=" + "/".join(ps)
                cells.append(text)
            print(f"| {noise} | {spec} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
