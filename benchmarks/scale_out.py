"""Scaling out on PostgreSQL: trials per hour with 1-8 worker processes, and repeated cells.

A throwaway PostgreSQL server (``benchmarks/_postgres.py``, as the tests' ``postgres_url``
fixture) holds one study per measurement, created once before its workers start; each worker
is a forked process with its own storage (:func:`optuna_nas.storages.create_storage`, heartbeat
on) and its own sampler, all with seed 0. The workers' set-up (imports, connecting) is not
timed: they wait at a barrier and are released together.

(a) **Throughput.** W = 1, 2, 4, 8 workers each run a fixed number of trials of an objective
that suggests a NAS-Bench-201 cell and sleeps 0.5 s (a stand-in for training). Columns:
trials per hour, and the ratio to linear scaling (the 1-worker rate times W). The sampler's
and the storage's cost per trial show in how far the ratio falls below 1; so does a machine
with fewer cores than workers (the sleep itself scales on any machine).

(b) **Repeats.** 120 trials by 4 workers (30 each) with the same seed, per sampler: distinct
cells among them. Same-seeded samplers whose randomness depends only on the seed propose the
same cells in every worker; Optuna's RandomSampler with seed 0 in each worker is shown for
that, and unseeded samplers for comparison. The objective is a hash of the cell (no sleep).

Usage (from the repository root)::

    OMP_NUM_THREADS=1 python benchmarks/scale_out.py            # several minutes
    python benchmarks/scale_out.py --quick                       # smoke run, about a minute
    python benchmarks/scale_out.py --workers 1 2 4 --trials-per-worker 20 --samplers random
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import multiprocessing
import os
import sys
import time
from typing import Any
import zlib

from _common import create_sampler
from _postgres import PostgresServer
import optuna


_LABELS = {"evolution": "RegularizedEvolution", "rnn": "RNNController", "random": "Random"}


def _value(params: dict[str, Any]) -> float:
    text = ",".join(f"{k}={params[k]}" for k in sorted(params))
    return zlib.crc32(text.encode()) / 2**32


def _worker(
    url: str, sampler_name: str, seed: int | None, n_trials: int, sleep: float, barrier: Any
) -> None:
    from optuna_nas.search_spaces import create_search_space
    from optuna_nas.storages import create_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    space = create_search_space("nasbench201")
    kwargs = {"search_space": space} if sampler_name == "evolution" else {}
    sampler = create_sampler(sampler_name, seed=seed, **kwargs)
    study = optuna.load_study(study_name="scale", storage=create_storage(url), sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        space.suggest(trial)
        if sleep:
            time.sleep(sleep)
        return _value(trial.params)

    barrier.wait()
    study.optimize(objective, n_trials=n_trials)


def run(
    server: PostgresServer,
    sampler: str,
    n_workers: int,
    n_trials: int,
    *,
    seed: int | None,
    sleep: float,
) -> tuple[float, list[optuna.trial.FrozenTrial]]:
    """(wall seconds from the release of the workers to the last one's end, the trials)."""
    from optuna_nas.storages import create_storage

    url = server.create_database()
    optuna.create_study(study_name="scale", storage=create_storage(url), direction="maximize")
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(n_workers + 1)
    processes = [
        context.Process(target=_worker, args=(url, sampler, seed, n_trials, sleep, barrier))
        for _ in range(n_workers)
    ]
    for process in processes:
        process.start()
    barrier.wait(timeout=600)
    start = time.perf_counter()
    for process in processes:
        process.join()
    seconds = time.perf_counter() - start
    if any(p.exitcode != 0 for p in processes):
        raise RuntimeError(f"a worker failed: exit codes {[p.exitcode for p in processes]}")
    study = optuna.load_study(study_name="scale", storage=create_storage(url))
    trials = study.get_trials(deepcopy=False)
    server.drop_database(url.rsplit("/", 1)[1])
    return seconds, trials


def throughput(
    server: PostgresServer,
    samplers: Sequence[str],
    workers: Sequence[int],
    n_trials: int,
    sleep: float,
) -> None:
    rates: dict[tuple[str, int], float] = {}
    for sampler in samplers:
        for w in workers:
            seconds, trials = run(server, sampler, w, n_trials, seed=0, sleep=sleep)
            done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
            assert done == w * n_trials, (sampler, w, done)
            rates[sampler, w] = 3600 * done / seconds
            print(f"  {sampler} W={w}: {seconds:.1f} s", file=sys.stderr)
    print(
        f"\n(a) Trials per hour on PostgreSQL, {n_trials} trials per worker, objective sleeps "
        f"{sleep} s; in parentheses the ratio to linear scaling (1-worker rate x W).\n"
    )
    print("| sampler | " + " | ".join(f"W={w}" for w in workers) + " |")
    print("|---|" + "---:|" * len(workers))
    for sampler in samplers:
        base = rates[sampler, workers[0]] / workers[0]
        cells = [
            f"{rates[sampler, w]:,.0f} ({rates[sampler, w] / (base * w):.2f})" for w in workers
        ]
        print(f"| {_LABELS[sampler]} | " + " | ".join(cells) + " |")


def repeats(server: PostgresServer, samplers: Sequence[str], n_workers: int, total: int) -> None:
    per_worker = total // n_workers
    rows = []
    for sampler in samplers:
        cells = []
        for seed in (0, None):
            _, trials = run(server, sampler, n_workers, per_worker, seed=seed, sleep=0.0)
            cells_seen = {tuple(sorted(t.params.items())) for t in trials}
            cells.append(len(cells_seen))
            print(f"  {sampler} seed={seed}: {len(cells_seen)} distinct", file=sys.stderr)
        rows.append((sampler, cells))
    n = per_worker * n_workers
    print(
        f"\n(b) Distinct NAS-Bench-201 cells among {n} trials by {n_workers} worker processes "
        f"({per_worker} each; the space has 15,625 cells).\n"
    )
    print("| sampler | all workers seed 0 | unseeded |")
    print("|---|---:|---:|")
    for sampler, (seeded, unseeded) in rows:
        print(f"| {_LABELS[sampler]} | {seeded} / {n} | {unseeded} / {n} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samplers", nargs="+", choices=list(_LABELS), default=list(_LABELS))
    parser.add_argument("--workers", type=int, nargs="+", default=None, help="default 1 2 4 8")
    parser.add_argument("--trials-per-worker", type=int, default=None, help="default 10")
    parser.add_argument("--sleep", type=float, default=None, help="objective seconds (0.5)")
    parser.add_argument("--repeat-trials", type=int, default=None, help="default 120")
    parser.add_argument("--quick", action="store_true", help="smoke run: W=1,2; few trials")
    args = parser.parse_args(argv)
    workers = args.workers or ([1, 2] if args.quick else [1, 2, 4, 8])
    n_trials = args.trials_per_worker or (2 if args.quick else 10)
    sleep = args.sleep if args.sleep is not None else (0.05 if args.quick else 0.5)
    total = args.repeat_trials or (8 if args.quick else 120)
    if min(workers) < 1 or n_trials < 1 or sleep < 0 or total < 4:
        parser.error("--workers and --trials-per-worker must be positive, --repeat-trials >= 4")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    print(f"Optuna {optuna.__version__}; {os.cpu_count()} CPUs.")
    with PostgresServer.start() as server:
        throughput(server, args.samplers, sorted(workers), n_trials, sleep)
        repeats(server, args.samplers, 4, total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
