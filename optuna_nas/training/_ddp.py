"""Data-parallel training of one trial (``ddp_spawn``/``ddp_fork``): what the study's process
must do so that the trial looks the same as without DDP.

The workers train; this process keeps the study, the sampler and the user attributes. Lightning
sends only ``trainer.callback_metrics`` back from rank 0, so the learning curve travels in it;
pruning decisions travel through the RDB storage (optuna-integration's callback). How a worker's
exception ends the trial is the policy of :mod:`optuna_nas.trial_outcome`, which reads the
worker's traceback text.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
import contextlib
import os
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.strategies.launchers import _MultiProcessingLauncher
from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher
import optuna
from optuna_integration import PyTorchLightningPruningCallback
import torch
from torch.multiprocessing import ProcessExitedException

from optuna_nas.training._callbacks import LearningCurveCallback


#: Prefix of the entries that carry the learning curve from DDP worker processes back.
_WORKER_CURVE_KEY = "optuna_nas/curve/"
_WORKER_EPOCHS_KEY = "optuna_nas/epochs_trained"


def check_launcher(trainer: pl.Trainer) -> None:
    """Reject Lightning's plain ``"ddp"`` with several processes (a configuration error).

    Raises:
        ValueError: The strategy would re-run the whole script in every process.
    """
    # The launcher classes are underscored but in Lightning's launchers.__all__; they are the
    # only way Lightning 2.x tells ddp_spawn/ddp_fork from the script re-run.
    if isinstance(trainer.strategy.launcher, _SubprocessScriptLauncher) and (
        trainer.world_size > 1
    ):
        # Lightning's "ddp" starts the other ranks by re-running the whole script: each copy
        # would run its own study (its own trials, maybe other architectures) and the ranks
        # would train different networks or hang.
        raise ValueError(
            f"strategy={type(trainer.strategy).__name__} with {trainer.world_size} processes "
            "re-runs the script in every process, so each would run its own study. Pass "
            "trainer_kwargs={'strategy': 'ddp_spawn'} (or 'ddp_fork' on Linux without CUDA in "
            "this process): Lightning then starts the workers for each trial and the study "
            "runs in this process only."
        )


@contextlib.contextmanager
def pruned_if_decided(
    trial: optuna.Trial, pruning: PyTorchLightningPruningCallback | None
) -> Iterator[None]:
    """Around ``Trainer.fit``: a worker killed by a signal still prunes if rank 0 had decided.

    A worker killed without a Python exception (the OOM killer, or a C++ abort while tearing
    down after rank 0 had decided to prune) raises ``ProcessExitedException`` here: a pruning
    decision stored by rank 0 raises ``TrialPruned``; otherwise the exception propagates (and
    FAILs the trial).
    """
    try:
        yield
    except ProcessExitedException:
        if pruning is not None and isinstance(trial, optuna.Trial):
            pruning.check_pruned()
        raise


def finish_fit(
    trainer: pl.Trainer,
    trial: optuna.Trial,
    curve: LearningCurveCallback,
    pruning: PyTorchLightningPruningCallback | None,
) -> None:
    """After ``Trainer.fit``: take rank 0's curve and pruning decision (under DDP only)."""
    if isinstance(trainer.strategy.launcher, _MultiProcessingLauncher):
        # ddp_spawn/ddp_fork trained in worker processes: take rank 0's curve.
        DDPWorkerCallback.restore_curve(curve, trainer.callback_metrics)
    if pruning is not None and isinstance(trial, optuna.Trial):
        # Only does something under DDP: rank 0 stored its reports and its pruning decision
        # in the storage; this reports them here and raises TrialPruned.
        pruning.check_pruned()


class DDPWorkerCallback(pl.Callback):
    """Make a trial's training in ``ddp_spawn``/``ddp_fork`` worker processes visible here.

    Lightning sends only ``trainer.callback_metrics`` (and the weights) from worker rank 0 back
    to the process that called ``fit``; the learning curve recorded in the workers' copies of
    :class:`LearningCurveCallback` is lost otherwise. In a single process it does nothing.
    """

    def __init__(self, trial: optuna.Trial, curve: LearningCurveCallback) -> None:
        super().__init__()
        self._trial = trial
        self._curve = curve
        self._parent_pid = os.getpid()

    def __getstate__(self) -> dict[str, Any]:
        # ddp_spawn pickles the callbacks: leave the trial (and its storage) behind, a spawned
        # worker needs only the curve and the pid.
        return {**self.__dict__, "_trial": None}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if os.getpid() == self._parent_pid:
            return
        # A forked worker must not share the parent's database connections (SQLAlchemy's
        # advice for fork): drop the inherited pool without closing the parent's connections.
        storage = getattr(getattr(self._trial, "study", None), "_storage", None)
        engine = getattr(getattr(storage, "_backend", storage), "engine", None)
        if engine is not None:
            engine.dispose(close=False)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if os.getpid() == self._parent_pid:
            return
        metrics = trainer.callback_metrics
        for name, values in self._curve.curves.items():
            metrics[_WORKER_CURVE_KEY + name] = torch.tensor(values, dtype=torch.float64)
        metrics[_WORKER_EPOCHS_KEY] = torch.tensor(self._curve.epochs_trained)

    @staticmethod
    def restore_curve(curve: LearningCurveCallback, metrics: Mapping[str, Any]) -> None:
        """Fill ``curve`` (of this process) from what rank 0 sent back."""
        if _WORKER_EPOCHS_KEY not in metrics:
            return
        for name in curve.curves:
            values = metrics.get(_WORKER_CURVE_KEY + name)
            if values is not None:
                curve.curves[name] = [float(v) for v in values.tolist()]
        curve.epochs_completed = int(metrics[_WORKER_EPOCHS_KEY])
