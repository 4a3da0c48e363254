"""The compared pruners and samplers of ``benchmarks/pruning.py``, by name."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from functools import partial
from typing import Any

from _common import create_sampler
from _pruning_nb301 import NB301_EPOCHS
from _pruning_nb301 import NB301Cells
from _pruning_nb301 import nb301_objective
import optuna
from optuna.trial import TrialState


#: Percentiles of the PercentilePruner baselines (run by default, besides MedianPruner).
PERCENTILES = (25.0, 75.0)
#: Completed trials before LearningCurvePruner (and the oracle) may prune: its default.
N_WARMUP_TRIALS = 5


# ----------------------------------------------------------------------------- pruners
def pruner_factories(
    max_resource: int, sweep: bool, oracle: bool = False
) -> dict[str, Callable[[], Any]]:
    """Factories of the compared pruners. ``max_resource``: epochs of a full trial (reported
    as 0-based steps); ``oracle``: add the NB301-only :class:`OracleTopKPruner` settings to
    the sweep."""
    from optuna_nas.pruners import LearningCurvePruner

    out: dict[str, Callable[[], Any]] = {
        "none": optuna.pruners.NopPruner,
        "median": optuna.pruners.MedianPruner,
        "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
        "hyperband": lambda: optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max_resource
        ),
        "learning_curve": lambda: LearningCurvePruner(max_resource=max_resource),
    }
    # The baselines: PercentilePruner(p) keeps a trial only while it is within the
    # best p percent of the other trials at the same step (25: prunes most, 75: least;
    # 50 is MedianPruner).
    for p in PERCENTILES:
        out[f"percentile:p={p:g}"] = partial(optuna.pruners.PercentilePruner, p)
    if sweep:
        for p in (35.0, 65.0, 80.0, 90.0):
            out[f"median:percentile={p:g}"] = partial(optuna.pruners.PercentilePruner, p)
        for rf in (2, 4):
            out[f"hyperband:eta={rf}"] = partial(
                optuna.pruners.HyperbandPruner,
                min_resource=1,
                max_resource=max_resource,
                reduction_factor=rf,
            )
        for r in (3, 9):
            out[f"hyperband:min_resource={r}"] = partial(
                optuna.pruners.HyperbandPruner, min_resource=r, max_resource=max_resource
            )
        out["successive_halving:eta=2"] = partial(
            optuna.pruners.SuccessiveHalvingPruner, reduction_factor=2
        )
        for k in (2, 3, 6):
            out[f"learning_curve:top_k={k}"] = partial(
                LearningCurvePruner, max_resource=max_resource, top_k=k
            )
        for k in (3, 4, 6):
            out[f"learning_curve:best_so_far,top_k={k}"] = partial(
                LearningCurvePruner,
                max_resource=max_resource,
                top_k=k,
                curve_model="best_so_far",
            )
        # The margin's widening where partial curves rank the references poorly (0: off).
        for weight in (0.0, 2.0):
            out[f"learning_curve:predictability_weight={weight:g}"] = partial(
                LearningCurvePruner, max_resource=max_resource, predictability_weight=weight
            )
        for model in ("ensemble", "regression", "inverse_power_law"):
            out[f"learning_curve:{model}"] = partial(
                LearningCurvePruner, max_resource=max_resource, curve_model=model
            )
        for k in (2, 3):
            out[f"learning_curve:regression,top_k={k}"] = partial(
                LearningCurvePruner, max_resource=max_resource, top_k=k, curve_model="regression"
            )
            out[f"learning_curve:ensemble,top_k={k}"] = partial(
                LearningCurvePruner, max_resource=max_resource, top_k=k, curve_model="ensemble"
            )
        out["learning_curve:regression,optimism=0.5"] = partial(
            LearningCurvePruner, max_resource=max_resource, optimism=0.5, curve_model="regression"
        )
        if oracle:
            for k in (2, 4):
                out[f"oracle:top_k={k}"] = partial(OracleTopKPruner, top_k=k)
    return out


class OracleTopKPruner(optuna.pruners.BasePruner):
    """A yardstick, not a pruner: it reads the trial's *true* final NB301 accuracy.

    At a trial's first report it prunes iff that final value is below the ``top_k``-th best
    completed value (after ``n_warmup_trials`` completions, as LearningCurvePruner). It is the
    most any top-k rule could save without ever dropping a trial that would join the top-k.
    """

    def __init__(self, top_k: int, n_warmup_trials: int = N_WARMUP_TRIALS) -> None:
        self.top_k = top_k
        self.n_warmup_trials = n_warmup_trials

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if len(trial.intermediate_values) != 1:
            return False
        completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        done = sorted((float(t.value) for t in completed if t.value is not None), reverse=True)
        if len(done) < max(self.top_k, self.n_warmup_trials):
            return False
        objective = nb301_objective(None)  # already built (with --data-dir) by run_study
        genotype = NB301Cells().suggest(optuna.trial.FixedTrial(trial.params))  # type: ignore[arg-type]
        final = float(objective.bench.learning_curve(genotype, NB301_EPOCHS)[-1])
        return final < done[self.top_k - 1]


SamplerFactory = Callable[[int], optuna.samplers.BaseSampler]

#: The samplers of the benchmark: name -> keyword arguments of ``create_sampler``. Evolution
#: uses a population of 10: under pruning only completed trials join it, and with 100 trials a
#: population of 20 would keep evolution in its random warm-up throughout.
SAMPLERS: dict[str, dict[str, Any]] = {
    "random": {},
    "evolution": {"population_size": 10, "sample_size": 3},
}


def sampler_factories(names: Sequence[str]) -> dict[str, SamplerFactory]:
    """``seed -> sampler`` for each name of :data:`SAMPLERS`."""
    unknown = sorted(set(names) - set(SAMPLERS))
    if unknown:
        raise ValueError(f"Unknown sampler(s) {unknown}; expected some of {list(SAMPLERS)}.")
    return {name: partial(_seeded, name) for name in names}


def _seeded(name: str, seed: int) -> optuna.samplers.BaseSampler:
    return create_sampler(name, seed=seed, **SAMPLERS[name])
