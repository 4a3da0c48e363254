"""Proxy warm-start in the DARTS space, on the NAS-Bench-301 surrogate: does it help there?

``warm_start.py``'s protocol moved to the DARTS space (``DartsSearchSpace()``, 8 edges per cell
type, ~10^18 cells), where zero-cost proxies rank cells far worse than on NAS-Bench-201
(``proxy_correlation.py``: on 1,000 random cells, Spearman 0.14 for synflow, 0.42 for the
parameter count). Each run is one study of ``max(budgets)`` trials; a trial's value is the
surrogate's predicted CIFAR-10 validation accuracy after 98 epochs (noiseless: the surrogate
is deterministic), and the returned cell is the best-observed one. Each strategy runs plain
and with each ``--warm-start PROXY:N:K``: ``N`` random cells drawn with the run's seed
(:func:`optuna_nas.samplers.warm_start`), scored at C=16 with 8 cells (the proxy table's
size) and the best ``K`` enqueued first, counted as evaluations. The proxies are scored live
(three data-free proxies together, by ``ProxyScorer`` with seed 0, as ``proxy_correlation.py``
does), into ``proxy_correlation.py``'s NB301 cache, so a cell is scored once across runs,
strategies and calls; the measured seconds per network are reported. There is no table of
all cells, so regret is taken against the best accuracy any run found.

Outputs: ``<out>/warm_start_nb301.md`` (the tables of ``warm_start.py``: regret per budget,
Mann-Whitney p-values against plain TPE and TPE with the same warm start) and ``.json``.

Usage (from the repository root; needs yahpo-gym and the NB301 files)::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/warm_start_nb301.py --seeds 30 --workers 2
    python benchmarks/warm_start_nb301.py --quick                     # CI, seconds
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
import warm_start as ws


RESULTS_DIR = compare.RESULTS_DIR
DEFAULT_BUDGETS = (10, 25, 50, 100)
DEFAULT_STRATEGIES = ("tpe", "evolution", "rnn")
DEFAULT_WARM_STARTS = ("synflow:100:10", "params:100:10")

_STATE: dict[str, Any] = {}


def _init(folder: str, scores: dict[str, dict[str, float]]) -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    import torch

    torch.set_num_threads(1)
    from optuna_nas.benchmarks import NB301Benchmark
    from optuna_nas.search_spaces import DartsSearchSpace

    _STATE["bench"] = NB301Benchmark.load(folder)
    _STATE["space"] = DartsSearchSpace()
    _STATE["scores"] = scores


def run_one(task: dict[str, Any]) -> dict[str, Any]:
    """One study, optionally warm-started from the precomputed scores."""
    from optuna_nas.samplers import warm_start

    bench, space, scores = _STATE["bench"], _STATE["space"], _STATE["scores"]

    def objective(trial: optuna.Trial) -> float:
        genotype = space.suggest(trial)
        accuracy = bench.accuracy(genotype)
        trial.set_user_attr("true_accuracy", accuracy)
        return accuracy

    start = time.perf_counter()
    study = optuna.create_study(
        direction="maximize", sampler=compare.make_sampler(task["strategy"], task["seed"])
    )
    if task["warm"]:
        proxy, n, k = task["warm"].split(":")
        warm_start(
            study,
            space,
            lambda g: scores[space.to_string(g)][proxy],
            n_candidates=int(n),
            top_k=int(k),
            seed=task["seed"],
        )
    study.optimize(objective, n_trials=task["n_trials"])
    trials = study.get_trials(deepcopy=False)
    result = dict(task)
    result["observed"] = [
        t.values[0] if t.state == optuna.trial.TrialState.COMPLETE else math.nan for t in trials
    ]
    result["true"] = [t.user_attrs.get("true_accuracy", math.nan) for t in trials]
    result["seconds"] = time.perf_counter() - start
    return result


def candidates(space: Any, seed: int, n: int) -> list[Any]:
    """The cells ``warm_start(..., n_candidates=n, seed=seed)`` scores (its draw is seeded):
    collected by a warm start of a throwaway study with a recording score."""
    from optuna_nas.samplers import warm_start

    drawn: list[Any] = []
    warm_start(
        optuna.create_study(),
        space,
        lambda g: drawn.append(g) or 0.0,
        n_candidates=n,
        top_k=1,
        seed=seed,
    )
    return drawn


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--cache", type=Path, default=None, help="default <out>/proxy_cache")
    parser.add_argument("--strategies", nargs="+", default=None)
    parser.add_argument("--warm-start", nargs="+", default=None, help="PROXY:N:K ...")
    parser.add_argument("--seeds", type=int, default=None, help="default 30")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--budgets", type=int, nargs="+", default=None)
    parser.add_argument("--workers", type=int, default=None, help="default os.cpu_count()")
    parser.add_argument("--quick", action="store_true", help="CI: 2 seeds, budget 10, C=4")
    args = parser.parse_args(argv)

    q = args.quick
    seeds = args.seeds if args.seeds is not None else (2 if q else 30)
    budgets = sorted(set(args.budgets or ((10,) if q else DEFAULT_BUDGETS)))
    specs = list(args.strategies or (("tpe", "evolution") if q else DEFAULT_STRATEGIES))
    warms = list(args.warm_start or (("synflow:8:3",) if q else DEFAULT_WARM_STARTS))
    workers = args.workers or (1 if q else (os.cpu_count() or 1))
    parsed = []
    for warm in warms:
        try:
            proxy, n_text, k_text = warm.split(":")
            n_cand, top_k = int(n_text), int(k_text)
            if proxy not in pc.FREE_PROXIES or not 1 <= top_k <= min(n_cand, budgets[-1]):
                raise ValueError
        except ValueError:
            parser.error(
                f"--warm-start must be PROXY:N:K with PROXY in {pc.FREE_PROXIES} and "
                f"1 <= K <= N, K <= the largest budget; got {warm!r}"
            )
        parsed.append((proxy, n_cand, top_k))
    for spec in specs:
        compare.parse_strategy(spec)
    if "tpe" not in specs:
        specs.insert(0, "tpe")

    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    from optuna_nas.benchmarks import NB301Benchmark
    from optuna_nas.estimators import ProxyScorer
    from optuna_nas.search_spaces import DartsSearchSpace

    folder = str(data_dir(args.data_dir))
    bench = NB301Benchmark.load(folder)
    space = DartsSearchSpace()
    settings = argparse.Namespace(nb301_channels=4 if q else 16, nb301_layers=2 if q else 8)
    stem = pc.cache_stem("nb301", settings)
    cache_dir = args.cache or (args.out / "proxy_cache")

    # Score every candidate of every run once (the same cells for every strategy of a seed).
    first, last = args.first_seed, args.first_seed + seeds
    wanted = {
        space.to_string(g): g
        for seed in range(first, last)
        for n in sorted({n for _, n, _ in parsed})
        for g in candidates(space, seed, n)
    }
    rows = pc.read_cache(cache_dir, stem)
    todo = [g for s, g in wanted.items() if s not in rows]
    print(f"scoring {len(todo)} of {len(wanted)} candidate cells", file=sys.stderr)
    scorer = ProxyScorer(
        space,
        proxies=pc.FREE_PROXIES,
        num_classes=10,
        in_channels=3,
        image_size=32,
        build_kwargs={"channels": settings.nb301_channels, "layers": settings.nb301_layers},
        seed=0,
    )
    writer = pc.CacheWriter(cache_dir / f"{stem}.csv", [*pc.FREE_PROXIES, "seconds", "accuracy"])
    pc.score_into_cache(
        scorer,
        todo,
        space,
        writer,
        set(),
        deadline=math.inf,
        label="NB301 candidates",
        extra=lambda g: {"accuracy": bench.accuracy(g)},
    )
    writer.close()
    rows = pc.read_cache(cache_dir, stem)
    scores = {s: rows[s] for s in wanted}
    seconds_per_net = float(np.mean([r["seconds"] for r in scores.values()]))

    variants = [(s, w) for s in specs for w in (None, *warms)]
    tasks = [
        {"strategy": s, "warm": w, "noise": 0.0, "seed": seed, "n_trials": budgets[-1]}
        for s, w in variants
        for seed in range(first, last)
    ]
    start = time.perf_counter()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    workers = max(1, min(workers, len(tasks)))
    if workers == 1:
        _init(folder, scores)
        runs = [run_one(t) for t in tasks]
    else:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(workers, initializer=_init, initargs=(folder, scores)) as pool:
            runs = list(pool.imap_unordered(run_one, tasks))
    elapsed = time.perf_counter() - start
    best = max(max(r["true"]) for r in runs)
    per_run = {
        v: np.mean([r["seconds"] for r in runs if (r["strategy"], r["warm"]) == v])
        for v in variants
    }
    header = [
        "## Proxy warm-start in the DARTS space (NAS-Bench-301 surrogate, 98 epochs)",
        "",
        f"Optuna {optuna.__version__}; {seeds} seeds (from {first}); one study of "
        f"{budgets[-1]} trials per run; noiseless. Warm starts "
        + ", ".join(warms)
        + ": N random cells drawn with the run's seed, scored by the proxy at C="
        f"{settings.nb301_channels} with {settings.nb301_layers} cells, the best K enqueued "
        f"first, counted as evaluations. Scoring took {seconds_per_net:.3f} s per network "
        f"(three data-free proxies together, one CPU thread; {len(todo)} cells scored in this "
        "call, the others from the cache), not counted as evaluations. Regret is against "
        f"the best accuracy any run found, {best:.3f}%.",
        f"Wall time {elapsed:.0f} s for {len(tasks)} runs with {workers} worker(s); seconds "
        "per run: " + ", ".join(f"{ws.label(*v)} {per_run[v]:.2f}" for v in variants) + ".",
    ]
    text = ws.report(runs, variants, [0.0], budgets, best, header)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "warm_start_nb301.md").write_text(text + "\n")
    (args.out / "warm_start_nb301.json").write_text(
        json.dumps({"budgets": budgets, "best_found": best, "runs": runs})
    )
    print(f"\nWrote {args.out / 'warm_start_nb301'}.md/.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
