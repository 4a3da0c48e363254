"""The LightningModule that trains one child network."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F
from torchmetrics.classification import MulticlassAccuracy

from optuna_nas._validation import check_int
from optuna_nas._validation import check_number
from optuna_nas.trial_outcome import NonFiniteError


_OPTIMIZERS = ("sgd", "adamw")
_SCHEDULERS = ("cosine", "none")


def split_logits(output: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Split a network output into ``(logits, auxiliary_logits or None)``.

    Networks with an auxiliary head (DARTS, NASNet) return ``(logits, aux_logits)`` in training
    and ``logits`` or ``(logits, None)`` in evaluation.
    """
    if isinstance(output, (tuple, list)):
        if not output:
            raise ValueError("The network returned an empty tuple.")
        aux = output[1] if len(output) > 1 else None
        return output[0], aux
    return output, None


class ChildModule(pl.LightningModule):
    """Train and evaluate one child network (image classification) with Lightning.

    The network is built elsewhere (``space.build(arch, ...)``) and injected, so the module
    works for every search space and for your own models. By default it uses the NAS-Bench-201
    recipe: SGD with Nesterov momentum 0.9, learning rate 0.1, weight decay 5e-4 and a cosine
    schedule to 0 over the whole run (stepped every batch, so short low-fidelity runs anneal
    too). Gradient clipping is a Trainer option (``gradient_clip_val``).

    Logged metrics (epoch level, synchronized across devices): ``train_loss``, ``val_loss``,
    ``val_acc`` (and ``test_loss``/``test_acc`` in ``Trainer.test``). Accuracy is top-1 from
    ``torchmetrics``. If the network returns ``(logits, aux_logits)`` in training (a DARTS
    auxiliary head) the loss is ``CE(logits) + aux_weight * CE(aux_logits)``. If the network
    has a ``drop_path_prob`` attribute, it is raised linearly from 0 to ``drop_path_prob`` over
    the epochs (the DARTS evaluation recipe).

    A NaN or infinite training loss raises :class:`~optuna_nas.NonFiniteError`. The check
    reads the loss on the host only every ``finite_check_interval`` steps and at the end of each
    training epoch (before validation), so it does not add a device sync to every step.

    Args:
        network: The child network; ``network(x)`` returns logits (or a tuple, see above).
        num_classes: Number of classes, for the accuracy metric.
        optimizer: ``"sgd"`` (Nesterov momentum) or ``"adamw"``.
        lr: Initial learning rate.
        momentum: SGD momentum.
        nesterov: Use Nesterov momentum with SGD.
        weight_decay: Weight decay (L2 for SGD, decoupled for AdamW).
        scheduler: ``"cosine"`` (per step, to ``lr_min`` at the last step) or ``"none"``.
        lr_min: Final learning rate of the cosine schedule.
        label_smoothing: Label smoothing of the cross-entropy loss.
        aux_weight: Weight of the auxiliary head's loss.
        drop_path_prob: Final drop-path probability for networks that support it.
        finite_check_interval: Steps between host-side checks of the loss.

    Example:
        .. code-block:: python

            import lightning.pytorch as pl
            from optuna_nas.search_spaces import create_search_space
            from optuna_nas.training import ChildModule, EmbeddedDataModule

            space = create_search_space("nasbench201")
            cell = space.from_string("|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|"
                                     "+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
            net = space.build(cell, num_classes=10, in_channels=1, channels=8, cells_per_stage=1)
            module = ChildModule(network=net, num_classes=10, lr=0.05)
            trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False)
            trainer.fit(module, EmbeddedDataModule(subset=500))
            print(trainer.callback_metrics["val_acc"])
    """

    def __init__(
        self,
        *,
        network: nn.Module,
        num_classes: int,
        optimizer: str = "sgd",
        lr: float = 0.1,
        momentum: float = 0.9,
        nesterov: bool = True,
        weight_decay: float = 5e-4,
        scheduler: str = "cosine",
        lr_min: float = 0.0,
        label_smoothing: float = 0.0,
        aux_weight: float = 0.4,
        drop_path_prob: float = 0.0,
        finite_check_interval: int = 50,
    ) -> None:
        super().__init__()
        if not isinstance(network, nn.Module):
            raise ValueError(f"network must be a torch.nn.Module; got {type(network).__name__}.")
        check_int("num_classes", num_classes, minimum=2)
        if optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {_OPTIMIZERS}; got {optimizer!r}.")
        if scheduler not in _SCHEDULERS:
            raise ValueError(f"scheduler must be one of {_SCHEDULERS}; got {scheduler!r}.")
        check_number("lr", lr, minimum=0.0, min_inclusive=False)
        check_number("lr_min", lr_min, minimum=0.0, maximum=lr)
        check_number("momentum", momentum, minimum=0.0, maximum=1.0, max_inclusive=False)
        check_number("weight_decay", weight_decay, minimum=0.0)
        check_number(
            "label_smoothing", label_smoothing, minimum=0.0, maximum=1.0, max_inclusive=False
        )
        check_number("aux_weight", aux_weight, minimum=0.0)
        check_number(
            "drop_path_prob", drop_path_prob, minimum=0.0, maximum=1.0, max_inclusive=False
        )
        check_int("finite_check_interval", finite_check_interval, minimum=1)
        # The network is a module argument, not a hyperparameter: keep it out of hparams.yaml.
        self.save_hyperparameters(ignore=["network"])
        self.network = network
        self.val_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self._loss_finite: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> Any:
        return self.network(x)

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y, label_smoothing=self.hparams["label_smoothing"])

    # ----------------------------------------------------------------------------- training
    def on_train_epoch_start(self) -> None:
        target = self.hparams["drop_path_prob"]
        if target and hasattr(self.network, "drop_path_prob"):
            max_epochs = self.trainer.max_epochs or 1
            self.network.drop_path_prob = target * self.current_epoch / max(max_epochs, 1)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits, aux = split_logits(self(x))
        loss = self._loss(logits, y)
        if aux is not None and self.hparams["aux_weight"]:
            loss = loss + self.hparams["aux_weight"] * self._loss(aux, y)
        # Accumulate finiteness on the device; the host reads it only now and then.
        finite = torch.isfinite(loss.detach())
        self._loss_finite = finite if self._loss_finite is None else self._loss_finite & finite
        self.log(
            "train_loss", loss, on_step=False, on_epoch=True, sync_dist=True, batch_size=len(y)
        )
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # Always check the last batch, so validation never runs on a diverged network.
        last = self.trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        if last or (self.global_step % self.hparams["finite_check_interval"] == 0):
            self._check_finite()

    def _check_finite(self) -> None:
        if self._loss_finite is not None and not bool(self._loss_finite):
            self._loss_finite = None
            raise NonFiniteError(
                f"Non-finite training loss (NaN or inf) by epoch {self.current_epoch}, "
                f"step {self.global_step}: the network diverged "
                f"(lr={self.hparams['lr']:g})."
            )

    # ----------------------------------------------------------------------------- evaluation
    def _evaluate(self, batch: Any, prefix: str, metric: MulticlassAccuracy) -> None:
        x, y = batch
        logits, _ = split_logits(self(x))
        loss = F.cross_entropy(logits, y)
        metric.update(logits, y)
        self.log(f"{prefix}_loss", loss, on_epoch=True, sync_dist=True, batch_size=len(y))
        # Logging the Metric object: torchmetrics syncs its state across devices itself.
        self.log(f"{prefix}_acc", metric, on_epoch=True, batch_size=len(y))

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_acc)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_acc)

    # ----------------------------------------------------------------------------- optimization
    def configure_optimizers(self) -> Any:
        hp = self.hparams
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer: torch.optim.Optimizer
        if hp["optimizer"] == "sgd":
            optimizer = torch.optim.SGD(
                params,
                lr=hp["lr"],
                momentum=hp["momentum"],
                nesterov=hp["nesterov"] and hp["momentum"] > 0,
                weight_decay=hp["weight_decay"],
            )
        else:
            optimizer = torch.optim.AdamW(params, lr=hp["lr"], weight_decay=hp["weight_decay"])
        if hp["scheduler"] == "none":
            return optimizer
        total = self.trainer.estimated_stepping_batches
        if not isinstance(total, int) and not (isinstance(total, float) and total < float("inf")):
            return optimizer  # an open-ended run (max_epochs=-1) has no schedule length
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(int(total), 1), eta_min=hp["lr_min"]
        )
        schedule = {"scheduler": scheduler, "interval": "step"}
        return {"optimizer": optimizer, "lr_scheduler": schedule}
