"""The one place where optuna-nas touches Optuna's private API.

Optuna has no public equivalent of the names below (checked against Optuna 4.8 to 5.0), so they
are imported from private modules here and nowhere else: when an Optuna release moves one, this
file is the only one to change, and ``tests/test_optuna_compat.py`` (run in CI against the
lowest and the newest admitted Optuna, see ``pyproject.toml``) says which. Every name keeps the
signature and the behaviour it has in Optuna; the comments say what each is used for.
"""

from __future__ import annotations

from typing import Any

from optuna._hypervolume import compute_hypervolume
from optuna._transform import _SearchSpaceTransform as SearchSpaceTransform
from optuna.artifacts._protocol import ArtifactStore
from optuna.distributions import BaseDistribution
from optuna.samplers._base import (
    _process_constraints_after_trial as process_constraints_after_trial,
)
from optuna.samplers._lazy_random_state import LazyRandomState
from optuna.samplers.nsgaii._elite_population_selection_strategy import (
    _calc_crowding_distance as calc_crowding_distance,
)
from optuna.study._multi_objective import _fast_non_domination_rank as fast_non_domination_rank
from optuna.trial import FrozenTrial
from optuna.trial import Trial


# Optuna 4.9 renamed the heartbeat's stale-trial retry (``RetryFailedTrialCallback`` and the
# storages' ``failed_trial_callback`` argument are deprecated aliases since then).
try:
    from optuna.storages import RetryHeartbeatStaleTrialCallback as RetryStaleTrialCallback

    STALE_TRIAL_CALLBACK_ARG = "heartbeat_stale_trial_callback"
except ImportError:  # Optuna < 4.9
    from optuna.storages import RetryFailedTrialCallback as RetryStaleTrialCallback

    STALE_TRIAL_CALLBACK_ARG = "failed_trial_callback"


# What each private name is, and who uses it:
#
# - ``ArtifactStore``: the protocol of the artifact stores (FileSystemArtifactStore,
#   Boto3ArtifactStore, ...), for type annotations; ``optuna.artifacts`` exports the stores but
#   not their protocol (training, visualization).
# - ``compute_hypervolume(loss_vals, reference_point)``: exact hypervolume of loss vectors (all
#   minimized), the function behind Optuna's ``plot_hypervolume_history`` (benchmarks).
# - ``SearchSpaceTransform``: maps a search space to a box (log scale and steps included) and
#   back; how RegularizedEvolutionSampler perturbs floats and ints, as Optuna's samplers do.
# - ``process_constraints_after_trial(constraints_func, study, trial, state)``: writes the
#   values of ``constraints_func`` into the running trial's system attributes, where
#   :func:`trial_constraints` and Optuna's constrained samplers read them.
# - ``LazyRandomState(seed)``: a ``numpy.random.RandomState`` created on first use (``.rng``),
#   as Optuna's own samplers hold one.
# - ``calc_crowding_distance(trials)``: NSGA-II's crowding distance, ``{trial number: distance}``.
# - ``fast_non_domination_rank(losses, *, penalty=None)``: non-domination rank of loss vectors
#   (0 = Pareto front); with penalties, feasible first, then by total violation (NSGA-II).
# - ``RetryStaleTrialCallback`` / ``STALE_TRIAL_CALLBACK_ARG``: Optuna's heartbeat-stale retry
#   and the name of the RDB storage argument taking it (public, but renamed in 4.9).
# - ``RDBStorage._get_stale_trial_ids(study_id)``: the RUNNING trials whose heartbeat is older
#   than the grace period; ``optuna_nas.storages`` extends it to write their ``fail_reason``.

__all__ = [
    "ArtifactStore",
    "LazyRandomState",
    "RetryStaleTrialCallback",
    "STALE_TRIAL_CALLBACK_ARG",
    "SearchSpaceTransform",
    "calc_crowding_distance",
    "compute_hypervolume",
    "distribution_contains",
    "failed_suggestion",
    "is_distribution_conflict",
    "fast_non_domination_rank",
    "process_constraints_after_trial",
    "trial_constraints",
]


def distribution_contains(distribution: BaseDistribution, internal_value: Any) -> bool:
    """Whether ``internal_value`` (in internal representation) lies in ``distribution``.

    ``BaseDistribution._contains`` is private; it checks the range and the step of floats and
    ints and the index of categoricals.
    """
    return bool(distribution._contains(internal_value))


def trial_constraints(trial: FrozenTrial) -> list[float]:
    """The constraint values of a trial (feasible when all are ``<= 0``); empty if it has none.

    Optuna 5 has the public ``FrozenTrial.constraints`` (values of ``constraints_func`` and of
    ``trial.set_constraint``). Optuna 4 has neither property nor ``set_constraint``: the values
    of ``constraints_func`` are a list under the system attribute ``"constraints"``.
    """
    if hasattr(FrozenTrial, "constraints"):
        return list(trial.constraints.values())
    return list(trial.system_attrs.get("constraints") or ())


def failed_suggestion(
    error: BaseException,
) -> tuple[Trial, str, BaseDistribution] | None:
    """``(trial, name, distribution)`` of the ``suggest_*`` call that raised ``error``.

    Optuna's error for a parameter suggested with another distribution than before names
    neither; they are read from the frame of the private ``Trial._suggest(name, distribution)``
    in the traceback. ``None`` when it is not there.
    """
    tb = error.__traceback__
    found = None
    while tb is not None:
        frame = tb.tb_frame
        local = frame.f_locals
        if frame.f_code.co_name == "_suggest" and isinstance(local.get("self"), Trial):
            name, distribution = local.get("name"), local.get("distribution")
            if isinstance(name, str) and isinstance(distribution, BaseDistribution):
                found = (local["self"], name, distribution)
        tb = tb.tb_next
    return found


#: Optuna's messages for a parameter suggested with another distribution than before (they are
#: not part of its API; the test of this module raises each kind).
_CONFLICT_MESSAGES = (
    "Cannot set different distribution kind to the same parameter name",
    "Cannot set different log configuration to the same parameter name",
    "does not support dynamic value space",
)


def is_distribution_conflict(error: BaseException) -> bool:
    """Whether ``error`` is Optuna's ValueError for a parameter's changed distribution."""
    return type(error) is ValueError and any(m in str(error) for m in _CONFLICT_MESSAGES)
