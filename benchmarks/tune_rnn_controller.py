"""Tune and measure ``RNNControllerSampler`` on the NAS-Bench-201 CIFAR-10 table.

The objective looks up ``space.to_string(space.suggest(trial))`` in ``cifar10.csv`` (test
accuracy in percent, optionally ``--scale``-d), optionally with seeded Gaussian noise of
``--noise`` points per evaluation. The *returned* cell is the best observed (noisy) trial; the
table reports its TRUE accuracy after 100 and 300 evaluations, and the mean true accuracy of
the first and last 50 samples (whether the controller learns).

Examples::

    # the defaults against Random and TPE, 25 seeds, noiseless and noisy
    nice -n 10 env OMP_NUM_THREADS=1 python benchmarks/tune_rnn_controller.py \\
        --samplers rnn random tpe --seeds 25 --noise 0 0.5 2.0

    # a grid over controller settings (JSON object of lists)
    python benchmarks/tune_rnn_controller.py --seeds 10 \\
        --grid '{"learning_rate": [1e-3, 1e-2], "temperature": [1, 5]}'

    # sampler overhead at 1,000 trials and replay time of 10,000 trials
    python benchmarks/tune_rnn_controller.py --overhead

The data folder is ``--data``, else ``$OPTUNA_NAS_DATA``, else ``../shared/data`` next to the
repository.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import csv
import itertools
import json
import math
import multiprocessing
from pathlib import Path
import statistics
import time
from typing import Any

from _common import create_sampler
from _common import data_dir
import numpy as np
import optuna

from optuna_nas.search_spaces import create_search_space


def load_table(folder: Path) -> dict[str, float]:
    with open(folder / "nasbench201" / "cifar10.csv", newline="") as f:
        return {row["arch"]: float(row["cifar10_test_acc"]) for row in csv.DictReader(f)}


_TABLE: dict[str, float] = {}


def make_sampler(name: str, seed: int, config: dict[str, Any]) -> optuna.samplers.BaseSampler:
    if name == "rnn":
        return create_sampler("rnn", seed=seed, **config)
    if name in ("random", "tpe"):
        return create_sampler(name, seed=seed)
    raise ValueError(f"Unknown sampler {name!r}.")


def run_one(job: tuple[str, dict[str, Any], int, float, int, float, str]) -> dict[str, Any]:
    """One search; returns the true accuracy of every sample and of the best-so-far cell."""
    import torch

    torch.set_num_threads(1)
    name, config, seed, noise, n_trials, scale, data = job
    if not _TABLE:
        _TABLE.update(load_table(Path(data)))
    space = create_search_space("nasbench201")
    true_acc: list[float] = []
    cells: list[str] = []

    def objective(trial: optuna.Trial) -> float:
        cell = space.to_string(space.suggest(trial))
        acc = _TABLE[cell]
        true_acc.append(acc)
        cells.append(cell)
        rng = np.random.default_rng([seed, trial.number, 20260])
        return (acc + (rng.normal(0.0, noise) if noise > 0 else 0.0)) * scale

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=make_sampler(name, seed, config))
    start = time.perf_counter()
    study.optimize(objective, n_trials=n_trials)
    elapsed = time.perf_counter() - start
    values = [float(t.value) if t.value is not None else -math.inf for t in study.trials]
    returned = {}
    for budget in (100, n_trials):
        best = int(np.argmax(values[:budget]))
        returned[str(budget)] = true_acc[best]
    return {
        "sampler": name,
        "config": config,
        "seed": seed,
        "noise": noise,
        "scale": scale,
        "returned": returned,
        "first50": float(np.mean(true_acc[:50])),
        "last50": float(np.mean(true_acc[-50:])),
        "unique100": len(set(cells[:100])),
        "seconds": elapsed,
    }


def summarize(results: Sequence[dict[str, Any]], n_trials: int) -> list[dict[str, Any]]:
    """Mean ± standard error per (sampler, config, noise); one-sided Mann-Whitney p-values of
    the returned cell's true accuracy against Random and TPE at the same noise, when run."""
    from scipy.stats import mannwhitneyu

    groups: dict[tuple[str, str, float], list[dict[str, Any]]] = {}
    for r in results:
        key = (r["sampler"], json.dumps(r["config"], sort_keys=True), r["noise"])
        groups.setdefault(key, []).append(r)

    def stat(xs: list[float]) -> str:
        se = statistics.stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else 0.0
        return f"{statistics.mean(xs):.3f}±{se:.3f}"

    def returned(runs: list[dict[str, Any]], budget: int) -> list[float]:
        return [r["returned"][str(budget)] for r in runs]

    rows = []
    for (sampler, config, noise), runs in groups.items():
        row = {
            "sampler": sampler,
            "config": config,
            "noise": noise,
            "n": len(runs),
            "@100": stat(returned(runs, 100)),
            f"@{n_trials}": stat(returned(runs, n_trials)),
            "first50": stat([r["first50"] for r in runs]),
            "last50": stat([r["last50"] for r in runs]),
            "learn": stat([r["last50"] - r["first50"] for r in runs]),
            "unique@100": stat([r.get("unique100", math.nan) for r in runs]),
            "s/run": f"{statistics.mean(r['seconds'] for r in runs):.1f}",
        }
        for other in ("random", "tpe"):
            reference = groups.get((other, "{}", noise))
            if sampler == other or reference is None:
                continue
            p_values = []
            for budget in (100, n_trials):
                test = mannwhitneyu(
                    returned(runs, budget), returned(reference, budget), alternative="greater"
                )
                p_values.append(f"{test.pvalue:.3g}")
            row[f"p>{other}"] = "/".join(p_values)
        rows.append(row)
    return rows


def overhead(data: str, n_trials: int, n_replay: int) -> None:
    """Sampler time per new trial after ``n_trials`` and replay time of ``n_replay`` trials."""
    import torch

    torch.set_num_threads(1)
    table = load_table(Path(data))
    space = create_search_space("nasbench201")
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        return table[space.to_string(space.suggest(trial))]

    for name in ("rnn", "tpe", "random"):
        study = optuna.create_study(direction="maximize", sampler=make_sampler(name, 0, {}))
        study.optimize(objective, n_trials=n_trials)
        times = []
        for _ in range(20):
            start = time.perf_counter()
            trial = study.ask()
            arch = space.suggest(trial)
            times.append(time.perf_counter() - start)
            study.tell(trial, table[space.to_string(arch)])
        print(
            f"{name:>7}: {1e3 * statistics.median(times):.2f} ms per new trial (median of 20) "
            f"after {n_trials} completed trials"
        )

    rng = np.random.default_rng(0)
    study = optuna.create_study(direction="maximize")
    trials = []
    for _ in range(n_replay):
        arch = space.sample(rng)
        params = space.to_params(arch)
        dists: dict[str, optuna.distributions.BaseDistribution] = {
            d.name: optuna.distributions.CategoricalDistribution(d.choices)
            for d in space.decisions
        }
        trials.append(
            optuna.trial.create_trial(
                params=params, distributions=dists, value=table[space.to_string(arch)]
            )
        )
    study.add_trials(trials)
    study.sampler = create_sampler("rnn", seed=0)
    start = time.perf_counter()
    trial = study.ask()
    space.suggest(trial)
    elapsed = time.perf_counter() - start
    print(
        f"replay of {n_replay} completed trials by a new sampler: {elapsed:.2f} s "
        f"({1e3 * elapsed / n_replay:.3f} ms per trial)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--samplers", nargs="+", default=["rnn"])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0])
    parser.add_argument("--scale", type=float, default=1.0, help="reward = accuracy%% * scale")
    parser.add_argument("--grid", default="{}", help="JSON object: RNN argument -> values")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", default=None, help="append per-run JSON lines here")
    parser.add_argument("--overhead", action="store_true")
    parser.add_argument("--replay", type=int, default=10_000)
    parser.add_argument(
        "--summarize", nargs="+", default=None, help="only summarize these JSON-lines files"
    )
    args = parser.parse_args()
    if args.summarize:
        loaded = [json.loads(line) for path in args.summarize for line in open(path)]
        print_table(summarize(loaded, args.trials))
        return
    data = str(data_dir(args.data))
    if args.overhead:
        overhead(data, 1000, args.replay)
        return

    grid = json.loads(args.grid)
    configs = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    jobs = []
    for name in args.samplers:
        for config in configs if name == "rnn" else [{}]:
            for noise in args.noise:
                for seed in range(args.first_seed, args.first_seed + args.seeds):
                    jobs.append((name, config, seed, noise, args.trials, args.scale, data))
    results = []
    out = open(args.out, "a") if args.out else None  # noqa: SIM115
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        for result in pool.imap_unordered(run_one, jobs):
            results.append(result)
            if out is not None:
                out.write(json.dumps(result) + "\n")
                out.flush()
    if out is not None:
        out.close()
    print_table(summarize(results, args.trials))


def print_table(rows: list[dict[str, Any]]) -> None:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    print(" | ".join(keys))
    for row in rows:
        print(" | ".join(str(row.get(k, "")) for k in keys))


if __name__ == "__main__":
    main()
