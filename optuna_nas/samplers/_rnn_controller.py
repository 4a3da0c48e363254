"""REINFORCE-trained LSTM controller (Zoph & Le, ICLR 2017; ENAS) as an Optuna sampler."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
import math
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import IntDistribution
from optuna.samplers import BaseSampler
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_nas._validation import check_int
from optuna_nas._validation import check_number
from optuna_nas._validation import check_seed
from optuna_nas.samplers._base import DefineByRunSampler
from optuna_nas.samplers._randomness import entropy_seed
from optuna_nas.samplers._randomness import sample_uniform
from optuna_nas.samplers._randomness import trial_generator
from optuna_nas.samplers._randomness import trial_random_state
from optuna_nas.samplers._rnn_policy import ControllerPolicy
from optuna_nas.samplers._rnn_policy import Cursor
from optuna_nas.samplers._rnn_policy import PolicySettings
from optuna_nas.samplers._rnn_policy import SequenceTrie
from optuna_nas.samplers._rnn_policy import Step
from optuna_nas.samplers._rnn_policy import single_threaded


if TYPE_CHECKING:
    from optuna.study import Study


_SYSTEM_PREFIX = "RNNControllerSampler:"
_USER_PREFIX = "rnn_controller:"


@dataclass
class _InFlight:
    """Sampling state of one running trial of this process."""

    cursor: Cursor
    rng: np.random.Generator
    fed: set[str]
    # The decisions drawn up front to avoid a duplicate (see ``skip_duplicates``), followed
    # while the trial asks for them in the same order; None once it asks for something else.
    plan: list[tuple[str, int]] | None = None
    position: int = 0


class RNNControllerSampler(DefineByRunSampler):
    """NAS with an LSTM controller trained by REINFORCE (Zoph & Le 2017; ENAS, Pham et al. 2018).

    Every ``suggest_categorical`` call (and every ``suggest_int`` with at most
    ``max_int_choices`` values) is one step of an autoregressive LSTM: the embedding of the
    previous choice is the next input, and each decision, identified by its parameter name
    and choices, gets its own softmax head the first time it is seen. Conditional and
    variable-length search spaces therefore work define-by-run. Logits are
    ``tanh_constant * tanh(logits / temperature)`` (ENAS).

    **Learning.** Before the first controller decision of each trial, the sampler applies the
    trials of the study that finished since it last looked (whichever worker or process ran
    them), in trial-number order: for each completed trial with a finite reward, the
    log-probability of its recorded categorical parameters (in the order they were suggested,
    which every Optuna storage preserves) is recomputed under the current controller, and
    REINFORCE with an exponential-moving-average baseline is applied, one Adam step per
    ``batch_size`` rewarded trials. Advantages ``reward - baseline`` are divided by a moving
    standard deviation (same decay) and clipped to ``[-5, 5]``, so the defaults do not depend on
    the objective's units (rewards in percent or in [0, 1] give identical runs); the entropy of
    the decision distributions along the trial's path is a differentiable bonus in the loss
    (ENAS adds it to the reward instead); gradients are clipped to norm 5 and an update with a
    non-finite gradient is skipped. Failed and pruned trials, and infinite values, give no
    reward. Parameters fixed by ``enqueue_trial`` or ``add_trial`` are fed to the LSTM and
    learned from like sampled ones.

    **Self-imitation.** REINFORCE alone learns slowly from a few hundred rewards: a rare good
    architecture moves the policy by one small step and is then forgotten. Each update
    therefore also raises the log-likelihood of the ``imitation_top_k`` best rewarded trials so
    far (weight ``imitation_weight``), as in priority-queue training (Abolafia et al., 2018)
    and self-imitation learning (Oh et al., ICML 2018). The buffer is rebuilt from the study's
    history like everything else; ``imitation_weight=0`` gives the papers' plain REINFORCE.

    **Duplicates.** On a deterministic objective a repeated architecture wastes a whole training
    run, and a controller that has learned something repeats its favourites often. With
    ``skip_duplicates`` (default), the first decisions of each trial are drawn from the controller
    restricted to decision sequences no finished trial has made: ``max_duplicate_retries + 1``
    candidates are sampled in one LSTM batch along the prefix tree of finished trials' sequences,
    and the first one that leaves the tree (so that every completion is new) is followed; the trial
    then samples the rest freely. This is exact in conditional spaces too. Trials that also have
    non-controller parameters (floats, wide ints) are not duplicates of one another and are not
    tracked. If every candidate repeats a finished trial (a converged controller or an exhausted
    space) the trial is sampled freely. The learning rule is unchanged: rewards are applied to the
    log-probabilities under the unrestricted policy.

    **Order of trials and determinism.** A trial still running when the sampler looks is skipped
    and applied as soon as it is seen finished, so trials are applied in number order except for
    those that finish after a later-numbered one was applied (parallel workers); a trial left
    ``RUNNING`` by a crashed worker never blocks learning. In a sequential study every trial
    finishes before the next starts, so the controller is a deterministic function of ``seed`` and
    the study's history, and all sampling randomness is derived from ``(seed, trial number)``: a
    study interrupted and resumed with a new sampler object (or in another process) suggests
    exactly what an uninterrupted one would, on the same machine and torch build. The controller
    always computes on one intra-op thread, so the user's torch thread settings change neither its
    speed nor its results. A new sampler object replays the whole history once, one update per
    ``batch_size`` trials (timings in ``README.md``). Threads (``n_jobs``) share the controller
    under a lock; processes sharing a storage each keep their own copy trained on the same trials.
    Workers given the same ``seed`` do not repeat each other, since no two trials share a number.

    **Other parameters.** Floats, and integers with more than ``max_int_choices`` values, are
    sampled by ``independent_sampler``. By default they are drawn as
    :class:`~optuna.samplers.RandomSampler` draws them, from a generator seeded with ``(seed,
    trial number, parameter name)``, so that resumed runs reproduce these values too (a seeded
    TPE would not).

    **Multi-objective studies** need ``reward_fn``, a scalarization of the trial's values such
    as :meth:`mnasnet_reward`; without it sampling raises :class:`ValueError`.

    **Recorded attributes.** Each trial gets the user attributes ``rnn_controller:log_prob``
    (the controller's log-probability of the trial's categorical decisions so far) and
    ``rnn_controller:baseline`` (the reward baseline when the trial started; absent before the
    first reward), and the same values as system attributes ``RNNControllerSampler:log_prob``
    and ``RNNControllerSampler:baseline``.

    **Defaults** were tuned on the NAS-Bench-201 CIFAR-10 table with 100 and 300 evaluations
    (``benchmarks/tune_rnn_controller.py``; the results are in ``benchmarks/README.md``): a
    learning rate 3 to 30 times the papers' (whose controllers take tens of thousands of
    steps, not hundreds), the NAS-Bench-201 baseline decay 0.9, ENAS's temperature 5, a tanh
    constant of 2 (ENAS: 2.5), and self-imitation of the top 5 with weight 0.5.

    Example:
        .. code-block:: python

            import optuna
            from optuna_nas.samplers import RNNControllerSampler
            from optuna_nas.search_spaces import create_search_space

            space = create_search_space("nasbench201")

            def objective(trial):
                cell = space.suggest(trial)
                return sum(op == "nor_conv_3x3" for op in cell.ops)  # a stand-in for accuracy

            study = optuna.create_study(
                direction="maximize", sampler=RNNControllerSampler(seed=0)
            )
            study.optimize(objective, n_trials=20)

    Args:
        seed: Seed of the controller's initial weights and of all sampling. :obj:`None` draws
            one at random (then runs are not reproducible).
        hidden_size: Units of each LSTM layer (also the embedding size). Zoph & Le used 35,
            ENAS 100.
        num_layers: LSTM layers (Zoph & Le: 2, ENAS: 1).
        learning_rate: Adam learning rate (Zoph & Le: 6e-4; ENAS: 3.5e-4, its scripts 1e-3 to
            3.5e-3; NAS-Bench-201's REINFORCE: 1e-3).
        batch_size: Rewarded trials per Adam step.
        baseline_decay: Decay of the moving-average baseline (ENAS: 0.99, NAS-Bench-201: 0.9).
        entropy_weight: Weight of the entropy bonus (ENAS: 1e-4 on rewards in [0, 1]; here
            advantages are normalized, so the scale differs).
        temperature: Logits are divided by this (ENAS: 5).
        tanh_constant: Logits are squashed to ``tanh_constant * tanh(.)``, which bounds how
            peaked a decision can get (ENAS: 2.5, its scripts 1.1 and 1.5); :obj:`None` turns
            the squashing off.
        imitation_top_k: Size of the self-imitation buffer: the best rewarded trials so far
            (ties: the earlier trial), whose decisions get a likelihood bonus at every update.
            ``0`` gives plain REINFORCE as in the papers.
        imitation_weight: Weight of that bonus, the mean log-probability of the buffer's
            decision sequences, against the REINFORCE loss; ``0`` turns it off.
        skip_duplicates: Restrict each trial's decisions to sequences no finished trial has
            made (see *Duplicates*).
        max_duplicate_retries: Extra candidates drawn for ``skip_duplicates`` (all in one
            batch).
        reward_fn: Maps a completed trial's ``values`` to the reward to maximize. Required for
            multi-objective studies (see :meth:`mnasnet_reward`); for single-objective ones it
            replaces the default reward, the value (negated when minimizing).
        independent_sampler: Sampler for floats and wide integers; see above.
        max_int_choices: Integer parameters with 2 to this many values are controller
            decisions (one choice per value).

    Raises:
        ValueError: An argument is out of range (the message names it and its value); or,
            when sampling, the study is multi-objective and no ``reward_fn`` was given.
    """

    def __init__(
        self,
        *,
        seed: int | None = None,
        hidden_size: int = 64,
        num_layers: int = 1,
        learning_rate: float = 1e-2,
        batch_size: int = 1,
        baseline_decay: float = 0.9,
        entropy_weight: float = 1e-3,
        temperature: float = 5.0,
        tanh_constant: float | None = 2.0,
        imitation_top_k: int = 5,
        imitation_weight: float = 0.5,
        skip_duplicates: bool = True,
        max_duplicate_retries: int = 63,
        reward_fn: Callable[[Sequence[float]], float] | None = None,
        independent_sampler: BaseSampler | None = None,
        max_int_choices: int = 16,
    ) -> None:
        check_seed(seed)
        check_int("hidden_size", hidden_size, minimum=1)
        check_int("num_layers", num_layers, minimum=1)
        check_int("batch_size", batch_size, minimum=1)
        check_int("max_int_choices", max_int_choices, minimum=0)
        check_int("imitation_top_k", imitation_top_k, minimum=0)
        check_int("max_duplicate_retries", max_duplicate_retries, minimum=0)
        if not isinstance(skip_duplicates, bool):
            raise ValueError(f"skip_duplicates must be a bool, got {skip_duplicates!r}.")
        check_number("learning_rate", learning_rate, minimum=0.0, min_inclusive=False)
        check_number("temperature", temperature, minimum=0.0, min_inclusive=False)
        if tanh_constant is not None:
            check_number("tanh_constant", tanh_constant, minimum=0.0, min_inclusive=False)
        check_number("entropy_weight", entropy_weight, minimum=0.0)
        check_number("imitation_weight", imitation_weight, minimum=0.0)
        check_number(
            "baseline_decay", baseline_decay, minimum=0.0, maximum=1.0, max_inclusive=False
        )
        if reward_fn is not None and not callable(reward_fn):
            raise ValueError(f"reward_fn must be callable or None, got {reward_fn!r}.")
        if independent_sampler is not None and not isinstance(independent_sampler, BaseSampler):
            raise ValueError(
                f"independent_sampler must be an optuna BaseSampler or None, "
                f"got {independent_sampler!r}."
            )

        self._seed = int(seed) if seed is not None else entropy_seed()
        self._seeded = seed is not None
        # Seeds every trial's draws with the trial number; only reseed_rng changes it.
        self._sampling_seed = self._seed
        self._policy_settings = PolicySettings(
            seed=self._seed,
            hidden_size=hidden_size,
            num_layers=num_layers,
            learning_rate=float(learning_rate),
            temperature=float(temperature),
            tanh_constant=None if tanh_constant is None else float(tanh_constant),
            entropy_weight=float(entropy_weight),
            baseline_decay=float(baseline_decay),
            batch_size=batch_size,
            imitation_top_k=imitation_top_k,
            imitation_weight=float(imitation_weight),
        )
        self._skip_duplicates = skip_duplicates
        self._max_duplicate_retries = max_duplicate_retries
        self._reward_fn = reward_fn
        self._independent_sampler = independent_sampler
        self._max_int_choices = max_int_choices
        self._init_transient()

    # The controller is rebuilt from the study on first use, like after a restart.
    _TRANSIENT = (
        "_policy",
        "_study_key",
        "_next_number",
        "_applied",
        "_in_flight",
        "_seen",
        "_seen_depth",
    )

    def _reset_transient(self) -> None:
        self._policy = ControllerPolicy(self._policy_settings)
        # The storage object itself, not its id(): a freed storage's id can be reused by the
        # next one, which must not inherit this study's controller.
        self._study_key: tuple[BaseStorage, int] | None = None
        # Trials with number < _next_number are applied; _applied holds later applied numbers.
        self._next_number = 0
        self._applied: set[int] = set()
        self._in_flight: dict[int, _InFlight] = {}
        # For skip_duplicates: the decision sequences of the finished trials made only of
        # controller decisions, and the length of the longest.
        self._seen = SequenceTrie()
        self._seen_depth = 0

    # ------------------------------------------------------------------ BaseSampler API
    def reseed_rng(self) -> None:
        """Draw a new sampling seed from OS entropy if the sampler was created without a seed.

        Optuna calls this in every thread of ``optimize(n_jobs>1)`` so that copies of one
        sampler do not repeat each other. Draws are keyed by trial number, which threads
        never share, so a seeded sampler keeps its seed (and its resumed runs stay
        reproducible); an unseeded one changes its future draws. The controller's initial
        weights never change.
        """
        if not self._seeded:
            self._sampling_seed = entropy_seed()
        if self._independent_sampler is not None:
            self._independent_sampler.reseed_rng()

    def _sample(self, study: Study, trial: FrozenTrial, name: str, dist: BaseDistribution) -> Any:
        encoded = self._encode(name, dist)
        if encoded is None:
            return self._sample_fallback(study, trial, name, dist)
        key, size = encoded
        new_trial = False
        baseline: float | None = None
        with self._lock, single_threaded():
            self._sync_study(study)
            in_flight = self._in_flight.get(trial._trial_id)
            if in_flight is None:
                self._catch_up(study)
                rng = trial_generator(self._sampling_seed, trial.number)
                in_flight = _InFlight(self._policy.new_cursor(), rng, set())
                if self._skip_duplicates:
                    in_flight.plan = self._draw_plan(rng)
                self._in_flight[trial._trial_id] = in_flight
                new_trial = True
                baseline = self._policy.baseline
            # Teacher-force decisions made without the controller (fixed by enqueue_trial),
            # so the LSTM sees exactly the sequence that a replay of this trial will see.
            for fixed, distribution in trial.distributions.items():
                if fixed in in_flight.fed:
                    continue
                forced = self._encode(fixed, distribution)
                if forced is not None:
                    self._policy.probabilities(in_flight.cursor, *forced)
                    index = _to_index(distribution, trial.params[fixed])
                    self._policy.commit(in_flight.cursor, forced[0], index)
                    in_flight.fed.add(fixed)
                    _follow_plan(in_flight, forced[0], index)
            probs = self._policy.probabilities(in_flight.cursor, key, size)
            plan = in_flight.plan
            if (
                plan is not None
                and in_flight.position < len(plan)
                and plan[in_flight.position][0] == key
            ):
                index = plan[in_flight.position][1]
            else:
                cumulative = np.cumsum(probs)
                u = in_flight.rng.random() * cumulative[-1]
                index = min(int(np.searchsorted(cumulative, u, side="right")), size - 1)
            self._policy.commit(in_flight.cursor, key, index)
            in_flight.fed.add(name)
            _follow_plan(in_flight, key, index)
            log_prob = in_flight.cursor.log_prob

        storage = study._storage
        if new_trial and baseline is not None:
            storage.set_trial_system_attr(trial._trial_id, _SYSTEM_PREFIX + "baseline", baseline)
            storage.set_trial_user_attr(trial._trial_id, _USER_PREFIX + "baseline", baseline)
        storage.set_trial_system_attr(trial._trial_id, _SYSTEM_PREFIX + "log_prob", log_prob)
        storage.set_trial_user_attr(trial._trial_id, _USER_PREFIX + "log_prob", log_prob)
        return _from_index(dist, index)

    def _forget_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._in_flight.pop(trial._trial_id, None)

    # ------------------------------------------------------------------ rewards
    @staticmethod
    def mnasnet_reward(
        *,
        target: float,
        alpha: float = -0.07,
        beta: float = -0.07,
        accuracy_index: int = 0,
        cost_index: int = 1,
    ) -> Callable[[Sequence[float]], float]:
        """The MnasNet reward ``accuracy * (cost / target) ** w`` for ``reward_fn``.

        ``w`` is ``alpha`` when ``cost <= target`` and ``beta`` otherwise (Tan et al., CVPR
        2019: ``alpha = beta = -0.07`` is the soft constraint, ``alpha = 0, beta = -1`` the
        hard one). The accuracy (higher is better) and the cost (latency, FLOPs, ...; positive)
        are ``values[accuracy_index]`` and ``values[cost_index]``; a non-positive cost gives
        no reward.

        Example:
            .. code-block:: python

                import optuna
                from optuna_nas.samplers import RNNControllerSampler

                reward = RNNControllerSampler.mnasnet_reward(target=80.0)
                assert abs(reward([0.75, 80.0]) - 0.75) < 1e-12
                sampler = RNNControllerSampler(reward_fn=reward, seed=0)
                study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
        """
        check_number("target", target, minimum=0.0, min_inclusive=False)
        for name, value in (("alpha", alpha), ("beta", beta)):
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number, got {value!r}.")
        for name, index in (("accuracy_index", accuracy_index), ("cost_index", cost_index)):
            check_int(name, index, minimum=0)
        if accuracy_index == cost_index:
            raise ValueError(
                f"accuracy_index and cost_index must differ, both are {accuracy_index!r}."
            )

        def reward(values: Sequence[float]) -> float:
            accuracy, cost = float(values[accuracy_index]), float(values[cost_index])
            if not cost > 0.0:
                return math.nan
            return accuracy * (cost / target) ** (alpha if cost <= target else beta)

        return reward

    def _check_study(self, study: Study) -> None:
        if len(study.directions) > 1 and self._reward_fn is None:
            raise ValueError(
                "RNNControllerSampler needs a scalar reward: pass reward_fn= (for example "
                "RNNControllerSampler.mnasnet_reward(target=...)) to use it in a multi-objective "
                f"study with directions {[d.name for d in study.directions]!r}."
            )

    def _reward(self, study: Study, trial: FrozenTrial) -> float | None:
        values = trial.values
        if values is None or not all(math.isfinite(v) for v in values):
            return None
        if self._reward_fn is not None:
            reward = float(self._reward_fn(list(values)))
        elif study.directions[0] == StudyDirection.MINIMIZE:
            reward = -values[0]
        else:
            reward = values[0]
        return reward if math.isfinite(reward) else None

    # ------------------------------------------------------------------ internals
    def _encode(self, name: str, distribution: BaseDistribution) -> tuple[str, int] | None:
        """The controller head ``(key, size)`` of a parameter, or None for the fallback."""
        if isinstance(distribution, CategoricalDistribution):
            size = len(distribution.choices)
            return (f"{name}|categorical|{distribution.choices!r}", size) if size > 1 else None
        if isinstance(distribution, IntDistribution):
            size = (distribution.high - distribution.low) // distribution.step + 1
            if 1 < size <= self._max_int_choices:
                grid = (distribution.low, distribution.high, distribution.step)
                return f"{name}|int|{grid!r}", size
        return None

    def _steps(self, trial: FrozenTrial) -> list[Step]:
        steps = []
        for name, distribution in trial.distributions.items():
            encoded = self._encode(name, distribution)
            if encoded is not None:
                index = _to_index(distribution, trial.params[name])
                steps.append(Step(encoded[0], encoded[1], index))
        return steps

    def _sync_study(self, study: Study) -> None:
        # One sampler object used on another study starts over (its history is another one).
        key = (study._storage, study._study_id)
        if self._study_key is None or (
            self._study_key[0] is not key[0] or self._study_key[1] != key[1]
        ):
            if self._study_key is not None:
                self._reset_transient()
            self._study_key = key

    def _catch_up(self, study: Study) -> None:
        """Apply, in trial-number order, every finished trial not applied yet."""
        trials = study._get_trials(deepcopy=False, use_cache=True)
        start = self._next_number
        if start < len(trials) and trials[start].number == start:
            candidates = trials[start:]
        else:  # not indexed by number (e.g. a filtered study view)
            candidates = sorted((t for t in trials if t.number >= start), key=lambda t: t.number)
        for trial in candidates:
            if trial.number in self._applied or not trial.state.is_finished():
                continue
            self._applied.add(trial.number)
            self._in_flight.pop(trial._trial_id, None)
            if self._skip_duplicates:
                self._remember(trial)
            if trial.state == TrialState.COMPLETE:
                reward = self._reward(study, trial)
                if reward is not None:
                    self._policy.apply(self._steps(trial), reward)
        while self._next_number in self._applied:
            self._applied.remove(self._next_number)
            self._next_number += 1

    def _remember(self, trial: FrozenTrial) -> None:
        """Record a finished trial's decisions for ``skip_duplicates``."""
        if any(
            self._encode(name, distribution) is None and not distribution.single()
            for name, distribution in trial.distributions.items()
        ):
            # The trial also has floats or wide ints (e.g. the user's learning rate): the
            # same architecture with other such values is a new point, not a duplicate.
            return
        steps = self._steps(trial)
        if steps:
            self._seen.add(steps)
            self._seen_depth = max(self._seen_depth, len(steps))

    def _draw_plan(self, rng: np.random.Generator) -> list[tuple[str, int]] | None:
        """The first decisions of a new trial, chosen so that it cannot repeat a finished one.

        ``max_duplicate_retries + 1`` candidates are sampled from the controller in one batch
        along the tree of seen sequences, and the first that leaves the tree is kept: rejection
        sampling, i.e. the controller's distribution restricted to new decision sequences. The
        trial samples its remaining decisions freely. None (sample freely from the start) when
        nothing was seen yet or every candidate repeated a finished trial.
        """
        if not self._seen_depth:
            return None
        uniforms = rng.random((self._max_duplicate_retries + 1, self._seen_depth))
        return self._policy.draw_unseen(self._seen, uniforms)

    def _sample_fallback(
        self, study: Study, trial: FrozenTrial, name: str, dist: BaseDistribution
    ) -> Any:
        """A float or wide int: from ``independent_sampler``, else uniform from the trial's key."""
        if self._independent_sampler is not None:
            return self._independent_sampler.sample_independent(study, trial, name, dist)
        return sample_uniform(dist, trial_random_state(self._sampling_seed, trial.number, name))


def _follow_plan(in_flight: _InFlight, key: str, index: int) -> None:
    """Advance the trial's plan past decision ``key``, or drop the plan if it disagrees."""
    plan = in_flight.plan
    if plan is not None:
        position = in_flight.position
        if position < len(plan) and plan[position] == (key, index):
            in_flight.position += 1
        else:
            in_flight.plan = None


def _to_index(distribution: BaseDistribution, value: Any) -> int:
    if isinstance(distribution, CategoricalDistribution):
        return int(distribution.to_internal_repr(value))
    assert isinstance(distribution, IntDistribution)
    return (int(value) - distribution.low) // distribution.step


def _from_index(distribution: BaseDistribution, index: int) -> Any:
    if isinstance(distribution, CategoricalDistribution):
        return distribution.choices[index]
    assert isinstance(distribution, IntDistribution)
    return distribution.low + index * distribution.step
