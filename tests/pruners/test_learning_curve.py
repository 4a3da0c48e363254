from __future__ import annotations

from collections.abc import Sequence
import math
from pathlib import Path
import re
from typing import Any
from typing import Literal

import numpy as np
import optuna
from optuna.trial import TrialState
import pytest

from optuna_nas.pruners import DECISION_ATTR_KEY
from optuna_nas.pruners import LearningCurvePruner
from optuna_nas.pruners import pruned_reason


MODELS = ("best_so_far", "inverse_power_law", "regression", "ensemble")
Model = Literal["best_so_far", "inverse_power_law", "regression", "ensemble"]
Direction = Literal["minimize", "maximize"]
CurveLike = Sequence[float] | np.ndarray
EPOCHS = 30  # 0-based epochs: steps 0..29


def _curve(a: float, b: float = 0.5, c: float = 0.6, epochs: int = EPOCHS) -> list[float]:
    """A saturating learning curve a - b * e**-c after e = 1..epochs epochs (steps 0..)."""
    return [a - b * e ** (-c) for e in range(1, epochs + 1)]


def _add_completed(study: optuna.Study, curve: CurveLike, first_step: int = 0) -> None:
    study.add_trial(
        optuna.trial.create_trial(
            value=float(curve[-1]),
            intermediate_values={first_step + i: float(v) for i, v in enumerate(curve)},
        )
    )


def _decisions(
    study: optuna.Study, curve: CurveLike, first_step: int = 0, stop: bool = False
) -> list[bool]:
    """should_prune() after each report of ``curve`` in a fresh running trial."""
    trial = study.ask()
    out = []
    for i, v in enumerate(curve):
        trial.report(float(v), first_step + i)
        out.append(trial.should_prune())
        if stop and out[-1]:
            break
    return out


def _study_with_references(
    pruner: LearningCurvePruner, finals: Sequence[float], direction: Direction = "maximize"
) -> optuna.Study:
    study = optuna.create_study(direction=direction, pruner=pruner)
    sign = 1.0 if direction == "maximize" else -1.0
    for a in finals:
        _add_completed(study, [sign * v for v in _curve(a)])
    return study


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_resource": 0}, "max_resource=0"),
        ({"max_resource": True}, "max_resource=True"),
        ({"max_resource": 2.5}, "max_resource=2.5"),
        ({"max_resource": "all"}, "max_resource='all'"),
        ({"top_k": 0}, "top_k must be an int >= 1, got 0"),
        ({"n_warmup_trials": -1}, "n_warmup_trials must be an int >= 0, got -1"),
        ({"n_warmup_steps": -2}, "n_warmup_steps must be an int >= 0, got -2"),
        ({"interval_steps": 0}, "interval_steps must be an int >= 1, got 0"),
        ({"optimism": -0.5}, "optimism must be a finite number in [0.0, inf), got -0.5"),
        ({"optimism": math.nan}, "optimism must be a finite number in [0.0, inf), got nan"),
        ({"curve_model": "spline"}, "curve_model='spline'"),
        (
            {"predictability_weight": -1.0},
            "predictability_weight must be a finite number in [0.0, inf), got -1.0",
        ),
    ],
)
def test_invalid_arguments_name_the_value(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        LearningCurvePruner(**kwargs)


def test_arguments_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        LearningCurvePruner(30)  # type: ignore[call-arg]


@pytest.mark.parametrize("model", MODELS)
def test_prunes_a_clearly_bad_curve_and_records_why(model: Model) -> None:
    pruner = LearningCurvePruner(
        max_resource=EPOCHS, top_k=2, n_warmup_trials=3, curve_model=model
    )
    study = _study_with_references(pruner, [0.90, 0.91, 0.92])
    decisions = _decisions(study, _curve(0.5), stop=True)
    assert decisions[-1] is True
    assert len(decisions) < EPOCHS // 2  # pruned early, not at the end
    trial = study.trials[-1]
    decision = trial.system_attrs[DECISION_ATTR_KEY]
    assert decision["reason"] == "cannot reach top-k"
    # The power law needs 4 values; before that the pruner says it used "best_so_far".
    assert decision["curve_model"] == (model if len(decisions) >= 4 else "best_so_far")
    assert decision["epoch"] == len(decisions) - 1  # the 0-based step it was judged at
    assert decision["max_resource"] == EPOCHS
    assert decision["bar"] == pytest.approx(_curve(0.91)[-1])  # the 2nd best final value
    assert decision["optimistic"] < decision["bar"]
    assert decision["prediction"] <= decision["optimistic"]
    reason = pruned_reason(trial)
    assert "cannot reach the top-2" in reason and f"after {EPOCHS} epochs" in reason
    n = len(decisions)
    assert f"at epoch {n - 1} ({n} epoch{'s' if n > 1 else ''} trained)" in reason


@pytest.mark.parametrize("model", MODELS)
def test_never_prunes_a_rerun_of_a_top_k_trial(model: Model) -> None:
    rng = np.random.default_rng(0)
    pruner = LearningCurvePruner(
        max_resource=EPOCHS, top_k=3, n_warmup_trials=5, curve_model=model
    )
    study = optuna.create_study(direction="maximize", pruner=pruner)
    curves = [
        np.array(_curve(rng.uniform(0.8, 0.95), rng.uniform(0.3, 0.6), rng.uniform(0.2, 1.2)))
        + rng.normal(0.0, 0.01, EPOCHS)
        for _ in range(12)
    ]
    for curve in curves:
        _add_completed(study, curve)
    top = sorted(curves, key=lambda c: -c[-1])[:3]
    for curve in top:
        assert not any(_decisions(study, curve))
    # ...whereas the worst curves are pruned, so the pruner is not simply inactive.
    worst = min(curves, key=lambda c: c[-1])
    assert any(_decisions(study, worst - 0.1))


def test_a_trial_as_good_so_far_as_a_top_trial_is_never_pruned() -> None:
    # For curve_model="best_so_far" and optimism >= 1: if the trial's best value so far is at least
    # a top-k trial's best value at the same step, that trial's later gain is in the margin.
    rng = np.random.default_rng(1)
    pruner = LearningCurvePruner(
        max_resource=EPOCHS, top_k=2, n_warmup_trials=4, curve_model="best_so_far"
    )
    study = optuna.create_study(direction="maximize", pruner=pruner)
    curves = []
    for _ in range(8):
        curve = np.array(_curve(rng.uniform(0.8, 0.95), rng.uniform(0.2, 0.6), 0.5))
        curve += rng.normal(0.0, 0.02, EPOCHS)
        curves.append(curve)
        _add_completed(study, curve)
    top = sorted(curves, key=lambda c: -c[-1])[:2]
    checked = 0
    for _ in range(40):
        candidate = np.array(_curve(rng.uniform(0.75, 0.95), rng.uniform(0.2, 0.6), 0.5))
        candidate += rng.normal(0.0, 0.02, EPOCHS)
        for step, pruned in enumerate(_decisions(study, candidate), start=1):
            best_so_far = candidate[:step].max()
            if any(best_so_far >= ref[:step].max() for ref in top):
                assert not pruned
                checked += 1
    assert checked > 50


def test_no_pruning_until_enough_trials_completed() -> None:
    pruner = LearningCurvePruner(max_resource=EPOCHS, top_k=2, n_warmup_trials=4)
    study = _study_with_references(pruner, [0.9, 0.9, 0.9])
    assert not any(_decisions(study, _curve(0.1)))
    _add_completed(study, _curve(0.9))
    assert any(_decisions(study, _curve(0.1)))


def test_top_k_trials_are_needed_even_without_warmup_trials() -> None:
    pruner = LearningCurvePruner(max_resource=EPOCHS, top_k=3, n_warmup_trials=0)
    study = _study_with_references(pruner, [0.9, 0.9])
    assert not any(_decisions(study, _curve(0.1)))
    _add_completed(study, _curve(0.9))
    assert any(_decisions(study, _curve(0.1)))


def test_no_pruning_before_warmup_steps() -> None:
    pruner = LearningCurvePruner(
        max_resource=EPOCHS, top_k=1, n_warmup_trials=1, n_warmup_steps=10
    )
    study = _study_with_references(pruner, [0.9])
    decisions = _decisions(study, _curve(0.1))
    assert not any(decisions[:10])  # epochs 0..9
    assert decisions[10]  # epoch 10


def test_no_pruning_without_completed_trials_or_reports() -> None:
    study = optuna.create_study(pruner=LearningCurvePruner(n_warmup_trials=0, top_k=1))
    trial = study.ask()
    assert not trial.should_prune()  # nothing reported
    assert not any(_decisions(study, _curve(0.1)))  # nothing completed, last epoch unknown


def test_interval_steps() -> None:
    pruner = LearningCurvePruner(
        max_resource=EPOCHS, top_k=1, n_warmup_trials=1, n_warmup_steps=2, interval_steps=5
    )
    study = _study_with_references(pruner, [0.9])
    bad = [0.0] * EPOCHS
    pruned_at = [step for step, p in enumerate(_decisions(study, bad)) if p]
    assert pruned_at == [2, 7, 12, 17, 22, 27]


@pytest.mark.parametrize("model", MODELS)
def test_minimize_mirrors_maximize(model: Model) -> None:
    rng = np.random.default_rng(2)
    references = [
        np.array(_curve(rng.uniform(0.8, 0.95), rng.uniform(0.2, 0.6), rng.uniform(0.3, 1.0)))
        + rng.normal(0, 0.01, EPOCHS)
        for _ in range(8)
    ]
    candidates = [
        np.array(_curve(rng.uniform(0.7, 0.95), rng.uniform(0.2, 0.6), rng.uniform(0.3, 1.0)))
        + rng.normal(0, 0.01, EPOCHS)
        for _ in range(10)
    ]
    results = []
    cases: list[tuple[Direction, Any]] = [("maximize", lambda c: c), ("minimize", lambda c: 2 - c)]
    for direction, transform in cases:
        pruner = LearningCurvePruner(
            max_resource=EPOCHS, top_k=3, n_warmup_trials=5, curve_model=model
        )
        study = optuna.create_study(direction=direction, pruner=pruner)
        for curve in references:
            _add_completed(study, transform(curve))
        results.append([_decisions(study, transform(c)) for c in candidates])
    assert results[0] == results[1]
    assert any(any(d) for d in results[0]) and not all(all(d) for d in results[0])


def test_nan_value_prunes_at_once() -> None:
    pruner = LearningCurvePruner(max_resource=EPOCHS, n_warmup_steps=3)
    study = optuna.create_study(pruner=pruner)  # no completed trial at all
    assert _decisions(study, [0.5, math.nan, 0.5, math.nan]) == [False, False, False, True]
    trial = study.trials[-1]
    assert trial.system_attrs[DECISION_ATTR_KEY]["reason"] == "non-finite value"
    assert "non-finite value at epoch 3 (4 epochs trained)" in pruned_reason(trial)


@pytest.mark.parametrize(
    ("direction", "value", "pruned"),
    [
        ("maximize", -math.inf, True),
        ("maximize", math.inf, False),
        ("minimize", math.inf, True),
        ("minimize", -math.inf, False),
    ],
)
def test_infinite_values(direction: Direction, value: float, pruned: bool) -> None:
    pruner = LearningCurvePruner(max_resource=EPOCHS, top_k=1, n_warmup_trials=1)
    study = _study_with_references(pruner, [0.9], direction)
    assert _decisions(study, [value]) == [pruned]


def test_non_finite_values_of_completed_trials_are_ignored() -> None:
    pruner = LearningCurvePruner(max_resource=EPOCHS, top_k=2, n_warmup_trials=2)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    holes = _curve(0.9)
    holes[3] = math.nan
    holes[7] = -math.inf
    _add_completed(study, holes)
    nan_final = _curve(0.99)
    nan_final[-1] = math.nan
    study.add_trial(
        optuna.trial.create_trial(value=0.5, intermediate_values=dict(enumerate(nan_final)))
    )
    assert not any(_decisions(study, _curve(0.1)))  # only one usable reference so far
    _add_completed(study, _curve(0.88))
    assert any(_decisions(study, _curve(0.1)))
    assert not any(_decisions(study, _curve(0.9)))


def test_steps_before_the_references_first_report_are_not_judged() -> None:
    pruner = LearningCurvePruner(max_resource=EPOCHS, top_k=1, n_warmup_trials=1)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    _add_completed(study, _curve(0.9)[4:], first_step=4)  # reported from epoch 4 on
    decisions = _decisions(study, [0.0] * EPOCHS)
    assert not any(decisions[:4])  # epochs 0..3: no margin can be measured
    assert decisions[4]


def test_references_must_reach_the_last_epoch() -> None:
    pruner = LearningCurvePruner(max_resource=EPOCHS, top_k=1, n_warmup_trials=1)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    _add_completed(study, _curve(0.9)[:10])  # completed early: not comparable
    assert not any(_decisions(study, _curve(0.1)))


def test_max_resource_auto_takes_the_longest_completed_trial() -> None:
    pruner = LearningCurvePruner(top_k=1, n_warmup_trials=1)  # max_resource="auto"
    study = optuna.create_study(direction="maximize", pruner=pruner)
    _add_completed(study, _curve(0.9)[:10])
    _add_completed(study, _curve(0.9))
    decisions = _decisions(study, _curve(0.1) + [0.1] * 5)
    assert any(decisions[:EPOCHS])
    assert not any(decisions[EPOCHS - 1 :])  # never at or after the final step


@pytest.mark.parametrize("model", MODELS)
def test_two_study_objects_on_one_storage_decide_identically(tmp_path: Path, model: Model) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    kwargs: dict[str, Any] = dict(
        max_resource=EPOCHS, top_k=2, n_warmup_trials=3, curve_model=model
    )
    worker_a = optuna.create_study(
        study_name="s", storage=storage, direction="maximize", pruner=LearningCurvePruner(**kwargs)
    )
    rng = np.random.default_rng(3)
    for _ in range(6):
        _add_completed(worker_a, np.array(_curve(rng.uniform(0.8, 0.95))) + rng.normal(0, 0.01))
    worker_b = optuna.load_study(
        study_name="s", storage=storage, pruner=LearningCurvePruner(**kwargs)
    )
    trial = worker_a.ask()
    decisions_a, decisions_b = [], []
    for step, value in enumerate(_curve(0.85)):
        trial.report(value, step)
        frozen = worker_a._storage.get_trial(trial._trial_id)
        # The second worker's pruner is asked first, so no cached state could favour it.
        decisions_b.append(worker_b.pruner.prune(worker_b, frozen))
        decisions_a.append(worker_a.pruner.prune(worker_a, frozen))
    assert decisions_a == decisions_b
    assert any(decisions_a)


def test_non_crossing_curves_keep_the_best_and_save_epochs() -> None:
    # Curves that never cross: a trial ahead of every top-k trial at every step is never
    # pruned, so the best architecture is always trained to the end.
    rng = np.random.default_rng(4)
    asymptotes = rng.uniform(0.6, 0.95, size=60)
    epochs = [0]

    def objective(trial: optuna.Trial) -> float:
        a = asymptotes[trial.suggest_int("i", 0, len(asymptotes) - 1)]
        value = 0.0
        for step, value in enumerate(_curve(a)):
            epochs[0] += 1
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    pruner = LearningCurvePruner(max_resource=EPOCHS, top_k=3, n_warmup_trials=5)
    study = optuna.create_study(
        direction="maximize", pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=0)
    )
    study.optimize(objective, n_trials=60)
    sampled = [asymptotes[t.params["i"]] for t in study.trials]
    assert study.best_value == pytest.approx(_curve(max(sampled))[-1])
    assert epochs[0] < 0.5 * 60 * EPOCHS
    assert sum(t.state == TrialState.PRUNED for t in study.trials) > 30


def test_multi_objective_is_rejected() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    trial = study.ask()
    frozen = study._storage.get_trial(trial._trial_id)
    with pytest.raises(ValueError, match="single-objective"):
        LearningCurvePruner().prune(study, frozen)


def test_pruned_reason_for_other_pruners() -> None:
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(lower=0.5))
    trial = study.ask()
    trial.report(0.25, 3)
    assert trial.should_prune()
    # Epoch 3 is the 0-based step of trial.report: 4 epochs were trained.
    assert pruned_reason(trial) == (
        "pruned by ThresholdPruner at epoch 3 (4 epochs trained, value 0.25)"
    )
    study.tell(trial, state=TrialState.PRUNED)
    frozen = study.trials[-1]
    assert pruned_reason(frozen).startswith("pruned by the pruner at epoch 3 (4 epochs")
    assert pruned_reason(frozen, study.pruner).startswith("pruned by ThresholdPruner at epoch 3")


def test_max_resource_counts_epochs_like_hyperband() -> None:
    """``max_resource`` is the number of epochs (last report at epoch max_resource - 1), and
    "auto" reads it from the completed trials as HyperbandPruner does."""
    finals = [0.9, 0.91, 0.92]
    candidate = _curve(0.5)
    explicit = _decisions(
        _study_with_references(
            LearningCurvePruner(max_resource=EPOCHS, top_k=2, n_warmup_trials=3), finals
        ),
        candidate,
    )
    auto = _decisions(
        _study_with_references(LearningCurvePruner(top_k=2, n_warmup_trials=3), finals),
        candidate,
    )
    assert explicit == auto and any(explicit)
    assert not explicit[EPOCHS - 1]  # the last epoch is never pruned
    # A longer max_resource than the references reached: none of them counts.
    longer = LearningCurvePruner(max_resource=EPOCHS + 1, top_k=2, n_warmup_trials=3)
    assert not any(_decisions(_study_with_references(longer, finals), candidate))


@pytest.mark.parametrize("returns", ["final", "best"])
def test_the_bar_is_the_value_the_objective_returns(returns: str) -> None:
    # Curves that peak at epoch 10 and decline: the study optimizes what the objective
    # returns (final value or best so far), and the pruner's bar follows it.
    pruner = LearningCurvePruner(max_resource=EPOCHS, top_k=2, n_warmup_trials=4)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for a in (0.80, 0.85, 0.90, 0.95):
        curve = np.array(_curve(a, epochs=11) + [a - 0.01 * e for e in range(1, EPOCHS - 10)])
        value = float(curve.max() if returns == "best" else curve[-1])
        study.add_trial(
            optuna.trial.create_trial(
                value=value, intermediate_values={i: float(v) for i, v in enumerate(curve)}
            )
        )
    decisions = _decisions(study, _curve(0.3), stop=True)
    assert decisions[-1]
    bar = study.trials[-1].system_attrs[DECISION_ATTR_KEY]["bar"]
    second_best = sorted(t.value for t in study.trials[:4])[-2]
    assert bar == pytest.approx(second_best)


def test_regression_learns_that_slow_starters_finish_best() -> None:
    # Crossing curves: the trials that start lowest end highest. The regression across the
    # completed trials sees that the value so far says little, and keeps a slow starter that
    # a rule trusting the curve so far would prune; a flat, poor curve is still pruned.
    epochs = EPOCHS
    study = optuna.create_study(
        direction="maximize",
        pruner=LearningCurvePruner(
            max_resource=epochs, top_k=2, n_warmup_trials=6, curve_model="regression"
        ),
    )
    for final in np.linspace(0.6, 0.95, 12):
        rate = 0.05 + 2.0 * (0.95 - final)  # better: slower
        _add_completed(study, [final * (1 - math.exp(-rate * (e + 1))) for e in range(epochs)])
    slow = [1.3 * (1 - math.exp(-0.06 * (e + 1))) for e in range(epochs)]  # ends best
    assert not any(_decisions(study, slow))
    assert any(_decisions(study, [0.3] * epochs))
    # Trusting the curve so far (the best value plus the top trials' later gain) prunes it.
    trusting = optuna.create_study(
        direction="maximize",
        pruner=LearningCurvePruner(
            max_resource=epochs, top_k=2, n_warmup_trials=6, curve_model="inverse_power_law"
        ),
    )
    for t in study.trials[:12]:
        trusting.add_trial(t)
    assert any(_decisions(trusting, slow))


def _decision_at(
    pruner: LearningCurvePruner, study: optuna.Study, curve: CurveLike
) -> dict[str, Any] | None:
    """``pruner``'s decision on a running trial that reported ``curve`` (steps 0..), or None
    when it does not prune."""
    trial = study.ask()
    for step, value in enumerate(curve):
        trial.report(float(value), step)
    frozen = study._storage.get_trial(trial._trial_id)
    if not pruner.prune(study, frozen):
        return None
    decision = study._storage.get_trial_system_attrs(trial._trial_id)[DECISION_ATTR_KEY]
    assert isinstance(decision, dict)
    return decision


@pytest.mark.parametrize("crossing", [True, False])
def test_margin_widens_where_partial_curves_do_not_rank_the_references(crossing: bool) -> None:
    # Crossing references (the best start slowest) make the value so far say little: a low
    # rank correlation rho widens the margin by 1 + (1 - rho) at predictability_weight 1.
    # References that keep their order (rho 1) leave it as the top-k trials measured it.
    study = optuna.create_study(direction="maximize")
    for final in np.linspace(0.6, 0.95, 12):
        rate = 0.05 + 2.0 * (0.95 - final) if crossing else 0.3
        _add_completed(study, [final * (1 - math.exp(-rate * (e + 1))) for e in range(EPOCHS)])
    flat_bad = [-10.0] * 8
    kwargs: dict[str, Any] = {"max_resource": EPOCHS, "curve_model": "best_so_far"}
    plain = _decision_at(LearningCurvePruner(predictability_weight=0.0, **kwargs), study, flat_bad)
    widened = _decision_at(LearningCurvePruner(**kwargs), study, flat_bad)
    assert plain is not None and widened is not None
    assert plain["rank_correlation"] is None  # not measured at weight 0
    rho = widened["rank_correlation"]
    assert rho < 0.5 if crossing else rho == pytest.approx(1.0)
    assert plain["margin"] > 0.0
    assert widened["margin"] == pytest.approx(plain["margin"] * (2.0 - rho))


def test_rank_correlation_needs_enough_references() -> None:
    # With fewer than 8 references the study has not shown how its curves end: rho is 0 and
    # the margin widest, even for curves that keep their order.
    study = optuna.create_study(direction="maximize")
    for final in np.linspace(0.8, 0.95, 7):
        _add_completed(study, _curve(final))
    decision = _decision_at(
        LearningCurvePruner(max_resource=EPOCHS, curve_model="best_so_far"), study, [-10.0] * 8
    )
    assert decision is not None and decision["rank_correlation"] == 0.0


def test_inverse_power_law_ignores_the_first_epoch() -> None:
    # The first epoch's jump from an untrained network is not on the power law: two curves
    # that differ only there get the same extrapolation, first fitted once 4 values from the
    # second epoch on exist (step 4).
    study = optuna.create_study(direction="maximize")
    for final in np.linspace(0.8, 0.95, 10):
        _add_completed(study, _curve(final))
    pruner = LearningCurvePruner(max_resource=EPOCHS, curve_model="inverse_power_law")
    rising = [0.30 + 0.1 * (1 - e**-0.5) for e in range(1, 6)]
    decisions = [_decision_at(pruner, study, [first] + rising[1:]) for first in (0.03, 0.29)]
    assert decisions[0] is not None and decisions[1] is not None
    assert decisions[0]["curve_model"] == decisions[1]["curve_model"] == "inverse_power_law"
    assert decisions[0]["prediction"] == pytest.approx(decisions[1]["prediction"])
    early = _decision_at(pruner, study, [0.03] + rising[1:4])  # steps 0..3: 3 values after
    assert early is not None and early["curve_model"] == "best_so_far"


@pytest.mark.parametrize(("n_references", "expected_k"), [(5, 2), (6, 3), (8, 3), (9, 4), (12, 4)])
def test_top_k_is_capped_at_the_best_third_of_a_small_study(
    n_references: int, expected_k: int
) -> None:
    # Top-4 of 5 completed trials would put the bar at the second-worst of them; the bar is
    # the k-th best with k = min(top_k, n // 3 + 1).
    finals = list(np.linspace(0.5, 0.9, n_references))
    pruner = LearningCurvePruner(
        max_resource=EPOCHS, top_k=4, n_warmup_trials=5, predictability_weight=0.0
    )
    study = _study_with_references(pruner, finals)
    decision = _decision_at(pruner, study, _curve(0.45)[:10])
    assert decision is not None
    assert decision["top_k"] == expected_k
    bar = _curve(sorted(finals, reverse=True)[expected_k - 1])[-1]
    assert decision["bar"] == pytest.approx(bar)
    assert f"top-{expected_k} value" in pruned_reason(study.trials[-1])


def test_small_study_prunes_a_trial_that_only_beats_its_weaker_references() -> None:
    # Parallel curves: the regression predicts the final value exactly (leave-one-out margin
    # 0). Among 5 references the 0.75 curve ends below the 2nd best (0.8), so it is pruned,
    # though it would beat the 4th best (0.6) that an uncapped top_k=4 would set as the bar.
    pruner = LearningCurvePruner(
        max_resource=EPOCHS, top_k=4, n_warmup_trials=5, curve_model="regression"
    )
    study = _study_with_references(pruner, [0.5, 0.6, 0.7, 0.8, 0.9])
    decision = _decision_at(pruner, study, _curve(0.75)[:10])
    assert decision is not None
    assert decision["prediction"] == pytest.approx(_curve(0.75)[-1])
    assert decision["bar"] == pytest.approx(_curve(0.8)[-1])
    assert _decision_at(pruner, study, _curve(0.85)[:10]) is None
