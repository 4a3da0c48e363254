"""A training-free objective: an architecture's zero-cost proxy score instead of its accuracy.

:class:`ProxyObjective` makes a whole study training-free (each trial costs one proxy
evaluation), optionally against a hardware cost. The warm start that trains the best-scored
cells first is :func:`optuna_nas.samplers.warm_start`; the proxy-guided mutation is
:class:`~optuna_nas.samplers.RegularizedEvolutionSampler`'s ``mutation_score``.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import math
import time
from typing import TYPE_CHECKING
from typing import Any

from optuna_nas.trial_outcome import TrialGuard


if TYPE_CHECKING:
    import optuna

    from optuna_nas.search_spaces import SearchSpace


#: User attributes ``"proxy:<name>"`` hold each value of the scorer's ``score(arch)`` dict.
PROXY_ATTR_PREFIX = "proxy:"
#: User attribute: the seconds the score took.
PROXY_SECONDS_ATTR = "proxy:seconds"


class ProxyObjective:
    """Objective returning a zero-cost proxy's score of the suggested architecture.

    ``objective(trial)`` suggests ``arch = space.suggest(trial)``, scores it and returns the
    score (maximize). With ``latency`` (a function of the architecture, e.g. milliseconds on a
    device, such as :meth:`NB201Benchmark.hardware_cost
    <optuna_nas.benchmarks.NB201Benchmark.hardware_cost>`) it returns ``(score, latency)`` for
    a two-objective study (maximize, minimize); :attr:`directions` says which:
    ``optuna.create_study(directions=objective.directions)``.

    ``score`` is any ``score(arch) -> float`` (higher is better). If it also has a
    ``score(arch) -> dict[str, float]`` *method* (as :class:`optuna_nas.estimators.ProxyScorer`
    has: one value per proxy plus ``"seconds"``), that method is called instead, once, and the
    objective value is its ``metric_name`` entry; only a dict without that entry makes the
    objective call ``score(arch)`` as well.

    User attributes of each trial: ``"arch"`` (``space.to_string(arch)``), ``"search_space"``
    (the space's registry name), ``metric_name`` (the score), ``"proxy:seconds"`` (the dict's
    ``"seconds"`` if it has one, else the measured wall time), ``"proxy:<name>"`` for every other
    entry of the dict, and ``latency_name`` (the latency) with ``latency``.

    Failures follow the package's trial-outcome policy (:mod:`optuna_nas.trial_outcome`): an
    invalid architecture (e.g. an enqueued cell outside the space) FAILs the trial with a
    ``fail_reason``, and so does a NaN or infinite score or latency; exceptions of a type in
    ``catch`` FAIL it too; any other exception ends the study (a bug in the scorer).

    Example:
        .. code-block:: python

            import optuna
            from optuna_nas.search_spaces import create_search_space
            from optuna_nas.estimators import ProxyObjective

            space = create_search_space("nasbench201")

            def n_convs(cell):  # a stand-in for a zero-cost proxy
                return float(sum(op.startswith("nor_conv") for op in cell.ops))

            objective = ProxyObjective(space, n_convs, metric_name="n_convs")
            study = optuna.create_study(directions=objective.directions)
            study.optimize(objective, n_trials=20)
            print(study.best_trial.user_attrs["arch"])

    Args:
        space: The search space to suggest from.
        score: ``score(arch) -> float``, higher is better (see above for a ``.score`` dict).
        metric_name: Name of the score: its user attribute, its entry in the ``.score`` dict.
        latency: Optional ``latency(arch) -> float``, lower is better: the second objective.
        latency_name: User attribute of the latency.
        catch: More exception types that FAIL a trial instead of ending the study.

    Raises:
        ValueError: An argument is invalid; the message names it.
    """

    def __init__(
        self,
        space: SearchSpace[Any],
        score: Callable[[Any], float],
        *,
        metric_name: str = "synflow",
        latency: Callable[[Any], float] | None = None,
        latency_name: str = "latency_ms",
        catch: Sequence[type[Exception]] = (),
    ) -> None:
        if not callable(getattr(space, "suggest", None)) or not callable(
            getattr(space, "to_string", None)
        ):
            raise ValueError(f"space must be an optuna-nas SearchSpace, got {space!r}.")
        if not callable(score):
            raise ValueError(f"score must be callable, got {score!r}.")
        if latency is not None and not callable(latency):
            raise ValueError(f"latency must be callable or None, got {latency!r}.")
        for name, value in (("metric_name", metric_name), ("latency_name", latency_name)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string, got {value!r}.")
        if latency is not None and latency_name == metric_name:
            raise ValueError(
                f"latency_name and metric_name must differ, both are {metric_name!r}."
            )
        self.space = space
        self.score = score
        self.metric_name = metric_name
        self.latency = latency
        self.latency_name = latency_name
        self.catch = tuple(catch)

    @property
    def directions(self) -> tuple[str, ...]:
        """``("maximize",)``, or ``("maximize", "minimize")`` with a latency."""
        return ("maximize",) if self.latency is None else ("maximize", "minimize")

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        n_values = len(self.directions)
        with TrialGuard(trial, catch=self.catch, n_values=n_values) as guard:
            arch = self.space.suggest(trial)
            trial.set_user_attr("arch", self.space.to_string(arch))
            trial.set_user_attr("search_space", getattr(self.space, "name", ""))
            value, seconds, details = self._score(arch)
            for name, proxy_value in details.items():
                trial.set_user_attr(f"{PROXY_ATTR_PREFIX}{name}", proxy_value)
            trial.set_user_attr(PROXY_SECONDS_ATTR, seconds)
            trial.set_user_attr(self.metric_name, value)
            if not math.isfinite(value):
                return guard.fail(f"the score {self.metric_name} is {value!r}")
            if self.latency is None:
                return value
            cost = float(self.latency(arch))
            trial.set_user_attr(self.latency_name, cost)
            if not math.isfinite(cost):
                return guard.fail(f"the latency {self.latency_name} is {cost!r}")
            return value, cost
        return guard.fail_value

    def _score(self, arch: Any) -> tuple[float, float, dict[str, Any]]:
        """(objective value, seconds, the other entries of the ``.score`` dict)."""
        start = time.perf_counter()
        method = getattr(self.score, "score", None)
        details: dict[str, Any] = {}
        if callable(method):
            result = method(arch)
            if isinstance(result, Mapping):
                details = {str(k): _plain(v) for k, v in result.items()}
        if self.metric_name in details:
            value = float(details.pop(self.metric_name))
        else:
            value = float(self.score(arch))
        seconds = time.perf_counter() - start
        if "seconds" in details:
            seconds = float(details.pop("seconds"))
        return value, seconds, details

    def __repr__(self) -> str:
        latency = "" if self.latency is None else f", latency={self.latency!r}"
        return (
            f"{type(self).__name__}({self.space!r}, {self.score!r}, "
            f"metric_name={self.metric_name!r}{latency})"
        )


def _plain(value: Any) -> Any:
    """A JSON-friendly user attribute: NumPy/torch scalars as Python floats."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
