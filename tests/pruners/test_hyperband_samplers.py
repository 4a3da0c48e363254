"""Our samplers under Optuna's HyperbandPruner (bracket-filtered studies) and our pruner.

Hyperband hands samplers a ``_BracketStudy`` that only shows the trials of the current trial's
bracket and forbids most study attributes; a sampler must keep working on it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import optuna
from optuna.trial import TrialState
import pytest

from optuna_nas.pruners import LearningCurvePruner
from optuna_nas.samplers import create_sampler
from optuna_nas.search_spaces import NB201Cell
from optuna_nas.search_spaces import create_search_space


MAX_EPOCHS = 27
SPACE = create_search_space("nasbench201")
_QUALITY = {
    "none": -0.06,
    "skip_connect": 0.0,
    "avg_pool_3x3": 0.01,
    "nor_conv_1x1": 0.03,
    "nor_conv_3x3": 0.05,
}


def _learning_curve(cell: NB201Cell) -> np.ndarray:
    """A deterministic saturating curve whose asymptote and speed depend on the cell."""
    final = 0.6 + sum(_QUALITY[op] for op in cell.ops)
    speed = 0.3 + 0.1 * cell.ops.count("skip_connect")  # skips train faster, end lower
    epochs = np.arange(1, MAX_EPOCHS + 1)
    return final - 0.4 * epochs ** (-speed)


def _objective(epochs_used: list[int]) -> Callable[[optuna.Trial], float]:
    def objective(trial: optuna.Trial) -> float:
        cell = SPACE.suggest(trial)
        curve = _learning_curve(cell)
        for epoch, value in enumerate(curve):  # 0-based epochs
            epochs_used[0] += 1
            trial.report(float(value), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(curve[-1])

    return objective


def _sampler(name: str) -> optuna.samplers.BaseSampler:
    if name == "RegularizedEvolutionSampler":
        sampler = create_sampler(
            "evolution", seed=0, search_space=SPACE, population_size=5, sample_size=2
        )
    else:
        sampler = create_sampler("rnn", seed=0)
    assert type(sampler).__name__ == name
    return sampler


PRUNERS: dict[str, Callable[[], optuna.pruners.BasePruner]] = {
    "hyperband": lambda: optuna.pruners.HyperbandPruner(
        min_resource=1, max_resource=MAX_EPOCHS, reduction_factor=3
    ),
    "learning_curve": lambda: LearningCurvePruner(max_resource=MAX_EPOCHS),
}


@pytest.mark.parametrize("pruner_name", sorted(PRUNERS))
@pytest.mark.parametrize("sampler_name", ["RegularizedEvolutionSampler", "RNNControllerSampler"])
def test_sampler_works_under_pruner(sampler_name: str, pruner_name: str) -> None:
    sampler = _sampler(sampler_name)
    epochs_used = [0]
    # A fixed name: Hyperband assigns brackets by hashing the study name and trial number.
    study = optuna.create_study(
        study_name=f"{sampler_name}-{pruner_name}",
        direction="maximize",
        sampler=sampler,
        pruner=PRUNERS[pruner_name](),
    )
    n_trials = 60
    study.optimize(_objective(epochs_used), n_trials=n_trials)

    states = [t.state for t in study.trials]
    assert TrialState.FAIL not in states  # a sampler error would surface as a failed trial
    assert states.count(TrialState.PRUNED) > 0
    assert states.count(TrialState.COMPLETE) > 0
    assert epochs_used[0] < n_trials * MAX_EPOCHS  # pruning saved compute
    for t in study.trials:
        SPACE.from_params(t.params)  # every trial is a valid architecture of the space
    # The search still makes progress: the best cell beats the median random cell.
    rng = np.random.default_rng(0)
    random_finals = [_learning_curve(SPACE.sample(rng))[-1] for _ in range(200)]
    assert study.best_value > np.median(random_finals)
    if sampler_name == "RegularizedEvolutionSampler":
        # Evolution went past its random warm-up and produced children.
        parents = [t.system_attrs.get("RegularizedEvolutionSampler:parent") for t in study.trials]
        assert any(p is not None for p in parents)


@pytest.mark.parametrize("sampler_name", ["RegularizedEvolutionSampler", "RNNControllerSampler"])
def test_sampler_sees_only_its_bracket_under_hyperband(sampler_name: str) -> None:
    # A sampler is handed the bracket study; asking it for anything outside the allowed
    # attributes raises AttributeError inside optuna. Sampling through enough trials that every
    # bracket has completed trials exercises the sampler's learning/evolution code there.
    sampler = _sampler(sampler_name)
    pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=9, reduction_factor=3)
    study = optuna.create_study(
        study_name=f"{sampler_name}-brackets", direction="maximize", sampler=sampler, pruner=pruner
    )

    def objective(trial: optuna.Trial) -> float:
        cell = SPACE.suggest(trial)
        curve = _learning_curve(cell)[:9]
        for epoch, value in enumerate(curve):
            trial.report(float(value), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(curve[-1])

    study.optimize(objective, n_trials=40)
    brackets = {pruner._get_bracket_id(study, t) for t in study.trials}
    assert len(brackets) > 1
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)
