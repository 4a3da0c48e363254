"""Regularized (aging) evolution as an Optuna sampler."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
import math
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_nas._optuna_compat import SearchSpaceTransform
from optuna_nas._optuna_compat import calc_crowding_distance
from optuna_nas._optuna_compat import distribution_contains
from optuna_nas._optuna_compat import fast_non_domination_rank
from optuna_nas._optuna_compat import trial_constraints
from optuna_nas._validation import check_int
from optuna_nas._validation import check_number
from optuna_nas._validation import check_seed
from optuna_nas.samplers._base import DefineByRunSampler
from optuna_nas.samplers._randomness import entropy_seed
from optuna_nas.samplers._randomness import sample_uniform
from optuna_nas.samplers._randomness import trial_random_state
from optuna_nas.trial_outcome import InvalidArchitectureError


if TYPE_CHECKING:
    from optuna.storages import BaseStorage
    from optuna.study import Study

    from optuna_nas.search_spaces import SearchSpace


_PREFIX = "RegularizedEvolutionSampler"
#: System attribute: number of the parent trial, or ``None`` for a random (warm-up) trial.
PARENT_KEY = f"{_PREFIX}:parent"
#: System attribute: ``{param_name: value}`` that the child changed with respect to its parent.
MUTATION_KEY = f"{_PREFIX}:mutation"
#: User attribute (shown by optuna-dashboard): number of the parent trial.
USER_ATTR_PARENT = "evolution:parent"
#: User attribute (shown by optuna-dashboard): the mutated parameter name(s), comma separated.
USER_ATTR_MUTATED = "evolution:mutated"
#: System attribute of a child when ``mutation_score`` is given: which kind of move made it,
#: :data:`MOVE_PROPOSAL`, :data:`MOVE_RANDOM` or :data:`MOVE_FALLBACK`.
MOVE_KEY = f"{_PREFIX}:move"
#: System attribute of a child when ``mutation_score`` is given: the child architecture's score
#: (``None`` if it has none: not an architecture of the space, or a non-finite score).
MOVE_SCORE_KEY = f"{_PREFIX}:move_score"
#: User attribute (shown by optuna-dashboard): the kind of move, as :data:`MOVE_KEY`.
USER_ATTR_MOVE = "evolution:move"
#: User attribute (shown by optuna-dashboard): the child's score, as :data:`MOVE_SCORE_KEY`.
USER_ATTR_MOVE_SCORE = "evolution:move_score"
#: The move proposal: the best-scored unseen single-decision mutation of the parent.
MOVE_PROPOSAL = "proposal"
#: The random mutation, drawn with probability ``random_mutation_fraction``.
MOVE_RANDOM = "random"
#: The random mutation, used because no proposal was possible (the parent's parameters are not
#: an architecture of the space, or every scored neighbour was seen or had no finite score).
MOVE_FALLBACK = "fallback"

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
# Purpose of the random stream that picks a trial's parent and mutation (a tuple, so that it
# never equals a parameter name, the purpose of a random parameter's stream).
_PLAN_STREAM = ("RegularizedEvolutionSampler", "plan")
# Purpose of the stream of the move proposal (random or proposal, the subset of neighbours): a
# stream of its own, so the parent chosen is the one the sampler without a score would choose.
_MOVE_STREAM = ("RegularizedEvolutionSampler", "move")
# Per-process cache of mutation scores (an optimization only: a score is a function of the
# architecture); emptied when it reaches this size.
_MAX_CACHED_SCORES = 100_000
# Numeric mutations redraw until the value differs; after this many draws (only reachable on
# tiny int ranges) they fall back to a uniform draw among the other values.
_MAX_NUMERIC_REDRAWS = 16


def _params_key(params: Mapping[str, Any]) -> int:
    # Names are unique, so sorting never compares values (which may be of mixed types). Only the
    # hash is kept: ints are not tracked by the garbage collector, so a long history does not
    # slow down its full collections (a collision merely costs one extra mutation).
    return hash(tuple(sorted(params.items())))


#: (objective values as losses to minimize, total constraint violation) of a trial.
_Fitness = tuple[tuple[float, ...], float]


@dataclass
class _Plan:
    """What the sampler decided for one trial when it started."""

    parent: int | None
    params: dict[str, Any]
    move: str | None = None
    move_score: float | None = None


@dataclass
class _StudyCache:
    """Per-study memory. Everything here can be rebuilt from storage.

    ``seen`` holds the parameter assignments of finished trials, updated incrementally:
    ``n_scanned`` trials were visited, ``pending`` lists those among them that were still
    unfinished, so each call costs O(new + unfinished trials). It holds nothing that only this
    process knows, so a new sampler object rebuilds the same set.
    """

    storage: BaseStorage
    seen: set[int] = field(default_factory=set)
    n_scanned: int = 0
    pending: set[int] = field(default_factory=set)
    plans: dict[int, _Plan] = field(default_factory=dict)
    started: set[int] = field(default_factory=set)
    fitness: dict[int, _Fitness | None] = field(default_factory=dict)


@dataclass(frozen=True)
class _Settings:
    """The arguments of :class:`RegularizedEvolutionSampler`, checked once."""

    population_size: int
    sample_size: int
    search_space: SearchSpace[Any] | None
    skip_duplicates: bool
    max_duplicate_retries: int
    numeric_mutation_scale: float | None
    mutation_score: Callable[[Any], float] | None
    random_mutation_fraction: float
    max_mutation_candidates: int

    def __post_init__(self) -> None:
        check_int("population_size", self.population_size, minimum=2)
        check_int("sample_size", self.sample_size, minimum=1)
        if self.sample_size > self.population_size:
            raise ValueError(
                f"sample_size must be in [1, population_size={self.population_size}], "
                f"got {self.sample_size}."
            )
        if not isinstance(self.skip_duplicates, bool):
            raise ValueError(f"skip_duplicates must be a bool, got {self.skip_duplicates!r}.")
        check_int("max_duplicate_retries", self.max_duplicate_retries, minimum=0)
        if self.numeric_mutation_scale is not None:
            check_number(
                "numeric_mutation_scale",
                self.numeric_mutation_scale,
                minimum=0.0,
                min_inclusive=False,
            )
        space = self.search_space
        if space is not None and not callable(getattr(space, "mutate", None)):
            raise ValueError(f"search_space must be an optuna-nas SearchSpace, got {space!r}.")
        check_number(
            "random_mutation_fraction", self.random_mutation_fraction, minimum=0.0, maximum=1.0
        )
        check_int("max_mutation_candidates", self.max_mutation_candidates, minimum=1)
        if self.mutation_score is not None:
            if not callable(self.mutation_score):
                raise ValueError(
                    f"mutation_score must be callable or None, got {self.mutation_score!r}."
                )
            if space is None:
                raise ValueError(
                    "mutation_score needs search_space: the score takes an architecture of it "
                    f"(got mutation_score={self.mutation_score!r}, search_space=None)."
                )


class RegularizedEvolutionSampler(DefineByRunSampler):
    """Regularized (aging) evolution, define-by-run.

    The algorithm of `Real et al., "Regularized Evolution for Image Classifier Architecture
    Search", AAAI 2019 <https://arxiv.org/abs/1802.01548>`__, as an Optuna sampler:

    - The **population** is the ``population_size`` most recent *completed* trials (by trial
      number) whose objective values are all finite. The oldest leaves first, not the worst.
      Running, pruned and failed trials and trials with NaN/inf values never become parents:
      a pruned trial's value comes from a lower fidelity and is not comparable.
    - While fewer than ``population_size`` such trials exist, trials are sampled at random
      (the warm-up; with parallel workers it may last a few trials longer).
    - Afterwards, each trial is the **child** of the best of ``sample_size`` population members
      drawn at random without replacement (tournament selection), with **one** parameter changed
      to a different value. The parent and the mutation are chosen when the trial samples its
      first parameter and are written to the trial's storage, so lineage survives restarts and
      is visible in optuna-dashboard (see *Lineage* below).
    - With ``skip_duplicates`` (default), a child whose parameters equal those of an already
      finished trial (or of a child planned for a trial still running) is mutated again, up to
      ``max_duplicate_retries`` times: on a deterministic objective re-evaluating it would waste
      the trial. The first retries mutate the parent afresh; the later ones mutate the previous
      duplicate once more, so a parent whose whole neighbourhood was seen still yields a new
      child (two or more changes away). If all retries are duplicates the last one is used.

    **Mutation.** One parameter of the parent (among those with more than one possible value)
    is picked uniformly. A categorical one takes a different choice, uniformly. A float or int
    one is perturbed by a Gaussian step of standard deviation ``numeric_mutation_scale`` times
    the width of its range, in log space for ``log=True`` distributions, clipped to the range,
    rounded to its step, and redrawn until it differs (``numeric_mutation_scale=None`` redraws
    uniformly instead). Parameters the parent lacks (conditional spaces) and planned values that
    no longer fit the distribution asked (a range changed between trials) are sampled at random.
    So any define-by-run objective works, including a NAS space plus the user's own
    hyperparameters in the same trial.

    **Architecture-aware mutation.** With ``search_space``, when the picked parameter belongs to
    that space the child architecture is ``search_space.mutate(search_space.from_params(
    parent.params))``, so a space can enforce its own validity rules; the other parameters are
    inherited. Architecture parameters are therefore mutated with probability
    ``n_space_params / n_params``. If the parent's parameters do not form an architecture of the
    space, the generic mutation is used.

    **Proxy-guided mutation (the "move proposal").** With ``mutation_score`` (a function of an
    architecture of ``search_space``, higher is better: e.g. a zero-cost proxy such as synflow,
    :class:`optuna_nas.estimators.ProxyScorer`), a child is made by scoring the parent's
    single-decision mutations and taking the best-scored one not yet evaluated (with
    ``skip_duplicates``; ties go to the first in decision order). All of them are scored when
    there are at most ``max_mutation_candidates`` (NAS-Bench-201: 6 edges x 4 other operations
    = 24); a larger space scores a uniform random subset of that many. With probability
    ``random_mutation_fraction`` (drawn per trial, see *Distributed and resumed studies*) the
    usual random mutation is used instead, which keeps exploring where the proxy is wrong. A
    proposal changes one decision of the space and inherits the other parameters (the user's
    hyperparameters are then mutated by the random moves only). If no proposal is possible (the
    parent's parameters are not an architecture of the space, every neighbour was seen, or none
    has a finite score) the random mutation is used. Each child records the kind of its move
    (system attribute ``"RegularizedEvolutionSampler:move"``: ``"proposal"``, ``"random"`` or
    ``"fallback"``; user attribute ``"evolution:move"``) and its architecture's score
    (``"RegularizedEvolutionSampler:move_score"``, ``"evolution:move_score"``). The score must be
    deterministic: scores are cached per process only to save time, so a restarted worker makes
    the same choices. It runs while the trial plans (under the sampler's lock, so the threads of
    ``optimize(n_jobs>1)`` score one at a time); a score that raises
    :class:`~optuna_nas.InvalidArchitectureError` excludes that neighbour, other errors propagate.
    The move proposal and the warm start (:func:`optuna_nas.samplers.warm_start`) are those of
    Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021.

    **Multi-objective and constraints.** The tournament winner has the best non-dominated rank
    within the population, ties broken by the larger crowding distance (as in NSGA-II). With
    constraints (``constraints_func``, same convention as
    :class:`~optuna.samplers.NSGAIISampler`, or, with Optuna 5, ``trial.set_constraint``),
    feasible trials beat infeasible ones, and infeasible ones are ranked by total violation.
    A single-objective study uses the same rule, which reduces to "best value wins".

    **Lineage.** Every planned trial stores the system attribute
    ``"RegularizedEvolutionSampler:parent"`` (the parent's trial number, ``None`` for random
    trials); children also store ``"RegularizedEvolutionSampler:mutation"`` (the changed
    values) and the user attributes ``"evolution:parent"`` and ``"evolution:mutated"``
    (comma-separated parameter names), which optuna-dashboard shows.

    **Defaults.** ``population_size=15, sample_size=8`` were tuned on the NAS-Bench-201 CIFAR-10
    table for budgets of 50 to 300 trials, with and without noise on the search signal
    (``benchmarks/tune_evolution.py``; the results are in ``benchmarks/README.md``). The papers'
    settings: Real et al. used 100/25 for budgets of thousands of models, NAS-Bench-201's REA
    10/3.

    **Distributed and resumed studies.** The sampler keeps no state that only lives in memory:
    the population is read from the study's trials, and the in-memory caches (seen parameter
    sets, the current trials' plans) are rebuilt from storage when missing. Several threads,
    processes or new sampler objects on one storage continue the same evolution. Every random
    draw of a trial (warm-up values, tournament, mutation) comes from a generator seeded with
    ``(seed, trial number, purpose)``, never from a stream that a process advances: workers given
    the same ``seed`` do not repeat each other, and a sequential study stopped and resumed with a
    new sampler object suggests exactly what an uninterrupted run would.

    Example:
        .. code-block:: python

            import optuna
            from optuna_nas.samplers import RegularizedEvolutionSampler
            from optuna_nas.search_spaces import create_search_space

            space = create_search_space("nasbench201")

            def objective(trial):
                cell = space.suggest(trial)
                lr = trial.suggest_float("lr", 1e-3, 1e-1, log=True)  # mutated too
                return sum(op == "nor_conv_3x3" for op in cell.ops) - abs(lr - 0.01)

            sampler = RegularizedEvolutionSampler(search_space=space, seed=0)
            study = optuna.create_study(direction="maximize", sampler=sampler)
            study.optimize(objective, n_trials=40)
            child = study.trials[-1]
            print(child.user_attrs["evolution:parent"], child.user_attrs["evolution:mutated"])

    Args:
        population_size: Number of most recent completed trials that form the population, and
            number of random warm-up trials. At least 2.
        sample_size: Tournament size: population members drawn to pick the parent. Between 1
            (random parent) and ``population_size`` (always the best).
        search_space: Optional optuna-nas :class:`~optuna_nas.search_spaces.SearchSpace` whose
            ``mutate`` is used for the parameters it owns.
        skip_duplicates: Mutate again when a child equals an already evaluated trial.
        max_duplicate_retries: Maximum number of extra mutations for ``skip_duplicates``.
        numeric_mutation_scale: Standard deviation of the Gaussian step of float/int mutations,
            relative to the (log-)range width; ``None`` redraws uniformly.
        constraints_func: Optional function of a finished trial returning constraint values,
            feasible when all are ``<= 0`` (Optuna's convention).
        mutation_score: Optional score of an architecture of ``search_space`` (higher is
            better) that turns on the move proposal; needs ``search_space``. It must be
            picklable for process-based workers that pickle the sampler.
        random_mutation_fraction: Probability, in ``[0, 1]``, that a child of the move proposal
            is made by the random mutation instead (0: always the proposal).
        max_mutation_candidates: Most neighbours scored per child (a random subset beyond).
        seed: Seed of all sampling. :obj:`None` draws one from OS entropy (then runs are not
            reproducible, and unseeded workers differ).

    Raises:
        ValueError: An argument is out of range; the message names it.
    """

    def __init__(
        self,
        *,
        population_size: int = 15,
        sample_size: int = 8,
        search_space: SearchSpace[Any] | None = None,
        skip_duplicates: bool = True,
        max_duplicate_retries: int = 20,
        numeric_mutation_scale: float | None = 0.2,
        constraints_func: Callable[[FrozenTrial], Sequence[float]] | None = None,
        mutation_score: Callable[[Any], float] | None = None,
        random_mutation_fraction: float = 0.25,
        max_mutation_candidates: int = 32,
        seed: int | None = None,
    ) -> None:
        self._settings = _Settings(
            population_size,
            sample_size,
            search_space,
            skip_duplicates,
            max_duplicate_retries,
            numeric_mutation_scale,
            mutation_score,
            random_mutation_fraction,
            max_mutation_candidates,
        )
        check_seed(seed)
        if constraints_func is not None and not callable(constraints_func):
            raise ValueError(
                f"constraints_func must be callable or None, got {constraints_func!r}."
            )
        self._constraints_func = constraints_func
        self._seeded = seed is not None
        # Every trial's draws are seeded with (this, trial number, purpose); see _randomness.
        self._seed = int(seed) if seed is not None else entropy_seed()
        self._init_transient()

    _TRANSIENT = ("_caches", "_scores")

    def _reset_transient(self) -> None:
        self._caches: dict[tuple[int, int], _StudyCache] = {}
        # Architecture string -> mutation score (see _score).
        self._scores: dict[str, float] = {}

    def reseed_rng(self) -> None:
        """Draw a new seed from OS entropy if the sampler was created without a seed.

        Optuna calls this in every thread of ``optimize(n_jobs>1)`` so that copies of one
        sampler do not repeat each other. Draws are keyed by trial number, which threads never
        share, so a seeded sampler keeps its seed (and its resumed runs stay reproducible); an
        unseeded one changes its future draws.
        """
        if not self._seeded:
            self._seed = entropy_seed()

    # ------------------------------------------------------------------ BaseSampler API
    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        # Only remember that the trial is new, so its plan need not be looked up in storage.
        # Planning itself is lazy: fully enqueued trials never plan, and the population is as
        # recent as possible when the first parameter is sampled.
        with self._lock:
            self._cache(study).started.add(trial._trial_id)

    def _sample(self, study: Study, trial: FrozenTrial, name: str, dist: BaseDistribution) -> Any:
        plan = self._get_plan(study, trial)
        if name in plan.params:
            value = _fit(plan.params[name], dist)
            if value is not None:
                return value[0]
        # Keyed by the name: the value does not depend on the order of the trial's suggestions.
        return sample_uniform(dist, trial_random_state(self._seed, trial.number, name))

    def _forget_trial(self, study: Study, trial: FrozenTrial) -> None:
        cache = self._cache(study)
        cache.plans.pop(trial._trial_id, None)
        cache.started.discard(trial._trial_id)

    # ------------------------------------------------------------------ planning
    def _cache(self, study: Study) -> _StudyCache:
        key = (id(study._storage), study._study_id)
        cache = self._caches.get(key)
        if cache is None or cache.storage is not study._storage:
            cache = _StudyCache(storage=study._storage)
            self._caches[key] = cache
        return cache

    def _get_plan(self, study: Study, trial: FrozenTrial) -> _Plan:
        with self._lock:
            cache = self._cache(study)
            plan = cache.plans.get(trial._trial_id)
            if plan is not None:
                return plan
            trials = study._get_trials(deepcopy=False, use_cache=True)
            if trial._trial_id not in cache.started:
                # Planned before by another sampler object (or this one before a restart)?
                plan = self._plan_from_storage(trial, trials)
            if plan is None:
                rng = trial_random_state(self._seed, trial.number, _PLAN_STREAM)
                move_rng = trial_random_state(self._seed, trial.number, _MOVE_STREAM)
                plan = self._new_plan(study, trials, cache, rng, move_rng)
                self._record(study, trial, plan)
            cache.started.add(trial._trial_id)
            cache.plans[trial._trial_id] = plan
            return plan

    def _plan_from_storage(self, trial: FrozenTrial, trials: list[FrozenTrial]) -> _Plan | None:
        system_attrs = trial.system_attrs
        if PARENT_KEY not in system_attrs:
            return None
        parent_number = system_attrs[PARENT_KEY]
        if parent_number is None:
            return _Plan(parent=None, params={})
        parent = _find_trial(trials, parent_number)
        params = dict(parent.params) if parent is not None else {}
        params.update(system_attrs.get(MUTATION_KEY, {}))
        return _Plan(
            parent=parent_number,
            params=params,
            move=system_attrs.get(MOVE_KEY),
            move_score=system_attrs.get(MOVE_SCORE_KEY),
        )

    def _new_plan(
        self,
        study: Study,
        trials: list[FrozenTrial],
        cache: _StudyCache,
        rng: np.random.RandomState,
        move_rng: np.random.RandomState,
    ) -> _Plan:
        population = self._population(study, trials, cache)
        if len(population) < self._settings.population_size:
            return _Plan(parent=None, params={})
        parent = self._select_parent(study, population, rng)
        if self._settings.mutation_score is None:
            params = self._random_child(parent, trials, cache, rng)
            return _Plan(parent=parent.number, params=params)
        # Drawn first, whatever the fraction, so the rest of the stream does not depend on it.
        random_move = move_rng.random_sample() < self._settings.random_mutation_fraction
        if not random_move:
            proposal = self._propose(parent, trials, cache, move_rng)
            if proposal is not None:
                params, score = proposal
                return _Plan(parent.number, params, move=MOVE_PROPOSAL, move_score=score)
        params = self._random_child(parent, trials, cache, rng)
        return _Plan(
            parent.number,
            params,
            move=MOVE_RANDOM if random_move else MOVE_FALLBACK,
            move_score=self._params_score(params),
        )

    def _random_child(
        self,
        parent: FrozenTrial,
        trials: list[FrozenTrial],
        cache: _StudyCache,
        rng: np.random.RandomState,
    ) -> dict[str, Any]:
        """The parent with one random mutation (retried while it is a duplicate)."""
        params = self._mutate(parent.params, parent.distributions, rng)
        if self._settings.skip_duplicates:
            self._update_seen(cache, trials)
            in_flight = self._in_flight_keys(cache, trials)
            # The first half of the retries restart from the parent, the rest walk further.
            fresh = (self._settings.max_duplicate_retries + 1) // 2
            for attempt in range(self._settings.max_duplicate_retries):
                key = _params_key(params)
                if key not in cache.seen and key not in in_flight:
                    break
                if attempt < fresh:
                    params = self._mutate(parent.params, parent.distributions, rng)
                else:
                    params = self._mutate(params, _merge_distributions(parent, params), rng)
        return params

    # ------------------------------------------------------------------ move proposal
    def _propose(
        self,
        parent: FrozenTrial,
        trials: list[FrozenTrial],
        cache: _StudyCache,
        rng: np.random.RandomState,
    ) -> tuple[dict[str, Any], float] | None:
        """The best-scored unseen single-decision mutation of ``parent`` and its score."""
        space = self._settings.search_space
        assert space is not None  # checked with mutation_score in _Settings
        try:
            arch_params = space.to_params(space.from_params(parent.params))
        except ValueError:
            return None  # not an architecture of the space: the random mutation handles it
        others = {k: v for k, v in parent.params.items() if not space.owns_param(k)}
        moves = [
            (d.name, c) for d in space.decisions for c in d.choices if c != arch_params[d.name]
        ]
        limit = self._settings.max_mutation_candidates
        if len(moves) > limit:
            chosen = rng.choice(len(moves), size=limit, replace=False)
            moves = [moves[i] for i in sorted(chosen.tolist())]
        excluded: set[int] = set()
        if self._settings.skip_duplicates:
            self._update_seen(cache, trials)
            excluded = cache.seen | self._in_flight_keys(cache, trials)
        best: tuple[dict[str, Any], float] | None = None
        for name, choice in moves:
            try:
                arch = space.from_params({**arch_params, name: choice})
            except ValueError:
                continue  # the space rejects this change
            child = {**others, **space.to_params(arch)}
            if _params_key(child) in excluded:
                continue
            score = self._score(arch)
            if score is not None and (best is None or score > best[1]):
                best = (child, score)
        return best

    def _params_score(self, params: Mapping[str, Any]) -> float | None:
        space = self._settings.search_space
        assert space is not None
        try:
            arch = space.from_params(params)
        except ValueError:
            return None
        return self._score(arch)

    def _score(self, arch: Any) -> float | None:
        """``mutation_score(arch)``, or None when it is not finite or rejects the architecture."""
        space = self._settings.search_space
        score_fn = self._settings.mutation_score
        assert space is not None and score_fn is not None
        key = space.to_string(arch)
        if key in self._scores:
            score = self._scores[key]
        else:
            try:
                score = float(score_fn(arch))
            except InvalidArchitectureError:
                score = math.nan
            if len(self._scores) >= _MAX_CACHED_SCORES:
                self._scores.clear()
            self._scores[key] = score
        return score if math.isfinite(score) else None

    def _in_flight_keys(self, cache: _StudyCache, trials: list[FrozenTrial]) -> set[int]:
        """Parameter keys of the children planned for unfinished trials, of any worker.

        Read from the plans of this process and from the lineage attributes of the other
        running trials, so parallel workers avoid each other's children while a sequential
        study (where no other trial runs) plans the same whichever process resumes it.
        """
        keys = {_params_key(plan.params) for plan in cache.plans.values()}
        planned_here = set(cache.plans)
        for i in cache.pending:
            other = trials[i] if i < len(trials) else None
            if other is None or other.state != TrialState.RUNNING:
                continue
            if other._trial_id in planned_here:
                continue
            plan = self._plan_from_storage(other, trials)
            if plan is not None and plan.parent is not None:
                keys.add(_params_key(plan.params))
        return keys

    def _record(self, study: Study, trial: FrozenTrial, plan: _Plan) -> None:
        storage = study._storage
        storage.set_trial_system_attr(trial._trial_id, PARENT_KEY, plan.parent)
        if plan.parent is None:
            return
        parent = _find_trial(study._get_trials(deepcopy=False, use_cache=True), plan.parent)
        parent_params = parent.params if parent is not None else {}
        # An enqueued trial (e.g. a warm start's cell with a free learning rate) keeps its fixed
        # values: the plan's changes to those never happen, so they are not its mutation.
        fixed = trial.system_attrs.get("fixed_params") or {}
        mutation = {
            k: v
            for k, v in plan.params.items()
            if k not in fixed and (k not in parent_params or parent_params[k] != v)
        }
        storage.set_trial_system_attr(trial._trial_id, MUTATION_KEY, mutation)
        storage.set_trial_user_attr(trial._trial_id, USER_ATTR_PARENT, plan.parent)
        storage.set_trial_user_attr(trial._trial_id, USER_ATTR_MUTATED, ",".join(sorted(mutation)))
        if plan.move is not None:
            storage.set_trial_system_attr(trial._trial_id, MOVE_KEY, plan.move)
            storage.set_trial_system_attr(trial._trial_id, MOVE_SCORE_KEY, plan.move_score)
            storage.set_trial_user_attr(trial._trial_id, USER_ATTR_MOVE, plan.move)
            storage.set_trial_user_attr(trial._trial_id, USER_ATTR_MOVE_SCORE, plan.move_score)

    def _population(
        self, study: Study, trials: list[FrozenTrial], cache: _StudyCache
    ) -> list[tuple[FrozenTrial, _Fitness]]:
        # Walk back from the newest trial: O(population) per call, whatever the history length.
        # A completed trial never changes, so its fitness is computed once and cached.
        signs = [-1.0 if d == StudyDirection.MAXIMIZE else 1.0 for d in study.directions]
        population: list[tuple[FrozenTrial, _Fitness]] = []
        fitness_cache: dict[int, _Fitness | None] = {}
        for t in reversed(trials):
            if t.state != TrialState.COMPLETE:
                continue
            if t.number in cache.fitness:
                fitness = cache.fitness[t.number]
            else:
                fitness = _fitness(t, signs)
            fitness_cache[t.number] = fitness
            if fitness is not None:
                population.append((t, fitness))
                if len(population) == self._settings.population_size:
                    break
        cache.fitness = fitness_cache
        population.reverse()
        return population

    def _update_seen(self, cache: _StudyCache, trials: list[FrozenTrial]) -> None:
        if cache.n_scanned > len(trials) or (trials and trials[-1].number != len(trials) - 1):
            # The list is not indexed by trial number (e.g. a filtered study): rescan it all.
            cache.seen.update(_params_key(t.params) for t in trials if t.state in _FINISHED)
            return
        for i in sorted(cache.pending):
            if trials[i].state in _FINISHED:
                cache.seen.add(_params_key(trials[i].params))
                cache.pending.discard(i)
        for i in range(cache.n_scanned, len(trials)):
            if trials[i].state in _FINISHED:
                cache.seen.add(_params_key(trials[i].params))
            else:
                cache.pending.add(i)
        cache.n_scanned = len(trials)

    def _select_parent(
        self,
        study: Study,
        population: list[tuple[FrozenTrial, _Fitness]],
        rng: np.random.RandomState,
    ) -> FrozenTrial:
        size = self._settings.sample_size
        sample = rng.choice(len(population), size=size, replace=False)
        sample = sample.tolist()
        if len(study.directions) == 1:
            # Feasible first, then the smallest violation, then the best value: the order of
            # Optuna's constrained non-domination rank for one objective, without the sorting.
            def key(i: int) -> tuple[bool, float, float]:
                loss, penalty = population[i][1]
                return (penalty > 0, penalty, loss[0])

            return population[min(sample, key=key)][0]

        trials = [t for t, _ in population]
        losses = np.array([f[0] for _, f in population])
        penalty = np.array([f[1] for _, f in population])
        ranks = fast_non_domination_rank(losses, penalty=penalty if penalty.any() else None)
        crowding = np.zeros(len(population))
        for rank in set(ranks[sample].tolist()):
            members = [t for t, r in zip(trials, ranks) if r == rank]
            distances = calc_crowding_distance(members)
            for i, t in enumerate(trials):
                if ranks[i] == rank:
                    crowding[i] = distances[t.number]
        # Ties keep the (random) sample order.
        return trials[min(sample, key=lambda i: (ranks[i], -crowding[i]))]

    # ------------------------------------------------------------------ mutation
    def _mutate(
        self,
        params: Mapping[str, Any],
        distributions: Mapping[str, BaseDistribution],
        rng: np.random.RandomState,
    ) -> dict[str, Any]:
        names = sorted(n for n in params if n in distributions and not distributions[n].single())
        if not names:
            return dict(params)
        name = names[int(rng.randint(len(names)))]
        space = self._settings.search_space
        if space is not None and space.owns_param(name):
            try:
                arch = space.mutate(space.from_params(params), rng)
            except ValueError:
                pass  # The parameters are not an architecture of this space: mutate generically.
            else:
                child = {k: v for k, v in params.items() if not space.owns_param(k)}
                child.update(space.to_params(arch))
                return child
        child = dict(params)
        child[name] = self._mutate_value(params[name], distributions[name], rng)
        return child

    def _mutate_value(
        self, value: Any, distribution: BaseDistribution, rng: np.random.RandomState
    ) -> Any:
        if isinstance(distribution, CategoricalDistribution):
            index = distribution.to_internal_repr(value)
            others = [c for i, c in enumerate(distribution.choices) if i != index]
            return others[int(rng.randint(len(others)))]
        trans = SearchSpaceTransform({"x": distribution})
        low, high = trans.bounds[0]
        x = float(trans.transform({"x": value})[0])
        for _ in range(_MAX_NUMERIC_REDRAWS):
            if self._settings.numeric_mutation_scale is None:
                y = rng.uniform(low, high)
            else:
                y = x + rng.normal(0.0, self._settings.numeric_mutation_scale * (high - low))
            new = trans.untransform(np.array([min(max(y, low), high)]))["x"]
            if new != value:
                return new
        # Tiny ranges: take any other value uniformly (a non-single distribution has one).
        while True:
            new = trans.untransform(np.array([rng.uniform(low, high)]))["x"]
            if new != value:
                return new


def _fit(value: Any, distribution: BaseDistribution) -> tuple[Any] | None:
    """``(value,)`` converted to ``distribution``'s external type, or None if it does not fit."""
    try:
        internal = distribution.to_internal_repr(value)
        if not distribution_contains(distribution, internal):
            return None
        return (distribution.to_external_repr(internal),)
    except (ValueError, TypeError):
        return None


def _find_trial(trials: list[FrozenTrial], number: int) -> FrozenTrial | None:
    if 0 <= number < len(trials) and trials[number].number == number:
        return trials[number]
    return next((t for t in trials if t.number == number), None)


def _merge_distributions(
    parent: FrozenTrial, params: Mapping[str, Any]
) -> dict[str, BaseDistribution]:
    # A child's parameters that the parent lacks (space mutations may add some) have no known
    # distribution yet; they are simply not mutated further.
    return {k: d for k, d in parent.distributions.items() if k in params}


def _fitness(trial: FrozenTrial, signs: Sequence[float]) -> _Fitness | None:
    """(losses to minimize, total constraint violation), or None if the trial cannot compete."""
    values = trial.values
    if values is None or len(values) != len(signs) or not all(map(math.isfinite, values)):
        return None
    penalty = 0.0
    for v in trial_constraints(trial):
        # Optuna's convention: feasible when <= 0. A NaN constraint counts as infinitely violated.
        penalty += math.inf if math.isnan(v) else max(float(v), 0.0)
    return tuple(s * v for s, v in zip(signs, values)), penalty
