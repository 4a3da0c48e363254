"""One study of ``benchmarks/pruning.py`` and what is measured on it (epochs, best value,
equal-compute bests, predictability of the curves)."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
import math
import time

from _pruning_families import family
from _pruning_nb301 import NB301_EPOCHS
from _pruning_specs import N_WARMUP_TRIALS
from _pruning_specs import pruner_factories
from _pruning_specs import sampler_factories
import numpy as np
import optuna
from optuna.trial import TrialState


#: Shares of the unpruned study's epochs at which the equal-compute table reads the best.
BUDGET_FRACTIONS = (0.25, 1 / 3, 0.5, 1.0)
#: Shares of the training at which the predictability table correlates value and final value.
CHECKPOINT_FRACTIONS = (0.05, 0.1, 0.2, 1 / 3, 0.5, 0.75, 0.9)
#: ``k`` of the "enters the running top-k" shares in the predictability table.
TOP_KS = (2, 3, 4)
# Trials skipped by the predictability table: evolution's random start (population 10).
PREDICTABILITY_SKIP = 10


# ----------------------------------------------------------------------------- one study
@dataclass
class Result:
    part: str
    sampler: str
    pruner: str
    seed: int
    n_trials: int
    epochs: int
    best: float
    n_complete: int
    n_pruned: int
    wall_s: float
    # Equal-compute studies only: best final accuracy within each BUDGET_FRACTIONS share of
    # the unpruned study's epochs (";"-joined in results.csv).
    best_within: tuple[float, ...] = ()
    # Unpruned studies only (see `predictability`): rank correlation of the value at each
    # CHECKPOINT_FRACTIONS share of the epochs with the final value, and the share of trials
    # that enter the running top-k for each k of TOP_KS (";"-joined in results.csv).
    rank_corr: tuple[float, ...] = ()
    top_k_share: tuple[float, ...] = ()


@dataclass(frozen=True)
class Task:
    part: str
    sampler: str
    pruner: str
    seed: int
    n_trials: int
    sweep: bool
    data_dir: str | None
    samplers: tuple[str, ...]


def run_study(task: Task) -> Result:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    start = time.perf_counter()
    fam = family("nb301" if task.part == "nb301-budget" else task.part)
    objective = fam.make(task.data_dir)
    pruner = pruner_factories(fam.epochs, task.sweep, oracle=fam.name == "nb301")[task.pruner]()
    sampler = sampler_factories(task.samplers)[task.sampler](task.seed)
    # A fixed name makes runs reproducible: Hyperband picks brackets by hashing it.
    study = optuna.create_study(
        study_name=f"{task.part}-{task.sampler}-{task.pruner}-{task.seed}",
        direction="maximize",
        sampler=sampler,
        pruner=pruner,
    )
    if task.part == "nb301-budget":
        # Go on until the pruned study has trained as many epochs as the unpruned one did.
        budget = task.n_trials * NB301_EPOCHS
        study.optimize(
            objective, n_trials=BUDGET_TRIAL_FACTOR * task.n_trials, callbacks=[StopAt(budget)]
        )
        result = summarize(study, task, time.perf_counter() - start)
        result.best_within = best_within(study, [f * budget for f in BUDGET_FRACTIONS])
        return result
    study.optimize(objective, n_trials=task.n_trials)
    return summarize(study, task, time.perf_counter() - start)


# At most this many times the unpruned number of trials in an equal-compute study.
BUDGET_TRIAL_FACTOR = 4


class StopAt:
    """Study callback: stop once the trials have reported ``epochs`` epochs in total."""

    def __init__(self, epochs: float) -> None:
        self.epochs = epochs

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        trials = study.get_trials(deepcopy=False)
        if sum(len(t.intermediate_values) for t in trials) >= self.epochs:
            study.stop()


def best_within(study: optuna.Study, budgets: Sequence[float]) -> tuple[float, ...]:
    """Best completed value among the trials finished within each cumulative epoch budget."""
    out = []
    for budget in budgets:
        spent, best = 0, math.nan
        for t in study.get_trials(deepcopy=False):
            spent += len(t.intermediate_values)
            if spent > budget:
                break
            if t.state == TrialState.COMPLETE and t.value is not None:
                best = float(t.value) if math.isnan(best) else max(best, float(t.value))
        out.append(best)
    return tuple(out)


def summarize(study: optuna.Study, task: Task, wall_s: float) -> Result:
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    rank_corr: tuple[float, ...] = ()
    top_k_share: tuple[float, ...] = ()
    if task.pruner == "none" and not task.part.endswith("-budget"):
        rank_corr, top_k_share = predictability(trials)
    return Result(
        rank_corr=rank_corr,
        top_k_share=top_k_share,
        part=task.part,
        sampler=task.sampler,
        pruner=task.pruner,
        seed=task.seed,
        n_trials=len(trials),
        # Every report is one trained epoch (NB301Objective and NASObjective report each one).
        epochs=sum(len(t.intermediate_values) for t in trials),
        best=max((float(t.value) for t in complete if t.value is not None), default=math.nan),
        n_complete=len(complete),
        n_pruned=sum(t.state == TrialState.PRUNED for t in trials),
        wall_s=round(wall_s, 2),
    )


def predictability(
    trials: Sequence[optuna.trial.FrozenTrial],
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """How much an unpruned study's partial curves say about its final values.

    Returns the Spearman rank correlation, among the study's trials from number
    ``PREDICTABILITY_SKIP`` on, between the value after each ``CHECKPOINT_FRACTIONS`` share of
    the epochs and the final value; and, for each k of ``TOP_KS``, the share of the trials after
    the first ``N_WARMUP_TRIALS`` whose final value reaches the k-th best final value of the
    trials before them. Any rule that prunes only trials that cannot join the top-k (the
    oracle, LearningCurvePruner) must train that share to the end, which bounds its saving.
    """
    from scipy.stats import spearmanr

    curves = [
        [t.intermediate_values[s] for s in sorted(t.intermediate_values)]
        for t in trials
        if t.state == TrialState.COMPLETE and t.intermediate_values
    ]
    if len(curves) <= PREDICTABILITY_SKIP + 2 or len({len(c) for c in curves}) != 1:
        return (), ()
    matrix = np.array(curves, dtype=float)
    finals = np.nan_to_num(matrix[:, -1], nan=-np.inf)  # a failed run joins no top-k
    n_epochs = matrix.shape[1]
    later = matrix[PREDICTABILITY_SKIP:]
    later = later[np.all(np.isfinite(later), axis=1)]
    rank_corr = []
    for fraction in CHECKPOINT_FRACTIONS:
        column = max(1, round(fraction * n_epochs)) - 1
        rho = spearmanr(later[:, column], later[:, -1]).statistic if len(later) > 2 else math.nan
        rank_corr.append(float(rho))
    shares = []
    for k in TOP_KS:
        entered = [
            finals[i] >= np.sort(finals[:i])[-k]
            for i in range(max(k, N_WARMUP_TRIALS), len(finals))
        ]
        shares.append(float(np.mean(entered)) if entered else math.nan)
    return tuple(rank_corr), tuple(shares)


def execute(tasks: Sequence[Task], jobs: int) -> list[Result]:
    if jobs <= 1:
        return [run_study(t) for t in tasks]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(run_study, tasks, chunksize=max(1, len(tasks) // (8 * jobs))))
