"""Lightning callbacks used by :class:`~optuna_nas.training.NASObjective`."""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl


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
