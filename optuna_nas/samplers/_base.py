"""What the NAS samplers share: define-by-run sampling around per-study state under a lock."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import threading
from typing import TYPE_CHECKING
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_nas._optuna_compat import process_constraints_after_trial


if TYPE_CHECKING:
    from optuna.study import Study


class DefineByRunSampler(BaseSampler):
    """Base of :class:`RegularizedEvolutionSampler` and :class:`RNNControllerSampler`.

    Both answer every parameter in :meth:`sample_independent` (no relative sampling), keep
    per-study state that can be rebuilt from storage under one re-entrant lock, drop that state
    when pickled or copied (the copy rebuilds it, as after a restart), and forget a trial's
    in-flight state when it ends. Subclasses implement :meth:`_sample`, :meth:`_reset_transient`
    and :meth:`_forget_trial`, and call :meth:`_init_transient` at the end of ``__init__``.
    """

    #: Attributes not pickled: rebuilt by :meth:`_reset_transient`.
    _TRANSIENT: tuple[str, ...] = ()
    #: Told about every trial's start and end (e.g. the sampler of non-NAS parameters).
    _independent_sampler: BaseSampler | None = None
    #: Optuna's ``constraints_func``, evaluated when a trial ends.
    _constraints_func: Callable[[FrozenTrial], Sequence[float]] | None = None

    def _init_transient(self) -> None:
        self._lock = threading.RLock()
        self._reset_transient()

    def _reset_transient(self) -> None:
        """(Re)create the per-study state; called with no other reference to it."""

    def _forget_trial(self, study: Study, trial: FrozenTrial) -> None:
        """Drop the in-flight state of ``trial``, which has just ended (called under the lock)."""

    def _check_study(self, study: Study) -> None:
        """Raise ``ValueError`` if this sampler cannot serve ``study``."""

    # ------------------------------------------------------------------ pickling / copying
    def __getstate__(self) -> dict[str, Any]:
        # Locks cannot be pickled; the per-study state is rebuilt from storage.
        return {k: v for k, v in self.__dict__.items() if k not in ("_lock", *self._TRANSIENT)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_transient()

    # ------------------------------------------------------------------ BaseSampler API
    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        self._check_study(study)
        return {}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        self._check_study(study)
        return {}

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        self._check_study(study)
        return self._sample(study, trial, param_name, param_distribution)

    def _sample(self, study: Study, trial: FrozenTrial, name: str, dist: BaseDistribution) -> Any:
        """:meth:`sample_independent` once the study is checked."""
        raise NotImplementedError

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        if self._independent_sampler is not None:
            self._independent_sampler.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        with self._lock:
            self._forget_trial(study, trial)
        if self._constraints_func is not None:
            process_constraints_after_trial(self._constraints_func, study, trial, state)
        if self._independent_sampler is not None:
            self._independent_sampler.after_trial(study, trial, state, values)
