"""Compare NAS samplers on the NAS-Bench-201 CIFAR-10 table (strategies x seeds x budgets).

Every run is one Optuna study of ``max(budgets)`` trials over the NB201 cell space
(``optuna_nas.benchmarks.NB201Benchmark``). The search signal is the cell's CIFAR-10 test
accuracy plus, optionally, seeded Gaussian noise of a stated size. After ``k`` trials a run
*returns* the cell with the best observed signal so far, and what counts is that cell's TRUE
accuracy (regret = best accuracy in the table - true accuracy). One study per
(strategy, noise, seed) gives every budget. Sampler seed and noise seed are the run's seed, so
all strategies see the same noise sequence for a seed.

Outputs: a markdown table (mean +- std over seeds) and Mann-Whitney U tests against Random and
TPE per budget on stdout and in ``<out>/compare_samplers.md``; raw per-trial results in
``<out>/compare_samplers.json`` and ``<out>/compare_samplers.csv``; an anytime regret plot in
``<out>/compare_samplers.png``.

Multi-objective mode (``--multi-objective``): (accuracy, latency) with Random, TPE, NSGA-II
(and ours where they support it); the score is the hypervolume of the returned Pareto front
(non-dominated by observed signal, scored by true accuracy) divided by that of the table's true
Pareto front, with a stated reference point.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/compare_samplers.py               # 100 seeds
    python benchmarks/compare_samplers.py --quick                                  # CI, seconds
    python benchmarks/compare_samplers.py --strategies random tpe --seeds 30 --noise 0
    python benchmarks/compare_samplers.py --seeds 40 --first-seed 100   # held-out seeds
    python benchmarks/compare_samplers.py --strategies "evolution:population_size=10,sample_size=3"
    python benchmarks/compare_samplers.py --multi-objective --metric latency_ms_pi5_onnx

A strategy is ``random``, ``tpe``, ``nsga2`` (multi-objective), ``evolution``
(``optuna_nas.samplers.RegularizedEvolutionSampler``) or ``rnn`` (``RNNControllerSampler``),
optionally followed by ``:key=value,...`` constructor arguments (Python literals); samplers are
built by ``optuna_nas.samplers.create_sampler``.
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Sequence
import csv
import json
import math
import multiprocessing
import os
from pathlib import Path
import sys
import time
from typing import Any

from _common import create_sampler
from _common import data_dir
import numpy as np
import optuna


RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_BUDGETS = (50, 100, 200, 300)
DEFAULT_NOISE = (0.0, 0.5, 2.0)
DEFAULT_SEEDS = 100
# Reference accuracy (percent) of the multi-objective hypervolume: cells below it do not count.
MO_REFERENCE_ACCURACY = 80.0

_LABELS = {
    "random": "Random",
    "tpe": "TPE",
    "nsga2": "NSGA-II",
    "evolution": "RegularizedEvolution",
    "rnn": "RNNController",
}


# ------------------------------------------------------------------------------ strategies
def parse_strategy(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``name:key=value,...`` into a name and constructor keyword arguments."""
    name, _, options = spec.partition(":")
    if name not in _LABELS:
        raise ValueError(
            f"Unknown strategy {name!r} in {spec!r}; expected one of {list(_LABELS)}."
        )
    kwargs: dict[str, Any] = {}
    for item in filter(None, options.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(
                f"Malformed option {item!r} in strategy {spec!r}: expected key=value."
            )
        try:
            kwargs[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            kwargs[key.strip()] = value.strip()
    return name, kwargs


def strategy_label(spec: str) -> str:
    name, kwargs = parse_strategy(spec)
    if not kwargs:
        return _LABELS[name]
    return f"{_LABELS[name]}({', '.join(f'{k}={v}' for k, v in kwargs.items())})"


# Strategy names of this script -> names of `optuna_nas.samplers.create_sampler`.
_FACTORY_NAMES = {"nsga2": "nsgaii"}


def make_sampler(spec: str, seed: int) -> optuna.samplers.BaseSampler:
    name, kwargs = parse_strategy(spec)
    return create_sampler(_FACTORY_NAMES.get(name, name), seed=seed, **kwargs)


def available_strategies(
    specs: Sequence[str], multi_objective: bool
) -> tuple[list[str], list[str]]:
    """Keep the runnable strategies; return them and notes about the skipped ones."""
    kept, notes = [], []
    for spec in specs:
        name, _ = parse_strategy(spec)
        if name == "nsga2" and not multi_objective:
            notes.append(f"{spec}: NSGA-II is only run in --multi-objective mode")
            continue
        if name in ("evolution", "rnn") and multi_objective:
            try:  # does the sampler accept a two-objective study?
                study = optuna.create_study(
                    directions=["maximize", "minimize"], sampler=make_sampler(spec, 0)
                )
                study.optimize(lambda t: (t.suggest_float("x", 0, 1), 0.0), n_trials=2)
            except Exception as e:
                notes.append(f"{spec}: skipped, no multi-objective support ({e})")
                continue
        kept.append(spec)
    return kept, notes


# ------------------------------------------------------------------------------ one run
_BENCH: Any = None


def _init_worker(data_dir: str | None) -> None:
    global _BENCH
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        import torch

        torch.set_num_threads(1)  # processes, not threads, give the parallelism
    except ImportError:
        pass
    from optuna_nas.benchmarks import NB201Benchmark

    _BENCH = NB201Benchmark.load(data_dir)


def run_one(task: dict[str, Any]) -> dict[str, Any]:
    """One study; returns the per-trial observed signal and true accuracy (and cost)."""
    bench = _BENCH
    start = time.perf_counter()
    sampler = make_sampler(task["strategy"], task["seed"])
    if task["multi_objective"]:
        objective: Any = bench.multi_objective(
            metric=task["metric"], noise_std=task["noise"], seed=task["seed"]
        )
    else:
        objective = bench.objective(noise_std=task["noise"], seed=task["seed"])
    study = optuna.create_study(directions=list(objective.directions), sampler=sampler)
    study.optimize(objective, n_trials=task["n_trials"])
    trials = study.get_trials(deepcopy=False)
    ok = [t.state == optuna.trial.TrialState.COMPLETE for t in trials]
    result = dict(task)
    result["observed"] = [t.values[0] if c else math.nan for t, c in zip(trials, ok)]
    result["true"] = [t.user_attrs.get("true_accuracy", math.nan) for t in trials]
    if task["multi_objective"]:
        result["cost"] = [t.values[1] if c else math.nan for t, c in zip(trials, ok)]
    result["seconds"] = time.perf_counter() - start
    return result


# ------------------------------------------------------------------------------ scoring
def incumbent_true(observed: Sequence[float], true: Sequence[float]) -> np.ndarray:
    """True accuracy of the best-observed trial after each number of trials (first on ties)."""
    obs = np.where(np.isfinite(observed), observed, -np.inf)
    best_so_far = np.maximum.accumulate(obs)
    # Index of the first trial reaching the running maximum, for every prefix.
    idx = np.zeros(len(obs), dtype=int)
    for k in range(1, len(obs)):
        idx[k] = k if obs[k] > best_so_far[k - 1] else idx[k - 1]
    return np.asarray(true, dtype=float)[idx]


def pareto_mask(acc: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Non-dominated points for (maximize acc, minimize cost)."""
    losses = np.stack([-acc, cost], axis=1)
    order = np.lexsort((losses[:, 1], losses[:, 0]))
    mask = np.zeros(len(acc), dtype=bool)
    best_cost = np.inf
    for i in order:  # sorted by -acc, then cost: a point survives if it is cheaper than all before
        if losses[i, 1] < best_cost:
            mask[i] = True
            best_cost = losses[i, 1]
    return mask


def hypervolume(acc: np.ndarray, cost: np.ndarray, ref: tuple[float, float]) -> float:
    """Hypervolume of (acc, cost) points w.r.t. ``ref`` = (accuracy, cost), maximize/minimize."""
    # optuna has no public hypervolume function; the private one is what Optuna's own
    # plot_hypervolume_history uses.
    from optuna_nas._optuna_compat import compute_hypervolume

    inside = (acc > ref[0]) & (cost < ref[1])
    if not inside.any():
        return 0.0
    losses = np.stack([-acc[inside], cost[inside]], axis=1)
    return float(compute_hypervolume(losses, np.array([-ref[0], ref[1]])))


def mo_scores(
    run: dict[str, Any], budgets: Sequence[int], ref: tuple[float, float]
) -> list[float]:
    """Hypervolume (true accuracy) of the front returned after each budget."""
    obs = np.asarray(run["observed"], dtype=float)
    true = np.asarray(run["true"], dtype=float)
    cost = np.asarray(run["cost"], dtype=float)
    scores = []
    for k in budgets:
        ok = np.isfinite(obs[:k])
        o, t, c = obs[:k][ok], true[:k][ok], cost[:k][ok]
        front = pareto_mask(o, c) if len(o) else np.zeros(0, dtype=bool)
        scores.append(hypervolume(t[front], c[front], ref))
    return scores


def mann_whitney(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import mannwhitneyu

    if len(a) < 2 or len(b) < 2 or (np.ptp(a) == 0 and np.ptp(b) == 0 and a[0] == b[0]):
        return math.nan
    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def fmt_p(p: float) -> str:
    if math.isnan(p):
        return "n/a"
    return "<0.001" if p < 1e-3 else f"{p:.3f}"


# ------------------------------------------------------------------------------ reporting
def report(
    runs: list[dict[str, Any]],
    strategies: list[str],
    noises: list[float],
    budgets: list[int],
    *,
    multi_objective: bool,
    best: float,
    ref: tuple[float, float] | None,
    true_front_hv: float | None,
    header: list[str],
) -> str:
    lines = list(header)
    unit = "hypervolume ratio" if multi_objective else "true test accuracy (%)"
    baselines = [s for s in strategies if parse_strategy(s)[0] in ("random", "tpe", "nsga2")]
    for noise in noises:
        scores: dict[str, np.ndarray] = {}
        for spec in strategies:
            mine = sorted(
                (r for r in runs if r["strategy"] == spec and r["noise"] == noise),
                key=lambda r: r["seed"],
            )
            if multi_objective:
                assert ref is not None and true_front_hv
                rows = [np.array(mo_scores(r, budgets, ref)) / true_front_hv for r in mine]
            else:
                rows = [
                    incumbent_true(r["observed"], r["true"])[np.array(budgets) - 1] for r in mine
                ]
            scores[spec] = np.array(rows)
        n_seeds = len(next(iter(scores.values())))
        noise_text = "noiseless" if noise == 0 else f"Gaussian noise std {noise} points (seeded)"
        lines += [
            "",
            f"### {noise_text}: {unit} of the returned "
            f"{'front' if multi_objective else 'cell'}, mean +- std over {n_seeds} seeds",
            "",
            "| strategy | " + " | ".join(f"{b} evals" for b in budgets) + " |",
            "|---|" + "---:|" * len(budgets),
        ]
        digits = 3 if multi_objective else 2
        for spec in strategies:
            s = scores[spec]
            std = s.std(axis=0, ddof=1) if len(s) > 1 else np.zeros(len(budgets))
            cells = [
                f"{s[:, j].mean():.{digits}f} +- {std[j]:.{digits}f}" for j in range(len(budgets))
            ]
            lines.append(f"| {strategy_label(spec)} | " + " | ".join(cells) + " |")
        if len(strategies) > 1:
            lines += [
                "",
                "Mann-Whitney U, two-sided p-values (per budget: "
                + ", ".join(str(b) for b in budgets)
                + "):",
                "",
                "| strategy | " + " | ".join(f"vs {strategy_label(b)}" for b in baselines) + " |",
                "|---|" + "---|" * len(baselines),
            ]
            for spec in strategies:
                cells = []
                for base in baselines:
                    if base == spec:
                        cells.append("-")
                        continue
                    ps = [
                        mann_whitney(scores[spec][:, j], scores[base][:, j])
                        for j in range(len(budgets))
                    ]
                    cells.append(" / ".join(fmt_p(p) for p in ps))
                lines.append(f"| {strategy_label(spec)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(
    runs: list[dict[str, Any]],
    strategies: list[str],
    noises: list[float],
    n_trials: int,
    best: float,
    path: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(
        1, len(noises), figsize=(5 * len(noises), 4), squeeze=False, sharey=True
    )
    x = np.arange(1, n_trials + 1)
    for ax, noise in zip(axes[0], noises):
        for spec in strategies:
            mine = [r for r in runs if r["strategy"] == spec and r["noise"] == noise]
            regret = np.array([best - incumbent_true(r["observed"], r["true"]) for r in mine])
            mean = regret.mean(axis=0)
            sem = (
                regret.std(axis=0, ddof=1) / np.sqrt(len(regret)) if len(regret) > 1 else 0 * mean
            )
            floor = 1e-3  # log axis: a mean regret of exactly 0 is drawn at the floor
            line = ax.plot(x, np.maximum(mean, floor), label=strategy_label(spec))[0]
            ax.fill_between(
                x,
                np.maximum(mean - sem, floor),
                np.maximum(mean + sem, floor),
                color=line.get_color(),
                alpha=0.2,
            )
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("evaluations")
        ax.set_title("noiseless" if noise == 0 else f"noise std {noise}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel(f"regret: {best:.4f} - true acc. of incumbent (%)")
    axes[0][-1].legend()
    n = len({r["seed"] for r in runs})
    fig.suptitle(f"NAS-Bench-201 CIFAR-10, mean +- s.e.m. over {n} seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------------------ main
def _key(run: dict[str, Any]) -> tuple[Any, ...]:
    fields = ("strategy", "noise", "seed", "n_trials", "multi_objective", "metric")
    return tuple(run[f] for f in fields)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder holding nasbench201/ (default: $OPTUNA_NAS_DATA, then <repo>/../shared/data)",
    )
    parser.add_argument(
        "--strategies",
        nargs="+",
        default=None,
        help="default: random tpe evolution rnn (nsga2 too with --multi-objective)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        help=f"seeds per strategy and noise (default {DEFAULT_SEEDS})",
    )
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seeds run from here (e.g. 100 for seeds no tuning grid has seen)",
    )
    parser.add_argument(
        "--budgets",
        type=int,
        nargs="+",
        default=None,
        help=f"default {' '.join(map(str, DEFAULT_BUDGETS))}",
    )
    parser.add_argument(
        "--noise",
        type=float,
        nargs="+",
        default=None,
        help="noise std in accuracy points (default 0 0.5 2)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes (default: os.cpu_count(); 1 with --quick)",
    )
    parser.add_argument(
        "--multi-objective", action="store_true", help="accuracy vs hardware latency, hypervolume"
    )
    parser.add_argument(
        "--metric",
        default=None,
        help="hardware column for --multi-objective (default latency_ms_pixel_litert)",
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS_DIR, help="output folder (default benchmarks/results)"
    )
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse runs found in the output JSON (same strategy spec, noise, seed, trials); "
        "only the missing runs are computed, e.g. to add a strategy",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI smoke run: 3 seeds, budgets 10 40, noise 0 2, one process",
    )
    args = parser.parse_args(argv)

    seeds = args.seeds if args.seeds is not None else (3 if args.quick else DEFAULT_SEEDS)
    if args.workers is None:
        args.workers = 1 if args.quick else (os.cpu_count() or 1)
    budgets = sorted(set(args.budgets or ((10, 40) if args.quick else DEFAULT_BUDGETS)))
    noises = list(
        args.noise if args.noise is not None else ((0.0, 2.0) if args.quick else DEFAULT_NOISE)
    )
    specs = args.strategies or (
        ["random", "tpe", "nsga2", "evolution", "rnn"]
        if args.multi_objective
        else ["random", "tpe", "evolution", "rnn"]
    )
    if seeds < 1 or budgets[0] < 1 or any(n < 0 for n in noises) or args.workers < 1:
        parser.error("--seeds, --budgets and --workers must be positive and --noise >= 0")
    if args.first_seed < 0:
        parser.error(f"--first-seed must be >= 0, got {args.first_seed}")
    for spec in specs:
        parse_strategy(spec)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    strategies, notes = available_strategies(specs, args.multi_objective)
    if not strategies:
        parser.error("no runnable strategy: " + "; ".join(notes))

    from optuna_nas.benchmarks import DEFAULT_HARDWARE_METRIC
    from optuna_nas.benchmarks import NB201Benchmark

    args.data_dir = str(data_dir(args.data_dir))  # the workers get the resolved folder
    bench = NB201Benchmark.load(args.data_dir, hardware=args.multi_objective)
    metric = args.metric or DEFAULT_HARDWARE_METRIC
    n_trials = budgets[-1]
    ref = true_hv = None
    header = [
        f"## NAS-Bench-201 CIFAR-10 ({len(bench)} cells; best {bench.best_accuracy:.4f} at index "
        f"{bench.best_index}, mean {bench.mean_accuracy:.2f})",
        "",
        f"Optuna {optuna.__version__}; {seeds} seeds x {len(noises)} noise levels; one study of "
        f"{n_trials} trials per run; the returned cell is the best-observed one; sampler and "
        "noise seeded by the run's seed.",
    ]
    if args.multi_objective:
        costs = bench.hardware_costs(metric)
        ref = (MO_REFERENCE_ACCURACY, float(costs.max()))
        acc = bench.accuracies
        true_hv = hypervolume(acc, costs, ref)
        header.append(
            f"Multi-objective: maximize accuracy, minimize {metric}; hypervolume reference point "
            f"(accuracy {ref[0]}%, {metric} {ref[1]:.4f}); score = HV of the returned front "
            f"(true accuracies) / HV of the table's true Pareto front ({true_hv:.4f})."
        )
    for note in notes:
        header.append(f"Note: {note}.")

    tasks = [
        {
            "strategy": s,
            "noise": n,
            "seed": seed,
            "n_trials": n_trials,
            "multi_objective": args.multi_objective,
            "metric": metric,
        }
        for s in strategies
        for n in noises
        for seed in range(args.first_seed, args.first_seed + seeds)
    ]
    stem = "compare_samplers_mo" if args.multi_objective else "compare_samplers"
    stored: dict[tuple[Any, ...], dict[str, Any]] = {}
    if args.reuse and (args.out / f"{stem}.json").is_file():
        stored = {_key(r): r for r in json.loads((args.out / f"{stem}.json").read_text())["runs"]}
    reused = [stored[_key(t)] for t in tasks if _key(t) in stored]
    tasks = [t for t in tasks if _key(t) not in stored]
    if reused:
        header.append(f"{len(reused)} runs reused from {args.out / stem}.json (--reuse).")
    start = time.perf_counter()
    runs: list[dict[str, Any]] = []
    workers = max(1, min(args.workers, len(tasks)))
    if workers == 1:
        global _BENCH
        _BENCH = bench
        runs = [run_one(t) for t in tasks]
    else:
        # spawn: fresh interpreters, no forked torch/ONNX thread state
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(workers, initializer=_init_worker, initargs=(args.data_dir,)) as pool:
            for i, r in enumerate(pool.imap_unordered(run_one, tasks), 1):
                runs.append(r)
                if len(tasks) >= 50 and i % (len(tasks) // 10) == 0:
                    print(
                        f"  {i}/{len(tasks)} runs, {time.perf_counter() - start:.0f} s",
                        file=sys.stderr,
                    )
    elapsed = time.perf_counter() - start
    new_keys = {_key(r) for r in runs}
    runs += reused
    seconds = {s: np.mean([r["seconds"] for r in runs if r["strategy"] == s]) for s in strategies}
    header.append(
        f"Wall time {elapsed:.0f} s for {len(new_keys)} runs with {workers} worker(s); seconds "
        "per run inside a worker: "
        + ", ".join(f"{strategy_label(s)} {seconds[s]:.2f}" for s in strategies)
        + "."
    )

    text = report(
        runs,
        strategies,
        noises,
        budgets,
        multi_objective=args.multi_objective,
        best=bench.best_accuracy,
        ref=ref,
        true_front_hv=true_hv,
        header=header,
    )
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.md").write_text(text + "\n")
    # Keep stored runs of other strategies/seeds too, so later --reuse calls still find them.
    reused_keys = {_key(r) for r in reused}
    kept = [r for k, r in stored.items() if k not in new_keys and k not in reused_keys]
    with open(args.out / f"{stem}.json", "w") as f:
        json.dump(
            {"budgets": budgets, "best_accuracy": bench.best_accuracy, "runs": runs + kept}, f
        )
    with open(args.out / f"{stem}.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["strategy", "noise", "seed", "budget", "returned_true_accuracy"])
        for r in sorted(runs, key=lambda r: (r["strategy"], r["noise"], r["seed"])):
            inc = incumbent_true(r["observed"], r["true"])
            for b in budgets:
                writer.writerow([r["strategy"], r["noise"], r["seed"], b, f"{inc[b - 1]:.4f}"])
    if not args.no_plot and not args.multi_objective:
        plot(runs, strategies, noises, n_trials, bench.best_accuracy, args.out / f"{stem}.png")
    print(f"\nWrote {args.out / stem}.* files", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
