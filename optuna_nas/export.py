"""From a search to a model: export a trial's architecture, weights and ONNX; load them back.

:func:`export_trial` writes a folder with

* ``architecture.json``: the search space, the architecture (string and parameters), the other
  hyperparameters, the build arguments and the trial it came from (schema below);
* ``weights.pt``: the trained ``state_dict``, when the trial kept it
  (``NASObjective(keep_weights=k, ...)``), for ``torch.load(..., weights_only=True)``;
* ``model.onnx``: the trained network in eval mode (input ``input``, output ``logits``, a
  dynamic batch axis), with the weights.

:func:`load_architecture` reads the folder back as an :class:`ExportedArchitecture`, and
:func:`load_model` rebuilds the trained ``nn.Module``. Neither needs the study.

``architecture.json``::

    {"format": "optuna-nas/architecture", "version": 1,
     "search_space": "nasbench201", "search_space_kwargs": {},
     "arch": "<space.to_string(arch)>", "params": {<the trial's params owned by the space>},
     "hyperparameters": {<the trial's other params>},
     "build_kwargs": {...}, "num_classes": 10, "in_channels": 1, "image_size": 16,
     "source": {"study_name": "...", "trial_number": 7, "values": [0.93],
                "user_attrs": {"n_params": ..., "flops": ..., "val_acc_curve": [...], ...}},
     "weights": "weights.pt" or null, "onnx": "model.onnx" or null}

``search_space_kwargs`` holds the space's non-default constructor options (e.g. a macro
space's ``num_layers``): ``create_search_space(search_space, **search_space_kwargs)``.
"""

from __future__ import annotations

from collections.abc import Mapping
import contextlib
import dataclasses
from dataclasses import dataclass
import json
import os
import shutil
import tempfile
from typing import TYPE_CHECKING
from typing import Any
import warnings

import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import torch
from torch import nn

from optuna_nas._weights import BUILD_ATTR
from optuna_nas._weights import KEEP_WEIGHTS_ATTR
from optuna_nas._weights import WEIGHTS_ARTIFACT_ATTR
from optuna_nas._weights import WEIGHTS_FILE
from optuna_nas._weights import WEIGHTS_PATH_ATTR
from optuna_nas._weights import to_jsonable
from optuna_nas.search_spaces import SearchSpace
from optuna_nas.search_spaces import create_search_space
from optuna_nas.search_spaces import list_search_spaces


if TYPE_CHECKING:
    from optuna_nas._optuna_compat import ArtifactStore


__all__ = [
    "ARCHITECTURE_FILE",
    "FORMAT",
    "FORMAT_VERSION",
    "ExportedArchitecture",
    "export_network",
    "export_trial",
    "load_architecture",
    "load_model",
]

#: The ``format`` of ``architecture.json``.
FORMAT = "optuna-nas/architecture"
#: The ``version`` of ``architecture.json`` that this release writes and reads.
FORMAT_VERSION = 1
#: The file names in an export folder.
ARCHITECTURE_FILE = "architecture.json"
ONNX_FILE = "model.onnx"

# User attributes that the JSON holds elsewhere (or that name files of the study's machine).
_INTERNAL_ATTRS = (
    "arch",
    "search_space",
    BUILD_ATTR,
    KEEP_WEIGHTS_ATTR,
    WEIGHTS_ARTIFACT_ATTR,
    WEIGHTS_PATH_ATTR,
)


@dataclass(frozen=True)
class ExportedArchitecture:
    """An exported trial: ``architecture.json`` as an object (see :mod:`optuna_nas.export`).

    Attributes:
        search_space: The registered name of the search space.
        search_space_kwargs: The space's non-default constructor options.
        arch: The architecture string (``space.to_string``).
        params: The trial's parameters owned by the space.
        hyperparameters: The trial's other parameters (learning rate, ...).
        build_kwargs: ``space.build``'s options (``channels``, ...).
        num_classes: Output classes.
        in_channels: Image channels.
        image_size: Image side in pixels (the ONNX model's input size).
        source: ``study_name``, ``trial_number``, ``values`` and ``user_attrs`` of the trial.
        weights: The ``state_dict`` file, relative to :attr:`path`; ``None`` without weights.
        onnx: The ONNX file, relative to :attr:`path`; ``None`` without one.
        path: The export folder (``None`` for an object not written or read).
        notice: Why the export has no weights, when it has none (not part of the JSON).
        format: ``"optuna-nas/architecture"``.
        version: The format's version.
    """

    search_space: str
    arch: str
    params: dict[str, Any]
    hyperparameters: dict[str, Any]
    build_kwargs: dict[str, Any]
    num_classes: int
    in_channels: int
    image_size: int
    source: dict[str, Any]
    weights: str | None = None
    onnx: str | None = None
    search_space_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    path: str | None = None
    notice: str | None = None
    format: str = FORMAT
    version: int = FORMAT_VERSION

    @property
    def space(self) -> SearchSpace[Any]:
        """The search space: ``create_search_space(search_space, **search_space_kwargs)``."""
        return create_search_space(self.search_space, **self.search_space_kwargs)

    @property
    def architecture(self) -> Any:
        """The architecture object (``space.from_string(arch)``)."""
        return self.space.from_string(self.arch)

    def build(self, **overrides: Any) -> nn.Module:
        """Build the untrained network with the recorded arguments, ``overrides`` merged.

        Args:
            **overrides: ``num_classes``, ``in_channels`` or build options replacing the
                recorded ones (e.g. ``channels=36`` to retrain a wider network).
        """
        kwargs: dict[str, Any] = {
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            **self.build_kwargs,
            **overrides,
        }
        space = self.space
        return space.build(space.from_string(self.arch), **kwargs)

    @property
    def weights_path(self) -> str | None:
        """The absolute path of the weights file, or ``None``."""
        return self._file(self.weights)

    @property
    def onnx_path(self) -> str | None:
        """The absolute path of the ONNX file, or ``None``."""
        return self._file(self.onnx)

    def _file(self, name: str | None) -> str | None:
        if name is None:
            return None
        return os.path.abspath(os.path.join(self.path or ".", name))

    def to_json(self) -> dict[str, Any]:
        """The ``architecture.json`` content."""
        return {
            "format": self.format,
            "version": self.version,
            "search_space": self.search_space,
            "search_space_kwargs": self.search_space_kwargs,
            "arch": self.arch,
            "params": self.params,
            "hyperparameters": self.hyperparameters,
            "build_kwargs": self.build_kwargs,
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "image_size": self.image_size,
            "source": self.source,
            "weights": self.weights,
            "onnx": self.onnx,
        }


# ---------------------------------------------------------------------------- export
def export_trial(
    study: optuna.Study,
    trial: int | str | FrozenTrial = "best",
    *,
    out_dir: str | os.PathLike[str],
    artifact_store: ArtifactStore | None = None,
    onnx: bool = True,
    require_weights: bool = False,
) -> ExportedArchitecture:
    """Export a trial of a :class:`~optuna_nas.training.NASObjective` study to a folder.

    Writes ``architecture.json`` into ``out_dir`` (created), and, when the trial kept its
    trained weights (``NASObjective(keep_weights=k, ...)``), ``weights.pt`` and ``model.onnx``.
    Without kept weights only the architecture is written (untrained weights are not
    invented): the result's ``notice`` says why, and a warning is emitted. Files of an earlier
    export into the same folder that this one does not write are removed.

    Args:
        study: The study (any storage).
        trial: ``"best"`` (``study.best_trial``), a trial number, or a ``FrozenTrial``.
        out_dir: The export folder.
        artifact_store: The study's artifact store, for trials that kept their weights as
            artifacts.
        onnx: Also write ``model.onnx`` (needs the ``onnx`` package).
        require_weights: Raise instead of exporting an architecture without weights.

    Returns:
        The export, with ``path`` set to ``out_dir`` (absolute).

    Raises:
        ValueError: ``"best"`` of a multi-objective study (the message lists the
            Pareto-optimal trials), an unknown trial, a trial that is not COMPLETE or has no
            valid architecture of a registered space or no build record, weights kept as an
            artifact without ``artifact_store``, weights that do not fit the architecture, or,
            with ``require_weights``, a trial without kept weights. Messages are one line.

    Example:
        .. code-block:: python

            import optuna
            from optuna_nas.export import export_trial, load_model
            from optuna_nas.search_spaces import create_search_space
            from optuna_nas.training import EmbeddedDataModule, NASObjective

            objective = NASObjective(
                create_search_space("nasbench201"),
                EmbeddedDataModule(dataset="digits", subset=300, image_size=8),
                max_epochs=1,
                build_kwargs={"channels": 4, "cells_per_stage": 1},
                trainer_kwargs={"accelerator": "cpu"},
                keep_weights=1,  # the best trial keeps its trained weights
                weights_dir="weights",
            )
            study = optuna.create_study(direction="maximize")
            study.optimize(objective, n_trials=2)
            export_trial(study, "best", out_dir="best_model")
            model = load_model("best_model")  # the trained network, in eval mode
    """
    frozen = _resolve_trial(study, trial)
    n = frozen.number
    if frozen.state != TrialState.COMPLETE:
        raise ValueError(
            f"Trial {n} is {frozen.state.name}, not COMPLETE: only completed trials are exported."
        )
    name, space_kwargs, space = _space_of(frozen)
    params = {k: v for k, v in frozen.params.items() if space.owns_param(k)}
    hyperparameters = {k: v for k, v in frozen.params.items() if not space.owns_param(k)}
    try:
        arch = space.from_params(params)
    except ValueError as error:
        raise ValueError(
            f"Trial {n}'s parameters are not a valid {name!r} architecture: {error}"
        ) from None
    build = frozen.user_attrs.get(BUILD_ATTR)
    if not isinstance(build, Mapping) or not all(
        k in build for k in ("num_classes", "in_channels", "image_size")
    ):
        raise ValueError(
            f"Trial {n} has no {BUILD_ATTR!r} user attribute (NASObjective records it before "
            "training), so its number of classes, input channels and image size are unknown."
        )
    exported = ExportedArchitecture(
        search_space=name,
        search_space_kwargs=space_kwargs,
        arch=space.to_string(arch),
        params=dict(params),
        hyperparameters=dict(hyperparameters),
        build_kwargs=dict(build.get("kwargs") or {}),
        num_classes=int(build["num_classes"]),
        in_channels=int(build["in_channels"]),
        image_size=int(build["image_size"]),
        source={
            "study_name": study.study_name,
            "trial_number": n,
            "values": list(frozen.values or []),
            "user_attrs": _public_user_attrs(frozen),
        },
        path=os.path.abspath(out_dir),
    )

    out = os.fspath(out_dir)
    os.makedirs(out, exist_ok=True)
    # Staged in the folder and moved in at the end: an export that fails leaves an earlier
    # export in the folder as it was.
    with tempfile.TemporaryDirectory(dir=out, prefix=".export-") as staging:
        notice = _copy_weights(frozen, artifact_store, os.path.join(staging, WEIGHTS_FILE))
        if notice is not None and require_weights:
            raise ValueError(notice)
        if notice is None:
            exported = dataclasses.replace(exported, weights=WEIGHTS_FILE)
            network = _load_kept(exported, os.path.join(staging, WEIGHTS_FILE), n)
            if onnx:
                input_shape = (exported.in_channels, exported.image_size, exported.image_size)
                write_onnx(network, os.path.join(staging, ONNX_FILE), input_shape=input_shape)
                exported = dataclasses.replace(exported, onnx=ONNX_FILE)
        for file in (WEIGHTS_FILE, ONNX_FILE):
            staged, target = os.path.join(staging, file), os.path.join(out, file)
            if os.path.exists(staged):
                os.replace(staged, target)
            else:  # a file of an earlier export that this one does not have
                with contextlib.suppress(FileNotFoundError):
                    os.remove(target)
        _write_json(os.path.join(out, ARCHITECTURE_FILE), exported.to_json())
    if notice is not None:
        warnings.warn(f"{notice} Exported the architecture only.", stacklevel=2)
        exported = dataclasses.replace(exported, notice=notice)
    return exported


def export_network(
    exported: ExportedArchitecture,
    network: nn.Module,
    *,
    out_dir: str | os.PathLike[str],
    onnx: bool = True,
) -> ExportedArchitecture:
    """Write a network you trained yourself as an export folder that :func:`load_model` reads.

    For a network built from ``exported`` (e.g. ``exported.build(channels=36)`` retrained at
    full scale, as ``optuna-nas retrain`` does): ``exported`` describes it (pass it with the
    build arguments, classes and channels the network was built with), and its ``state_dict``
    goes to ``weights.pt``, the network in eval mode to ``model.onnx``.

    Args:
        exported: The description of ``network`` (``architecture.json``'s content).
        network: The network; its training mode is restored afterwards.
        out_dir: The folder (created).
        onnx: Also write ``model.onnx``.

    Returns:
        The written export (``path`` set).

    Raises:
        ValueError: ``network``'s parameters do not fit the network ``exported`` builds.
    """
    out = os.fspath(out_dir)
    os.makedirs(out, exist_ok=True)
    exported = dataclasses.replace(
        exported, path=os.path.abspath(out), weights=WEIGHTS_FILE, onnx=None, notice=None
    )
    state = {k: v.detach().cpu() for k, v in network.state_dict().items()}
    try:  # the description must rebuild this network, or load_model would fail later
        exported.build().load_state_dict(state)
    except RuntimeError as error:
        message = " ".join(str(error).split())
        raise ValueError(f"The network does not fit its description: {message}") from None
    with tempfile.TemporaryDirectory(dir=out, prefix=".export-") as staging:
        torch.save(state, os.path.join(staging, WEIGHTS_FILE))
        if onnx:
            training = network.training
            shape = (exported.in_channels, exported.image_size, exported.image_size)
            try:
                write_onnx(network, os.path.join(staging, ONNX_FILE), input_shape=shape)
            finally:
                network.train(training)
            exported = dataclasses.replace(exported, onnx=ONNX_FILE)
        for file in (WEIGHTS_FILE, ONNX_FILE):
            staged, target = os.path.join(staging, file), os.path.join(out, file)
            if os.path.exists(staged):
                os.replace(staged, target)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(target)
        _write_json(os.path.join(out, ARCHITECTURE_FILE), exported.to_json())
    return exported


def _load_kept(exported: ExportedArchitecture, weights: str, n: int) -> nn.Module:
    """The trial's network with its kept weights (loaded strictly)."""
    try:
        network = exported.build()
    except ValueError as error:
        raise ValueError(f"Trial {n}'s network cannot be built: {error}") from None
    state = torch.load(weights, map_location="cpu", weights_only=True)
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as error:
        # torch's message spans lines (missing, unexpected, mismatched keys): one line here.
        detail = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        if len(detail) > 400:
            detail = detail[:400] + "..."
        raise ValueError(
            f"Trial {n}'s kept weights do not fit its architecture: {detail}"
        ) from None
    return network


def write_onnx(
    network: nn.Module, path: str | os.PathLike[str], *, input_shape: tuple[int, int, int]
) -> None:
    """Write ``network`` (in eval mode, on the CPU) as ONNX: input ``input``, output
    ``logits``, with a dynamic batch axis, and check the file with ``onnx.checker``.

    The network is put in eval mode (where the built-in networks return logits only, the
    DARTS network with an auxiliary head too).

    Args:
        network: The network.
        path: The ``.onnx`` file.
        input_shape: ``(C, H, W)`` of one image.
    """
    import onnx

    network = network.cpu().eval()
    # Batch 2, not 1: the traced graph must not specialize on a batch of one.
    example = torch.zeros(2, *input_shape)
    with warnings.catch_warnings():
        # The TorchScript-based exporter (dynamo=False) is deprecated since torch 2.9 but is
        # in every torch this package admits (>= 2.4), needs no onnxscript, exports the three
        # built-in spaces exactly and takes a tenth of the torch.export-based one's time.
        warnings.simplefilter("ignore", DeprecationWarning)
        # A note on its own graph optimisation (DARTS' channel slices), not on the result.
        warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)
        torch.onnx.export(
            network,
            (example,),
            os.fspath(path),
            dynamo=False,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
    onnx.checker.check_model(os.fspath(path))


# ---------------------------------------------------------------------------- load
def load_architecture(path: str | os.PathLike[str]) -> ExportedArchitecture:
    """Read an export (its folder or its ``architecture.json``).

    Raises:
        FileNotFoundError: There is no ``architecture.json`` at ``path``.
        ValueError: The file is not an optuna-nas architecture of a version this release
            reads, or lacks fields.

    Example:
        .. code-block:: python

            # Not run by the test suite: reads the folder of export_trial's example.
            from optuna_nas.export import load_architecture

            exported = load_architecture("best_model")
            network = exported.build(channels=36)  # untrained, e.g. to retrain wider
    """
    path = os.fspath(path)
    file = os.path.join(path, ARCHITECTURE_FILE) if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise FileNotFoundError(
            f"No exported architecture at {path!r}: expected a folder written by export_trial "
            f"(holding {ARCHITECTURE_FILE}) or that file."
        )
    try:
        with open(file, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{file} is not JSON: {error}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValueError(
            f"{file} is not an optuna-nas architecture (format {found!r}, expected {FORMAT!r})."
        )
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{file} has format version {data.get('version')!r}; this optuna-nas reads "
            f"version {FORMAT_VERSION}."
        )
    fields = {f.name for f in dataclasses.fields(ExportedArchitecture)} - {"path", "notice"}
    required = fields - {"search_space_kwargs"}
    missing = sorted(required - set(data))
    if missing:
        raise ValueError(f"{file} lacks the field(s) {missing}.")
    values = {k: v for k, v in data.items() if k in fields}
    return ExportedArchitecture(**values, path=os.path.dirname(os.path.abspath(file)))


def load_model(path: str | os.PathLike[str], *, map_location: Any = "cpu") -> nn.Module:
    """Rebuild an exported trial's trained network (weights loaded strictly, eval mode).

    Args:
        path: The export folder (or its ``architecture.json``).
        map_location: Where the weights go (``torch.load``'s ``map_location``); the network
            is moved along when it is a device.

    Raises:
        FileNotFoundError: No export at ``path``, or its weights file is missing.
        ValueError: The export has no weights (see :func:`export_trial`), or they do not fit.

    Example:
        .. code-block:: python

            # Not run by the test suite: reads the folder of export_trial's example.
            import torch
            from optuna_nas.export import load_model

            model = load_model("best_model")
            logits = model(torch.zeros(1, 1, 16, 16))
    """
    exported = load_architecture(path)
    source = exported.source
    weights_path = exported.weights_path
    if weights_path is None:
        raise ValueError(
            f"The export at {os.fspath(path)!r} (trial {source.get('trial_number')} of study "
            f"{source.get('study_name')!r}) has no weights: its trial did not keep them; "
            "build the untrained network with load_architecture(path).build()."
        )
    if not os.path.isfile(weights_path):
        raise FileNotFoundError(f"The export's weights file {weights_path!r} is missing.")
    network = exported.build()
    state = torch.load(weights_path, map_location=map_location, weights_only=True)
    network.load_state_dict(state, strict=True)
    if isinstance(map_location, (str, torch.device)):
        network.to(map_location)
    return network.eval()


# ---------------------------------------------------------------------------- internals
def _resolve_trial(study: optuna.Study, trial: int | str | FrozenTrial) -> FrozenTrial:
    if isinstance(trial, FrozenTrial):
        return trial
    if isinstance(trial, str):
        if trial != "best":
            raise ValueError(
                f"trial must be 'best', a trial number or a FrozenTrial; got {trial!r}."
            )
        if len(study.directions) > 1:
            numbers = sorted(t.number for t in study.best_trials)
            raise ValueError(
                f"Study {study.study_name!r} is multi-objective and has no single best trial; "
                f"pick one of its Pareto-optimal trials {numbers} by number."
            )
        try:
            return study.best_trial
        except ValueError:
            raise ValueError(
                f"Study {study.study_name!r} has no completed trial to export."
            ) from None
    if isinstance(trial, bool) or not isinstance(trial, int):
        raise ValueError(f"trial must be 'best', a trial number or a FrozenTrial; got {trial!r}.")
    trials = study.get_trials(deepcopy=False)
    for t in trials:
        if t.number == trial:
            return t
    raise ValueError(
        f"Study {study.study_name!r} has no trial {trial} (it has {len(trials)} trials, "
        f"numbered from 0)."
    )


def _space_of(trial: FrozenTrial) -> tuple[str, dict[str, Any], SearchSpace[Any]]:
    """The registered space that ran ``trial``: its name, options and instance."""
    build = trial.user_attrs.get(BUILD_ATTR)
    kwargs = dict(build.get("space_kwargs") or {}) if isinstance(build, Mapping) else {}
    name = trial.user_attrs.get("search_space")
    if not isinstance(name, str):
        # A trial added by hand (study.add_trial): the space whose parameters it has.
        owners = [
            n
            for n in list_search_spaces()
            if any(create_search_space(n).owns_param(p) for p in trial.params)
        ]
        if len(owners) != 1:
            raise ValueError(
                f"Trial {trial.number} has no architecture parameters of a registered search "
                f"space (params {sorted(trial.params)}); export_trial exports NASObjective "
                "trials."
            )
        name = owners[0]
    try:
        space = create_search_space(name, **kwargs)
    except ValueError as error:
        raise ValueError(
            f"Trial {trial.number}'s search space {name!r} cannot be re-created: {error}"
        ) from None
    if not any(space.owns_param(p) for p in trial.params):
        raise ValueError(
            f"Trial {trial.number} has no parameters of its search space {name!r} (params "
            f"{sorted(trial.params)})."
        )
    return name, kwargs, space


def _public_user_attrs(trial: FrozenTrial) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for key, value in trial.user_attrs.items():
        if key in _INTERNAL_ATTRS:
            continue
        with contextlib.suppress(ValueError):  # an in-memory study may hold anything
            attrs[key] = to_jsonable(value)
    return attrs


def _copy_weights(
    trial: FrozenTrial, artifact_store: ArtifactStore | None, dest: str
) -> str | None:
    """Copy the trial's kept weights to ``dest``; or return why there are none."""
    n = trial.number
    keep = trial.user_attrs.get(KEEP_WEIGHTS_ATTR)
    path = trial.user_attrs.get(WEIGHTS_PATH_ATTR)
    artifact_id = trial.user_attrs.get(WEIGHTS_ARTIFACT_ATTR)
    removed = (
        f"Trial {n}'s weights were not kept (keep_weights={keep} kept only the best {keep}: "
        "they were removed when later trials ranked above it)."
    )
    if isinstance(path, str):
        try:
            shutil.copyfile(path, dest)
        except FileNotFoundError:
            return removed
        return None
    if isinstance(artifact_id, str):
        if artifact_store is None:
            raise ValueError(
                f"Trial {n} kept its weights as artifact {artifact_id!r}: pass the study's "
                "artifact store as artifact_store= to export them."
            )
        from optuna.artifacts import download_artifact
        from optuna.artifacts.exceptions import ArtifactNotFound

        try:
            download_artifact(
                artifact_store=artifact_store, file_path=dest, artifact_id=artifact_id
            )
        except (ArtifactNotFound, FileNotFoundError):
            return removed
        return None
    if keep is None:
        return (
            f"Trial {n}'s weights were not kept (its objective ran with keep_weights=0; "
            "NASObjective(keep_weights=k, ...) keeps the best k)."
        )
    return (
        f"Trial {n}'s weights were not kept (keep_weights={keep} kept only the best {keep}, "
        "and it was not among them when it finished)."
    )


def _write_json(path: str, data: Mapping[str, Any]) -> None:
    # Written next to the target and renamed: a reader never sees half a file.
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
