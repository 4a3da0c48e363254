"""NASObjective under DDP: 2 CPU processes (gloo), pruning through an SQLite storage.

Lightning starts the worker processes for each trial (``ddp_fork``: cheap, used by most tests;
``ddp_spawn``: pickles everything, one slow test); the study itself runs in the test process.
"""

from __future__ import annotations

from collections.abc import Iterator
import math
import os
from pathlib import Path
import tempfile
from typing import Any

import lightning.pytorch as pl
import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest
import torch
import torch.multiprocessing as mp

from optuna_nas.pruners import DECISION_ATTR_KEY
from optuna_nas.pruners import LearningCurvePruner
from optuna_nas.search_spaces import create_search_space
from optuna_nas.training import EmbeddedDataModule
from optuna_nas.training import NASObjective


MAX_EPOCHS = 3
STRONG = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)
# No path from input to output: the network predicts one class for every image. The validation
# split is stratified (8 of 80 images per class), so its accuracy is exactly chance, 0.1.
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
CHANCE = 0.1
#: Accuracy moves in steps of 1/80: above this, a cell classified at least one more image.
ABOVE_CHANCE = CHANCE + 0.5 / 80


def _ddp(strategy: str, root: Path) -> dict[str, Any]:
    # default_root_dir: Lightning's spawn launcher writes temporary weights under it.
    return {"accelerator": "cpu", "devices": 2, "strategy": strategy, "default_root_dir": root}


@pytest.fixture(autouse=True)
def _isolated_ddp_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Lightning's launcher sets MASTER_PORT (and friends) in this process: keep other tests clean.
    saved = dict(os.environ)
    # Its rank-0 worker also leaves an empty temporary folder per trial: keep them in tmp_path
    # (forked workers inherit tempfile's cached folder, spawned ones read TMPDIR).
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def forkable() -> None:
    if "fork" not in mp.get_all_start_methods():
        pytest.skip("ddp_fork needs the 'fork' start method")
    # Forked workers cannot use CUDA once this process has initialized it (another test may).
    if torch.cuda.is_initialized():
        pytest.skip("CUDA is initialized in this process; ddp_fork cannot start workers")


needs_fork = pytest.mark.usefixtures("forkable")


@pytest.fixture
def digits() -> EmbeddedDataModule:
    """320 training images (160 per rank, 10 steps per epoch) and 80 validation images."""
    return EmbeddedDataModule(dataset="digits", subset=400, batch_size=16, seed=0)


def _objective(dm: EmbeddedDataModule, strategy: str, root: Path, **kwargs: Any) -> NASObjective:
    options: dict[str, Any] = {
        "max_epochs": MAX_EPOCHS,
        "build_kwargs": {"channels": 4, "cells_per_stage": 1},
        "trainer_kwargs": _ddp(strategy, root),
        "module_kwargs": {"lr": 0.05},
        "latency_repeats": 2,
    }
    options.update(kwargs)
    return NASObjective(create_search_space("nasbench201"), dm, **options)


def _study(root: Path, pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    # The pruning callback needs an RDB storage under DDP: rank 0 reports through it.
    return optuna.create_study(
        storage=f"sqlite:///{root / 'study.db'}", direction="maximize", pruner=pruner
    )


def _assert_curve_matches_reports(trial: FrozenTrial) -> None:
    """One report per trained epoch, equal to the recorded curve (rank 0's values only)."""
    epochs = trial.user_attrs["epochs_trained"]
    curve = trial.user_attrs["val_acc_curve"]
    assert len(curve) == epochs
    assert sorted(trial.intermediate_values) == list(range(epochs))
    reported = [trial.intermediate_values[e] for e in range(epochs)]
    assert curve == pytest.approx(reported, rel=1e-6)
    assert all(0.0 <= v <= 1.0 for v in curve)


class _RankMarker(pl.Callback):
    """Writes one file per rank: where (which process) and how (world size, backend) it ran."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        backend = torch.distributed.get_backend() if torch.distributed.is_initialized() else "-"
        text = f"{trainer.world_size} {backend} {os.getpid()}"
        (self.folder / f"rank{trainer.global_rank}").write_text(text)


@needs_fork
def test_trial_trains_on_two_ranks_and_reports_each_epoch_once(
    digits: EmbeddedDataModule, tmp_path: Path
) -> None:
    markers = tmp_path / "ranks"
    markers.mkdir()
    trainer_kwargs = {**_ddp("ddp_fork", tmp_path), "callbacks": [_RankMarker(markers)]}
    objective = _objective(digits, "ddp_fork", tmp_path, trainer_kwargs=trainer_kwargs)
    study = _study(tmp_path, optuna.pruners.MedianPruner(n_startup_trials=1))
    objective.enqueue(study, STRONG)
    study.optimize(objective, n_trials=1)

    # Two worker processes (not this one) joined one gloo process group.
    runs = sorted(p.read_text().split() for p in markers.iterdir())
    assert [p.name for p in sorted(markers.iterdir())] == ["rank0", "rank1"]
    assert [r[:2] for r in runs] == [["2", "gloo"]] * 2
    pids = {int(r[2]) for r in runs}
    assert len(pids) == 2 and os.getpid() not in pids

    # The study ran in this process only: rank 1 created no trial of its own.
    (trial,) = study.trials
    assert trial.state == TrialState.COMPLETE and trial.value is not None
    assert math.isfinite(trial.value) and 0.0 <= trial.value <= 1.0
    assert trial.user_attrs["epochs_trained"] == MAX_EPOCHS
    _assert_curve_matches_reports(trial)
    # The final epoch's accuracy is returned (rank 0's curve came back to this process).
    assert trial.value == pytest.approx(trial.user_attrs["val_acc_curve"][-1])
    assert trial.user_attrs["best_val_acc"] == max(trial.user_attrs["val_acc_curve"])
    assert trial.user_attrs["n_params"] > 0 and "fail_reason" not in trial.user_attrs


def _check_pruned_study(study: optuna.Study, pruned_at: int) -> FrozenTrial:
    strong, weak, after = study.trials
    assert strong.state == TrialState.COMPLETE
    _assert_curve_matches_reports(strong)
    # Precondition: by step `pruned_at` the strong cell beats chance, so the pruner must act.
    assert max(strong.intermediate_values[s] for s in range(pruned_at + 1)) > ABOVE_CHANCE

    assert weak.state == TrialState.PRUNED
    assert weak.user_attrs["arch"] == ALL_NONE
    assert "pruned_reason" in weak.user_attrs
    # It stopped at the first step where the pruner could act: fewer epochs than max_epochs,
    # each reported once.
    assert weak.user_attrs["epochs_trained"] == pruned_at + 1 < MAX_EPOCHS
    _assert_curve_matches_reports(weak)
    assert list(weak.intermediate_values.values()) == pytest.approx([CHANCE] * (pruned_at + 1))

    # The study goes on: the next trial trains (finishing or pruned on its own merit).
    assert after.state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert after.user_attrs["epochs_trained"] >= 1
    _assert_curve_matches_reports(after)
    return weak


def _run_pruned_study(objective: NASObjective, study: optuna.Study, n_trials: int = 3) -> None:
    for arch in (STRONG, ALL_NONE, STRONG)[:n_trials]:
        objective.enqueue(study, arch)
    study.optimize(objective, n_trials=n_trials)
    assert len(study.trials) == n_trials


@needs_fork
def test_median_pruner_prunes_a_disconnected_cell(
    digits: EmbeddedDataModule, tmp_path: Path
) -> None:
    # Step 0 is not judged: 10 steps of epoch 0 may leave even the strong cell at chance.
    pruner = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=1)
    study = _study(tmp_path, pruner)
    _run_pruned_study(_objective(digits, "ddp_fork", tmp_path), study)
    # Precondition: at step 1 the strong cell (the median of one) beats chance.
    assert study.trials[0].intermediate_values[1] > ABOVE_CHANCE
    weak = _check_pruned_study(study, pruned_at=1)
    assert weak.user_attrs["pruned_reason"].startswith("pruned by MedianPruner at epoch 1")


@needs_fork
def test_learning_curve_pruner_prunes_a_disconnected_cell(
    digits: EmbeddedDataModule, tmp_path: Path
) -> None:
    # With top_k=1 the bar is the strong trial's final value; the margin at step t is what the
    # strong trial still gained after t. The chance-level cell's optimistic prediction is then
    # 0.1 + (final - best_by_t(strong)) < final exactly when the strong cell beat chance by t:
    # at step 0 it may not have yet, at step 1 it has (asserted); step 2 is the last one.
    # predictability_weight=0: with one reference the margin would be doubled (no rank
    # correlation to measure yet), which this exact bound leaves out.
    pruner = LearningCurvePruner(
        max_resource=MAX_EPOCHS, top_k=1, n_warmup_trials=1, predictability_weight=0.0
    )
    study = _study(tmp_path, pruner)
    _run_pruned_study(_objective(digits, "ddp_fork", tmp_path), study)
    strong = study.trials[0]
    pruned_at = 0 if strong.intermediate_values[0] > ABOVE_CHANCE else 1
    weak = _check_pruned_study(study, pruned_at=pruned_at)
    # The pruner ran in rank 0's worker process and stored its decision in the storage.
    decision = weak.system_attrs[DECISION_ATTR_KEY]
    assert decision["epoch"] == pruned_at and decision["reason"] == "cannot reach top-k"
    assert decision["optimistic"] < decision["bar"]
    assert weak.user_attrs["pruned_reason"].startswith(f"LearningCurvePruner at epoch {pruned_at}")


@needs_fork
def test_worker_failures_end_the_trial_not_the_study(
    digits: EmbeddedDataModule, fake_space: Any, tmp_path: Path
) -> None:
    # Exceptions raised in a worker reach this process as the worker's traceback text only.
    objective = NASObjective(
        fake_space,
        digits,
        max_epochs=1,
        trainer_kwargs=_ddp("ddp_fork", tmp_path),
        catch=(RuntimeError,),
    )
    study = _study(tmp_path)
    for kind in ("nan", "oom", "crash", "worker_killed", "ok"):
        study.enqueue_trial({"fake/kind": kind})
    study.optimize(objective, n_trials=5)
    nan, oom, crash, killed, ok = study.trials
    assert nan.state == TrialState.PRUNED
    assert nan.user_attrs["pruned_reason"].startswith("Non-finite training loss")
    assert "fail_reason" not in nan.user_attrs
    assert oom.state == TrialState.FAIL
    assert oom.user_attrs["fail_reason"].startswith("Out of memory (OutOfMemoryError)")
    assert crash.state == TrialState.FAIL
    assert crash.user_attrs["fail_reason"] == "RuntimeError: a bug in the user's network"
    assert killed.state == TrialState.FAIL
    assert killed.user_attrs["fail_reason"].startswith("A DDP worker process died")
    assert "SIGKILL" in killed.user_attrs["fail_reason"]
    assert ok.state == TrialState.COMPLETE and ok.value is not None and 0.0 <= ok.value <= 1.0


def test_script_relaunching_ddp_is_rejected(
    digits: EmbeddedDataModule, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lightning's "ddp" would start rank 1 by re-running this pytest command: forbid that here,
    # so that a missing check fails this test instead of relaunching the test session.
    from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher

    def no_relaunch(self: Any) -> None:
        raise AssertionError("NASObjective let Lightning re-run the script")

    monkeypatch.setattr(_SubprocessScriptLauncher, "_call_children_scripts", no_relaunch)
    objective = _objective(digits, "ddp", tmp_path)
    study = _study(tmp_path)
    with pytest.raises(ValueError, match="ddp_spawn"):
        study.optimize(objective, n_trials=1)
    assert study.trials[0].state == TrialState.FAIL


@pytest.mark.slow
def test_ddp_spawn_prunes_with_median_pruner(digits: EmbeddedDataModule, tmp_path: Path) -> None:
    # "spawn" pickles the trainer (model, datamodule, callbacks with the trial and its study)
    # into fresh processes; each process start costs a few seconds, so only two trials.
    pruner = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=1)
    study = _study(tmp_path, pruner)
    _run_pruned_study(_objective(digits, "ddp_spawn", tmp_path), study, n_trials=2)
    strong, weak = study.trials
    assert strong.state == TrialState.COMPLETE
    assert strong.user_attrs["epochs_trained"] == MAX_EPOCHS
    _assert_curve_matches_reports(strong)
    assert strong.value == pytest.approx(strong.user_attrs["val_acc_curve"][-1])
    assert strong.intermediate_values[1] > ABOVE_CHANCE  # precondition
    assert weak.state == TrialState.PRUNED
    assert weak.user_attrs["epochs_trained"] == 2
    _assert_curve_matches_reports(weak)
    assert weak.user_attrs["pruned_reason"].startswith("pruned by MedianPruner at epoch 1")
