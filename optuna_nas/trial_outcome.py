"""What an exception raised inside a trial does to it: the one trial-outcome policy.

Every objective of the package (``NASObjective``, ``DartsSearch``, the NAS-Bench-201/301
objectives) runs its trial inside a :class:`TrialGuard`, which asks :func:`classify` what an
exception means:

====================================================  =======  =================================
exception                                             outcome  user attribute
====================================================  =======  =================================
``optuna.TrialPruned`` (the pruner decided)           PRUNE    ``pruned_reason``
:class:`NonFiniteError` (NaN/inf loss or alphas)      PRUNE    ``pruned_reason``
out of device memory                                  FAIL     ``fail_reason``
:class:`InvalidArchitectureError` (and build errors)  FAIL     ``fail_reason``
a DDP worker process killed by a signal               FAIL     ``fail_reason``
an exception of a type in ``catch``                   FAIL     ``fail_reason``
a parameter with another distribution than before     RAISE    (:class:`ParameterConflictError`)
``KeyboardInterrupt`` (Ctrl+C, SIGINT)                RAISE    ``fail_reason`` ``"interrupted"``
every other exception                                 RAISE    (the exception propagates)
====================================================  =======  =================================

PRUNE raises :class:`optuna.TrialPruned`; FAIL makes the objective return NaN, which Optuna
records as a failed trial without stopping the study; RAISE lets the exception end
``study.optimize`` (it is a bug or a configuration error, which would fail every trial alike).
Ctrl+C ends ``study.optimize`` too, but the interrupted trial says so: :class:`TrialGuard`
writes ``fail_reason = "interrupted"`` before the ``KeyboardInterrupt`` propagates, and Optuna
records the trial as FAIL (it is never left RUNNING).
An exception re-raised from a DDP worker process (``torch.multiprocessing``'s
``ProcessRaisedException``, which carries only the worker's traceback text) is classified like
the worker's exception itself.

This module imports neither Lightning nor torch (torch only if it is loaded already), so that
search spaces and tabular benchmarks can use it.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
import contextlib
from dataclasses import dataclass
import enum
import gc
import logging
import math
import sys
import traceback
from types import TracebackType
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import check_distribution_compatibility

from optuna_nas._optuna_compat import failed_suggestion
from optuna_nas._optuna_compat import is_distribution_conflict


__all__ = [
    "INTERRUPTED_REASON",
    "ArchitectureBuildError",
    "InvalidArchitectureError",
    "NonFiniteError",
    "Outcome",
    "ParameterConflictError",
    "TrialGuard",
    "Verdict",
    "classify",
    "invalid_architecture",
]

_logger = logging.getLogger(__name__)

#: The ``fail_reason`` of a trial ended by Ctrl+C (a ``KeyboardInterrupt``).
INTERRUPTED_REASON = "interrupted"


class NonFiniteError(RuntimeError):
    """A loss (or DARTS' architecture parameters) became NaN or infinite: training diverged.

    Raised by ``ChildModule`` and ``DartsModule``; a diverged trial is PRUNED, because
    divergence says something about the configuration that samplers such as TPE learn from.
    """


class InvalidArchitectureError(ValueError):
    """An architecture (or its parameters or string) that the search space does not accept.

    Raised by every search space for an unknown operation, a wrong number of inputs, a
    malformed string or invalid parameters; a trial with an invalid architecture FAILs.
    """


class ArchitectureBuildError(InvalidArchitectureError):
    """A valid-looking architecture that could not be built into a network."""


class ParameterConflictError(ValueError):
    """A parameter is suggested with another distribution than the study's earlier trials'.

    A configuration error, so it ends ``study.optimize`` instead of failing every trial: e.g. a
    study resumed with other operations, or NAS added to a study that already has a parameter
    of the same name. It is a ``ValueError``, as Optuna's own error for this is, so
    ``study.optimize(catch=(ValueError,))`` would swallow it: catch narrower types.

    Attributes:
        name: The parameter name (``None`` where the caller could not tell).
        previous: The distribution the study recorded first (or ``None``).
        new: The distribution of this trial's suggestion (or ``None``).
    """

    def __init__(self, name: str | None, previous: Any, new: Any, detail: str) -> None:
        self.name = name
        self.previous = previous
        self.new = new
        what = f"Parameter {name!r}" if name is not None else "A parameter"
        suggested = f" is suggested as {new!r}" if new is not None else " is suggested"
        recorded = (
            f", but the study recorded it as {previous!r}"
            if previous is not None
            else " with another distribution than the study recorded"
        )
        super().__init__(
            f"{what}{suggested}{recorded} ({detail}). A study keeps one distribution per "
            "parameter name: resume it with the same search space and hyperparameter ranges, "
            "rename the parameter, or start a new study."
        )


class Outcome(enum.Enum):
    """What a trial's exception does to the trial."""

    PRUNE = "pruned"
    FAIL = "failed"
    RAISE = "raise"


@dataclass(frozen=True)
class Verdict:
    """The outcome of one exception and why.

    Attributes:
        outcome: PRUNE, FAIL or RAISE.
        reason: One line for the ``pruned_reason`` / ``fail_reason`` user attribute.
        cause: A short tag: ``"pruner"``, ``"non_finite"``, ``"out_of_memory"``,
            ``"invalid_architecture"``, ``"build_error"``, ``"worker_died"``, ``"caught"``,
            ``"parameter_conflict"``, ``"interrupt"`` or ``"error"``.
        error: For RAISE, the exception to raise (the original one, or a clearer
            :class:`ParameterConflictError` in its place).
    """

    outcome: Outcome
    reason: str
    cause: str
    error: BaseException | None = None


# ---------------------------------------------------------------------------- exceptions
def qualified_name(cls: type) -> str:
    """The class name as a traceback's last line spells it."""
    if cls.__module__ in ("builtins", "__main__"):
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _torch_class(module: str, name: str) -> type | None:
    # Only look at torch if it is loaded: an exception of torch cannot exist otherwise.
    return getattr(sys.modules.get(module), name, None)


def worker_exception(error: BaseException) -> tuple[str, str] | None:
    """``(qualified class name, message)`` of the exception that ended a DDP worker process.

    With ``ddp_spawn``/``ddp_fork``, ``torch.multiprocessing`` re-raises a worker's exception in
    this process as a ``ProcessRaisedException`` that holds only the worker's traceback text.
    """
    raised = _torch_class("torch.multiprocessing", "ProcessRaisedException")
    if raised is None or not isinstance(error, raised):
        return None
    lines = str(error).rstrip().splitlines()
    # The exception text follows the last (indented) frame line of the traceback.
    last_frame = max((i for i, line in enumerate(lines) if line.startswith(" ")), default=-1)
    name, _, message = "\n".join(lines[last_frame + 1 :]).partition(": ")
    return name.strip(), message.strip()


def describe_error(error: BaseException) -> tuple[str, str]:
    """Class name and message of ``error``, or of the DDP worker's exception it reports."""
    worker = worker_exception(error)
    if worker is not None:
        return worker[0].rsplit(".", 1)[-1], worker[1]
    return type(error).__name__, str(error)


def _raised(error: BaseException, types: Sequence[type[BaseException]]) -> bool:
    """Whether ``error`` is one of ``types``, or a DDP worker raised exactly one of them."""
    if isinstance(error, tuple(types)):
        return True
    worker = worker_exception(error)
    return worker is not None and any(worker[0] == qualified_name(t) for t in types)


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` (or the DDP worker's exception it reports) is an out-of-memory error."""
    oom = _torch_class("torch.cuda", "OutOfMemoryError")
    if oom is not None and isinstance(error, oom):
        return True
    worker = worker_exception(error)
    if worker is not None:
        return worker[0].endswith("OutOfMemoryError") or "out of memory" in worker[1].lower()
    # Other backends (and the CPU allocator) raise a plain RuntimeError.
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def parameter_conflict(
    error: BaseException,
    *,
    trial: optuna.Trial | None = None,
    name: str | None = None,
    distribution: BaseDistribution | None = None,
) -> ParameterConflictError | None:
    """The clear error for Optuna's "different distribution for the same name" ValueError.

    Optuna's message names neither the parameter nor the distributions. Given the ``trial``,
    the ``name`` being suggested and its new ``distribution`` (as
    :meth:`SearchSpace.suggest <optuna_nas.search_spaces.SearchSpace.suggest>` passes them),
    the earlier, incompatible distribution is looked up in the trial and its study's trials.
    ``None`` for any other exception.
    """
    if isinstance(error, ParameterConflictError):
        return error
    if type(error) is not ValueError:
        return None
    if trial is None or name is None or distribution is None:
        # A suggestion of the user's own code: Optuna's traceback tells which one it was.
        trial, name, distribution = failed_suggestion(error) or (None, None, None)
    previous = None
    if trial is not None and name is not None and distribution is not None:
        previous = _incompatible_distribution(trial, name, distribution)
    if previous is None and not is_distribution_conflict(error):
        return None
    return ParameterConflictError(name, previous, distribution, str(error).rstrip("."))


def _incompatible_distribution(
    trial: optuna.Trial, name: str, distribution: BaseDistribution
) -> BaseDistribution | None:
    """The first distribution recorded for ``name`` that ``distribution`` cannot join."""
    recorded = [getattr(trial, "distributions", {}).get(name)]
    study = getattr(trial, "study", None)
    if study is not None:
        recorded += [t.distributions.get(name) for t in study.get_trials(deepcopy=False)]
    for previous in recorded:
        if previous is None:
            continue
        try:
            check_distribution_compatibility(previous, distribution)
        except ValueError:
            return previous
    return None


# ---------------------------------------------------------------------------- the policy
def classify(error: BaseException, *, catch: Sequence[type[Exception]] = ()) -> Verdict:
    """Decide what ``error``, raised inside a trial, does to the trial.

    Args:
        error: The exception (also a ``ProcessRaisedException`` from a DDP worker).
        catch: More exception types that FAIL the trial (matched by exact class in a DDP
            worker, by ``isinstance`` otherwise).

    Returns:
        The :class:`Verdict`; see the module's table.

    Example:
        .. code-block:: python

            from optuna_nas.trial_outcome import NonFiniteError, Outcome, classify

            assert classify(NonFiniteError("loss is nan")).outcome is Outcome.PRUNE
            assert classify(KeyError("x")).outcome is Outcome.RAISE
            assert classify(KeyError("x"), catch=(KeyError,)).outcome is Outcome.FAIL
    """
    name, text = describe_error(error)
    if not isinstance(error, Exception):  # KeyboardInterrupt, SystemExit
        return Verdict(Outcome.RAISE, f"Interrupted ({name})", "interrupt", error)
    if isinstance(error, optuna.TrialPruned):
        return Verdict(Outcome.PRUNE, text or "pruned by the pruner", "pruner")
    if _raised(error, (NonFiniteError,)):
        return Verdict(Outcome.PRUNE, text, "non_finite")
    conflict = parameter_conflict(error)
    if conflict is not None:
        return Verdict(Outcome.RAISE, str(conflict), "parameter_conflict", conflict)
    if is_out_of_memory(error):
        return Verdict(Outcome.FAIL, f"Out of memory ({name}): {text[:300]}", "out_of_memory")
    if _raised(error, (ArchitectureBuildError,)):
        return Verdict(Outcome.FAIL, f"Architecture build error: {text}", "build_error")
    if _raised(error, (InvalidArchitectureError,)):
        return Verdict(Outcome.FAIL, f"Invalid architecture: {text}", "invalid_architecture")
    exited = _torch_class("torch.multiprocessing", "ProcessExitedException")
    if exited is not None and isinstance(error, exited):
        return Verdict(Outcome.FAIL, f"A DDP worker process died: {error}", "worker_died")
    if catch and _raised(error, catch):
        return Verdict(Outcome.FAIL, f"{name}: {text}", "caught")
    return Verdict(Outcome.RAISE, f"{name}: {text}", "error", error)


@contextlib.contextmanager
def invalid_architecture(
    *,
    build: bool = False,
    trial: optuna.Trial | None = None,
    name: str | None = None,
    distribution: BaseDistribution | None = None,
) -> Iterator[None]:
    """Turn a ``ValueError`` raised while suggesting (or building) an architecture into an
    :class:`InvalidArchitectureError` (an :class:`ArchitectureBuildError` with ``build``).

    E.g. Optuna's ValueError for an enqueued value that is not among a decision's choices, or
    a user-defined space that raises plain ``ValueError``s. Configuration errors pass through:
    a parameter suggested with another distribution than the study's (raised as
    :class:`ParameterConflictError`, naming the parameter and both distributions when
    ``trial``, ``name`` and ``distribution`` say what was being suggested) and a
    ``ValueError`` raised by the study's sampler.
    """
    target = ArchitectureBuildError if build else InvalidArchitectureError
    try:
        yield
    except ValueError as error:
        conflict = parameter_conflict(error, trial=trial, name=name, distribution=distribution)
        if conflict is not None:
            raise conflict from (None if conflict is error else error)
        if isinstance(error, target) or _raised_by_sampler(error):
            raise
        raise target(str(error)) from error


def _raised_by_sampler(error: BaseException) -> bool:
    """Whether ``error`` was raised inside a method of an Optuna sampler."""
    tb = error.__traceback__
    while tb is not None:
        if isinstance(tb.tb_frame.f_locals.get("self"), optuna.samplers.BaseSampler):
            return True
        tb = tb.tb_next
    return False


class TrialGuard:
    """Apply the policy of :func:`classify` to the trial that runs inside it.

    On PRUNE it writes the ``pruned_reason`` user attribute (for a pruner's decision,
    :func:`optuna_nas.pruners.pruned_reason`) and raises :class:`optuna.TrialPruned`; on FAIL it
    writes ``fail_reason``, logs one line, frees cached device memory after an out-of-memory
    error and swallows the exception, so that the objective returns :attr:`fail_value`; on
    RAISE the exception (or a clearer :class:`ParameterConflictError`) propagates. A
    ``KeyboardInterrupt`` first writes ``fail_reason = "interrupted"`` (Optuna then records the
    trial as FAIL and re-raises it from ``study.optimize``).

    Args:
        trial: The trial.
        catch: More exception types that FAIL the trial.
        n_values: The number of objective values (for :attr:`fail_value`).
        on_outcome: Called with the :class:`Verdict` before it is acted on (e.g. to record
            partial results).

    Example:
        .. code-block:: python

            import optuna
            from optuna_nas.trial_outcome import InvalidArchitectureError, TrialGuard

            def objective(trial):
                with TrialGuard(trial) as guard:
                    x = trial.suggest_float("x", -1, 1)
                    if x > 0.5:
                        raise InvalidArchitectureError(f"x={x} is not allowed")
                    return x**2
                return guard.fail_value  # NaN: Optuna records a failed trial

            optuna.create_study().optimize(objective, n_trials=5)
    """

    def __init__(
        self,
        trial: optuna.Trial,
        *,
        catch: Sequence[type[Exception]] = (),
        n_values: int = 1,
        on_outcome: Callable[[Verdict], None] | None = None,
    ) -> None:
        if not isinstance(n_values, int) or n_values < 1:
            raise ValueError(f"n_values must be a positive int; got {n_values!r}.")
        self.trial = trial
        self.catch = tuple(catch)
        self.n_values = n_values
        self.on_outcome = on_outcome
        self.verdict: Verdict | None = None

    @property
    def fail_value(self) -> float | tuple[float, ...]:
        """What a failed trial returns: NaN, or one NaN per objective."""
        return math.nan if self.n_values == 1 else (math.nan,) * self.n_values

    def fail(self, reason: str) -> float | tuple[float, ...]:
        """FAIL the trial without an exception: record ``reason``; return :attr:`fail_value`."""
        self._act(Verdict(Outcome.FAIL, reason, "failed"))
        return self.fail_value

    def __enter__(self) -> TrialGuard:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if error is None:
            return False
        verdict = classify(error, catch=self.catch)
        if verdict.cause == "pruner" and isinstance(self.trial, optuna.Trial):
            # Lazy import: the pruners package is not needed to classify.
            from optuna_nas.pruners import pruned_reason

            verdict = Verdict(Outcome.PRUNE, pruned_reason(self.trial), "pruner")
        self._act(verdict)
        if verdict.outcome is Outcome.RAISE:
            if verdict.error is not None and verdict.error is not error:
                raise verdict.error from error
            return False
        if verdict.outcome is Outcome.PRUNE:
            if verdict.cause == "pruner":
                return False  # the pruner's own TrialPruned, unchanged
            raise optuna.TrialPruned(verdict.reason) from None
        # The exception ends here: free what its frames hold (e.g. the network's activations)
        # before the next trial, and cached device memory after running out of it.
        traceback.clear_frames(tb)
        if verdict.cause == "out_of_memory":
            _free_device_memory()
        return True

    def _act(self, verdict: Verdict) -> None:
        self.verdict = verdict
        if self.on_outcome is not None:
            self.on_outcome(verdict)
        number = self.trial.number
        if verdict.outcome is Outcome.FAIL:
            self.trial.set_user_attr("fail_reason", verdict.reason)
            _logger.warning("Trial %d failed: %s", number, verdict.reason)
        elif verdict.outcome is Outcome.PRUNE:
            self.trial.set_user_attr("pruned_reason", verdict.reason)
            if verdict.cause != "pruner":  # Optuna itself logs a pruner's decision
                _logger.warning("Trial %d pruned: %s", number, verdict.reason)
        elif isinstance(verdict.error, KeyboardInterrupt):
            # Not logged: whoever catches the interrupt (e.g. the CLI) says it once.
            _record_interrupt(self.trial)


def _record_interrupt(trial: optuna.Trial) -> None:
    """Write ``fail_reason = "interrupted"``; the KeyboardInterrupt goes on regardless.

    Ctrl+C can land inside a storage call (e.g. the report of an epoch): the RDB storage's
    session of this thread is then left mid-transaction, and the next write (this one, then
    Optuna's FAIL) would fail. The session is discarded (rolled back) first.
    """
    storage = getattr(getattr(trial, "study", None), "_storage", None)
    try:
        if storage is not None:
            getattr(storage, "_backend", storage).remove_session()
        trial.set_user_attr("fail_reason", INTERRUPTED_REASON)
    except Exception as error:  # the interrupt matters more than its reason
        _logger.debug("Could not record the interrupt of trial %d: %r", trial.number, error)


def _free_device_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
