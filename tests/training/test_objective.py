from __future__ import annotations

from collections.abc import Mapping
import math
import os
from typing import Any

import optuna
from optuna.trial import TrialState
import pytest
from torch import nn

from optuna_nas.search_spaces import create_search_space
from optuna_nas.training import EmbeddedDataModule
from optuna_nas.training import NASObjective
from optuna_nas.trial_outcome import ParameterConflictError


TINY_BUILD = {"channels": 4, "cells_per_stage": 1}
CPU = {"accelerator": "cpu"}
STRONG = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def _objective(dm: EmbeddedDataModule, **kwargs: Any) -> NASObjective:
    options: dict[str, Any] = {
        "max_epochs": 2,
        "build_kwargs": TINY_BUILD,
        "trainer_kwargs": CPU,
        "module_kwargs": {"lr": 0.05},
        "latency_repeats": 2,
    }
    options.update(kwargs)
    return NASObjective(create_search_space("nasbench201"), dm, **options)


def test_records_attributes_and_returns_final_accuracy(digits: EmbeddedDataModule) -> None:
    objective = _objective(digits)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    study.optimize(objective, n_trials=2)
    space = objective.space
    for trial in study.trials:
        assert trial.state == TrialState.COMPLETE
        attrs = trial.user_attrs
        assert attrs["search_space"] == "nasbench201"
        # The recorded string is the trial's own architecture.
        assert space.from_string(attrs["arch"]) == space.from_params(trial.params)
        assert attrs["n_params"] > 0 and attrs["flops"] > 0 and attrs["latency_ms"] > 0
        assert attrs["epochs_trained"] == 2 and attrs["train_time_s"] > 0
        curve = attrs["val_acc_curve"]
        assert len(curve) == 2 and all(0.0 <= v <= 1.0 for v in curve)
        # The final epoch's accuracy is returned and reported each epoch for pruning.
        assert trial.value == pytest.approx(curve[-1])
        assert trial.intermediate_values == pytest.approx({0: curve[0], 1: curve[1]})
        assert attrs["best_val_acc"] == max(curve)
        assert "fail_reason" not in attrs


def test_median_pruner_stops_a_disconnected_cell() -> None:
    # Batches of 16: 20 steps per epoch, enough for BatchNorm statistics to settle in epoch 0.
    digits = EmbeddedDataModule(dataset="digits", subset=400, batch_size=16, seed=0)
    objective = _objective(digits, max_epochs=3)
    study = optuna.create_study(
        direction="maximize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0),
    )
    objective.enqueue(study, STRONG)
    objective.enqueue(study, ALL_NONE)
    study.optimize(objective, n_trials=2)
    strong, weak = study.trials
    assert strong.state == TrialState.COMPLETE
    # Precondition: the strong cell learns within one epoch (chance is 0.1).
    assert strong.intermediate_values[0] > 0.2
    assert weak.state == TrialState.PRUNED
    # The all-`none` cell outputs nothing but the classifier bias: exactly chance (8 of 80).
    assert weak.intermediate_values == {0: pytest.approx(0.1)}
    assert weak.user_attrs["epochs_trained"] == 1
    assert weak.user_attrs["arch"] == ALL_NONE
    # The dashboard shows why: the pruner and the last reported step.
    assert "MedianPruner" in weak.user_attrs["pruned_reason"]


@pytest.mark.parametrize(
    ("kind", "state", "reason"),
    [
        ("nan", TrialState.PRUNED, "Non-finite training loss"),
        ("oom", TrialState.FAIL, "Out of memory"),
        ("build_error", TrialState.FAIL, "Architecture build error: cannot build"),
    ],
)
def test_failures_end_the_trial_not_the_study(
    digits: EmbeddedDataModule, fake_space: Any, kind: str, state: TrialState, reason: str
) -> None:
    objective = NASObjective(fake_space, digits, max_epochs=1, trainer_kwargs=CPU)
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"fake/kind": kind})
    study.enqueue_trial({"fake/kind": "ok"})
    study.optimize(objective, n_trials=2)
    failed, ok = study.trials
    assert failed.state == state
    # A pruned trial says why in pruned_reason, a failed one in fail_reason (never both).
    attr, other = ("pruned_reason", "fail_reason")[:: 1 if state == TrialState.PRUNED else -1]
    assert reason in failed.user_attrs[attr]
    assert other not in failed.user_attrs
    assert ok.state == TrialState.COMPLETE and 0.0 <= ok.value <= 1.0
    assert "fail_reason" not in ok.user_attrs


def test_invalid_enqueued_architecture_fails_with_reason(
    digits: EmbeddedDataModule, fake_space: Any
) -> None:
    objective = NASObjective(fake_space, digits, max_epochs=1, trainer_kwargs=CPU)
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"fake/kind": "bogus"})
    study.enqueue_trial({"fake/kind": "ok"})
    study.optimize(objective, n_trials=2)
    bad, ok = study.trials
    assert bad.state == TrialState.FAIL
    assert bad.user_attrs["fail_reason"].startswith("Invalid architecture")
    assert "bogus" in bad.user_attrs["fail_reason"]
    assert ok.state == TrialState.COMPLETE


def test_enqueue_rejects_an_invalid_string(digits: EmbeddedDataModule) -> None:
    objective = _objective(digits)
    with pytest.raises(ValueError, match="bogus_op"):
        objective.enqueue(optuna.create_study(), ALL_NONE.replace("none~0|+", "bogus_op~0|+", 1))


def test_other_errors_propagate_unless_caught(digits: EmbeddedDataModule, fake_space: Any) -> None:
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"fake/kind": "crash"})
    objective = NASObjective(fake_space, digits, max_epochs=1, trainer_kwargs=CPU)
    with pytest.raises(RuntimeError, match="a bug in the user's network"):
        study.optimize(objective, n_trials=1)

    catching = NASObjective(
        fake_space, digits, max_epochs=1, trainer_kwargs=CPU, catch=(RuntimeError,)
    )
    study.enqueue_trial({"fake/kind": "crash"})
    study.optimize(catching, n_trials=1)
    assert study.trials[-1].state == TrialState.FAIL
    assert "a bug" in study.trials[-1].user_attrs["fail_reason"]


def test_user_hyperparameters_in_the_same_trial(digits: EmbeddedDataModule) -> None:
    seen: list[dict[str, Any]] = []

    class Capturing(NASObjective):
        def create_module(self, network: nn.Module, hyperparameters: Mapping[str, Any]) -> Any:
            seen.append(dict(hyperparameters))
            return super().create_module(network, hyperparameters)

    def suggest(trial: optuna.Trial) -> dict[str, Any]:
        return {"lr": trial.suggest_float("lr", 0.01, 0.1, log=True)}

    objective = Capturing(
        create_search_space("nasbench201"),
        digits,
        max_epochs=1,
        build_kwargs=TINY_BUILD,
        trainer_kwargs=CPU,
        module_kwargs={"weight_decay": 1e-4, "lr": 123.0},
        suggest_hyperparameters=suggest,
        measure_latency=False,
    )
    study = optuna.create_study(direction="maximize")
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.COMPLETE
    assert {"lr", "nb201/edge_1_0"} <= set(trial.params) and len(trial.params) == 7
    # The suggested value overrides the fixed one; other fixed kwargs stay.
    assert seen == [{"lr": trial.params["lr"], "weight_decay": 1e-4}]
    assert "latency_ms" not in trial.user_attrs


def test_subclass_overrides_suggest_hyperparameters(digits: EmbeddedDataModule) -> None:
    class Tuned(NASObjective):
        def suggest_hyperparameters(self, trial: optuna.Trial) -> dict[str, Any]:
            return {"optimizer": trial.suggest_categorical("optimizer", ["sgd", "adamw"])}

    objective = Tuned(
        create_search_space("nasbench201"),
        digits,
        max_epochs=1,
        build_kwargs=TINY_BUILD,
        trainer_kwargs=CPU,
    )
    study = optuna.create_study(direction="maximize")
    study.optimize(objective, n_trials=1)
    assert study.trials[0].params["optimizer"] in ("sgd", "adamw")
    assert study.trials[0].state == TrialState.COMPLETE


def test_multi_objective_accuracy_and_size(digits: EmbeddedDataModule) -> None:
    objective = _objective(digits, max_epochs=1, metric=("val_acc", "n_params"))
    assert objective.directions == ["maximize", "minimize"]
    study = optuna.create_study(directions=objective.directions)
    study.optimize(objective, n_trials=2)
    for trial in study.trials:
        assert trial.state == TrialState.COMPLETE
        attrs = trial.user_attrs
        assert trial.values == [attrs["val_acc_curve"][-1], attrs["n_params"]]
        assert trial.intermediate_values == {}  # Optuna cannot prune multi-objective trials


def test_direction_mismatch_is_a_clear_error(digits: EmbeddedDataModule) -> None:
    objective = _objective(digits)
    study = optuna.create_study(direction="minimize")
    with pytest.raises(ValueError, match="directions"):
        study.optimize(objective, n_trials=1)


def test_direction_count_mismatch_is_a_clear_error(digits: EmbeddedDataModule) -> None:
    objective = _objective(digits)
    study = optuna.create_study(directions=["maximize", "minimize"])
    with pytest.raises(ValueError, match=r"2 direction\(s\).*1 value"):
        study.optimize(objective, n_trials=1)


def test_directions_are_explicit_for_a_metric_the_name_does_not_tell(
    digits: EmbeddedDataModule,
) -> None:
    # Formerly every metric but val_acc/train_acc/test_acc was minimized silently.
    objective = _objective(digits, max_epochs=1, metric="val_f1", prune=False)
    with pytest.raises(ValueError, match="'val_f1'.*directions="):
        _ = objective.directions
    both = ["maximize", "minimize"]
    assert _objective(digits, metric=("val_f1", "n_params"), directions=both).directions == both
    assert _objective(digits, metric=("val_loss", "latency_ms")).directions == ["minimize"] * 2
    # Without directions=, the study decides; ChildModule logs no val_f1, so the trial FAILs.
    study = optuna.create_study(direction="maximize")
    study.optimize(objective, n_trials=1)
    assert "'val_f1' was not logged" in study.trials[0].user_attrs["fail_reason"]


def test_known_direction_from_the_metric_name() -> None:
    from optuna_nas.training import known_direction

    assert [known_direction(m) for m in ("val_acc", "test_accuracy", "val_loss")] == [
        "maximize",
        "maximize",
        "minimize",
    ]
    assert {known_direction(m) for m in ("n_params", "flops", "latency_ms")} == {"minimize"}
    assert known_direction("val_f1") is None


def test_directions_that_contradict_a_known_metric_are_rejected(
    digits: EmbeddedDataModule,
) -> None:
    with pytest.raises(ValueError, match="'minimize' for metric 'val_acc'"):
        _objective(digits, directions=["minimize"])
    with pytest.raises(ValueError, match="one 'maximize' or 'minimize' per metric"):
        _objective(digits, directions=["maximize", "maximize"])
    with pytest.raises(ValueError, match="'val_loss' is to minimize"):
        optuna.create_study(direction="maximize").optimize(
            _objective(digits, metric="val_loss"), n_trials=1
        )


def test_a_resumed_study_with_other_operations_raises(digits: EmbeddedDataModule) -> None:
    # Formerly every trial FAILed with "Invalid architecture: CategoricalDistribution does not
    # support dynamic value space" and optimize returned normally.
    study = optuna.create_study(direction="maximize")
    earlier = create_search_space("nasbench201")
    study.optimize(lambda t: float(len(earlier.suggest(t).ops)), n_trials=1)
    space = create_search_space("nasbench201", operations=["none", "skip_connect", "nor_conv_3x3"])
    objective = NASObjective(
        space, digits, max_epochs=1, build_kwargs=TINY_BUILD, trainer_kwargs=CPU
    )
    with pytest.raises(ParameterConflictError) as info:
        study.optimize(objective, n_trials=2)
    message = str(info.value)
    assert "'nb201/edge_1_0'" in message
    assert repr(earlier.operations) in message and repr(space.operations) in message
    assert len(study.trials) == 2 and "fail_reason" not in study.trials[1].user_attrs


def test_a_user_parameter_clashing_with_the_study_raises(digits: EmbeddedDataModule) -> None:
    study = optuna.create_study(direction="maximize")
    study.optimize(lambda t: t.suggest_float("lr", 0.01, 0.1, log=True), n_trials=1)
    objective = _objective(
        digits,
        max_epochs=1,
        suggest_hyperparameters=lambda t: {"lr": t.suggest_categorical("lr", [0.05, 0.1])},
    )
    with pytest.raises(ParameterConflictError, match="'lr'") as info:
        study.optimize(objective, n_trials=1)
    assert info.value.previous == optuna.distributions.FloatDistribution(0.01, 0.1, log=True)
    assert info.value.new == optuna.distributions.CategoricalDistribution([0.05, 0.1])


def test_fixed_trial_retrains_a_given_architecture(digits: EmbeddedDataModule) -> None:
    objective = _objective(digits, max_epochs=1)
    params = objective.space.to_params(objective.space.from_string(STRONG))
    value = objective(optuna.trial.FixedTrial(params))
    assert isinstance(value, float) and 0.0 <= value <= 1.0


def test_csv_logger_writes_one_folder_per_trial(
    digits: EmbeddedDataModule, tmp_path: os.PathLike[str]
) -> None:
    objective = _objective(digits, max_epochs=1, csv_log_dir=str(tmp_path))
    study = optuna.create_study(direction="maximize", study_name="csv")
    study.optimize(objective, n_trials=1)
    assert os.path.exists(os.path.join(tmp_path, "csv", "trial_0", "metrics.csv"))


def test_same_seed_same_result(digits: EmbeddedDataModule) -> None:
    values = []
    for _ in range(2):
        objective = _objective(digits, max_epochs=1, measure_latency=False)
        study = optuna.create_study(direction="maximize")
        objective.enqueue(study, STRONG)
        study.optimize(objective, n_trials=1)
        values.append(study.trials[0].value)
    assert values[0] == values[1] and not math.isnan(values[0])


def test_rejects_bad_configuration(digits: EmbeddedDataModule) -> None:
    space = create_search_space("nasbench201")
    with pytest.raises(ValueError, match="chanels"):
        NASObjective(space, digits, max_epochs=1, build_kwargs={"chanels": 4})
    with pytest.raises(ValueError, match="max_epochs"):
        NASObjective(space, digits, max_epochs=1, trainer_kwargs={"max_epochs": 3})
    with pytest.raises(ValueError, match="max_epochs"):
        NASObjective(space, digits, max_epochs=0)
    with pytest.raises(ValueError, match="num_classes"):
        NASObjective(space, object(), max_epochs=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cost attributes"):
        NASObjective(space, digits, max_epochs=1, metric="n_params")
    with pytest.raises(ValueError, match="catch"):
        NASObjective(space, digits, max_epochs=1, catch=(KeyboardInterrupt,))  # type: ignore[arg-type]


def test_ctrl_c_inside_lightning_becomes_keyboard_interrupt() -> None:
    import signal

    from optuna_nas.training._fit_context import restore_sigint

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with restore_sigint():
            # What Trainer.fit does on Ctrl+C: ignore further SIGINTs and exit.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            raise SystemExit(1)
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.slow
def test_compile_trains_the_compiled_network(digits: EmbeddedDataModule) -> None:
    import shutil

    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("torch.compile on the CPU needs a C compiler")
    objective = _objective(digits, max_epochs=1, compile=True, measure_latency=False)
    study = optuna.create_study(direction="maximize")
    objective.enqueue(study, STRONG)
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.COMPLETE, trial.user_attrs.get("fail_reason")
    assert 0.0 <= trial.value <= 1.0
