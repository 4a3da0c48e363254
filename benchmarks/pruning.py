"""Pruners compared as compute saved vs final regret, on learning curves.

Part 1, NAS-Bench-301 (default): each trial is a DARTS cell whose CIFAR-10 validation accuracy
after epochs 1..98 comes from the NAS-Bench-301 surrogate (``optuna_nas.benchmarks``), reported
as 0-based steps 0..97 like every objective of the package. Every
(sampler, pruner, seed) runs one study of ``--trials`` trials; we record the epochs "trained"
(sum of the epochs each trial reported) and the best final (epoch-98) accuracy among the
trials that completed. With the same seed the random sampler proposes the same cells whatever
the pruner, so ``delta`` = best accuracy with pruning - best without pruning (same sampler and
seed, in percentage points) measures exactly what the pruner lost. For regularized evolution
the trajectories differ; the same paired difference is reported.

Part 2, real training (``--real``): NAS-Bench-201 cells (8 channels, one cell per stage) trained
with :class:`optuna_nas.training.NASObjective` on the embedded MNIST digits, with the samplers of
``--real-samplers``. One job per (sampler, seed) runs every pruner; each distinct cell is
trained once to the end without pruning (seed ``seed + number`` of the first trial proposing
it) and every study that proposes it replays that real learning curve, so the pruners share
their training runs and evolution simply trains the cells its trajectories reach. The random
sampler's first seed also runs the LearningCurvePruner live and checks it matches the replay.

Usage::

    python benchmarks/pruning.py               # 50 seeds x 100 trials, random + evolution
    python benchmarks/pruning.py --quick       # CI smoke test (3 seeds, 30 trials)
    python benchmarks/pruning.py --sweep       # extra settings per pruner: a frontier
    python benchmarks/pruning.py --sweep --sweep-samplers random,evolution  # both frontiers
    python benchmarks/pruning.py --equal-budget  # + equal compute: pruned studies run on
    python benchmarks/pruning.py --real        # + real training on MNIST (CPU: ~15 min)
    python benchmarks/pruning.py --from-csv a/results.csv b/results.csv  # merge, re-plot

``--equal-budget`` also answers "what does the saved compute buy?": each pruned NB301 study
(default settings only) runs again, up to 4x the trials, until it has trained as many epochs
as the unpruned study, and ``equal_compute.csv`` holds its best accuracy within 1/4, 1/3, 1/2
and all of those epochs, paired with the unpruned best.

Writes ``results.csv`` (one row per study), ``summary.csv`` and ``pruning.png`` (epochs vs
regret) to ``--out``. Needs the ``benchmarks`` extra (yahpo-gym, matplotlib) and the NB301 files
(``--data-dir``, else ``$OPTUNA_NAS_DATA``, else the checkout's ``../shared/data``); the NB301
part is skipped with a message without them.

The helpers live beside this entry point, one concern each: ``_pruning_specs.py`` (the compared
pruners and samplers by name, the oracle yardstick), ``_pruning_nb301.py`` (NB301 cells and
objective), ``_pruning_study.py`` (one study and what is measured on it),
``_pruning_real.py`` (real training, replayed to every pruner) and ``_pruning_report.py``
(tables, CSV files, plot).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import astuple
from functools import partial
import os
from pathlib import Path
import sys
import time

from _common import data_dir
from _pruning_families import default_families
from _pruning_families import family
from _pruning_real import REAL_EPOCHS
from _pruning_real import live_check
from _pruning_real import run_real_seed
from _pruning_report import load_results
from _pruning_report import report
from _pruning_specs import pruner_factories
from _pruning_specs import sampler_factories
from _pruning_study import Result
from _pruning_study import Task
from _pruning_study import execute


# ----------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=None, help="seeds (50; --quick: 3)")
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds run from here (both parts)"
    )
    parser.add_argument(
        "--trials", type=int, default=None, help="trials per study (100; --quick: 30)"
    )
    parser.add_argument(
        "--families",
        default=",".join(default_families()),
        help="comma-separated curve families (nb301, lcbench-<task>, synthetic names; "
        "'none': only --real)",
    )
    parser.add_argument("--samplers", default="random,evolution")
    parser.add_argument(
        "--pruners", default=None, help="subset (default all), separated by ',' or ';'"
    )
    parser.add_argument(
        "--sweep", action="store_true", help="extra settings per pruner (a frontier)"
    )
    parser.add_argument(
        "--sweep-samplers", default="random", help="samplers the --sweep settings run with"
    )
    parser.add_argument(
        "--equal-budget",
        action="store_true",
        help="also run the NB301 pruned studies on until they trained the unpruned epochs",
    )
    parser.add_argument("--quick", action="store_true", help="3 seeds, 30 trials (CI)")
    parser.add_argument("--real", action="store_true", help="also real training on MNIST")
    parser.add_argument(
        "--real-samplers", default="random,evolution", help="samplers of the real part"
    )
    parser.add_argument("--real-seeds", type=int, default=3)
    parser.add_argument("--real-trials", type=int, default=20)
    parser.add_argument("--real-epochs", type=int, default=REAL_EPOCHS)
    parser.add_argument("--real-subset", type=int, default=1000, help="MNIST images used")
    parser.add_argument("--no-nb301", action="store_true", help="drop nb301 from --families")
    parser.add_argument(
        "--data-dir", default=None, help="folder holding nasbench301/ and lcbench/"
    )
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--out", default="pruning_results")
    parser.add_argument(
        "--from-csv", nargs="+", default=None, help="only re-render saved results.csv files"
    )
    args = parser.parse_args(argv)
    if args.from_csv:
        return report(load_results(args.from_csv), Path(args.out), [], "saved results")
    # --quick sets what is not given explicitly.
    args.seeds = args.seeds or (3 if args.quick else 50)
    args.trials = args.trials or (30 if args.quick else 100)
    if args.quick:
        args.real_seeds, args.real_trials, args.real_epochs = 1, 6, 4
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sampler_names = tuple(s for s in args.samplers.split(",") if s)
    available = tuple(sampler_factories(sampler_names))
    sweep_samplers = {s for s in args.sweep_samplers.split(",") if s}

    def seeds(n: int) -> range:
        return range(args.first_seed, args.first_seed + n)

    def pruner_names(max_resource: int, oracle: bool) -> list[str]:
        names = list(pruner_factories(max_resource, args.sweep, oracle=oracle))
        if args.pruners:
            # Names with a comma ("learning_curve:best_so_far,top_k=3"): separate by ";".
            sep = ";" if ";" in args.pruners else ","
            wanted = ["none"] + [p for p in args.pruners.split(sep) if p and p != "none"]
            unknown = sorted(set(wanted) - set(names))
            if unknown:
                raise SystemExit(f"Unknown pruner(s) {unknown}; choose from {names}.")
            names = wanted
        return names

    results: list[Result] = []
    start = time.perf_counter()
    families = [
        f
        for f in args.families.split(",")
        if f and f != "none" and not (args.no_nb301 and f == "nb301")
    ]
    try:
        specs = [family(f) for f in families]
    except ValueError as error:
        raise SystemExit(f"--families: {error}") from None
    ran: list[str] = []
    for spec in specs:
        if spec.needs_data:
            try:
                args.data_dir = str(data_dir(args.data_dir))  # the checkout's data by default
                spec.make(args.data_dir)
            except (FileNotFoundError, ImportError) as error:
                print(f"{spec.name} skipped: {error}", file=sys.stderr)
                continue
        ran.append(spec.name)
        names = pruner_names(spec.epochs, oracle=spec.name == "nb301")
        base_names = [p for p in names if ":" not in p or p.startswith("percentile:")]
        tasks = [
            Task(spec.name, s, p, seed, args.trials, args.sweep, args.data_dir, available)
            for s in available
            # The sweep's extra settings run with --sweep-samplers only (time).
            for p in (names if s in sweep_samplers else base_names)
            for seed in seeds(args.seeds)
        ]
        if args.equal_budget and spec.name == "nb301":
            tasks += [
                Task("nb301-budget", *astuple(t)[1:])
                for t in tasks
                if t.pruner != "none" and ":" not in t.pruner
            ]
        t0 = time.perf_counter()
        results += execute(tasks, args.jobs)
        print(f"{spec.name}: {time.perf_counter() - t0:.0f}s", file=sys.stderr)

    notes: list[str] = []
    if args.real:
        t0 = time.perf_counter()
        real_samplers = [s for s in args.real_samplers.split(",") if s]
        try:
            sampler_factories(real_samplers)
        except ValueError as error:
            raise SystemExit(f"--real-samplers: {error}") from None
        names = pruner_names(args.real_epochs, oracle=False)
        # One job per (sampler, seed): its pruners share the trained cells.
        run_seed = partial(
            run_real_seed,
            pruners=names,
            n_trials=args.real_trials,
            epochs=args.real_epochs,
            subset=args.real_subset,
            sweep=args.sweep,
        )
        jobs = [(s, seed) for s in real_samplers for seed in seeds(args.real_seeds)]
        if args.jobs <= 1 or len(jobs) == 1:
            outputs = [run_seed(s, seed) for s, seed in jobs]
        else:
            with ProcessPoolExecutor(max_workers=args.jobs) as pool:
                outputs = list(pool.map(run_seed, *zip(*jobs)))
        real_results = [r for rs, _, _ in outputs for r in rs]
        results += real_results
        for s in real_samplers:
            cells = sum(n for (sampler, _), (_, n, _) in zip(jobs, outputs) if sampler == s)
            seconds = sum(t for (sampler, _), (_, _, t) in zip(jobs, outputs) if sampler == s)
            notes.append(
                f"real training, {s}: {cells} distinct cells trained in {seconds:.0f}s "
                f"({args.real_seeds} seeds x {len(names)} pruners x {args.real_trials} trials)"
            )
        print(
            f"real training: {time.perf_counter() - t0:.0f}s ({args.jobs} jobs)", file=sys.stderr
        )
        replayed = [
            r
            for r in real_results
            if (r.sampler, r.pruner, r.seed) == ("random", "learning_curve", args.first_seed)
        ]
        if replayed:
            notes.append(
                live_check(
                    args.first_seed,
                    args.real_trials,
                    args.real_epochs,
                    args.real_subset,
                    replayed[0],
                )
            )

    parts = [f"{', '.join(ran)}: {args.seeds} seeds x {args.trials} trials"] if ran else []
    if args.real:
        parts.append(
            f"real {args.real_seeds} seeds x {args.real_trials} trials x {args.real_epochs} epochs"
        )
    description = ", ".join(parts)
    return report(results, out, notes, description, started=start)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
