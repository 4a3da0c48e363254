"""Milliseconds per trial that a sampler costs, with 100 / 1,000 / 10,000 finished trials.

For each storage (in-memory, SQLite) and history size N, a study is filled with N completed
NAS-Bench-201 trials (``study.add_trials`` of prepared ``FrozenTrial``s: random cells with their
table accuracy, or random values without the data), then K more trials run through
``study.ask()`` -> ``space.suggest(trial)`` -> ``study.tell(...)``. The sampler is wrapped so that
the time spent inside its own methods (``infer_relative_search_space``, ``sample_relative``,
``sample_independent``, ``before_trial``, ``after_trial``) is measured apart from storage work.

Columns: ``sampler ms`` = sampler time per trial (mean over the K trials), ``first ms`` = the
sampler time of the first of them (where a sampler catches up with the history, e.g. a
controller training on existing trials), ``ask+tell ms`` = the whole loop per trial (sampler plus
storage).

Usage (from the repository root)::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/sampler_overhead.py
    python benchmarks/sampler_overhead.py --quick                      # CI, seconds
    python benchmarks/sampler_overhead.py --history 100 1000 --storage memory
    python benchmarks/sampler_overhead.py --skip-above tpe=1000 rnn=1000  # leave out slow cells
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Sequence
import os
from pathlib import Path
import shutil
import sys
import tempfile
import time
from typing import Any

from _common import create_sampler
from _common import data_dir as checkout_data_dir
import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial
from optuna.trial import TrialState


_TIMED = (
    "infer_relative_search_space",
    "sample_relative",
    "sample_independent",
    "before_trial",
    "after_trial",
)


class TimedSampler(BaseSampler):
    """Delegates to ``inner`` and adds up the seconds spent in its methods."""

    def __init__(self, inner: BaseSampler) -> None:
        self.inner = inner
        self.seconds = 0.0

    def _timed(self, name: str, *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return getattr(self.inner, name)(*args)
        finally:
            self.seconds += time.perf_counter() - start

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> Any:
        return self._timed("infer_relative_search_space", study, trial)

    def sample_relative(self, study: Study, trial: FrozenTrial, search_space: Any) -> Any:
        return self._timed("sample_relative", study, trial, search_space)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: Any
    ) -> Any:
        return self._timed("sample_independent", study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._timed("before_trial", study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._timed("after_trial", study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()


Factory = Callable[[int], BaseSampler]


_LABELS = {
    "random": "Random",
    "tpe": "TPE",
    "evolution": "RegularizedEvolution",
    "rnn": "RNNController",
}


def strategies(names: Sequence[str]) -> tuple[dict[str, tuple[str, Factory]], list[str]]:
    """(label, seed -> sampler) by name, and notes (none: every strategy is available)."""
    factories: dict[str, tuple[str, Factory]] = {}
    for name in names:
        if name not in _LABELS:
            raise ValueError(f"Unknown strategy {name!r}; expected one of {list(_LABELS)}.")
        factories[name] = (_LABELS[name], _factory(name))
    return factories, []


def _factory(name: str) -> Factory:
    def make(seed: int) -> BaseSampler:
        return create_sampler(name, seed=seed)

    return make


def history(n: int, seed: int, data_dir: str | None) -> tuple[list[FrozenTrial], Any, Any]:
    """N completed trials over the NB201 space, the space, and a value function."""
    from optuna_nas.search_spaces import NASBench201SearchSpace

    space = NASBench201SearchSpace()
    rng = np.random.default_rng(seed)
    try:
        from optuna_nas.benchmarks import NB201Benchmark

        bench: Any = NB201Benchmark.load(checkout_data_dir(data_dir), hardware=False)

        def value(cell: Any) -> float:
            return float(bench.accuracy(cell))

    except FileNotFoundError:

        def value(cell: Any) -> float:
            return float(rng.normal(85.0, 5.0))

    distributions: dict[str, BaseDistribution] = {
        d.name: CategoricalDistribution(d.choices) for d in space.decisions
    }
    trials = []
    for _ in range(n):
        cell = space.sample(rng)
        trials.append(
            optuna.trial.create_trial(
                params=space.to_params(cell), distributions=distributions, value=value(cell)
            )
        )
    return trials, space, value


def write_sqlite_history(path: Path, trials: Sequence[FrozenTrial]) -> None:
    """Store the history in a SQLite file, once; each sampler then works on a copy of it."""
    from sqlalchemy import event

    storage = optuna.storages.RDBStorage(f"sqlite:///{path}")

    # Writing the history is set-up, not what is timed: skip the fsync of every commit.
    @event.listens_for(storage.engine, "connect")
    def _no_sync(connection: Any, _: Any) -> None:
        connection.execute("PRAGMA synchronous=OFF")

    storage.engine.dispose()  # reconnect with the pragma
    study = optuna.create_study(study_name="overhead", storage=storage, direction="maximize")
    study.add_trials(trials)
    storage.engine.dispose()


def measure(
    make_sampler: Callable[[int], BaseSampler],
    storage_url: str | None,
    trials: Sequence[FrozenTrial] | None,
    space: Any,
    value: Any,
    k: int,
) -> tuple[float, float, float]:
    """(sampler ms/trial, first-trial sampler ms, ask+tell ms/trial) over ``k`` new trials."""
    sampler = TimedSampler(make_sampler(0))
    if storage_url is None:
        study = optuna.create_study(direction="maximize", sampler=sampler)
        assert trials is not None
        study.add_trials(trials)
    else:  # the SQLite file already holds the history
        study = optuna.load_study(study_name="overhead", storage=storage_url, sampler=sampler)
    first = 0.0
    start = time.perf_counter()
    for i in range(k):
        before = sampler.seconds
        trial = study.ask()
        study.tell(trial, value(space.suggest(trial)))
        if i == 0:
            first = sampler.seconds - before
    total = time.perf_counter() - start
    return 1e3 * sampler.seconds / k, 1e3 * first, 1e3 * total / k


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--history", type=int, nargs="+", default=None, help="default 100 1000 10000"
    )
    parser.add_argument("--k", type=int, default=None, help="timed trials per cell (default 20)")
    parser.add_argument(
        "--storage", nargs="+", choices=("memory", "sqlite"), default=["memory", "sqlite"]
    )
    parser.add_argument("--strategies", nargs="+", default=["random", "tpe", "evolution", "rnn"])
    parser.add_argument(
        "--skip-above",
        nargs="+",
        default=[],
        metavar="NAME=N",
        help="skip a strategy for histories larger than N, e.g. tpe=1000",
    )
    parser.add_argument(
        "--data-dir", default=None, help="NB201 data for realistic values (optional)"
    )
    parser.add_argument("--quick", action="store_true", help="CI smoke run: history 100, k=5")
    args = parser.parse_args(argv)
    sizes = args.history or ([100] if args.quick else [100, 1000, 10000])
    k = args.k or (5 if args.quick else 20)
    if k < 1 or min(sizes) < 0:
        parser.error("--k must be positive and --history non-negative")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    factories, notes = strategies(args.strategies)
    try:
        skip_above = {k: int(v) for k, v in (item.split("=") for item in args.skip_above)}
    except ValueError:
        parser.error(f"--skip-above takes NAME=N items, got {args.skip_above!r}")

    print(f"Optuna {optuna.__version__}; {k} timed trials after each history; ms per trial.")
    for note in notes:
        print(f"Note: {note}.")
    rows: list[tuple[str, int, str, tuple[float, float, float] | None]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            trials, space, value = history(n, seed=n, data_dir=args.data_dir)
            template = Path(tmp) / f"history_{n}.db"
            if "sqlite" in args.storage:
                start = time.perf_counter()
                write_sqlite_history(template, trials)
                seconds = time.perf_counter() - start
                print(
                    f"(SQLite history of {n} trials written in {seconds:.1f} s)", file=sys.stderr
                )
            for storage in args.storage:
                for name, (label, make) in factories.items():
                    if n > skip_above.get(name, n):
                        rows.append((storage, n, label, None))
                        continue
                    result: tuple[float, float, float]
                    if storage == "sqlite":
                        db = Path(tmp) / f"run_{n}_{label}.db"
                        shutil.copy(template, db)  # every sampler starts from the same history
                        result = measure(make, f"sqlite:///{db}", None, space, value, k)
                        os.remove(db)
                    else:
                        result = measure(make, None, trials, space, value, k)
                    rows.append((storage, n, label, result))
                    print(f"  {storage} N={n} {label}: {result[0]:.2f} ms", file=sys.stderr)

    labels = [label for label, _ in factories.values()]
    print()
    print(
        "| storage | N finished | "
        + " | ".join(f"{s} sampler / first / ask+tell" for s in labels)
        + " |"
    )
    print("|---|---:|" + "---:|" * len(labels))
    for storage in args.storage:
        for n in sizes:
            cells = []
            for label in labels:
                (found,) = [r[3] for r in rows if r[:3] == (storage, n, label)]
                cells.append("skipped" if found is None else " / ".join(f"{x:.1f}" for x in found))
            print(f"| {storage} | {n:,} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
