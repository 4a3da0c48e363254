"""Pruners compared as compute saved vs final regret, on learning curves.

Part 1, NAS-Bench-301 (default): each trial is a DARTS cell whose CIFAR-10 validation accuracy
after epochs 1..98 comes from the NAS-Bench-301 surrogate (``optuna_nas.benchmarks``), reported
as 0-based steps 0..97 like every objective of the package. Every
(sampler, pruner, seed) runs one study of ``--trials`` trials; we record the epochs "trained"
(sum of the epochs each trial reported) and the best final (epoch-98) accuracy among the
trials that completed. With the same seed the random sampler proposes the same cells whatever
the pruner, so ``delta`` = best accuracy with pruning - best without pruning (same sampler and
seed, in percentage points) measures exactly what the pruner lost. For regularized evolution
the trajectories differ; the same paired difference is reported.

Part 2, real training (``--real``): NAS-Bench-201 cells (8 channels, one cell per stage) trained
with :class:`optuna_nas.training.NASObjective` on the embedded MNIST digits, with the samplers of
``--real-samplers``. One job per (sampler, seed) runs every pruner; each distinct cell is
trained once to the end without pruning (seed ``seed + number`` of the first trial proposing
it) and every study that proposes it replays that real learning curve, so the pruners share
their training runs and evolution simply trains the cells its trajectories reach. The random
sampler's first seed also runs the LearningCurvePruner live and checks it matches the replay.

Usage::

    python benchmarks/pruning.py               # 50 seeds x 100 trials, random + evolution
    python benchmarks/pruning.py --quick       # CI smoke test (3 seeds, 30 trials)
    python benchmarks/pruning.py --sweep       # extra settings per pruner: a frontier
    python benchmarks/pruning.py --sweep --sweep-samplers random,evolution  # both frontiers
    python benchmarks/pruning.py --equal-budget  # + equal compute: pruned studies run on
    python benchmarks/pruning.py --real        # + real training on MNIST (CPU: ~15 min)
    python benchmarks/pruning.py --from-csv a/results.csv b/results.csv  # merge, re-plot

``--equal-budget`` also answers "what does the saved compute buy?": each pruned NB301 study
(default settings only) runs again, up to 4x the trials, until it has trained as many epochs
as the unpruned study, and ``equal_compute.csv`` holds its best accuracy within 1/4, 1/3, 1/2
and all of those epochs, paired with the unpruned best.

Writes ``results.csv`` (one row per study), ``summary.csv`` and ``pruning.png`` (epochs vs
regret) to ``--out``. Needs the ``benchmarks`` extra (yahpo-gym, matplotlib) and the NB301 files
(``--data-dir`` or ``$OPTUNA_NAS_DATA``); the NB301 part is skipped with a message without them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
import csv
from dataclasses import asdict
from dataclasses import astuple
from dataclasses import dataclass
from functools import partial
import math
import os
from pathlib import Path
import sys
import time
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState


NB301_EPOCHS = 98  # the surrogate's epochs 1..98, reported as 0-based steps 0..97
#: Shares of the unpruned study's epochs at which the equal-compute table reads the best.
BUDGET_FRACTIONS = (0.25, 1 / 3, 0.5, 1.0)
#: Shares of the training at which the predictability table correlates value and final value.
CHECKPOINT_FRACTIONS = (0.05, 0.1, 0.2, 1 / 3, 0.5, 0.75, 0.9)
#: ``k`` of the "enters the running top-k" shares in the predictability table.
TOP_KS = (2, 3, 4)
# Trials skipped by the predictability table: evolution's random start (population 10).
_PREDICTABILITY_SKIP = 10
# Completed trials before LearningCurvePruner (and the oracle) may prune: its default.
_N_WARMUP_TRIALS = 5


# ----------------------------------------------------------------------------- pruners
def _pruners(max_resource: int, sweep: bool, oracle: bool = False) -> dict[str, Callable[[], Any]]:
    """Factories of the compared pruners. ``max_resource``: epochs of a full trial (reported
    as 0-based steps); ``oracle``: add the NB301-only :class:`_OracleTopKPruner` settings to
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
        if oracle:
            for k in (2, 4):
                out[f"oracle:top_k={k}"] = partial(_OracleTopKPruner, top_k=k)
    return out


class _OracleTopKPruner(optuna.pruners.BasePruner):
    """A yardstick, not a pruner: it reads the trial's *true* final NB301 accuracy.

    At a trial's first report it prunes iff that final value is below the ``top_k``-th best
    completed value (after ``n_warmup_trials`` completions, as LearningCurvePruner). It is the
    most any top-k rule could save without ever dropping a trial that would join the top-k.
    """

    def __init__(self, top_k: int, n_warmup_trials: int = _N_WARMUP_TRIALS) -> None:
        self.top_k = top_k
        self.n_warmup_trials = n_warmup_trials

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if len(trial.intermediate_values) != 1:
            return False
        completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        done = sorted((float(t.value) for t in completed if t.value is not None), reverse=True)
        if len(done) < max(self.top_k, self.n_warmup_trials):
            return False
        objective = _nb301_objective(None)  # already built (with --data-dir) by _run
        genotype = _NB301Cells().suggest(optuna.trial.FixedTrial(trial.params))  # type: ignore[arg-type]
        final = float(objective.bench.learning_curve(genotype, NB301_EPOCHS)[-1])
        return final < done[self.top_k - 1]


def _samplers(names: Sequence[str]) -> dict[str, Callable[[int], optuna.samplers.BaseSampler]]:
    out: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {}
    for name in names:
        if name == "random":
            out[name] = lambda seed: optuna.samplers.RandomSampler(seed=seed)
        elif name == "evolution":
            from optuna_nas import samplers

            cls = getattr(samplers, "RegularizedEvolutionSampler", None)
            if cls is None:
                print("RegularizedEvolutionSampler is not available; skipped.", file=sys.stderr)
                continue
            # A population of 10: under pruning only completed trials join it, and with 100
            # trials a population of 20 would keep evolution in its random warm-up throughout.
            out[name] = partial(_seeded, cls, population_size=10, sample_size=3)
        else:
            raise ValueError(f"Unknown sampler {name!r}; expected 'random' or 'evolution'.")
    return out


# ----------------------------------------------------------------------------- NB301
def _seeded(cls: Any, seed: int, **kwargs: Any) -> optuna.samplers.BaseSampler:
    return cls(seed=seed, **kwargs)


class _NB301Cells:
    """DARTS cells inside NAS-Bench-301's own space, suggested in its encoding.

    NAS-Bench-301 requires two *distinct* inputs per node; the generic DARTS space lets both
    inputs be equal (about 96% of random cells), which the surrogate cannot score. So each node
    suggests its input *pair* (``"0_2"``, like NB301's ``inputs_node_*``) and one operation per
    input: every trial is a valid query and no budget is lost to failed trials.
    ``NB301Objective`` only needs ``num_nodes``, ``operations``, ``suggest`` and ``to_string``.
    """

    num_nodes = 4

    def __init__(self) -> None:
        from optuna_nas.benchmarks import NB301_OPERATIONS

        self.operations = tuple(NB301_OPERATIONS)

    def suggest(self, trial: optuna.Trial) -> Any:
        from optuna_nas.search_spaces import Genotype

        cells: dict[str, list[tuple[str, int]]] = {}
        for cell in ("normal", "reduce"):
            pairs: list[tuple[str, int]] = []
            for node in range(2, 2 + self.num_nodes):
                if node == 2:
                    low, high = 0, 1  # node 2 can only read the two cell inputs
                else:
                    choices = [f"{i}_{j}" for i in range(node) for j in range(i + 1, node)]
                    text = trial.suggest_categorical(f"nb301/{cell}/node{node}/inputs", choices)
                    low, high = (int(v) for v in text.split("_"))
                for slot, source in enumerate((low, high)):
                    op = trial.suggest_categorical(
                        f"nb301/{cell}/node{node}/op{slot}", self.operations
                    )
                    pairs.append((op, source))
            cells[cell] = pairs
        concat = list(range(2, 2 + self.num_nodes))
        return Genotype(
            normal=cells["normal"],
            normal_concat=concat,
            reduce=cells["reduce"],
            reduce_concat=concat,
        )

    def to_string(self, genotype: Any) -> str:
        return str(genotype)

    def __repr__(self) -> str:
        return "_NB301Cells()"


_NB301_OBJECTIVE: Any = None


def _nb301_objective(data_dir: str | None) -> Any:
    global _NB301_OBJECTIVE
    if _NB301_OBJECTIVE is None:
        from optuna_nas.benchmarks import NB301Benchmark

        bench = NB301Benchmark(data_dir=data_dir)
        objective = bench.objective(
            max_epochs=NB301_EPOCHS,
            space=_NB301Cells(),  # type: ignore[arg-type]
        )
        if hasattr(objective, "bench"):  # speed only: memoise the surrogate's curves
            objective.bench = _CachedCurves(bench)  # type: ignore[assignment]
        _NB301_OBJECTIVE = objective
    return _NB301_OBJECTIVE


class _CachedCurves:
    """NB301Benchmark whose learning curves are memoised per genotype (the surrogate is
    deterministic): runs of different pruners with the same sampler seed query the same cells.
    """

    def __init__(self, bench: Any) -> None:
        self.bench = bench
        self.cache: dict[tuple[Any, Any], np.ndarray] = {}

    def learning_curve(self, genotype: Any, epochs: Any = NB301_EPOCHS) -> np.ndarray:
        key = (genotype, epochs if isinstance(epochs, int) else tuple(epochs))
        if key not in self.cache:
            if len(self.cache) > 50_000:  # ~40 MB
                self.cache.clear()
            self.cache[key] = self.bench.learning_curve(genotype, epochs)
        return self.cache[key]


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
    # Unpruned studies only (see `_predictability`): rank correlation of the value at each
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


def _run(task: Task) -> Result:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    start = time.perf_counter()
    objective = _nb301_objective(task.data_dir)
    pruner = _pruners(NB301_EPOCHS, task.sweep, oracle=True)[task.pruner]()
    sampler = _samplers(task.samplers)[task.sampler](task.seed)
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
            objective, n_trials=_BUDGET_TRIAL_FACTOR * task.n_trials, callbacks=[_StopAt(budget)]
        )
        result = _summarize(study, task, time.perf_counter() - start)
        result.best_within = _best_within(study, [f * budget for f in BUDGET_FRACTIONS])
        return result
    study.optimize(objective, n_trials=task.n_trials)
    return _summarize(study, task, time.perf_counter() - start)


# At most this many times the unpruned number of trials in an equal-compute study.
_BUDGET_TRIAL_FACTOR = 4


class _StopAt:
    """Study callback: stop once the trials have reported ``epochs`` epochs in total."""

    def __init__(self, epochs: float) -> None:
        self.epochs = epochs

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        trials = study.get_trials(deepcopy=False)
        if sum(len(t.intermediate_values) for t in trials) >= self.epochs:
            study.stop()


def _best_within(study: optuna.Study, budgets: Sequence[float]) -> tuple[float, ...]:
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


def _summarize(study: optuna.Study, task: Task, wall_s: float) -> Result:
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    rank_corr: tuple[float, ...] = ()
    top_k_share: tuple[float, ...] = ()
    if task.pruner == "none" and task.part in ("nb301", "real"):
        rank_corr, top_k_share = _predictability(trials)
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


def _predictability(
    trials: Sequence[optuna.trial.FrozenTrial],
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """How much an unpruned study's partial curves say about its final values.

    Returns the Spearman rank correlation, among the study's trials from number
    ``_PREDICTABILITY_SKIP`` on, between the value after each ``CHECKPOINT_FRACTIONS`` share of
    the epochs and the final value; and, for each k of ``TOP_KS``, the share of the trials after
    the first ``_N_WARMUP_TRIALS`` whose final value reaches the k-th best final value of the
    trials before them. Any rule that prunes only trials that cannot join the top-k (the
    oracle, LearningCurvePruner) must train that share to the end, which bounds its saving.
    """
    from scipy.stats import spearmanr

    curves = [
        [t.intermediate_values[s] for s in sorted(t.intermediate_values)]
        for t in trials
        if t.state == TrialState.COMPLETE and t.intermediate_values
    ]
    if len(curves) <= _PREDICTABILITY_SKIP + 2 or len({len(c) for c in curves}) != 1:
        return (), ()
    matrix = np.array(curves, dtype=float)
    finals = np.nan_to_num(matrix[:, -1], nan=-np.inf)  # a failed run joins no top-k
    n_epochs = matrix.shape[1]
    later = matrix[_PREDICTABILITY_SKIP:]
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
            for i in range(max(k, _N_WARMUP_TRIALS), len(finals))
        ]
        shares.append(float(np.mean(entered)) if entered else math.nan)
    return tuple(rank_corr), tuple(shares)


# ----------------------------------------------------------------------------- real training
_REAL_EPOCHS = 10


def _real_objective(
    seed: int, epochs: int, subset: int, prune: bool, train_seed: int | None = None
) -> Any:
    """``seed`` picks the data subset and, unless ``train_seed`` is given, the training seeds."""
    from optuna_nas.search_spaces import create_search_space
    from optuna_nas.training import EmbeddedDataModule
    from optuna_nas.training import NASObjective

    return NASObjective(
        create_search_space("nasbench201"),
        EmbeddedDataModule(subset=subset, image_size=16, seed=seed),
        max_epochs=epochs,
        build_kwargs={"channels": 8, "cells_per_stage": 1},
        trainer_kwargs={"accelerator": "cpu"},
        measure_latency=False,
        seed=seed if train_seed is None else train_seed,
        prune=prune,
    )


class _TrainOnceObjective:
    """Real training, each distinct cell trained once to the end and its curve replayed.

    The first trial that proposes a cell trains it without pruning (seed ``seed + trial
    number``, as ``NASObjective`` does); that trial and every later one proposing the same cell,
    in any study of this process, re-report the recorded validation curve and obey the pruner.
    So the pruners of one seed share their training runs, and any sampler works: evolution's
    trajectories differ per pruner and simply train the cells they reach. Unlike a live run,
    a re-proposed cell gets the same curve again (like the NB301 surrogate).
    """

    def __init__(self, seed: int, epochs: int, subset: int) -> None:
        from optuna_nas.search_spaces import create_search_space

        self.space = create_search_space("nasbench201")
        self.seed, self.epochs, self.subset = seed, epochs, subset
        self.curves: dict[str, tuple[float, ...]] = {}
        self.trained_s = 0.0

    def _train(self, params: dict[str, Any], train_seed: int) -> tuple[float, ...]:
        start = time.perf_counter()
        # A fresh one-trial study: its trial 0 trains with the base seed `train_seed`.
        study = optuna.create_study(direction="maximize")
        study.enqueue_trial(params)
        objective = _real_objective(
            self.seed, self.epochs, self.subset, prune=False, train_seed=train_seed
        )
        study.optimize(objective, n_trials=1)
        # Without pruning NASObjective reports nothing; it records the curve as a user attr.
        values = list(study.trials[0].user_attrs.get("val_acc_curve", []))
        values += [math.nan] * (self.epochs - len(values))  # a failed run: pruned at its NaN
        self.trained_s += time.perf_counter() - start
        return tuple(float(v) for v in values)

    def __call__(self, trial: optuna.Trial) -> float:
        arch = self.space.to_string(self.space.suggest(trial))
        if arch not in self.curves:
            self.curves[arch] = self._train(dict(trial.params), self.seed + trial.number)
        curve = self.curves[arch]
        for step, value in enumerate(curve):
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(curve[-1])


def _run_real_seed(
    sampler: str,
    seed: int,
    pruners: Sequence[str],
    n_trials: int,
    epochs: int,
    subset: int,
    sweep: bool,
) -> tuple[list[Result], int, float]:
    """Every pruner on one (sampler, seed) with real training shared through one cache.

    Returns the results, the number of cells trained and the seconds spent training them.
    """
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    objective = _TrainOnceObjective(seed, epochs, subset)
    factories = _pruners(epochs, sweep)
    results = []
    # "none" first: it trains the cells that the pruned studies of the random sampler reuse.
    for name in sorted(pruners, key=lambda p: p != "none"):
        start = time.perf_counter()
        study = optuna.create_study(
            study_name=f"real-{sampler}-{name}-{seed}",
            direction="maximize",
            sampler=_samplers([sampler])[sampler](seed),
            pruner=factories[name](),
        )
        study.optimize(objective, n_trials=n_trials)
        task = Task("real", sampler, name, seed, n_trials, sweep, None, (sampler,))
        results.append(_summarize(study, task, time.perf_counter() - start))
    return results, len(objective.curves), objective.trained_s


def _live_check(seed: int, n_trials: int, epochs: int, subset: int, replayed: Result) -> str:
    """Run the LearningCurvePruner with real training and compare with its replay."""
    from optuna_nas.pruners import LearningCurvePruner

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # with --jobs it runs in this process
    start = time.perf_counter()
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=seed),
        pruner=LearningCurvePruner(max_resource=epochs),
    )
    study.optimize(_real_objective(seed, epochs, subset, prune=True), n_trials=n_trials)
    task = Task("real", "random", "learning_curve", seed, n_trials, False, None, ("random",))
    live = _summarize(study, task, time.perf_counter() - start)
    same = (live.epochs, live.best) == (replayed.epochs, replayed.best)
    return (
        f"live LearningCurvePruner run (seed {seed}): {live.epochs} epochs, best "
        f"{100 * live.best:.2f}%; replay: {replayed.epochs} epochs, best "
        f"{100 * replayed.best:.2f}% -> {'identical' if same else 'DIFFERENT'}"
    )


# ----------------------------------------------------------------------------- reporting
def _table(results: Sequence[Result], scale: float) -> list[dict[str, Any]]:
    """Per (part, sampler, pruner): means over seeds, paired with the unpruned run."""
    base = {(r.part, r.sampler, r.seed): r for r in results if r.pruner == "none"}
    rows = []
    keys = sorted({(r.part, r.sampler) for r in results})
    for part, sampler in keys:
        pruner_names = list(dict.fromkeys(r.pruner for r in results if r.sampler == sampler))
        for pruner in pruner_names:
            rs = [r for r in results if (r.part, r.sampler, r.pruner) == (part, sampler, pruner)]
            paired = [
                (r, base[(part, sampler, r.seed)]) for r in rs if (part, sampler, r.seed) in base
            ]
            deltas = np.array([scale * (r.best - b.best) for r, b in paired])
            ratio = np.array([r.epochs / b.epochs for r, b in paired])
            rows.append(
                {
                    "part": part,
                    "sampler": sampler,
                    "pruner": pruner,
                    "seeds": len(rs),
                    "epochs": float(np.mean([r.epochs for r in rs])),
                    "epochs_fraction": float(ratio.mean()) if ratio.size else math.nan,
                    "saving_x": float(1.0 / ratio.mean()) if ratio.size else math.nan,
                    "best": float(scale * np.nanmean([r.best for r in rs])),
                    "delta_mean": float(deltas.mean()) if deltas.size else math.nan,
                    "delta_se": (
                        float(deltas.std(ddof=1) / math.sqrt(deltas.size))
                        if deltas.size > 1
                        else math.nan
                    ),
                    "delta_worst": float(deltas.min()) if deltas.size else math.nan,
                    "completed": float(np.mean([r.n_complete for r in rs])),
                    "wall_s": float(np.mean([r.wall_s for r in rs])),
                }
            )
    return rows


def _budget_table(results: Sequence[Result]) -> list[dict[str, Any]]:
    """Equal compute: pruned studies run on until they trained the unpruned study's epochs."""
    base = {(r.sampler, r.seed): r for r in results if r.part == "nb301" and r.pruner == "none"}
    rows = []
    budget = [r for r in results if r.part == "nb301-budget"]
    for sampler, pruner in dict.fromkeys((r.sampler, r.pruner) for r in budget):
        paired = [
            (r, base[(sampler, r.seed)])
            for r in budget
            if (r.sampler, r.pruner) == (sampler, pruner) and (sampler, r.seed) in base
        ]
        if not paired:
            continue
        row: dict[str, Any] = {"sampler": sampler, "pruner": pruner, "seeds": len(paired)}
        for i, fraction in enumerate(BUDGET_FRACTIONS):
            deltas = np.array([r.best_within[i] - b.best for r, b in paired])
            # NaN: no trial completed within that budget (counted, not averaged).
            finite = deltas[np.isfinite(deltas)]
            row[f"delta_at_{fraction:.2f}"] = float(finite.mean()) if finite.size else math.nan
            row[f"se_at_{fraction:.2f}"] = (
                float(finite.std(ddof=1) / math.sqrt(finite.size)) if finite.size > 1 else math.nan
            )
            row[f"none_completed_at_{fraction:.2f}"] = int(deltas.size - finite.size)
        row["trials"] = float(np.mean([r.n_trials for r, _ in paired]))
        rows.append(row)
    return rows


def _print_budget_table(rows: Sequence[dict[str, Any]]) -> None:
    print(
        "\nEqual compute (--equal-budget): pruned studies run on (up to "
        f"{_BUDGET_TRIAL_FACTOR}x the trials) until they trained as many epochs as the unpruned "
        "one; delta = their best final accuracy within the given share of those epochs minus the "
        "unpruned study's best (pp, mean +- s.e.)."
    )
    shares = "".join(f"{f'{f:.2f}x epochs':>18s}" for f in BUDGET_FRACTIONS)
    header = f"{'sampler':9s} {'pruner':20s} {'seeds':>5s}{shares} {'trials':>7s}"
    print(header)
    print("-" * len(header))
    for r in rows:
        cells = "".join(
            f"{r[f'delta_at_{f:.2f}']:+9.3f} +- {r[f'se_at_{f:.2f}']:.3f}"
            for f in BUDGET_FRACTIONS
        )
        print(f"{r['sampler']:9s} {r['pruner']:20s} {r['seeds']:5d}{cells} {r['trials']:7.1f}")


def _predictability_table(results: Sequence[Result]) -> list[dict[str, Any]]:
    """Per (part, sampler): the unpruned studies' `_predictability`, averaged over seeds."""
    rows = []
    for part, sampler in sorted({(r.part, r.sampler) for r in results if r.rank_corr}):
        rs = [r for r in results if (r.part, r.sampler) == (part, sampler) and r.rank_corr]
        corr = np.nanmean([r.rank_corr for r in rs], axis=0)
        shares = np.nanmean([r.top_k_share for r in rs], axis=0)
        epochs = float(np.mean([r.epochs / r.n_trials for r in rs]))  # epochs of a full trial
        row: dict[str, Any] = {"part": part, "sampler": sampler, "seeds": len(rs)}
        for fraction, rho in zip(CHECKPOINT_FRACTIONS, corr):
            row[f"rank_corr_at_{fraction:.2f}"] = float(rho)
        for k, share in zip(TOP_KS, shares):
            row[f"top{k}_share"] = float(share)
            # The share trains to the end, every other trial one epoch: the most a top-k rule
            # (even one knowing the final values) can save.
            row[f"top{k}_max_saving_x"] = float(epochs / (share * epochs + (1 - share)))
        rows.append(row)
    return rows


def _print_predictability_table(rows: Sequence[dict[str, Any]]) -> None:
    print(
        "\nPredictability (unpruned studies, mean over seeds): Spearman correlation, among a "
        f"study's trials from number {_PREDICTABILITY_SKIP} on, of the value after a share of "
        "the epochs with the final value; share of trials whose final value enters the running "
        "top-k, and the most a rule pruning only trials that cannot join the top-k can save."
    )
    checkpoints = "".join(f"{f'{f:.0%}':>6s}" for f in CHECKPOINT_FRACTIONS)
    tops = "".join(f"{f'top-{k} (max x)':>16s}" for k in TOP_KS)
    header = f"{'part':6s} {'sampler':9s} {'seeds':>5s}{checkpoints}{tops}"
    print(header)
    print("-" * len(header))
    for r in rows:
        corr = "".join(f"{r[f'rank_corr_at_{f:.2f}']:6.2f}" for f in CHECKPOINT_FRACTIONS)
        share = "".join(
            f"{r[f'top{k}_share']:8.3f} ({r[f'top{k}_max_saving_x']:4.1f}x)" for k in TOP_KS
        )
        print(f"{r['part']:6s} {r['sampler']:9s} {r['seeds']:5d}{corr}{share}")


def _print_table(rows: Sequence[dict[str, Any]]) -> None:
    header = (
        f"{'part':6s} {'sampler':9s} {'pruner':34s} {'seeds':>5s} {'epochs':>8s} "
        f"{'saving':>7s} {'best %':>7s} {'delta pp':>16s} {'worst':>7s} {'done':>5s}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['part']:6s} {r['sampler']:9s} {r['pruner']:34s} {r['seeds']:5d} "
            f"{r['epochs']:8.0f} {r['saving_x']:6.2f}x {r['best']:7.3f} "
            f"{r['delta_mean']:+8.3f} +- {r['delta_se']:.3f} {r['delta_worst']:+7.3f} "
            f"{r['completed']:5.1f}"
        )


def _plot(rows: Sequence[dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot.", file=sys.stderr)
        return
    panels = sorted({(r["part"], r["sampler"]) for r in rows})
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    colors = {
        "none": "black",
        "median": "tab:blue",
        "successive_halving": "tab:green",
        "hyperband": "tab:orange",
        "learning_curve": "tab:red",
        "learning_curve (best_so_far)": "tab:purple",
        "oracle": "grey",
    }

    def family(name: str) -> str:
        if name.startswith("learning_curve:best_so_far"):
            return "learning_curve (best_so_far)"
        return name.split(":")[0]

    for ax, (part, sampler) in zip(axes[0], panels):
        panel = [r for r in rows if (r["part"], r["sampler"]) == (part, sampler)]
        for name, color in colors.items():
            pts = [r for r in panel if family(r["pruner"]) == name]
            pts.sort(key=lambda r: r["epochs_fraction"])
            if not pts:
                continue
            x = [r["epochs_fraction"] for r in pts]
            y = [-r["delta_mean"] for r in pts]
            err = [r["delta_se"] for r in pts]
            ax.errorbar(x, y, yerr=err, color=color, marker="o", label=name, capsize=3)
            for r in pts:
                if r["pruner"] != "none":
                    setting = r["pruner"].partition(":")[2] or "default"
                    ax.annotate(
                        setting.replace("best_so_far,", ""),
                        (r["epochs_fraction"], -r["delta_mean"]),
                        fontsize=7,
                        color=color,
                        xytext=(3, 3),
                        textcoords="offset points",
                    )
        ax.axhline(0.1, color="grey", lw=0.8, ls="--")
        ax.axvline(1 / 3, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("epochs trained / epochs without pruning")
        ax.set_ylabel("regret vs no pruning (pp of best accuracy)")
        ax.set_title(f"{part}, {sampler} sampler ({panel[0]['seeds']} seeds)")
        ax.set_xlim(0, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


# ----------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds run from here (both parts)"
    )
    parser.add_argument("--trials", type=int, default=100, help="trials per NB301 study")
    parser.add_argument("--samplers", default="random,evolution")
    parser.add_argument("--pruners", default=None, help="comma-separated subset (default all)")
    parser.add_argument(
        "--sweep", action="store_true", help="extra settings per pruner (a frontier)"
    )
    parser.add_argument(
        "--sweep-samplers", default="random", help="samplers the --sweep settings run with"
    )
    parser.add_argument(
        "--equal-budget",
        action="store_true",
        help="also run the NB301 pruned studies on until they trained the unpruned epochs",
    )
    parser.add_argument("--quick", action="store_true", help="3 seeds, 30 trials (CI)")
    parser.add_argument("--real", action="store_true", help="also real training on MNIST")
    parser.add_argument(
        "--real-samplers", default="random,evolution", help="samplers of the real part"
    )
    parser.add_argument("--real-seeds", type=int, default=3)
    parser.add_argument("--real-trials", type=int, default=20)
    parser.add_argument("--real-epochs", type=int, default=_REAL_EPOCHS)
    parser.add_argument("--real-subset", type=int, default=1000, help="MNIST images used")
    parser.add_argument("--no-nb301", action="store_true", help="skip the NB301 part")
    parser.add_argument("--data-dir", default=None, help="folder holding nasbench301/")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--out", default="pruning_results")
    parser.add_argument(
        "--from-csv", nargs="+", default=None, help="only re-render saved results.csv files"
    )
    args = parser.parse_args(argv)
    if args.from_csv:
        return _report(_load_results(args.from_csv), Path(args.out), [], "saved results")
    if args.quick:
        args.seeds, args.trials = 3, 30
        args.real_seeds, args.real_trials, args.real_epochs = 1, 6, 4
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sampler_names = tuple(s for s in args.samplers.split(",") if s)
    available = tuple(_samplers(sampler_names))
    sweep_samplers = {s for s in args.sweep_samplers.split(",") if s}

    def seeds(n: int) -> range:
        return range(args.first_seed, args.first_seed + n)

    def pruner_names(max_resource: int, oracle: bool) -> list[str]:
        names = list(_pruners(max_resource, args.sweep, oracle=oracle))
        if args.pruners:
            wanted = ["none"] + [p for p in args.pruners.split(",") if p != "none"]
            unknown = sorted(set(wanted) - set(names))
            if unknown:
                raise SystemExit(f"Unknown pruner(s) {unknown}; choose from {names}.")
            names = wanted
        return names

    results: list[Result] = []
    start = time.perf_counter()
    if not args.no_nb301:
        try:
            _nb301_objective(args.data_dir)
        except (FileNotFoundError, ImportError) as error:
            print(f"NAS-Bench-301 part skipped: {error}", file=sys.stderr)
        else:
            nb301_names = pruner_names(NB301_EPOCHS, oracle=True)
            base_names = [p for p in nb301_names if ":" not in p]
            tasks = [
                Task("nb301", s, p, seed, args.trials, args.sweep, args.data_dir, available)
                for s in available
                # The sweep's extra settings run with --sweep-samplers only (time).
                for p in (nb301_names if s in sweep_samplers else base_names)
                for seed in seeds(args.seeds)
            ]
            if args.equal_budget:
                tasks += [
                    Task("nb301-budget", *astuple(t)[1:])
                    for t in tasks
                    if t.pruner != "none" and ":" not in t.pruner
                ]
            results += _execute(tasks, args.jobs)

    notes: list[str] = []
    if args.real:
        t0 = time.perf_counter()
        real_samplers = [s for s in args.real_samplers.split(",") if s]
        unknown = sorted(set(real_samplers) - set(_samplers(real_samplers)))
        if unknown:
            raise SystemExit(f"Unknown --real-samplers {unknown}.")
        names = pruner_names(args.real_epochs, oracle=False)
        # One job per (sampler, seed): its pruners share the trained cells.
        run_seed = partial(
            _run_real_seed,
            pruners=names,
            n_trials=args.real_trials,
            epochs=args.real_epochs,
            subset=args.real_subset,
            sweep=args.sweep,
        )
        jobs = [(s, seed) for s in real_samplers for seed in seeds(args.real_seeds)]
        if args.jobs <= 1 or len(jobs) == 1:
            outputs = [run_seed(s, seed) for s, seed in jobs]
        else:
            with ProcessPoolExecutor(max_workers=args.jobs) as pool:
                outputs = list(pool.map(run_seed, *zip(*jobs)))
        real_results = [r for rs, _, _ in outputs for r in rs]
        results += real_results
        for s in real_samplers:
            cells = sum(n for (sampler, _), (_, n, _) in zip(jobs, outputs) if sampler == s)
            seconds = sum(t for (sampler, _), (_, _, t) in zip(jobs, outputs) if sampler == s)
            notes.append(
                f"real training, {s}: {cells} distinct cells trained in {seconds:.0f}s "
                f"({args.real_seeds} seeds x {len(names)} pruners x {args.real_trials} trials)"
            )
        print(
            f"real training: {time.perf_counter() - t0:.0f}s ({args.jobs} jobs)", file=sys.stderr
        )
        replayed = [
            r
            for r in real_results
            if (r.sampler, r.pruner, r.seed) == ("random", "learning_curve", args.first_seed)
        ]
        if replayed:
            notes.append(
                _live_check(
                    args.first_seed,
                    args.real_trials,
                    args.real_epochs,
                    args.real_subset,
                    replayed[0],
                )
            )

    parts = [] if args.no_nb301 else [f"NB301 {args.seeds} seeds x {args.trials} trials"]
    if args.real:
        parts.append(
            f"real {args.real_seeds} seeds x {args.real_trials} trials x {args.real_epochs} epochs"
        )
    description = ", ".join(parts)
    return _report(results, out, notes, description, started=start)


def _report(
    results: Sequence[Result],
    out: Path,
    notes: Sequence[str],
    description: str,
    started: float | None = None,
) -> int:
    if not results:
        print("Nothing was run.", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    rows = [
        *_table([r for r in results if r.part == "nb301"], scale=1.0),  # NB301: already percent
        *_table([r for r in results if r.part == "real"], scale=100.0),  # accuracy in [0, 1]
    ]
    budget_rows = _budget_table(results)
    predictability_rows = _predictability_table(results)
    records = [asdict(r) for r in results]
    for record in records:
        for key in ("best_within", "rank_corr", "top_k_share"):
            record[key] = ";".join(f"{v:.6g}" for v in record[key])
    _write_csv(out / "results.csv", records)
    _write_csv(out / "summary.csv", rows)
    if budget_rows:
        _write_csv(out / "equal_compute.csv", budget_rows)
    if predictability_rows:
        _write_csv(out / "predictability.csv", predictability_rows)
    _plot(rows, out / "pruning.png")
    print(
        f"Pruning benchmark ({description}): delta = best final accuracy minus that of the "
        "same sampler and seed without pruning (percentage points); saving = epochs without "
        "pruning / epochs with; done = completed trials."
    )
    _print_table(rows)
    if budget_rows:
        _print_budget_table(budget_rows)
    if predictability_rows:
        _print_predictability_table(predictability_rows)
    for note in notes:
        print(note)
    elapsed = f"{time.perf_counter() - started:.0f}s; " if started is not None else ""
    print(f"{elapsed}results in {out}/")
    return 0


def _load_results(paths: Sequence[str]) -> list[Result]:
    """Results from saved ``results.csv`` files; later files win for duplicate studies."""
    found: dict[tuple[str, str, str, int], Result] = {}
    for path in paths:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                r = Result(
                    part=row["part"],
                    sampler=row["sampler"],
                    pruner=row["pruner"],
                    seed=int(row["seed"]),
                    n_trials=int(row["n_trials"]),
                    epochs=int(row["epochs"]),
                    best=float(row["best"]),
                    n_complete=int(row["n_complete"]),
                    n_pruned=int(row["n_pruned"]),
                    wall_s=float(row["wall_s"]),
                    best_within=_floats(row.get("best_within")),
                    rank_corr=_floats(row.get("rank_corr")),  # absent in older files
                    top_k_share=_floats(row.get("top_k_share")),
                )
                found[(r.part, r.sampler, r.pruner, r.seed)] = r
    return list(found.values())


def _floats(text: str | None) -> tuple[float, ...]:
    return tuple(float(v) for v in (text or "").split(";") if v)


def _execute(tasks: Sequence[Task], jobs: int) -> list[Result]:
    if jobs <= 1:
        return [_run(t) for t in tasks]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(_run, tasks, chunksize=max(1, len(tasks) // (8 * jobs))))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
