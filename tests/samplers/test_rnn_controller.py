from __future__ import annotations

from collections.abc import Callable
import math
import pickle
import re
import subprocess
import sys
import textwrap
import time
from typing import Any

import numpy as np
import optuna
from optuna.samplers import BaseSampler
from optuna.storages.journal import JournalFileBackend
from optuna.storages.journal import JournalStorage
from optuna.study import StudyDirection
from optuna.testing.pytest_samplers import BasicSamplerTestCase
from optuna.testing.pytest_samplers import MultiObjectiveSamplerTestCase
from optuna.testing.pytest_samplers import SingleOnlySamplerTestCase
from optuna.trial import TrialState
import pytest
import torch

from optuna_nas.samplers import RNNControllerSampler
from optuna_nas.samplers._rnn_policy import Step


optuna.logging.set_verbosity(optuna.logging.WARNING)


class TestRNNControllerSampler(BasicSamplerTestCase, SingleOnlySamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return lambda: RNNControllerSampler()


class TestRNNControllerSamplerMultiObjective(MultiObjectiveSamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return lambda: RNNControllerSampler(reward_fn=lambda values: values[1] - values[0])


# An objective with a conditional, variable-length architecture, a narrow int (a controller
# decision), a wide int and a float (both sampled by the independent sampler), and failures.
OBJECTIVE_SOURCE = textwrap.dedent(
    """
    import math

    def objective(trial):
        depth = trial.suggest_int("depth", 1, 3)
        score = 0.0
        for i in range(depth):
            op = trial.suggest_categorical(f"op{i}", ["conv", "pool", "skip"])
            score += {"conv": 1.0, "pool": 0.5, "skip": 0.0}[op]
            if op == "conv":
                score += trial.suggest_categorical(f"kernel{i}", [3, 5]) / 10
        width = trial.suggest_int("width", 8, 256)
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        if trial.number % 7 == 3:
            return float("nan")  # a failed trial: no reward
        if trial.number % 11 == 5:
            raise RuntimeError("simulated crash")
        return score - abs(math.log10(lr) + 2) - width / 1000
    """
)
_namespace: dict[str, Any] = {}
exec(OBJECTIVE_SOURCE, _namespace)
objective: Callable[[optuna.Trial], float] = _namespace["objective"]

SAMPLER_KWARGS: dict[str, Any] = {"seed": 7, "batch_size": 2, "hidden_size": 16}


def _run(study: optuna.Study, n_trials: int) -> None:
    study.optimize(objective, n_trials=n_trials, catch=(RuntimeError,))


def _params(study: optuna.Study) -> list[dict[str, Any]]:
    return [t.params for t in study.trials]


def _uninterrupted(n_trials: int) -> optuna.Study:
    study = optuna.create_study(sampler=RNNControllerSampler(**SAMPLER_KWARGS))
    _run(study, n_trials)
    return study


def test_same_seed_same_params_and_different_seed_differs() -> None:
    first, second = _uninterrupted(25), _uninterrupted(25)
    assert _params(first) == _params(second)
    other = optuna.create_study(sampler=RNNControllerSampler(**{**SAMPLER_KWARGS, "seed": 8}))
    _run(other, 25)
    assert _params(other) != _params(first)


@pytest.mark.parametrize("how", ["new_object", "pickle", "load_study"])
def test_resumed_equals_uninterrupted(how: str, tmp_path: Any) -> None:
    expected = _params(_uninterrupted(30))
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "journal.log")))
    study = optuna.create_study(storage=storage, sampler=RNNControllerSampler(**SAMPLER_KWARGS))
    _run(study, 12)
    if how == "new_object":
        study.sampler = RNNControllerSampler(**SAMPLER_KWARGS)
    elif how == "pickle":
        study.sampler = pickle.loads(pickle.dumps(study.sampler))
    else:
        storage = JournalStorage(JournalFileBackend(str(tmp_path / "journal.log")))
        study = optuna.load_study(
            study_name=study.study_name,
            storage=storage,
            sampler=RNNControllerSampler(**SAMPLER_KWARGS),
        )
    _run(study, 18)
    assert _params(study) == expected


def test_resumed_in_spawned_process_equals_uninterrupted(tmp_path: Any) -> None:
    expected = _params(_uninterrupted(25))
    path = str(tmp_path / "journal.log")
    study = optuna.create_study(
        study_name="spawned",
        storage=JournalStorage(JournalFileBackend(path)),
        sampler=RNNControllerSampler(**SAMPLER_KWARGS),
    )
    _run(study, 10)
    script = OBJECTIVE_SOURCE + textwrap.dedent(
        f"""
        import optuna
        from optuna.storages.journal import JournalFileBackend, JournalStorage
        from optuna_nas.samplers import RNNControllerSampler

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        study = optuna.load_study(
            study_name="spawned",
            storage=JournalStorage(JournalFileBackend({path!r})),
            sampler=RNNControllerSampler(**{SAMPLER_KWARGS!r}),
        )
        study.optimize(objective, n_trials=15, catch=(RuntimeError,))
        """
    )
    # A fresh interpreter (with its own random hash seed) continues the study.
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    resumed = optuna.load_study(
        study_name="spawned", storage=JournalStorage(JournalFileBackend(path))
    )
    assert _params(resumed) == expected


def test_new_sampler_rebuilds_the_same_controller() -> None:
    study = _uninterrupted(30)
    live = study.sampler
    assert isinstance(live, RNNControllerSampler)
    rebuilt = RNNControllerSampler(**SAMPLER_KWARGS)
    distribution = optuna.distributions.CategoricalDistribution(["conv", "pool", "skip"])
    for sampler in (live, rebuilt):
        # The first decision of a new trial catches up on all 30 finished trials.
        trial = study._storage.get_trial(study.ask()._trial_id)
        sampler.sample_independent(study, trial, "op0", distribution)
    assert live._policy.num_updates > 5
    assert live._policy.num_rewards == rebuilt._policy.num_rewards
    live_state, rebuilt_state = _state(live), _state(rebuilt)
    # Heads used only by failed trials exist only in the live sampler; they never trained.
    assert rebuilt_state.keys() <= live_state.keys()
    for name, tensor in rebuilt_state.items():
        assert torch.equal(tensor, live_state[name]), name


def _state(sampler: RNNControllerSampler) -> dict[str, torch.Tensor]:
    policy = sampler._policy
    state = {f"lstm.{k}": v for k, v in policy._lstm.state_dict().items()}
    state["start"] = policy._start.detach()
    for key, head in policy._heads.items():
        for i, param in enumerate(head.parameters()):
            state[f"{key}.{i}"] = param.detach()
    return state


def _toy_objective(trial: optuna.Trial) -> float:
    # Four decisions of four choices; the reward counts the "a" choices (random mean: 1).
    return float(
        sum(trial.suggest_categorical(f"d{i}", ["a", "b", "c", "d"]) == "a" for i in range(4))
    )


@pytest.mark.parametrize("direction", [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE])
def test_learns(direction: StudyDirection) -> None:
    sign = 1.0 if direction == StudyDirection.MAXIMIZE else -1.0
    study = optuna.create_study(direction=direction, sampler=RNNControllerSampler(seed=0))
    study.optimize(lambda t: sign * _toy_objective(t), n_trials=200)
    counts = [sign * float(t.value or 0.0) for t in study.trials]
    assert np.mean(counts[-50:]) > np.mean(counts[:50]) + 0.5


def test_recorded_log_prob_matches_replay_with_fixed_params() -> None:
    sampler = RNNControllerSampler(seed=3)
    study = optuna.create_study(sampler=sampler)
    study.enqueue_trial({"d1": "c"})  # fixed params are fed to the LSTM like sampled ones
    trials = [study.ask() for _ in range(5)]
    for trial in trials:
        _toy_objective(trial)
    with torch.no_grad():
        steps = [sampler._steps(study._storage.get_trial(t._trial_id)) for t in trials]
        replayed, _ = sampler._policy.log_probs(steps)
    for trial, expected in zip(trials, replayed.tolist()):
        frozen = study._storage.get_trial(trial._trial_id)
        recorded = frozen.user_attrs["rnn_controller:log_prob"]
        assert recorded == frozen.system_attrs["RNNControllerSampler:log_prob"]
        assert recorded < 0.0
        assert recorded == pytest.approx(expected, rel=1e-5)
    assert [len(s) for s in steps] == [4] * 5


def test_baseline_attr_and_int_decisions() -> None:
    study = optuna.create_study(direction="maximize", sampler=RNNControllerSampler(seed=1))

    def objective_(trial: optuna.Trial) -> float:
        trial.suggest_int("wide", 0, 100)
        trial.suggest_float("x", 0.0, 1.0)
        return float(trial.suggest_int("narrow", 1, 4))

    study.optimize(objective_, n_trials=4)
    assert "rnn_controller:baseline" not in study.trials[0].user_attrs
    assert all("rnn_controller:baseline" in t.user_attrs for t in study.trials[1:])
    assert all(t.user_attrs["rnn_controller:log_prob"] < 0.0 for t in study.trials)

    only_wide = optuna.create_study(sampler=RNNControllerSampler(seed=1))
    only_wide.optimize(lambda t: t.suggest_int("wide", 0, 100), n_trials=3)
    assert all("rnn_controller:log_prob" not in t.user_attrs for t in only_wide.trials)


def test_non_finite_values_and_failures_keep_controller_finite() -> None:
    sampler = RNNControllerSampler(seed=0, learning_rate=0.5)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    outcomes = [math.inf, -math.inf, math.nan, 1e300, -1e300, 0.0, 1.0, None]

    def objective_(trial: optuna.Trial) -> float:
        _toy_objective(trial)
        outcome = outcomes[trial.number % len(outcomes)]
        if outcome is None:
            raise RuntimeError("crash")
        return outcome

    study.optimize(objective_, n_trials=48, catch=(RuntimeError,))
    assert len(study.trials) == 48
    assert all(torch.isfinite(t).all() for t in _state(sampler).values())
    assert sampler._policy.num_updates > 0


def test_out_of_order_completion_and_stale_running_trial() -> None:
    sampler = RNNControllerSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    zombie = study.ask()  # never finished, like a trial of a crashed worker
    _toy_objective(zombie)
    first, second, third = study.ask(), study.ask(), study.ask()
    for trial in (first, second, third):
        _toy_objective(trial)
    study.tell(third, 1.0)
    _toy_objective(study.ask())  # applies the third trial only
    assert sampler._policy.num_rewards == 1
    study.tell(first, 2.0)
    study.tell(second, state=TrialState.FAIL)
    study.optimize(_toy_objective, n_trials=5)
    # first, third and 4 of the 5 new trials (the last one is not seen yet); no blocking.
    assert sampler._policy.num_rewards == 6
    assert all(t.state == TrialState.COMPLETE for t in study.trials[-5:])


def test_threads() -> None:
    study = optuna.create_study(sampler=RNNControllerSampler(seed=0))
    study.optimize(objective, n_trials=40, n_jobs=4, catch=(RuntimeError,))
    assert len(study.trials) == 40
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) > 20
    assert all(t.params["op0"] in ("conv", "pool", "skip") for t in complete)


@pytest.mark.slow
def test_processes_share_one_storage(tmp_path: Any) -> None:
    path = str(tmp_path / "journal.log")
    optuna.create_study(study_name="shared", storage=JournalStorage(JournalFileBackend(path)))
    script = OBJECTIVE_SOURCE + textwrap.dedent(
        f"""
        import optuna
        from optuna.storages.journal import JournalFileBackend, JournalStorage
        from optuna_nas.samplers import RNNControllerSampler

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        study = optuna.load_study(
            study_name="shared",
            storage=JournalStorage(JournalFileBackend({path!r})),
            sampler=RNNControllerSampler(seed=0),
        )
        study.optimize(objective, n_trials=15, n_jobs=2, catch=(RuntimeError,))
        """
    )
    workers = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(2)]
    assert [w.wait(timeout=300) for w in workers] == [0, 0]
    study = optuna.load_study(
        study_name="shared", storage=JournalStorage(JournalFileBackend(path))
    )
    assert len(study.trials) == 30
    assert len({t.number for t in study.trials}) == 30
    assert all("rnn_controller:log_prob" in t.user_attrs for t in study.trials)


def test_one_sampler_on_two_studies_starts_over() -> None:
    sampler = RNNControllerSampler(**SAMPLER_KWARGS)
    first = optuna.create_study(sampler=sampler)
    _run(first, 10)
    second = optuna.create_study(sampler=sampler)
    _run(second, 10)
    assert _params(second) == _params(_uninterrupted(10))


def test_multi_objective_needs_reward_fn() -> None:
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=RNNControllerSampler(seed=0)
    )
    with pytest.raises(ValueError, match="reward_fn"):
        study.optimize(lambda t: (_toy_objective(t), 1.0), n_trials=1)


def test_multi_objective_with_mnasnet_reward() -> None:
    reward = RNNControllerSampler.mnasnet_reward(target=2.0)
    sampler = RNNControllerSampler(seed=0, reward_fn=reward)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)

    def objective_(trial: optuna.Trial) -> tuple[float, float]:
        count = _toy_objective(trial)
        return count, 1.0 + trial.suggest_categorical("big", [0.0, 3.0])

    study.optimize(objective_, n_trials=20)
    assert len(study.trials) == 20
    assert sampler._policy.num_rewards == 19


def test_mnasnet_reward_formula() -> None:
    soft = RNNControllerSampler.mnasnet_reward(target=80.0)
    assert soft([0.75, 80.0]) == pytest.approx(0.75)
    assert soft([0.75, 160.0]) == pytest.approx(0.75 * 2.0**-0.07)
    hard = RNNControllerSampler.mnasnet_reward(target=80.0, alpha=0.0, beta=-1.0)
    assert hard([0.75, 40.0]) == pytest.approx(0.75)
    assert hard([0.75, 160.0]) == pytest.approx(0.375)
    flipped = RNNControllerSampler.mnasnet_reward(target=1.0, accuracy_index=1, cost_index=0)
    assert flipped([2.0, 0.5]) == pytest.approx(0.5 * 2.0**-0.07)
    assert math.isnan(soft([0.75, 0.0]))
    with pytest.raises(ValueError, match="-1.0"):
        RNNControllerSampler.mnasnet_reward(target=-1.0)
    with pytest.raises(ValueError, match="0"):
        RNNControllerSampler.mnasnet_reward(target=1.0, accuracy_index=0, cost_index=0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"hidden_size": 0},
        {"hidden_size": 2.5},
        {"num_layers": 0},
        {"batch_size": -1},
        {"max_int_choices": -1},
        {"learning_rate": 0.0},
        {"learning_rate": math.inf},
        {"temperature": -1.0},
        {"tanh_constant": 0.0},
        {"entropy_weight": -0.1},
        {"entropy_weight": math.nan},
        {"baseline_decay": 1.0},
        {"baseline_decay": -0.5},
        {"seed": "abc"},
        {"reward_fn": 3},
        {"independent_sampler": "random"},
        {"imitation_top_k": -1},
        {"imitation_weight": -0.5},
        {"imitation_weight": math.inf},
        {"max_duplicate_retries": -1},
        {"skip_duplicates": "yes"},
    ],
)
def test_invalid_arguments(kwargs: dict[str, Any]) -> None:
    ((name, value),) = kwargs.items()
    with pytest.raises(ValueError, match=re.escape(name)) as error:
        RNNControllerSampler(**kwargs)
    assert repr(value) in str(error.value)


def test_keyword_only_and_optional_tanh() -> None:
    with pytest.raises(TypeError):
        RNNControllerSampler(0)  # type: ignore[call-arg]
    study = optuna.create_study(sampler=RNNControllerSampler(tanh_constant=None, seed=0))
    study.optimize(_toy_objective, n_trials=5)
    assert len(study.trials) == 5


def test_custom_independent_sampler_is_used() -> None:
    tpe = optuna.samplers.TPESampler(seed=0, n_startup_trials=2)
    study = optuna.create_study(sampler=RNNControllerSampler(seed=0, independent_sampler=tpe))
    study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2 + _toy_objective(t), n_trials=6)
    assert all(-1 <= t.params["x"] <= 1 for t in study.trials)


def test_imitation_buffer_keeps_the_best_sequences_ties_to_the_earlier() -> None:
    policy = RNNControllerSampler(seed=0, imitation_top_k=2, imitation_weight=1.0)._policy
    history = [(0, 1.0), (1, 3.0), (2, 2.0), (3, 3.0), (4, -1.0)]
    for index, reward in history:
        policy.apply([Step("a", 5, index)], reward)
    assert [steps[0].index for _, _, steps in policy._elite] == [1, 3]
    # Turned off by either argument: no buffer, plain REINFORCE.
    for kwargs in ({"imitation_top_k": 0}, {"imitation_weight": 0.0}):
        plain = RNNControllerSampler(seed=0, **kwargs)._policy
        plain.apply([Step("a", 5, 0)], 1.0)
        assert plain._elite == []


def test_imitation_pulls_the_policy_toward_the_best_sequence() -> None:
    # The same history (one rare, best sequence among noisy ordinary ones) applied with and
    # without self-imitation: with it, the best sequence ends up more likely.
    rng = np.random.default_rng(0)
    best = [Step(f"e{i}", 5, 4) for i in range(4)]
    history = [([Step(f"e{i}", 5, int(rng.integers(4))) for i in range(4)], rng.normal())]
    history += [(best, 5.0)]
    history += [
        ([Step(f"e{i}", 5, int(rng.integers(4))) for i in range(4)], rng.normal())
        for _ in range(40)
    ]
    log_probs = {}
    for weight in (0.0, 1.0):
        policy = RNNControllerSampler(seed=0, imitation_weight=weight)._policy
        for steps, reward in history:
            policy.apply(steps, float(reward))
        with torch.no_grad():
            log_probs[weight] = policy.log_probs([best])[0].item()
    assert log_probs[1.0] > log_probs[0.0] + 1.0


def test_policy_log_probs_batch_equals_single() -> None:
    sampler = RNNControllerSampler(seed=0)
    policy = sampler._policy
    sequences = [
        [Step("a", 3, 1), Step("b", 2, 0), Step("c", 4, 3)],
        [Step("a", 3, 2)],
        [Step("c", 4, 0), Step("a", 3, 0)],
    ]
    with torch.no_grad():
        batched, batched_entropy = policy.log_probs(sequences)
        for i, sequence in enumerate(sequences):
            single, entropy = policy.log_probs([sequence])
            assert single.item() == pytest.approx(batched[i].item(), abs=1e-5)
            assert entropy.item() == pytest.approx(batched_entropy[i].item(), abs=1e-5)
    assert (batched < 0).all()


@pytest.mark.slow
def test_replay_of_many_trials_is_fast() -> None:
    rng = np.random.default_rng(0)
    distribution = optuna.distributions.CategoricalDistribution(list("abcde"))
    study = optuna.create_study()
    study.add_trials(
        [
            optuna.trial.create_trial(
                params={f"e{i}": "abcde"[rng.integers(5)] for i in range(6)},
                distributions={f"e{i}": distribution for i in range(6)},
                value=float(rng.normal()),
            )
            for _ in range(3000)
        ]
    )
    sampler = RNNControllerSampler(seed=0)
    study.sampler = sampler
    start = time.perf_counter()
    trial = study.ask()
    trial.suggest_categorical("e0", list("abcde"))
    elapsed = time.perf_counter() - start
    assert sampler._policy.num_rewards == 3000
    assert elapsed < 60.0, elapsed


def test_global_torch_rng_untouched() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    study = optuna.create_study(sampler=RNNControllerSampler(seed=0))
    study.optimize(_toy_objective, n_trials=3)
    assert torch.equal(torch.rand(3), expected)


def _nas_only_objective(trial: optuna.Trial) -> float:
    # A conditional space of categorical decisions only (84 architectures).
    depth = trial.suggest_int("depth", 1, 3)
    score = 0.0
    for i in range(depth):
        op = trial.suggest_categorical(f"op{i}", ["conv", "pool", "skip"])
        score += {"conv": 1.0, "pool": 0.5, "skip": 0.0}[op]
        if op == "conv":
            score += trial.suggest_categorical(f"kernel{i}", [3, 5]) / 10
    return score


def _sequences(study: optuna.Study) -> list[tuple[tuple[str, Any], ...]]:
    return [tuple(t.params.items()) for t in study.trials]


@pytest.mark.parametrize("skip", [True, False])
def test_skip_duplicates_in_a_conditional_space(skip: bool) -> None:
    sampler = RNNControllerSampler(seed=0, skip_duplicates=skip, learning_rate=0.05)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(_nas_only_objective, n_trials=40)
    n_unique = len(set(_sequences(study)))
    if skip:
        assert n_unique == 40
    else:  # a learning controller repeats its favourites
        assert n_unique < 40


def test_skip_duplicates_ignores_trials_with_floats() -> None:
    # The same architecture with another learning rate is a new point: repeats are allowed.
    def objective(trial: optuna.Trial) -> float:
        op = trial.suggest_categorical("op", list(range(8)))
        return op + trial.suggest_float("lr", 0.0, 1.0)

    study = optuna.create_study(sampler=RNNControllerSampler(seed=0))
    study.optimize(objective, n_trials=8)
    assert len({t.params["op"] for t in study.trials}) < 8

    def nas_only(trial: optuna.Trial) -> float:
        return float(trial.suggest_categorical("op", list(range(8))))

    study = optuna.create_study(sampler=RNNControllerSampler(seed=0))
    study.optimize(nas_only, n_trials=8)
    assert len({t.params["op"] for t in study.trials}) == 8


def test_skip_duplicates_space_exhausted_still_samples() -> None:
    def objective(trial: optuna.Trial) -> float:
        return float(trial.suggest_categorical("op", [0, 1, 2]))

    study = optuna.create_study(sampler=RNNControllerSampler(seed=0))
    study.optimize(objective, n_trials=6)
    assert sorted({t.params["op"] for t in study.trials}) == [0, 1, 2]
    assert {t.params["op"] for t in study.trials[:3]} == {0, 1, 2}


def test_skip_duplicates_resumed_equals_uninterrupted(tmp_path: Any) -> None:
    kwargs = {"seed": 3, "learning_rate": 0.05}
    uninterrupted = optuna.create_study(sampler=RNNControllerSampler(**kwargs))
    uninterrupted.optimize(_nas_only_objective, n_trials=30)
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "journal.log")))
    study = optuna.create_study(storage=storage, sampler=RNNControllerSampler(**kwargs))
    study.optimize(_nas_only_objective, n_trials=13)
    study.sampler = RNNControllerSampler(**kwargs)
    study.optimize(_nas_only_objective, n_trials=17)
    assert _sequences(study) == _sequences(uninterrupted)


def test_draw_unseen_is_the_policy_restricted_to_new_sequences() -> None:
    from optuna_nas.samplers._rnn_policy import ControllerPolicy
    from optuna_nas.samplers._rnn_policy import PolicySettings
    from optuna_nas.samplers._rnn_policy import SequenceTrie

    settings = PolicySettings(
        seed=0,
        hidden_size=8,
        num_layers=1,
        learning_rate=1e-2,
        temperature=1.0,
        tanh_constant=None,
        entropy_weight=0.0,
        baseline_decay=0.9,
        batch_size=1,
    )
    policy = ControllerPolicy(settings)
    decisions = [("a", 2), ("b", 2)]
    seen = SequenceTrie()
    seen.add([Step("a", 2, 0), Step("b", 2, 0)])
    seen.add([Step("a", 2, 0), Step("b", 2, 1)])
    seen.add([Step("a", 2, 1), Step("b", 2, 0)])
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert policy.draw_unseen(seen, rng.random((64, 2))) == [("a", 1), ("b", 1)]
    seen.add([Step("a", 2, 1), Step("b", 2, 1)])
    assert policy.draw_unseen(seen, rng.random((16, 2))) is None
    # With a single candidate the first decision follows the policy's own probabilities.
    cursor = policy.new_cursor()
    p_a0 = policy.probabilities(cursor, *decisions[0])[0]
    empty = SequenceTrie()
    empty.add([Step("a", 2, 1)])
    uniforms = np.array([[p_a0 * 0.999, 0.5], [p_a0 * 1.001, 0.5]])
    assert policy.draw_unseen(empty, uniforms[:1]) == [("a", 0)]
    assert policy.draw_unseen(empty, uniforms[1:]) is None
