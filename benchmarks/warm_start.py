"""Proxy warm-start on the NAS-Bench-201 CIFAR-10 table: samplers with and without it.

Runs ``compare_samplers.py``'s protocol (one study of ``max(budgets)`` trials per strategy,
noise and seed; the returned cell is the best-observed one; regret = best table accuracy -
its TRUE accuracy; sampler and noise seeded by the run's seed) for each strategy twice: plain,
and warm-started with :func:`optuna_nas.samplers.warm_start` (``N`` random cells drawn with the
run's seed, scored by a zero-cost proxy, the best ``k`` enqueued as the first trials). The
proxy scores are looked up in ``proxy_correlation.py``'s cache of all 15,625 cells (C=16, 5
cells per stage), so a seed costs nothing to score; the scoring time a real run would spend is
reported from the cache's measured seconds per network. Every trial is one evaluation (one
trained model), the warm start's ``k`` enqueued trials included.

Strategy ``evolution-ms``: the evolution sampler with the proxy-guided mutation ("move
proposal": ``RegularizedEvolutionSampler(search_space=..., mutation_score=proxy,
random_mutation_fraction=0.25)``, the proxy again a cache lookup).

Outputs: mean regret +- std per (strategy, warm start, noise, budget) and two-sided
Mann-Whitney U p-values of each warm-started strategy against plain TPE and against TPE with
the same warm start, on stdout and in ``<out>/warm_start.md``; per-run results in
``<out>/warm_start.json``.

Usage (from the repository root; needs the data-free cache: run
``benchmarks/proxy_correlation.py --parts free`` first)::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/warm_start.py --workers 2      # 100 seeds
    python benchmarks/warm_start.py --seeds 30 --strategies tpe evolution rnn evolution-ms
    python benchmarks/warm_start.py --quick                                   # CI, seconds
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import json
import math
import multiprocessing
import os
from pathlib import Path
import sys
import time
from typing import Any

from _common import data_dir
import compare_samplers as compare
import numpy as np
import optuna
import proxy_correlation as pc


RESULTS_DIR = compare.RESULTS_DIR
DEFAULT_BUDGETS = (10, 25, 50, 100, 300)
DEFAULT_STRATEGIES = ("tpe", "evolution", "rnn", "evolution-ms")
MOVE_PROPOSAL = "evolution-ms"

_STATE: dict[str, Any] = {}


def _init(data_folder: str, cache: dict[str, float]) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    from optuna_nas.benchmarks import NB201Benchmark

    _STATE["bench"] = NB201Benchmark.load(data_folder, hardware=False)
    _STATE["cache"] = cache


def label(spec: str, warm: str | None) -> str:
    if spec == MOVE_PROPOSAL:
        text = "RegularizedEvolution(move proposal)"
    else:
        text = compare.strategy_label(spec)
    return text + (f" + warm start {warm}" if warm else "")


def run_one(task: dict[str, Any]) -> dict[str, Any]:
    """One study, optionally warm-started; per-trial observed signal and true accuracy."""
    from optuna_nas.samplers import create_sampler
    from optuna_nas.samplers import warm_start

    bench, cache = _STATE["bench"], _STATE["cache"]
    space = bench.space

    def score(arch: Any) -> float:
        return cache[space.to_string(arch)]

    start = time.perf_counter()
    if task["strategy"] == MOVE_PROPOSAL:
        sampler = create_sampler(
            "evolution",
            seed=task["seed"],
            search_space=space,
            mutation_score=score,
            random_mutation_fraction=0.25,
        )
    else:
        sampler = compare.make_sampler(task["strategy"], task["seed"])
    objective = bench.objective(noise_std=task["noise"], seed=task["seed"])
    study = optuna.create_study(direction="maximize", sampler=sampler)
    if task["warm"]:
        _, n, k = task["warm"].split(":")
        warm_start(study, space, score, n_candidates=int(n), top_k=int(k), seed=task["seed"])
    study.optimize(objective, n_trials=task["n_trials"])
    trials = study.get_trials(deepcopy=False)
    result = dict(task)
    result["observed"] = [
        t.values[0] if t.state == optuna.trial.TrialState.COMPLETE else math.nan for t in trials
    ]
    result["true"] = [t.user_attrs.get("true_accuracy", math.nan) for t in trials]
    result["seconds"] = time.perf_counter() - start
    return result


def regrets(runs: list[dict[str, Any]], budgets: Sequence[int], best: float) -> np.ndarray:
    rows = sorted(runs, key=lambda r: r["seed"])
    return np.array(
        [
            best - compare.incumbent_true(r["observed"], r["true"])[np.array(budgets) - 1]
            for r in rows
        ]
    )


def report(
    runs: list[dict[str, Any]],
    variants: list[tuple[str, str | None]],
    noises: list[float],
    budgets: list[int],
    best: float,
    header: list[str],
) -> str:
    lines = list(header)
    warms = sorted({w for _, w in variants if w})
    for noise in noises:
        reg = {
            v: regrets(
                [r for r in runs if (r["strategy"], r["warm"]) == v and r["noise"] == noise],
                budgets,
                best,
            )
            for v in variants
        }
        n_seeds = len(next(iter(reg.values())))
        noise_text = "noiseless" if noise == 0 else f"Gaussian noise std {noise} points (seeded)"
        lines += [
            "",
            f"### {noise_text}: regret (%) of the returned cell, mean +- std over {n_seeds} seeds",
            "",
            "| strategy | " + " | ".join(f"{b} evals" for b in budgets) + " |",
            "|---|" + "---:|" * len(budgets),
        ]
        for v in variants:
            s = reg[v]
            std = s.std(axis=0, ddof=1) if len(s) > 1 else np.zeros(len(budgets))
            cells = [f"{s[:, j].mean():.2f} +- {std[j]:.2f}" for j in range(len(budgets))]
            lines.append(f"| {label(*v)} | " + " | ".join(cells) + " |")
        bases = [("tpe", None)] + [("tpe", w) for w in warms]
        bases = [b for b in bases if b in reg]
        if not bases:
            continue
        lines += [
            "",
            "Mann-Whitney U, two-sided p-values per budget ("
            + ", ".join(map(str, budgets))
            + "); a leading '-' = mean regret lower than the baseline's, '+' = higher, "
            "'=' = equal:",
            "",
            "| strategy | " + " | ".join(f"vs {label(*b)}" for b in bases) + " |",
            "|---|" + "---|" * len(bases),
        ]
        for v in variants:
            if v[0] == "tpe" or not v[1]:
                continue
            cells = []
            for b in bases:
                marks = []
                for j in range(len(budgets)):
                    p = compare.mann_whitney(reg[v][:, j], reg[b][:, j])
                    d = reg[v][:, j].mean() - reg[b][:, j].mean()
                    sign = "-" if d < 0 else ("+" if d > 0 else "=")
                    marks.append(f"{sign}{compare.fmt_p(p)}")
                cells.append(" / ".join(marks))
            lines.append(f"| {label(*v)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _key(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["strategy"], r["warm"], r["noise"], r["seed"], r["n_trials"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="proxy_correlation.py's cache folder (default <out>/proxy_cache)",
    )
    parser.add_argument(
        "--strategies",
        nargs="+",
        default=None,
        help=f"compare_samplers.py specs or {MOVE_PROPOSAL} (default: "
        f"{' '.join(DEFAULT_STRATEGIES)})",
    )
    parser.add_argument(
        "--warm-start",
        default=None,
        help="PROXY:N:K, e.g. synflow:1000:10 (the default); proxy = a cache column",
    )
    parser.add_argument("--seeds", type=int, default=None, help="default 100")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--budgets", type=int, nargs="+", default=None)
    parser.add_argument("--noise", type=float, nargs="+", default=None, help="default 0 0.5")
    parser.add_argument("--workers", type=int, default=None, help="default os.cpu_count()")
    parser.add_argument("--reuse", action="store_true", help="reuse runs in <out>/warm_start.json")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI smoke run: 3 seeds, budget 10, noise 0, tpe and evolution, warm start "
        "synflow:20:3 from a cache of 20 cells at C=4 (scored if missing)",
    )
    args = parser.parse_args(argv)

    q = args.quick
    seeds = args.seeds if args.seeds is not None else (3 if q else 100)
    budgets = sorted(set(args.budgets or ((10,) if q else DEFAULT_BUDGETS)))
    noises = list(args.noise if args.noise is not None else ((0.0,) if q else (0.0, 0.5)))
    specs = list(args.strategies or (("tpe", "evolution") if q else DEFAULT_STRATEGIES))
    warm = args.warm_start or ("synflow:20:3" if q else "synflow:1000:10")
    workers = args.workers or (1 if q else (os.cpu_count() or 1))
    try:
        proxy, n_text, k_text = warm.split(":")
        n_cand, top_k = int(n_text), int(k_text)
        if not 1 <= top_k <= n_cand:
            raise ValueError
    except ValueError:
        parser.error(f"--warm-start must be PROXY:N:K with 1 <= K <= N, got {warm!r}")
    if top_k > budgets[-1]:
        parser.error(f"the largest budget must be >= K={top_k}: the warm start's trials count")
    for spec in specs:
        if spec != MOVE_PROPOSAL:
            compare.parse_strategy(spec)
    if "tpe" not in specs:
        specs.insert(0, "tpe")  # the baseline of the tests

    from optuna_nas.benchmarks import NB201Benchmark

    folder = str(data_dir(args.data_dir))
    bench = NB201Benchmark.load(folder, hardware=False)
    cache_dir = args.cache or (args.out / "proxy_cache")
    settings = argparse.Namespace(channels=4 if q else 16, cells_per_stage=1 if q else 5)
    stem = pc.cache_stem("free", settings)
    rows = pc.read_cache(cache_dir, stem)
    if q and len(rows) < 20:
        pc.main(["--quick", "--parts", "free", "--no-report", "--cache", str(cache_dir)])
        rows = pc.read_cache(cache_dir, stem)
    if not rows or proxy not in next(iter(rows.values())):
        parser.error(f"no {proxy!r} scores in {cache_dir}/{stem}*.csv: run proxy_correlation.py")
    cache: dict[str, float] = {a: r[proxy] for a, r in rows.items()}
    seconds_per_net = float(np.mean([r["seconds"] for r in rows.values()]))
    if q:  # the quick cache holds 20 cells: score the others when first asked (C=4, one cell)
        from optuna_nas.estimators import ProxyScorer

        scorer = ProxyScorer(
            bench.space,
            proxies=(proxy,),
            num_classes=10,
            in_channels=3,
            image_size=32,
            build_kwargs={"channels": 4, "cells_per_stage": 1},
        )
        cache = _Scored(cache, lambda a: scorer(bench.space.from_string(a)))
        workers = 1
    elif len(cache) < len(bench):
        parser.error(
            f"the cache has {len(cache)} of {len(bench)} cells; finish proxy_correlation.py "
            "--parts free first"
        )

    variants = [(s, w) for s in specs for w in (None, warm)]
    n_trials = budgets[-1]
    tasks = [
        {"strategy": s, "warm": w, "noise": nz, "seed": seed, "n_trials": n_trials}
        for s, w in variants
        for nz in noises
        for seed in range(args.first_seed, args.first_seed + seeds)
    ]
    stored: dict[tuple[Any, ...], dict[str, Any]] = {}
    json_path = args.out / "warm_start.json"
    if args.reuse and json_path.is_file():
        stored = {_key(r): r for r in json.loads(json_path.read_text())["runs"]}
    runs = [stored[_key(t)] for t in tasks if _key(t) in stored]
    todo = [t for t in tasks if _key(t) not in stored]
    start = time.perf_counter()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    workers = max(1, min(workers, len(todo) or 1))
    if workers == 1:
        _init(folder, cache)
        runs += [run_one(t) for t in todo]
    else:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(workers, initializer=_init, initargs=(folder, cache)) as pool:
            for i, r in enumerate(pool.imap_unordered(run_one, todo), 1):
                runs.append(r)
                if len(todo) >= 50 and i % (len(todo) // 10) == 0:
                    print(
                        f"  {i}/{len(todo)} runs, {time.perf_counter() - start:.0f} s",
                        file=sys.stderr,
                    )
    elapsed = time.perf_counter() - start
    per_run = {
        v: np.mean([r["seconds"] for r in runs if (r["strategy"], r["warm"]) == v])
        for v in variants
    }
    header = [
        f"## Proxy warm-start on NAS-Bench-201 CIFAR-10 ({len(bench)} cells; best "
        f"{bench.best_accuracy:.4f})",
        "",
        f"Optuna {optuna.__version__}; {seeds} seeds (from {args.first_seed}) x "
        f"{len(noises)} noise levels; one study of {n_trials} trials per run. Warm start "
        f"{warm}: {n_cand} random cells (drawn with the run's seed) scored by {proxy}, the "
        f"best {top_k} enqueued first (optuna_nas.samplers.warm_start); they count as "
        f"evaluations. Scores are looked up in the cache {stem} ({len(rows)} cells); scoring "
        f"there took {seconds_per_net:.3f} s per network (one CPU thread, three data-free "
        f"proxies together), i.e. about {seconds_per_net * n_cand / 60:.1f} min per warm start, "
        "not counted as evaluations.",
        f"Wall time {elapsed:.0f} s for {len(todo)} new runs with {workers} worker(s); seconds "
        "per run: " + ", ".join(f"{label(*v)} {per_run[v]:.2f}" for v in variants) + ".",
    ]
    text = report(runs, variants, noises, budgets, bench.best_accuracy, header)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "warm_start.md").write_text(text + "\n")
    keys = {_key(r) for r in runs}
    kept = [r for k, r in stored.items() if k not in keys]
    json_path.write_text(
        json.dumps({"budgets": budgets, "best_accuracy": bench.best_accuracy, "runs": runs + kept})
    )
    print(f"\nWrote {args.out / 'warm_start'}.md/.json", file=sys.stderr)
    return 0


class _Scored(dict[str, float]):
    """A score lookup that scores (and keeps) the cells missing from a partial cache."""

    def __init__(self, scores: dict[str, float], score: Any) -> None:
        super().__init__(scores)
        self._score = score

    def __missing__(self, key: str) -> float:
        value = self[key] = float(self._score(key))
        return value


if __name__ == "__main__":
    sys.exit(main())
