"""What a trial costs when the study already holds 1,000 or 10,000 trials, sampler by sampler.

The NAS samplers keep no state that only lives in memory: every trial they read the study's
trials back from the storage (the population, the controller's new rewards). This script shows
what that costs next to RandomSampler (which reads nothing) and TPE, side by side in one process.
For each storage (in-memory, SQLite in a temporary folder) and history size N, a study is filled
with N completed NAS-Bench-201 trials (``study.add_trials``; :func:`sampler_overhead.history`),
one untimed trial lets each sampler catch up with the history, then K trials run through
``study.ask()`` -> ``space.suggest(trial)`` -> ``study.tell(...)``.

Columns: ``ms/trial`` = the whole loop per trial (mean over the K trials), ``x Random`` = that
divided by RandomSampler's in the same storage and N, ``sampler ms`` = the part spent inside the
sampler's methods (its storage reads included), ``catch-up ms`` = the sampler time of the untimed
first trial, ``reads/trial`` = calls of the storage's ``get_all_trials`` per trial (the sampler's
and Optuna's own). ``benchmarks/sampler_overhead.py`` has the sampler times alone, at more sizes.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/sampler_storage_cost.py
    python benchmarks/sampler_storage_cost.py --quick                  # CI, seconds
    python benchmarks/sampler_storage_cost.py --history 1000 --storage memory --k 50
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
import os
from pathlib import Path
import shutil
import sys
import tempfile
import time
from typing import Any

import optuna
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial
from sampler_overhead import TimedSampler
from sampler_overhead import history
from sampler_overhead import strategies
from sampler_overhead import write_sqlite_history


_BASELINE = "random"


@dataclass(frozen=True)
class Cost:
    """What one sampler costs on one storage and history."""

    ms_per_trial: float
    sampler_ms: float
    catch_up_ms: float
    reads_per_trial: float


def _count_reads(study: optuna.Study) -> list[int]:
    """Count the calls of the study storage's ``get_all_trials`` from now on (one-item list)."""
    calls = [0]
    storage = study._storage
    read = storage.get_all_trials

    def counted(*args: Any, **kwargs: Any) -> list[FrozenTrial]:
        calls[0] += 1
        return read(*args, **kwargs)

    storage.get_all_trials = counted  # type: ignore[method-assign]
    return calls


def measure(
    make_sampler: Callable[[int], BaseSampler],
    storage_url: str | None,
    trials: Sequence[FrozenTrial] | None,
    space: Any,
    value: Callable[[Any], float],
    k: int,
) -> Cost:
    """The cost of ``k`` trials after one untimed catch-up trial."""
    sampler = TimedSampler(make_sampler(0))
    if storage_url is None:
        study = optuna.create_study(direction="maximize", sampler=sampler)
        assert trials is not None
        study.add_trials(trials)
    else:  # the SQLite file already holds the history
        study = optuna.load_study(study_name="overhead", storage=storage_url, sampler=sampler)

    def run_trial() -> None:
        trial = study.ask()
        study.tell(trial, value(space.suggest(trial)))

    run_trial()
    catch_up = sampler.seconds
    reads = _count_reads(study)
    start = time.perf_counter()
    for _ in range(k):
        run_trial()
    total = time.perf_counter() - start
    return Cost(
        ms_per_trial=1e3 * total / k,
        sampler_ms=1e3 * (sampler.seconds - catch_up) / k,
        catch_up_ms=1e3 * catch_up,
        reads_per_trial=reads[0] / k,
    )


def table(costs: dict[tuple[str, int, str], Cost], labels: dict[str, str]) -> list[str]:
    """The markdown table: one row per storage, history size and sampler."""
    lines = [
        "| storage | N finished | sampler | ms/trial | x Random | sampler ms | catch-up ms "
        "| reads/trial |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for (storage, n, name), cost in costs.items():
        baseline = costs.get((storage, n, _BASELINE))
        ratio = f"{cost.ms_per_trial / baseline.ms_per_trial:.1f}" if baseline else "-"
        lines.append(
            f"| {storage} | {n:,} | {labels[name]} | {cost.ms_per_trial:.1f} | {ratio} "
            f"| {cost.sampler_ms:.1f} | {cost.catch_up_ms:.0f} | {cost.reads_per_trial:.1f} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, nargs="+", default=None, help="default 1000 10000")
    parser.add_argument("--k", type=int, default=None, help="timed trials per cell (default 20)")
    parser.add_argument(
        "--storage", nargs="+", choices=("memory", "sqlite"), default=["memory", "sqlite"]
    )
    parser.add_argument("--strategies", nargs="+", default=["random", "tpe", "evolution", "rnn"])
    parser.add_argument(
        "--data-dir", default=None, help="NB201 data for realistic values (optional)"
    )
    parser.add_argument("--quick", action="store_true", help="CI smoke run: history 100, k=3")
    args = parser.parse_args(argv)
    sizes = args.history or ([100] if args.quick else [1000, 10000])
    k = args.k or (3 if args.quick else 20)
    if k < 1 or min(sizes) < 0:
        parser.error("--k must be positive and --history non-negative")
    names = list(args.strategies)
    if _BASELINE not in names:
        names.insert(0, _BASELINE)  # the ratio needs it
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    factories, _ = strategies(names)
    labels = {name: label for name, (label, _) in factories.items()}

    print(f"Optuna {optuna.__version__}; {k} timed trials after each history.")
    costs: dict[tuple[str, int, str], Cost] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            trials, space, value = history(n, seed=n, data_dir=args.data_dir)
            template = Path(tmp) / f"history_{n}.db"
            if "sqlite" in args.storage:
                write_sqlite_history(template, trials)
            for storage in args.storage:
                for name, (label, make) in factories.items():
                    if storage == "sqlite":
                        db = Path(tmp) / f"run_{n}_{name}.db"
                        shutil.copy(template, db)  # every sampler starts from the same history
                        cost = measure(make, f"sqlite:///{db}", None, space, value, k)
                        os.remove(db)
                    else:
                        cost = measure(make, None, trials, space, value, k)
                    costs[(storage, n, name)] = cost
                    progress = f"  {storage} N={n} {label}: {cost.ms_per_trial:.1f} ms"
                    print(progress, file=sys.stderr)
    print()
    print("\n".join(table(costs, labels)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
