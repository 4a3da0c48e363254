"""Lightning callbacks used by :class:`~optuna_nas.training.NASObjective`."""

from __future__ import annotations

import math
import os
import random
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch


class LearningCurveCallback(pl.Callback):
    """Record the per-epoch validation metrics of one training run (host-side floats).

    It reads ``trainer.callback_metrics`` once per validation, after the epoch-level metrics
    are computed, so it adds one device sync per epoch and none per step.

    Attributes:
        curves: ``{metric_name: [value at each validation]}`` for each monitored name.
        epochs_completed: Training epochs that ran to the end.
    """

    def __init__(self, monitor: tuple[str, ...] = ("val_acc",)) -> None:
        super().__init__()
        self.monitor = tuple(monitor)
        self.curves: dict[str, list[float]] = {name: [] for name in self.monitor}
        self.epochs_completed = 0
        self._validated_epochs: set[int] = set()
        #: Epochs restored from a checkpoint (0 for a run that starts afresh).
        self.resumed_epochs = 0

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._validated_epochs.add(trainer.current_epoch)
        for name in self.monitor:
            value = trainer.callback_metrics.get(name)
            if value is not None:
                # Metrics are float32: keep their 7 significant digits (0.956, not
                # 0.9559999704360962) so the values read well in optuna-dashboard.
                self.curves[name].append(float(f"{float(value):.7g}"))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.epochs_completed += 1

    @property
    def epochs_trained(self) -> int:
        """Epochs whose training finished (validation runs after an epoch's last batch)."""
        last_validated = max(self._validated_epochs, default=-1) + 1
        return max(self.epochs_completed, last_validated)

    def last(self, name: str) -> float:
        """The last recorded value of ``name`` (NaN if none)."""
        values = self.curves.get(name) or [math.nan]
        return values[-1]

    def state_dict(self) -> dict[str, Any]:
        return {"curves": self.curves, "epochs_completed": self.epochs_completed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue the curve of a checkpoint (``Trainer.fit(..., ckpt_path=...)``): the
        resumed run's curve is the whole curve, each epoch counted once."""
        self.curves = {
            name: [float(v) for v in state_dict.get("curves", {}).get(name, [])]
            for name in self.monitor
        }
        self.epochs_completed = int(state_dict.get("epochs_completed", 0))
        self._validated_epochs = set()
        self.resumed_epochs = self.epochs_completed


class EpochCheckpoint(pl.Callback):
    """Save everything training needs to resume exactly, at the end of every training epoch.

    The checkpoint (``Trainer.save_checkpoint``: weights, optimizer and scheduler states, the
    loops' progress, the callbacks' states such as :class:`LearningCurveCallback`'s curve) also
    holds the random number generators' states (Python, NumPy, torch, CUDA), so that a run
    resumed with ``Trainer.fit(..., ckpt_path=path)`` continues as the uninterrupted run would.
    It is written to a temporary file first and renamed, so a process killed while writing
    leaves the previous epoch's checkpoint intact.

    Args:
        path: The checkpoint file (overwritten each epoch).
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        folder = os.path.dirname(self.path)
        if trainer.is_global_zero:
            os.makedirs(folder, exist_ok=True)
        partial = f"{self.path}.partial"
        trainer.save_checkpoint(partial)  # every rank calls it; rank 0 writes
        if trainer.is_global_zero:
            os.replace(partial, self.path)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "python": random.getstate(),
            # The legacy global generator is the state seed_everything sets and code may use.
            "numpy": np.random.get_state(),  # noqa: NPY002
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "python" in state_dict:
            random.setstate(state_dict["python"])
        if "numpy" in state_dict:
            np.random.set_state(state_dict["numpy"])  # noqa: NPY002
        if "torch" in state_dict:
            torch.set_rng_state(state_dict["torch"])
        cuda = state_dict.get("cuda")
        if cuda is not None and torch.cuda.is_available():
            if len(cuda) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(cuda)
