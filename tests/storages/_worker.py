"""A worker process of the storage tests: ``python _worker.py MODE --storage URL ...``.

Modes:

- ``optimize``: load the study (created beforehand by the test) and run ``--n-trials`` trials of
  a cheap NAS-Bench-201 objective with a NAS sampler. Each trial records the user attribute
  ``worker`` and reports ``--steps`` intermediate values, continuing a re-run trial's curve
  where it stopped. With ``--hang``, the first trial hangs after its first intermediate value
  (for a test to SIGKILL the process), having written its number to ``--signal-dir/hanging``.
  With ``--signal-dir``, the worker writes ``ready_<worker>`` there once set up and waits for a
  file ``go``, so that all workers start their trials together.
- ``create``: ``create_storage`` and ``optuna.create_study(load_if_exists=True)`` only (after
  the same ``ready``/``go`` barrier), for the schema-creation race.
- ``grpc``: serve ``--storage`` through Optuna's gRPC storage proxy on 127.0.0.1:``--port``.

The value of a trial is a hash of its architecture in [0, 1), plus ``--offset * worker`` (so that
a test can tell from a reward which worker produced it).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import sys
import time
from typing import Any
import zlib


def architecture_value(params: dict[str, Any]) -> float:
    """A deterministic value in [0, 1) of a parameter dict."""
    text = ",".join(f"{k}={params[k]}" for k in sorted(params))
    return zlib.crc32(text.encode()) / 2**32


def _barrier(signal_dir: Path | None, worker: int) -> None:
    if signal_dir is None:
        return
    (signal_dir / f"ready_{worker}").touch()
    deadline = time.monotonic() + 120
    while not (signal_dir / "go").exists():
        if time.monotonic() > deadline:
            raise SystemExit("no go signal within 120 s")
        time.sleep(0.01)


def _storage(args: argparse.Namespace) -> Any:
    from optuna_nas.storages import create_storage

    return create_storage(
        args.storage,
        heartbeat_interval=args.heartbeat_interval or None,
        grace_period=args.grace_period,
        max_retry=args.max_retry,
    )


def optimize(args: argparse.Namespace) -> None:
    import optuna

    from optuna_nas.samplers import create_sampler
    from optuna_nas.search_spaces import create_search_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = create_search_space("nasbench201")
    kwargs: dict[str, Any] = {}
    if args.sampler == "evolution":
        kwargs = {"search_space": space, "population_size": 8, "sample_size": 4}
    seed = None if args.seed < 0 else args.seed
    sampler = create_sampler(args.sampler, seed=seed, **kwargs)
    storage = _storage(args)
    study = optuna.load_study(study_name=args.study, storage=storage, sampler=sampler)
    signal_dir = Path(args.signal_dir) if args.signal_dir else None
    hang = args.hang

    def objective(trial: optuna.Trial) -> float:
        nonlocal hang
        space.suggest(trial)
        trial.set_user_attr("worker", args.worker)
        trial.set_user_attr("pid", os.getpid())
        value = architecture_value(trial.params) + args.offset * args.worker
        # A re-run of a stale trial inherits its curve: continue after its last step.
        reported = study._storage.get_trial(trial._trial_id).intermediate_values
        for step in range(max(reported, default=-1) + 1, args.steps):
            trial.report(value * (step + 1) / args.steps, step)
            if hang:
                assert signal_dir is not None
                (signal_dir / "hanging.tmp").write_text(str(trial.number))
                (signal_dir / "hanging.tmp").rename(signal_dir / "hanging")
                time.sleep(600)
            time.sleep(args.sleep)
        return value

    _barrier(signal_dir, args.worker)
    study.optimize(objective, n_trials=args.n_trials)


def create(args: argparse.Namespace) -> None:
    import optuna

    signal_dir = Path(args.signal_dir) if args.signal_dir else None
    _barrier(signal_dir, args.worker)
    storage = _storage(args)
    optuna.create_study(study_name=args.study, storage=storage, load_if_exists=True)


def serve_grpc(args: argparse.Namespace) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.get_storage(args.storage)
    optuna.storages.run_grpc_proxy_server(storage, host="127.0.0.1", port=args.port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["optimize", "create", "grpc"])
    parser.add_argument("--storage", required=True)
    parser.add_argument("--study", default="nas")
    parser.add_argument("--sampler", default="evolution")
    parser.add_argument("--seed", type=int, default=0, help="negative: unseeded")
    parser.add_argument("--n-trials", type=int, default=1)
    parser.add_argument("--worker", type=int, default=0)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--sleep", type=float, default=0.005)
    parser.add_argument("--offset", type=float, default=0.0)
    parser.add_argument("--hang", action="store_true")
    parser.add_argument("--signal-dir")
    parser.add_argument("--heartbeat-interval", type=int, default=60, help="0: off")
    parser.add_argument("--grace-period", type=int)
    parser.add_argument("--max-retry", type=int, default=1)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    {"optimize": optimize, "create": create, "grpc": serve_grpc}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
