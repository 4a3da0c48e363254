"""What a trial records to be rebuilt later, and the trained weights kept for the best trials.

Shared by :class:`optuna_nas.training.NASObjective` (which writes) and :mod:`optuna_nas.export`
(which reads); it needs no Lightning, so that exporting a study does not import the training
stack.

Optuna's attributes of a finished trial cannot be changed, so a trial whose weights are removed
later (it fell out of the best ``keep_weights``) still names them. A reader tells kept from
removed weights by the file or artifact itself: :func:`optuna_nas.export.export_trial` says
which happened, with the ``keep_weights`` value the trial recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import contextlib
import inspect
import math
import os
import tempfile
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import torch
from torch import nn

from optuna_nas._optuna_compat import fast_non_domination_rank


if TYPE_CHECKING:
    from optuna_nas._optuna_compat import ArtifactStore
    from optuna_nas.search_spaces import SearchSpace


#: User attribute: what :meth:`SearchSpace.build` needs besides the architecture.
BUILD_ATTR = "build"
#: User attribute: the ``keep_weights`` of the objective that ran the trial (when >= 1).
KEEP_WEIGHTS_ATTR = "keep_weights"
#: User attribute: the artifact id of the kept ``state_dict`` (artifact store).
WEIGHTS_ARTIFACT_ATTR = "weights_artifact_id"
#: User attribute: the file of the kept ``state_dict`` (``weights_dir``).
WEIGHTS_PATH_ATTR = "weights_path"
#: The file name of a kept ``state_dict``, in ``weights_dir`` and in an export.
WEIGHTS_FILE = "weights.pt"

_logger = optuna.logging.get_logger(__name__)


def to_jsonable(value: Any) -> Any:
    """``value`` with tuples as lists and NumPy scalars as Python numbers, for JSON.

    Raises:
        ValueError: ``value`` holds something JSON cannot represent (e.g. a function).
    """
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: to_jsonable(v) for k, v in value.items()}
    raise ValueError(f"{value!r} ({type(value).__name__}) cannot be written as JSON.")


def space_kwargs(space: SearchSpace[Any]) -> dict[str, Any]:
    """The constructor options of ``space`` that differ from its defaults, JSON-able.

    ``create_search_space(space.name, **space_kwargs(space))`` re-creates an equal space (e.g.
    a macro space's ``num_layers``), as a space's strings and networks depend on its options.
    The options are read from the attributes of the same name (the built-in spaces keep each
    one so); an option without one, or whose value JSON cannot hold, is left at its default.
    """
    factory = type(space)
    try:
        default: Any = factory()
    except Exception:  # a space without defaults: record every option
        default = None
    options: dict[str, Any] = {}
    for parameter in inspect.signature(factory).parameters.values():
        if parameter.kind is not parameter.KEYWORD_ONLY or not hasattr(space, parameter.name):
            continue
        value = getattr(space, parameter.name)
        if default is not None and getattr(default, parameter.name, object()) == value:
            continue
        # An attribute JSON cannot hold is not recorded: a space re-created without it says
        # so when it rejects the architecture (export_trial names the trial).
        with contextlib.suppress(ValueError):
            options[parameter.name] = to_jsonable(value)
    return options


def build_record(
    space: SearchSpace[Any],
    *,
    num_classes: int,
    in_channels: int,
    image_size: int,
    build_kwargs: Mapping[str, Any],
) -> dict[str, Any]:
    """The ``build`` user attribute: ``space.build``'s arguments besides the architecture.

    Raises:
        ValueError: A build option cannot be written as JSON (the trial could not be rebuilt
            from its record).
    """
    try:
        kwargs = to_jsonable(dict(build_kwargs))
    except ValueError as error:
        raise ValueError(f"build_kwargs must be JSON-able to be recorded: {error}") from None
    return {
        "num_classes": int(num_classes),
        "in_channels": int(in_channels),
        "image_size": int(image_size),
        "kwargs": kwargs,
        "space_kwargs": space_kwargs(space),
    }


def _safe_name(name: str) -> str:
    for sep in {os.sep, os.altsep or os.sep}:
        name = name.replace(sep, "_")
    return name


def weights_file(weights_dir: str, study_name: str, number: int) -> str:
    """``weights_dir/<study name>/trial_<number>/weights.pt`` (separators in the name as ``_``)."""
    return os.path.join(weights_dir, _safe_name(study_name), f"trial_{number}", WEIGHTS_FILE)


def best_numbers(
    trials: Sequence[FrozenTrial],
    directions: Sequence[optuna.study.StudyDirection],
    k: int,
    extra: tuple[int, Sequence[float]] | None = None,
) -> list[int]:
    """The numbers of the best ``k`` of ``trials`` (COMPLETE) plus ``extra`` (number, values).

    Single objective: by value in the study's direction. Multi-objective: by non-domination
    rank (0 = the Pareto front). Ties go to the earlier trial, so every worker ranks alike.
    """
    entries = [(t.number, list(t.values)) for t in trials if t.values is not None]
    if extra is not None:
        entries = [e for e in entries if e[0] != extra[0]] + [(extra[0], list(extra[1]))]
    entries = [e for e in entries if all(math.isfinite(v) for v in e[1])]
    if not entries:
        return []
    signs = np.array(
        [1.0 if d == optuna.study.StudyDirection.MINIMIZE else -1.0 for d in directions]
    )
    losses = np.array([values for _, values in entries], dtype=float) * signs
    if len(directions) == 1:
        keys = losses[:, 0]
    else:
        keys = fast_non_domination_rank(losses).astype(float)
    order = sorted(range(len(entries)), key=lambda i: (keys[i], entries[i][0]))
    return [entries[i][0] for i in order[:k]]


class WeightKeeper:
    """Saves the trained ``state_dict`` of the best ``k`` trials; removes the others'.

    Args:
        k: How many trials keep their weights (>= 1).
        artifact_store: Where weights go as Optuna artifacts (when ``weights_dir`` is None).
        weights_dir: Where weights go as files; takes precedence over ``artifact_store``.
    """

    def __init__(
        self, k: int, *, artifact_store: ArtifactStore | None, weights_dir: str | None
    ) -> None:
        self.k = k
        self.artifact_store = artifact_store
        self.weights_dir = weights_dir

    def after_trial(
        self, trial: optuna.Trial, values: Sequence[float], network: nn.Module
    ) -> None:
        """Keep ``network``'s weights if the trial (about to COMPLETE) is among the best ``k``.

        The trial is still RUNNING, so it is ranked with the study's COMPLETE trials by its
        final ``values``. Then every trial that holds weights but is no longer among the best
        ``k`` (or did not COMPLETE, e.g. a worker died after saving) loses them; another worker
        may have removed them already, which is fine.
        """
        study = trial.study
        finished = study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        )
        complete = [t for t in finished if t.state == TrialState.COMPLETE]
        best = set(best_numbers(complete, study.directions, self.k, (trial.number, values)))
        if trial.number in best:
            self._save(trial, network)
        for other in finished:
            if other.number not in best and other.number != trial.number:
                self._remove(other)

    def _save(self, trial: optuna.Trial, network: nn.Module) -> None:
        state = {name: tensor.detach().cpu() for name, tensor in network.state_dict().items()}
        if self.weights_dir is not None:
            path = os.path.abspath(
                weights_file(self.weights_dir, trial.study.study_name, trial.number)
            )
            os.makedirs(os.path.dirname(path), exist_ok=True)
            # Written next to the target and renamed: a reader never sees half a file.
            tmp = f"{path}.tmp{os.getpid()}"
            torch.save(state, tmp)
            os.replace(tmp, path)
            trial.set_user_attr(WEIGHTS_PATH_ATTR, path)
            return
        from optuna.artifacts import upload_artifact

        assert self.artifact_store is not None
        with tempfile.TemporaryDirectory() as tmp_dir:
            path = os.path.join(tmp_dir, f"weights_trial{trial.number}.pt")
            torch.save(state, path)
            artifact_id = upload_artifact(
                artifact_store=self.artifact_store,
                file_path=path,
                study_or_trial=trial,
                mimetype="application/octet-stream",
            )
        trial.set_user_attr(WEIGHTS_ARTIFACT_ATTR, artifact_id)

    def _remove(self, trial: FrozenTrial) -> None:
        # A removal that fails for another reason than a missing file is logged, not raised:
        # the trial itself succeeded, and the weights are merely kept longer.
        from optuna.artifacts.exceptions import ArtifactNotFound

        path = trial.user_attrs.get(WEIGHTS_PATH_ATTR)
        artifact_id = trial.user_attrs.get(WEIGHTS_ARTIFACT_ATTR)
        try:
            if isinstance(path, str) and os.path.exists(path):
                os.remove(path)
                with contextlib.suppress(OSError):  # not empty (the user's files) or gone
                    os.rmdir(os.path.dirname(path))
            elif isinstance(artifact_id, str) and self.artifact_store is not None:
                self.artifact_store.remove(artifact_id)
        except (ArtifactNotFound, FileNotFoundError):
            pass  # removed by another worker
        except Exception as error:
            _logger.warning(
                f"Could not remove the weights of trial {trial.number} "
                f"({path or artifact_id}): {error!r}."
            )
