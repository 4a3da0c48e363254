"""Per-epoch checkpoints of ``NASObjective``: a trial whose worker dies resumes exactly."""

from __future__ import annotations

import os
from pathlib import Path
import signal
import subprocess
import sys
import time
from typing import Any

import lightning.pytorch as pl
import optuna
from optuna.trial import TrialState
import pytest
import torch

from optuna_nas.storages import create_storage
from optuna_nas.storages import retried_trial_number
from optuna_nas.trial_outcome import INTERRUPTED_REASON


ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 4
KILLED_AFTER = 2  # epochs the killed worker finished (and checkpointed)

# The objective of every test here, run both in this process and in a worker process that is
# killed: the same code builds the same trial.
_OBJECTIVE = '''
import os
import signal

import lightning.pytorch as pl

from optuna_nas.search_spaces import create_search_space
from optuna_nas.training import EmbeddedDataModule
from optuna_nas.training import NASObjective

STRONG = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)


class Capturing(NASObjective):
    """Keeps the trained module, to compare the final weights."""

    modules = []

    def create_module(self, network, hyperparameters):
        module = super().create_module(network, hyperparameters)
        self.modules.append(module)
        return module


class KillAfterEpoch(pl.Callback):
    """SIGKILL this process at the end of an epoch, after its checkpoint was written."""

    def __init__(self, epochs):
        self.epochs = epochs

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch + 1 == self.epochs:
            os.kill(os.getpid(), signal.SIGKILL)


def make_objective(checkpoint_dir, epochs, callbacks=(), space=None):
    return Capturing(
        space or create_search_space("nasbench201"),
        EmbeddedDataModule(dataset="digits", subset=400, batch_size=32, seed=0),
        max_epochs=epochs,
        build_kwargs={"channels": 4, "cells_per_stage": 1},
        trainer_kwargs={"accelerator": "cpu", "callbacks": list(callbacks)},
        module_kwargs={"lr": 0.05},
        measure_latency=False,
        checkpoint_dir=checkpoint_dir,
    )
'''

_KILLED_WORKER = (
    _OBJECTIVE
    + """
import sys

import optuna
import torch

from optuna_nas.storages import create_storage

torch.set_num_threads(1)
storage, checkpoint_dir, epochs, killed_after = sys.argv[1:]
study = optuna.load_study(
    study_name="resume",
    storage=create_storage(storage, heartbeat_interval=1, grace_period=2),
)
objective = make_objective(checkpoint_dir, int(epochs), [KillAfterEpoch(int(killed_after))])
study.optimize(objective, n_trials=1)
raise SystemExit("not killed")
"""
)


def _namespace() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(_OBJECTIVE, namespace)  # noqa: S102  (the module's own source, shared with the worker)
    return namespace


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _weights(module: pl.LightningModule) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_a_killed_trial_resumes_from_its_checkpoint_as_if_uninterrupted(tmp_path: Path) -> None:
    ns = _namespace()
    torch.set_num_threads(1)  # as in the worker: the same float arithmetic

    # The uninterrupted trial.
    reference_objective = ns["make_objective"](None, EPOCHS)
    reference = optuna.create_study(direction="maximize")
    reference_objective.enqueue(reference, ns["STRONG"])
    reference.optimize(reference_objective, n_trials=1)
    (expected,) = reference.trials
    assert expected.state == TrialState.COMPLETE
    expected_weights = _weights(reference_objective.modules[-1])

    # The same trial in a worker killed (SIGKILL) after two epochs, on a heartbeat storage.
    url = f"sqlite:///{tmp_path / 'resume.db'}"
    checkpoints = tmp_path / "checkpoints"
    study = optuna.create_study(
        study_name="resume",
        storage=create_storage(url, heartbeat_interval=1, grace_period=2),
        direction="maximize",
    )
    reference_objective.enqueue(study, ns["STRONG"])
    worker = subprocess.run(
        [sys.executable, "-c", _KILLED_WORKER, url, str(checkpoints), str(EPOCHS)]
        + [str(KILLED_AFTER)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert worker.returncode == -signal.SIGKILL, worker.stderr
    (killed,) = study.trials
    assert killed.state == TrialState.RUNNING
    assert sorted(killed.intermediate_values) == list(range(KILLED_AFTER))
    checkpoint = checkpoints / "resume" / "trial_0" / "last.ckpt"
    assert checkpoint.is_file()  # kept: the process died

    # After the grace period, the next worker fails it as stale and re-runs it, resuming. SQLite
    # keeps heartbeats in whole seconds and Optuna needs more than 2 of them: wait over 3.
    time.sleep(3.2)
    objective = ns["make_objective"](str(checkpoints), EPOCHS)
    study.optimize(objective, n_trials=1)
    stale, rerun = study.trials
    assert stale.state == TrialState.FAIL
    assert stale.user_attrs["fail_reason"].startswith("stale:")
    assert rerun.state == TrialState.COMPLETE
    assert retried_trial_number(rerun) == 0
    assert rerun.params == expected.params
    assert rerun.user_attrs["resumed_at_epoch"] == KILLED_AFTER
    # The whole curve, each epoch once; only the new epochs were trained here.
    assert rerun.user_attrs["epochs_trained"] == EPOCHS
    assert rerun.user_attrs["val_acc_curve"] == pytest.approx(expected.user_attrs["val_acc_curve"])
    assert sorted(rerun.intermediate_values) == list(range(EPOCHS))
    assert rerun.intermediate_values == pytest.approx(expected.intermediate_values)
    assert rerun.value == pytest.approx(expected.value)
    weights = _weights(objective.modules[-1])
    assert weights.keys() == expected_weights.keys()
    for name, value in expected_weights.items():
        torch.testing.assert_close(weights[name], value, rtol=1e-4, atol=1e-5, msg=name)
    # The trial finished: its checkpoint is gone.
    assert not checkpoint.parent.exists()


def test_checkpoints_are_removed_when_the_trial_ends(tmp_path: Path, fake_space: Any) -> None:
    ns = _namespace()
    seen: list[bool] = []

    class Probe(pl.Callback):
        def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            seen.append((tmp_path / "study" / "trial_0" / "last.ckpt").is_file())

    objective = ns["make_objective"](str(tmp_path), 2, [Probe()], space=fake_space)
    study = optuna.create_study(direction="maximize", study_name="study")
    for kind in ("ok", "nan", "build_error"):  # COMPLETE, PRUNED, FAIL
        study.enqueue_trial({"fake/kind": kind})
    study.optimize(objective, n_trials=3)
    assert [t.state for t in study.trials] == [
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.FAIL,
    ]
    # Written at the end of each epoch (the probe runs after the checkpoint), then removed.
    assert seen == [True, True]
    assert os.listdir(tmp_path / "study") == []
    assert all("resumed_at_epoch" not in t.user_attrs for t in study.trials)


def test_ctrl_c_fails_the_trial_as_interrupted_twice(tmp_path: Path) -> None:
    """SIGINT during training: the trial FAILs with fail_reason "interrupted", its checkpoint
    is removed, the KeyboardInterrupt ends optimize, and a second Ctrl+C works the same."""
    ns = _namespace()

    class CtrlC(pl.Callback):
        def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
            if trainer.current_epoch == 1 and trainer.global_step % 10 == 3:
                os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    objective = ns["make_objective"](str(tmp_path), 3, [CtrlC()])
    study = optuna.create_study(direction="maximize", study_name="study")
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            study.optimize(objective, n_trials=5)
        assert signal.getsignal(signal.SIGINT) is before
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 2
    for trial in study.trials:
        assert trial.user_attrs["fail_reason"] == INTERRUPTED_REASON
        assert trial.user_attrs["epochs_trained"] == 1
    assert os.listdir(tmp_path / "study") == []
