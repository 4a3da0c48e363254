"""The one trial-outcome policy: classify() and TrialGuard, with exceptions as DDP reports them."""

from __future__ import annotations

import math
from pathlib import Path
import subprocess
import sys
from typing import Any

import optuna
from optuna.trial import TrialState
import pytest
import torch
from torch.multiprocessing import ProcessExitedException
from torch.multiprocessing import ProcessRaisedException

from optuna_nas.search_spaces import create_search_space
from optuna_nas.trial_outcome import ArchitectureBuildError
from optuna_nas.trial_outcome import InvalidArchitectureError
from optuna_nas.trial_outcome import NonFiniteError
from optuna_nas.trial_outcome import Outcome
from optuna_nas.trial_outcome import ParameterConflictError
from optuna_nas.trial_outcome import TrialGuard
from optuna_nas.trial_outcome import classify
from optuna_nas.trial_outcome import invalid_architecture


def _worker_error(name: str, message: str) -> ProcessRaisedException:
    """What torch.multiprocessing raises in the parent when a DDP worker raised ``name``."""
    text = (
        "\n\n-- Process 1 terminated with the following error:\n"
        "Traceback (most recent call last):\n"
        '  File "/x/torch/multiprocessing/spawn.py", line 90, in _wrap\n'
        "    fn(i, *args)\n"
        f"{name}: {message}\n"
    )
    return ProcessRaisedException(text, 1, 4242)


@pytest.mark.parametrize(
    ("error", "outcome", "cause", "reason"),
    [
        (optuna.TrialPruned("by the pruner"), Outcome.PRUNE, "pruner", "by the pruner"),
        (NonFiniteError("loss is nan"), Outcome.PRUNE, "non_finite", "loss is nan"),
        (
            torch.cuda.OutOfMemoryError("CUDA out of memory."),
            Outcome.FAIL,
            "out_of_memory",
            "Out of memory (OutOfMemoryError): CUDA out of memory.",
        ),
        (
            RuntimeError("DefaultCPUAllocator: can't allocate memory: out of memory"),
            Outcome.FAIL,
            "out_of_memory",
            "Out of memory (RuntimeError)",
        ),
        (
            InvalidArchitectureError("unknown op 'x'"),
            Outcome.FAIL,
            "invalid_architecture",
            "Invalid architecture: unknown op 'x'",
        ),
        (
            ArchitectureBuildError("cannot build"),
            Outcome.FAIL,
            "build_error",
            "Architecture build error: cannot build",
        ),
        (
            ProcessExitedException("process 1 terminated with signal SIGKILL", 1, 7, None, "K"),
            Outcome.FAIL,
            "worker_died",
            "A DDP worker process died: process 1 terminated with signal SIGKILL",
        ),
        (KeyboardInterrupt(), Outcome.RAISE, "interrupt", "Interrupted (KeyboardInterrupt)"),
        (ValueError("a configuration error"), Outcome.RAISE, "error", "a configuration error"),
        (RuntimeError("a bug"), Outcome.RAISE, "error", "RuntimeError: a bug"),
    ],
)
def test_classify_in_process(
    error: BaseException, outcome: Outcome, cause: str, reason: str
) -> None:
    verdict = classify(error)
    assert (verdict.outcome, verdict.cause) == (outcome, cause)
    assert reason in verdict.reason
    assert (verdict.error is error) == (outcome is Outcome.RAISE)


def test_catch_fails_instead_of_raising() -> None:
    verdict = classify(KeyError("k"), catch=(KeyError,))
    assert (verdict.outcome, verdict.cause) == (Outcome.FAIL, "caught")
    assert verdict.reason == "KeyError: 'k'"
    # The policy's own cases come first: a caught base class does not turn a NaN into a FAIL.
    assert classify(NonFiniteError("nan"), catch=(RuntimeError,)).outcome is Outcome.PRUNE


@pytest.mark.parametrize(
    ("name", "message", "outcome", "cause"),
    [
        ("optuna_nas.trial_outcome.NonFiniteError", "loss is nan", Outcome.PRUNE, "non_finite"),
        ("torch.OutOfMemoryError", "CUDA out of memory", Outcome.FAIL, "out_of_memory"),
        (
            "optuna_nas.trial_outcome.InvalidArchitectureError",
            "bad",
            Outcome.FAIL,
            "invalid_architecture",
        ),
        ("RuntimeError", "a bug", Outcome.RAISE, "error"),
    ],
)
def test_a_ddp_workers_exception_classifies_like_in_process(
    name: str, message: str, outcome: Outcome, cause: str
) -> None:
    verdict = classify(_worker_error(name, message))
    assert (verdict.outcome, verdict.cause) == (outcome, cause)
    assert message in verdict.reason


def test_catch_matches_a_workers_exception_by_exact_class() -> None:
    error = _worker_error("RuntimeError", "a bug in the user's network")
    verdict = classify(error, catch=(RuntimeError,))
    assert (verdict.outcome, verdict.reason) == (
        Outcome.FAIL,
        "RuntimeError: a bug in the user's network",
    )
    # Only the class name reaches this process: a subclass of a caught class is not matched.
    subclass = _worker_error("mypackage.NetworkBug", "a bug")
    assert classify(subclass, catch=(RuntimeError,)).outcome is Outcome.RAISE


def test_the_errors_are_one_class_each_and_public() -> None:
    import optuna_nas
    from optuna_nas import darts
    from optuna_nas import search_spaces
    from optuna_nas import training

    assert training.NonFiniteError is darts.NonFiniteError is optuna_nas.NonFiniteError
    assert not hasattr(training, "NonFiniteLossError")  # one name for one idea
    assert search_spaces.InvalidArchitectureError is optuna_nas.InvalidArchitectureError
    assert issubclass(InvalidArchitectureError, ValueError)
    assert issubclass(ParameterConflictError, ValueError)


def test_the_policy_imports_neither_lightning_nor_torch() -> None:
    # Load the module file on its own: the package's __init__ imports the training stack.
    path = sys.modules["optuna_nas.trial_outcome"].__file__
    script = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('outcome', {path!r})\n"
        "module = sys.modules['outcome'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "heavy = ('torch', 'lightning', 'optuna_integration')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------- the guard
def _guarded(kind: str) -> Any:
    def objective(trial: optuna.Trial) -> float:
        with TrialGuard(trial, catch=(KeyError,)) as guard:
            trial.suggest_float("x", 0.0, 1.0)
            if kind == "nan":
                raise NonFiniteError("Non-finite loss at epoch 0")
            if kind == "invalid":
                raise InvalidArchitectureError("unknown op 'conv_9x9'")
            if kind == "caught":
                raise KeyError("k")
            if kind == "not_logged":
                return guard.fail("metric was not logged")  # type: ignore[return-value]
            if kind == "bug":
                raise RuntimeError("a bug")
            if kind == "pruner":
                trial.report(0.5, 0)
                raise optuna.TrialPruned()
            return 1.0
        return guard.fail_value  # type: ignore[return-value]

    return objective


@pytest.mark.parametrize(
    ("kind", "state", "attr", "reason"),
    [
        ("nan", TrialState.PRUNED, "pruned_reason", "Non-finite loss at epoch 0"),
        ("pruner", TrialState.PRUNED, "pruned_reason", "pruned by NopPruner at epoch 0"),
        ("invalid", TrialState.FAIL, "fail_reason", "Invalid architecture: unknown op"),
        ("caught", TrialState.FAIL, "fail_reason", "KeyError: 'k'"),
        ("not_logged", TrialState.FAIL, "fail_reason", "metric was not logged"),
    ],
)
def test_guard_records_the_reason_and_ends_only_the_trial(
    kind: str, state: TrialState, attr: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    study = optuna.create_study(pruner=optuna.pruners.NopPruner())
    with caplog.at_level("WARNING", logger="optuna_nas.trial_outcome"):
        study.optimize(_guarded(kind), n_trials=1)
    study.optimize(_guarded("ok"), n_trials=1)
    ended, ok = study.trials
    assert ended.state == state
    assert ended.user_attrs[attr].startswith(reason)
    assert ({"pruned_reason", "fail_reason"} - {attr}).isdisjoint(ended.user_attrs)
    assert ok.state == TrialState.COMPLETE and ok.user_attrs == {}
    logged = [r.getMessage() for r in caplog.records if r.name == "optuna_nas.trial_outcome"]
    if kind == "pruner":
        assert logged == []  # Optuna itself logs a pruner's decision
    else:
        verb = "pruned" if state == TrialState.PRUNED else "failed"
        assert logged == [f"Trial 0 {verb}: {ended.user_attrs[attr]}"]


def test_guard_lets_other_errors_end_the_study() -> None:
    study = optuna.create_study()
    with pytest.raises(RuntimeError, match="a bug"):
        study.optimize(_guarded("bug"), n_trials=1)
    assert "fail_reason" not in study.trials[0].user_attrs


def test_guard_fail_value_has_one_nan_per_objective() -> None:
    trial = optuna.create_study(directions=["maximize", "minimize"]).ask()
    guard = TrialGuard(trial, n_values=2)
    values = guard.fail_value
    assert isinstance(values, tuple) and len(values) == 2 and all(map(math.isnan, values))
    assert math.isnan(TrialGuard(trial).fail_value)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_values"):
        TrialGuard(trial, n_values=0)


def test_invalid_architecture_wraps_value_errors_but_not_conflicts() -> None:
    with pytest.raises(InvalidArchitectureError, match="bad value") as info:
        with invalid_architecture():
            raise ValueError("bad value")
    assert type(info.value) is InvalidArchitectureError
    with pytest.raises(ArchitectureBuildError, match="no such op"):
        with invalid_architecture(build=True):
            raise InvalidArchitectureError("no such op")
    with pytest.raises(KeyError):
        with invalid_architecture():
            raise KeyError("not a ValueError")


def test_a_samplers_value_error_is_not_an_invalid_architecture() -> None:
    class Broken(optuna.samplers.RandomSampler):
        def sample_independent(self, *args: Any, **kwargs: Any) -> Any:
            raise ValueError("this sampler needs reward_fn")

    study = optuna.create_study(sampler=Broken())
    space = create_search_space("nasbench201")
    with pytest.raises(ValueError, match="reward_fn") as info:
        space.suggest(study.ask())
    assert not isinstance(info.value, InvalidArchitectureError)
    # An enqueued value outside the choices is one.
    study = optuna.create_study()
    study.enqueue_trial({"nb201/edge_1_0": "conv_9x9"})
    with pytest.raises(InvalidArchitectureError, match="conv_9x9"):
        space.suggest(study.ask())


# ---------------------------------------------------------------------------- configuration
@pytest.mark.parametrize("storage", ["memory", "sqlite"])
def test_a_resumed_study_with_other_operations_raises_naming_both_distributions(
    storage: str, tmp_path: Path
) -> None:
    url = None if storage == "memory" else f"sqlite:///{tmp_path}/resumed.db"
    study = optuna.create_study(storage=url, sampler=optuna.samplers.RandomSampler(0))
    space = create_search_space("nasbench201")
    study.optimize(lambda t: float(len(space.suggest(t).ops)), n_trials=2)
    other = create_search_space("nasbench201", operations=["none", "skip_connect"])

    def objective(trial: optuna.Trial) -> float:
        with TrialGuard(trial):
            return float(len(other.suggest(trial).ops))
        return math.nan

    with pytest.raises(ParameterConflictError) as info:
        study.optimize(objective, n_trials=3)
    error = info.value
    assert error.name == "nb201/edge_1_0"
    assert error.previous == optuna.distributions.CategoricalDistribution(space.operations)
    assert error.new == optuna.distributions.CategoricalDistribution(("none", "skip_connect"))
    message = str(error)
    assert "'nb201/edge_1_0'" in message
    assert "'nor_conv_3x3'" in message and "('none', 'skip_connect')" in message
    assert len(study.trials) == 3  # the first conflicting trial ends the study


def test_a_user_parameter_with_another_distribution_raises() -> None:
    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("lr", 1e-3, 1e-1, log=True), n_trials=1)

    def objective(trial: optuna.Trial) -> float:
        with TrialGuard(trial):
            return float(trial.suggest_categorical("lr", [0.01, 0.1]))
        return math.nan

    with pytest.raises(ParameterConflictError, match="'lr'") as info:
        study.optimize(objective, n_trials=1)
    assert isinstance(info.value.previous, optuna.distributions.FloatDistribution)
    assert isinstance(info.value.new, optuna.distributions.CategoricalDistribution)
    assert "FloatDistribution" in str(info.value) and "CategoricalDistribution" in str(info.value)
