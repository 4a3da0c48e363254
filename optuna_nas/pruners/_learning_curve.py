"""A pruner that extrapolates learning curves and compares them with the study's best trials."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
import heapq
import math
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

import numpy as np
import optuna
from optuna.pruners import BasePruner
from optuna.study import StudyDirection
from optuna.trial import TrialState

from optuna_nas._validation import check_int
from optuna_nas._validation import check_number
from optuna_nas.pruners._curve_fit import fit_inverse_power_law


if TYPE_CHECKING:
    from optuna.study import Study
    from optuna.trial import FrozenTrial


#: Trial system attribute the pruner writes (a JSON dict) when it prunes a trial.
DECISION_ATTR_KEY = "LearningCurvePruner:decision"

CurveModel = Literal["ensemble", "best_so_far", "inverse_power_law", "regression"]
_CURVE_MODELS: tuple[str, ...] = ("ensemble", "best_so_far", "inverse_power_law", "regression")
# The inverse power law has 3 parameters; with fewer points it would interpolate noise.
_MIN_FIT_POINTS = 4
# The inverse power law is fitted from this step on: the first epoch's jump from an untrained
# network (LCBench: 3 % after one epoch, 56 % after two) is not on the power law and made the
# fit on a few points saturate at once, pruning slow, steady climbers.
_FIRST_FIT_STEP = 1
# Below this many references the rank correlation is not estimated (taken as 0).
_MIN_CORRELATION_REFERENCES = 8
# The bar is at most the best third of the references (`top_k` is capped at n // 3 + 1): in
# a small study top-4 of 5 completed trials is almost all of them, a bar so low that hardly
# anything is pruned (LCBench task 3945, random search: trials 5-19 trained 1.8x the epochs
# MedianPruner gave them).
_TOP_SHARE = 3
# The regression across trials needs this many references (2 parameters, leave-one-out).
_MIN_REGRESSION_REFERENCES = 4
# The regression's feature: the mean of the values reported in the last this many steps.
_REGRESSION_WINDOW = 3


@dataclass(frozen=True)
class _Curve:
    """One trial's reported values in the pruner's sign convention (larger is better)."""

    steps: np.ndarray  # sorted, unique
    values: np.ndarray  # sign-adjusted, may hold NaN / +-inf


class LearningCurvePruner(BasePruner):
    """Prune a trial whose predicted final value cannot reach the study's top-k.

    Steps are 0-based epochs, as everywhere in optuna_nas: step ``t`` holds the value after
    ``t + 1`` epochs, and a full trial of ``max_resource`` epochs last reports at step
    ``max_resource - 1`` (the convention of :class:`optuna.pruners.HyperbandPruner`'s
    ``max_resource``). At each checked epoch ``t`` the pruner predicts the value the trial will
    end with and prunes it when even an *optimistic* prediction is worse than the
    ``top_k``-th best value among completed trials:

    1. **Reference trials and the target.** The completed trials that reported up to the last
       epoch ``max_resource - 1`` are the references. What is compared is the metric the study
       optimizes: each reference's *value* (what the objective returned), be it the value at
       the last epoch or the best value so far, as the objective says. The ``top_k``
       references with the best value set the bar: the worst of them. While the study is
       small, k is capped at the best third, ``n // 3 + 1`` of ``n`` references: top-4 of 5
       completed trials would set the bar at the second-worst one. For curves that peak
       and decline (overfitting), an objective returning the last value makes the pruner aim
       at the final value, one returning the best value so far at the peak; the margin below
       is measured against the same target, so either is predicted consistently.
    2. **Prediction** (``curve_model``), each model with its own margin (step 3):

       - ``"best_so_far"``: the best value reported so far (a curve that stops improving).
       - ``"inverse_power_law"``: the saturating power law ``y(x) = a - b * x**(-c)``
         (``x = t + 1``, ``b >= 0``) fitted to the trial's own values
         (:func:`~optuna_nas.pruners.fit_inverse_power_law`) from the second epoch on (the
         first epoch's jump from an untrained network is not on the law) and extrapolated
         to ``x = max_resource``, never below the best value so far; with fewer than 4
         values from the second epoch on it falls back to ``"best_so_far"``.
       - ``"regression"``: a straight line *across the completed trials*,
         ``value ~ alpha + beta * x(t)``, fitted by least squares on every reference, with
         ``x(t)`` a trial's mean value over epochs ``t - 2 .. t`` (smoothing noise) and
         ``beta >= 0``; a trial below every reference is predicted at the lowest one (no
         extrapolation downwards). It learns from the study's own curves how much a partial
         curve says about the end (little for crossing curves, much for curves that keep
         their order). With fewer than 4 references, or references that all agree at the
         epoch, it falls back to ``"best_so_far"``.
       - ``"ensemble"`` (default): the three above; the lowest calibrated bound
         ``prediction + optimism * margin`` decides. A model that fits the study's curves
         poorly gets a wide margin and so never decides, and ``"best_so_far"`` is the
         fallback of the empirical rule (in the spirit of Domhan et al., IJCAI 2015, with
         margins measured on the study itself instead of a posterior).
    3. **Optimism margin, measured on the study itself.** The same prediction is made for
       each top-k reference from *its* values up to epoch ``t`` (for ``"regression"``, from
       a line fitted without that reference: leave-one-out); the largest amount by which a
       reference's true value beat its prediction is the margin (never negative). So a
       poorly fitting model gets a wide margin, and the margin follows the study's real
       curves (learning-rate schedule, noise, crossing) without assuming their shape.
       The margin is then widened where the study's curves say little about their end: it
       is multiplied by ``1 + predictability_weight * (1 - rho)``, with ``rho`` the Spearman
       rank correlation, across all references, between the mean of a trial's values over
       epochs ``t - 2 .. t`` and its value (clipped at 0; taken as 0 with fewer than 8
       references, when the study has not shown yet how its curves end). The top-k trials
       alone are too few to show that a slow starter can still win; the correlation over
       all references does (LCBench tasks whose best configurations start slow have
       ``rho`` of 0.4-0.8 over the first tenth of the epochs, against about 0.9 for a task
       whose curves saturate at once).
    4. **Decision.** Prune when ``prediction + optimism * margin`` is worse than the bar.

    With ``optimism >= 1`` and ``"best_so_far"``, a trial whose best value so far is at least
    that of one of the top-k trials at the same epoch is never pruned; a re-run of a top trial
    is not either (its own error is in the margin; for ``"regression"`` because a least-squares
    prediction at a reference lies between its value and its leave-one-out prediction, exact
    unless the slope clamp binds). Direction is honoured by flipping
    signs for ``minimize``. A NaN latest value or an infinite one in the bad direction
    (diverged training) prunes the trial at once, from epoch ``n_warmup_steps`` on and
    without waiting for ``n_warmup_trials``; non-finite values of other trials are ignored.
    An epoch at which some top-k trial had not reported a finite value yet is not judged (its
    margin would be unknown).

    The decision is a pure function of the trials in the storage (no state in the pruner
    object), so workers sharing an RDB storage decide identically. When it prunes, the pruner
    stores its numbers in the trial's system attribute :data:`DECISION_ATTR_KEY`;
    :func:`~optuna_nas.pruners.pruned_reason` turns them into a sentence for the dashboard.

    Pruned children of :class:`~optuna_nas.samplers.RegularizedEvolutionSampler` never become
    parents, so under evolution a wrong prune also changes the search; measured savings and
    losses against Optuna's pruners on several curve families (NAS-Bench-301, LCBench,
    synthetic families) are in ``benchmarks/README.md`` (``benchmarks/pruning.py``).

    Example:
        .. code-block:: python

            import optuna
            from optuna_nas.pruners import LearningCurvePruner

            def objective(trial):
                rate = trial.suggest_float("rate", 0.05, 1.0)
                acc = 0.0
                for epoch in range(30):  # 0-based epochs
                    acc = 0.9 - 0.8 * (epoch + 1) ** -rate
                    trial.report(acc, epoch)
                    if trial.should_prune():
                        raise optuna.TrialPruned()
                return acc

            pruner = LearningCurvePruner(max_resource=30, top_k=3, n_warmup_trials=5)
            study = optuna.create_study(direction="maximize", pruner=pruner)
            study.optimize(objective, n_trials=30)

    Args:
        max_resource: The number of epochs of a full trial (its last report is at epoch
            ``max_resource - 1``), as in :class:`optuna.pruners.HyperbandPruner`. ``"auto"``
            takes the largest last epoch of the completed trials, plus one.
        top_k: Number of best completed trials a trial must be able to join (at most
            ``n // 3 + 1`` of ``n`` completed trials, see step 1). Larger is safer and prunes
            less.
        n_warmup_trials: Pruning is disabled until this many trials (and at least ``top_k``)
            have completed with a curve that reaches the last epoch.
        n_warmup_steps: Pruning is disabled while the current (0-based) epoch is below this
            number.
        interval_steps: Interval in epochs between checks, offset by ``n_warmup_steps`` (as in
            :class:`optuna.pruners.MedianPruner`).
        optimism: Multiplier of the empirical margin; ``0`` trusts the prediction alone,
            larger values prune later and more safely.
        curve_model: ``"ensemble"``, ``"best_so_far"``, ``"inverse_power_law"`` or
            ``"regression"`` (see above).
        predictability_weight: How much the margin widens when partial curves rank the
            references poorly (step 3): ``0`` keeps the margin measured on the top-k trials;
            at ``1`` (default) a study whose curves say nothing at an epoch (``rho <= 0``)
            doubles it there.

    Raises:
        ValueError: An argument is out of range; the message names it.
    """

    def __init__(
        self,
        *,
        max_resource: int | Literal["auto"] = "auto",
        top_k: int = 4,
        n_warmup_trials: int = 5,
        n_warmup_steps: int = 0,
        interval_steps: int = 1,
        optimism: float = 1.0,
        curve_model: CurveModel = "ensemble",
        predictability_weight: float = 1.0,
    ) -> None:
        if max_resource != "auto" and (
            isinstance(max_resource, bool) or not isinstance(max_resource, int)
        ):
            raise ValueError(f"max_resource must be an int or 'auto', got {max_resource=}.")
        if isinstance(max_resource, int) and max_resource < 1:
            raise ValueError(f"max_resource must be at least 1, got {max_resource=}.")
        check_int("top_k", top_k, minimum=1)
        check_int("n_warmup_trials", n_warmup_trials, minimum=0)
        check_int("n_warmup_steps", n_warmup_steps, minimum=0)
        check_int("interval_steps", interval_steps, minimum=1)
        check_number("optimism", optimism, minimum=0.0)
        check_number("predictability_weight", predictability_weight, minimum=0.0)
        if curve_model not in _CURVE_MODELS:
            raise ValueError(
                f"curve_model must be one of {list(_CURVE_MODELS)!r}, got {curve_model=}."
            )
        # The last epoch (step) of a full trial; None: from the completed trials ("auto").
        self._max_step = None if max_resource == "auto" else max_resource - 1
        self._top_k = top_k
        self._n_warmup_trials = n_warmup_trials
        self._n_warmup_steps = n_warmup_steps
        self._interval_steps = interval_steps
        self._optimism = float(optimism)
        self._curve_model: CurveModel = curve_model
        self._predictability_weight = float(predictability_weight)

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        """Judge whether ``trial`` should be pruned (called by ``trial.should_prune()``)."""
        if len(study.directions) > 1:
            raise ValueError("LearningCurvePruner supports single-objective studies only.")
        step = trial.last_step
        if step is None or step < self._n_warmup_steps:
            return False
        if not _is_first_in_interval_step(
            step, trial.intermediate_values, self._n_warmup_steps, self._interval_steps
        ):
            return False

        sign = 1.0 if study.direction == StudyDirection.MAXIMIZE else -1.0
        latest = sign * float(trial.intermediate_values[step])
        if math.isnan(latest) or latest == -math.inf:
            # Diverged training does not recover; no completed trial is needed to see that.
            return self._record(study, trial, step, self._max_step, reason="non-finite value")

        completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        max_step = self._max_step
        if max_step is None:
            last_steps = [t.last_step for t in completed if t.last_step is not None]
            if not last_steps:
                return False
            max_step = max(last_steps)
        if step >= max_step:
            return False  # the trial is done; pruning now would only throw its result away

        references = _references(completed, sign, max_step)
        if len(references) < max(self._n_warmup_trials, self._top_k, 1):
            return False

        current = _curve(trial.intermediate_values, sign)

        # The best `top_k` references by value (at most a third of them, see _TOP_SHARE);
        # ties by trial number (deterministic).
        top_k = min(self._top_k, len(references) // _TOP_SHARE + 1)
        top = heapq.nsmallest(top_k, references, key=lambda item: (-item[1], item[0]))
        bar = top[-1][1]
        curves = [_curve(t.intermediate_values, sign) for _, _, t in top]
        finals = np.array([final for _, final, _ in top])
        if self._predictability_weight:
            rho = _rank_correlation(references, step, sign)
            widening = 1.0 + self._predictability_weight * (1.0 - rho)
        else:
            rho, widening = math.nan, 1.0  # not measured (recorded as null)
        prediction, margin, model = self._predict(
            current, curves, finals, step, max_step, references, sign, widening
        )
        if prediction is None:
            return False
        optimistic = prediction + self._optimism * margin
        # The tolerance absorbs rounding in `p + (f - p)`, so that a re-run of a top trial is
        # never pruned against its own final value.
        if optimistic >= bar - 1e-9 * max(1.0, abs(bar)):
            return False
        return self._record(
            study,
            trial,
            step,
            max_step,
            reason="cannot reach top-k",
            curve_model=model,
            prediction=sign * prediction,
            optimistic=sign * optimistic,
            margin=margin,
            bar=sign * bar,
            rank_correlation=rho,
            top_k=top_k,
        )

    def _predict(
        self,
        current: _Curve,
        top: Sequence[_Curve],
        finals: np.ndarray,
        step: int,
        max_step: int,
        references: Sequence[tuple[int, float, FrozenTrial]],
        sign: float,
        widening: float,
    ) -> tuple[float | None, float, str]:
        """Predicted final value and margin (sign-adjusted, multiplied by ``widening``), and
        the curve model used.

        For ``"ensemble"``, each model's calibrated bound ``prediction + optimism * margin`` is
        computed and the lowest one is returned: every bound is one that no top-k trial
        would have broken, so the tightest of them is the most informative.
        """
        models = (
            ("best_so_far", "inverse_power_law", "regression")
            if self._curve_model == "ensemble"
            else (self._curve_model,)
        )
        prefixes = [current] + [_prefix(c, step) for c in top]
        best_so_far = np.array([_nanmax(c.values) for c in prefixes])
        candidates: list[tuple[float, float, str]] = []
        for model in models:
            if model == "best_so_far":
                predictions: np.ndarray | None = best_so_far
            elif model == "inverse_power_law":
                predictions = _ipl_predictions(prefixes, best_so_far, max_step)
                if predictions is None:  # too few values: the rule falls back
                    predictions, model = best_so_far, "best_so_far"
            else:
                predictions = _regression_predictions(current, references, step, sign, finals)
                if predictions is None and len(models) == 1:  # too few references
                    predictions, model = best_so_far, "best_so_far"
            if predictions is None:
                continue
            errors = finals - predictions[1:]
            if not (math.isfinite(predictions[0]) and np.all(np.isfinite(errors))):
                # An infinite prediction cannot be beaten; a top trial without a finite value
                # up to this step (another reporting schedule) leaves the margin unknown.
                continue
            margin = widening * float(max(errors.max(), 0.0))
            candidates.append((float(predictions[0]), margin, model))
        if not candidates:
            return None, 0.0, models[0]
        fitted = [c for c in candidates if c[2] != "best_so_far"]
        if self._curve_model == "ensemble" and fitted:
            # The empirical rule is the fallback for when no model can be fitted yet: its
            # margin, the largest later gain of a few top trials, is too narrow a bound for
            # the first epochs of curves that start low and jump (LCBench).
            candidates = fitted
        return min(candidates, key=lambda c: c[0] + self._optimism * c[1])

    def _record(
        self,
        study: Study,
        trial: FrozenTrial,
        step: int,
        max_step: int | None,
        *,
        reason: str,
        curve_model: str | None = None,
        **numbers: float,
    ) -> bool:
        # Written only on pruning (one storage write per pruned trial), so that the reason is
        # visible in the storage and the dashboard; `pruned_reason` formats it.
        decision: dict[str, Any] = {
            "reason": reason,
            "epoch": step,  # the 0-based epoch (step) of the report that was judged
            "max_resource": None if max_step is None else max_step + 1,
            "top_k": self._top_k,
            "curve_model": curve_model or self._curve_model,
            "optimism": self._optimism,
            "predictability_weight": self._predictability_weight,
        }
        decision.update({k: v if k == "top_k" else _json_float(v) for k, v in numbers.items()})
        study._storage.set_trial_system_attr(trial._trial_id, DECISION_ATTR_KEY, decision)
        return True


def pruned_reason(
    trial: optuna.Trial | FrozenTrial, pruner: optuna.pruners.BasePruner | None = None
) -> str:
    """A one-line explanation of why ``trial`` was pruned, for a ``pruned_reason`` user attr.

    Reads the decision that :class:`LearningCurvePruner` stored in the trial. For any other
    pruner it names the pruner (``pruner``, or the study's pruner for an
    :class:`optuna.Trial`), the last reported epoch and its value. Epochs are the 0-based steps
    of ``trial.report``; the sentence also gives the epochs trained (the epoch + 1).

    Args:
        trial: A running trial (inside the objective) or a finished one.
        pruner: The pruner to name when the trial holds no LearningCurvePruner decision.

    Example:
        .. code-block:: python

            try:
                ...  # train, report, raise optuna.TrialPruned() when trial.should_prune()
            except optuna.TrialPruned:
                trial.set_user_attr("pruned_reason", pruned_reason(trial))
                raise
    """
    if isinstance(trial, optuna.Trial):
        storage = trial.study._storage
        system_attrs = storage.get_trial_system_attrs(trial._trial_id)
        frozen = storage.get_trial(trial._trial_id)
        pruner = pruner or trial.study.pruner
    else:
        system_attrs = trial.system_attrs
        frozen = trial
    decision = system_attrs.get(DECISION_ATTR_KEY)
    if isinstance(decision, Mapping):
        at = _at_epoch(decision.get("epoch"))
        if decision.get("reason") == "non-finite value":
            return f"LearningCurvePruner: non-finite value {at})"
        max_resource = decision.get("max_resource")
        return (
            f"LearningCurvePruner {at}): optimistic final value "
            f"{_fmt(decision.get('optimistic'))} (prediction {_fmt(decision.get('prediction'))}"
            f" + margin {_fmt(decision.get('margin'))} x {decision.get('optimism')}, "
            f"{decision.get('curve_model')}) cannot reach the top-{decision.get('top_k')} "
            f"value {_fmt(decision.get('bar'))} after {max_resource} epochs"
        )
    name = type(pruner).__name__ if pruner is not None else "the pruner"
    step = frozen.last_step
    value = frozen.intermediate_values.get(step) if step is not None else None
    return f"pruned by {name} {_at_epoch(step)}, value {_fmt(value)})"


def _at_epoch(epoch: Any) -> str:
    """``at epoch E (N epochs trained`` (the caller closes the parenthesis)."""
    if isinstance(epoch, int):
        return f"at epoch {epoch} ({epoch + 1} epoch{'s' if epoch else ''} trained"
    return f"at epoch {epoch} (epochs trained unknown"


def _references(
    completed: Sequence[FrozenTrial], sign: float, max_step: int
) -> list[tuple[int, float, FrozenTrial]]:
    """``(number, target, trial)`` of the completed trials that reached the last epoch.

    The target is the trial's value, what the objective returned and the study optimizes
    (the final value, or the best so far, as the objective says); it is the last value
    reported up to ``max_step`` for a trial without a value. Trials whose target or last
    value reported up to ``max_step`` is not finite are left out.
    """
    out = []
    for t in completed:
        if t.last_step is None or t.last_step < max_step:
            continue
        values = t.intermediate_values
        last = max_step if max_step in values else max(s for s in values if s <= max_step)
        final = sign * float(values[last])
        target = final if t.value is None else sign * float(t.value)
        if math.isfinite(final) and math.isfinite(target):
            out.append((t.number, target, t))
    return out


def _ipl_predictions(
    prefixes: Sequence[_Curve], best_so_far: np.ndarray, max_step: int
) -> np.ndarray | None:
    """Inverse-power-law extrapolations to ``max_step`` (never below the best so far), or
    None when the current curve (``prefixes[0]``) has too few finite values to fit."""
    prefixes = [
        _Curve(c.steps[c.steps >= _FIRST_FIT_STEP], c.values[c.steps >= _FIRST_FIT_STEP])
        for c in prefixes
    ]
    if int(np.isfinite(prefixes[0].values).sum()) < _MIN_FIT_POINTS:
        return None
    # One batched fit over a NaN-padded matrix; non-finite values get zero weight.
    steps = np.unique(np.concatenate([c.steps for c in prefixes]))
    matrix = np.full((len(prefixes), steps.size), np.nan)
    for row, c in enumerate(prefixes):
        matrix[row, np.searchsorted(steps, c.steps)] = c.values
    fit = fit_inverse_power_law(steps + 1.0, matrix)
    extrapolated = fit.predict(float(max_step) + 1.0)
    # A reference with too few points keeps the "best_so_far" prediction.
    ok = (fit.n_points >= _MIN_FIT_POINTS) & np.isfinite(extrapolated)
    return np.where(ok, np.fmax(extrapolated, best_so_far), best_so_far)


def _window_mean(values: Mapping[int, float], step: int, sign: float) -> float:
    """Mean of the finite values reported at steps ``step - window + 1 .. step`` (NaN if
    none): the regression's feature, smoothed over a few epochs against noise."""
    window = [
        sign * float(values[s])
        for s in range(step - _REGRESSION_WINDOW + 1, step + 1)
        if s in values and math.isfinite(values[s])
    ]
    return sum(window) / len(window) if window else math.nan


def _rank_correlation(
    references: Sequence[tuple[int, float, FrozenTrial]], step: int, sign: float
) -> float:
    """Spearman correlation across the references between the regression's feature at
    ``step`` (:func:`_window_mean`) and the target, clipped at 0; 0 with too few references
    or when either side is constant (the study cannot tell yet what a partial curve means)."""
    pairs = [
        (_window_mean(t.intermediate_values, step, sign), target) for _, target, t in references
    ]
    x = np.array([p[0] for p in pairs if math.isfinite(p[0])])
    y = np.array([p[1] for p in pairs if math.isfinite(p[0])])
    if x.size < _MIN_CORRELATION_REFERENCES or np.ptp(x) == 0.0 or np.ptp(y) == 0.0:
        return 0.0
    return max(0.0, float(np.corrcoef(_average_ranks(x), _average_ranks(y))[0, 1]))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """0-based ranks, ties sharing their mean rank (as Spearman's correlation needs)."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(values.size)
    ranks[order] = np.arange(values.size, dtype=float)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def _regression_predictions(
    current: _Curve,
    references: Sequence[tuple[int, float, FrozenTrial]],
    step: int,
    sign: float,
    finals: np.ndarray,
) -> np.ndarray | None:
    """Predictions of a linear regression *across* the completed trials.

    ``target ~ alpha + beta * x(step)``, fitted by least squares on every reference trial,
    with ``x`` the mean of a trial's values over the last few epochs; the slope is clamped
    at ``beta >= 0`` (a better curve so far never predicts a worse end). Returns the
    prediction for the current trial followed by *leave-one-out* predictions for the top-k
    references (``finals`` gives their targets; they are the best ``len(finals)`` of the
    references), so that their errors calibrate the margin as if those trials had not been
    seen. A current value below every reference's is predicted at the lowest one (no
    extrapolation downwards). None with too few references, or when they all have the same
    value at this step.
    """
    x_current = _window_mean(
        {int(s): float(v) for s, v in zip(current.steps, current.values)}, step, 1.0
    )
    rows = [
        (number, target, _window_mean(t.intermediate_values, step, sign))
        for number, target, t in references
    ]
    rows = [r for r in rows if math.isfinite(r[2])]
    if len(rows) < _MIN_REGRESSION_REFERENCES or not math.isfinite(x_current):
        return None
    rows.sort(key=lambda r: (-r[1], r[0]))  # the top-k first, in the order of `finals`
    k = len(finals)
    if [r[1] for r in rows[:k]] != list(finals):
        return None  # a top-k trial has no value at this step: its margin is unknown
    x = np.array([r[2] for r in rows])
    y = np.array([r[1] for r in rows])
    if float(np.ptp(x)) <= 1e-12 * max(1.0, float(np.abs(x).max())):
        return None  # the references agree at this step: no slope to learn
    n = float(len(rows))
    sx, sy, sxx, sxy = x.sum(), y.sum(), (x * x).sum(), (x * y).sum()
    # No extrapolation below the references: a trial worse so far than all of them is
    # predicted like the worst of them (the study has not seen how such curves end).
    at = np.array([max(x_current, float(x.min()))])
    current_prediction = _line(n, sx, sy, sxx, sxy, at)[0]
    # Leave-one-out fits for the top-k (sums downdated, vectorised over the left-out rows).
    xk, yk = x[:k], y[:k]
    loo = _line(n - 1.0, sx - xk, sy - yk, sxx - xk * xk, sxy - xk * yk, xk)
    return np.concatenate([[current_prediction], loo])


def _line(
    n: float,
    sx: np.ndarray | float,
    sy: np.ndarray | float,
    sxx: np.ndarray | float,
    sxy: np.ndarray | float,
    at: np.ndarray,
) -> np.ndarray:
    """Least-squares line (slope clamped at >= 0) from its sums, evaluated at ``at``."""
    x_mean, y_mean = np.asarray(sx) / n, np.asarray(sy) / n
    var = np.asarray(sxx) - n * x_mean * x_mean
    cov = np.asarray(sxy) - n * x_mean * y_mean
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = np.where(var > 1e-12 * np.maximum(1.0, np.asarray(sxx)), cov / var, 0.0)
    return y_mean + np.maximum(beta, 0.0) * (at - x_mean)


def _curve(intermediate_values: Mapping[int, float], sign: float) -> _Curve:
    steps = np.array(sorted(intermediate_values), dtype=int)
    values = np.array([intermediate_values[s] for s in steps], dtype=float) * sign
    return _Curve(steps=steps, values=values)


def _prefix(curve: _Curve, step: int) -> _Curve:
    keep = curve.steps <= step
    return _Curve(steps=curve.steps[keep], values=curve.values[keep])


def _nanmax(values: np.ndarray) -> float:
    finite = values[np.isfinite(values) | (values == np.inf)]
    return float(finite.max()) if finite.size else math.nan


def _is_first_in_interval_step(
    step: int, steps: Mapping[int, float], n_warmup_steps: int, interval_steps: int
) -> bool:
    # Same rule as optuna's PercentilePruner: check once per interval, at the first step
    # reported in it (steps may be sparse or unordered).
    nearest_lower_check = (step - n_warmup_steps) // interval_steps * interval_steps
    nearest_lower_check += n_warmup_steps
    second_last = max((s for s in steps if s != step), default=-1)
    return second_last < nearest_lower_check


def _json_float(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, (int, float)) else str(value)
