"""The DARTS search as a LightningModule with manual optimization."""

from __future__ import annotations

from collections.abc import Sequence
import contextlib
import math
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from optuna_nas._validation import check_int
from optuna_nas._validation import check_number
from optuna_nas.darts._architect import Architect
from optuna_nas.darts._supernet import Supernet
from optuna_nas.trial_outcome import NonFiniteError


def cosine_lr(epoch: int, *, lr: float, lr_min: float, max_epochs: int) -> float:
    """``CosineAnnealingLR(T_max=max_epochs, eta_min=lr_min)`` at ``epoch``, in closed form.

    Stateless (a function of the epoch only), so a run resumed from a checkpoint uses exactly
    the learning rate of an uninterrupted one.
    """
    return lr_min + (lr - lr_min) * (1.0 + math.cos(math.pi * epoch / max_epochs)) / 2.0


class DartsModule(pl.LightningModule):
    """DARTS' bilevel search (Liu et al., ICLR 2019) with Lightning manual optimization.

    Every training step takes a batch of each half of the training data: first one
    architecture step (Adam on the alphas, first or second order, see :class:`Architect`), then
    one weight step (SGD with gradient clipping on the weights), as in DARTS' ``train()``. The
    defaults are the paper's: weights SGD lr 0.025 annealed by cosine to 0.001, momentum 0.9,
    weight decay 3e-4, gradient norm clipped at 5; alphas Adam lr 3e-4, betas (0.5, 0.999),
    weight decay 1e-3.

    Validation logs ``val_acc`` and ``val_loss`` of the supernet (DARTS validates on the
    architecture half). On CUDA, bfloat16 autocast and channels-last memory are on by default
    (off on CPU); the finite-difference passes of the second order gradient stay in float32.

    Args:
        supernet: A :class:`Supernet`.
        second_order: Use the second-order (unrolled) architecture gradient (DARTS-V2).
        max_epochs: Length of the cosine schedule; ``None`` uses the trainer's ``max_epochs``.
        lr: Initial weight learning rate.
        lr_min: Final weight learning rate.
        momentum: Weight SGD momentum.
        weight_decay: Weight decay of the weights.
        grad_clip: Gradient norm clip of the weights (``None`` for none).
        arch_lr: Adam learning rate of the alphas.
        arch_betas: Adam betas of the alphas.
        arch_weight_decay: Weight decay of the alphas.
        bf16: bfloat16 autocast; ``None`` means on CUDA only.
        channels_last: Channels-last memory format; ``None`` means on CUDA only.
        torch_compile: ``torch.compile`` the supernet (``True`` or a compile ``mode`` string
            such as ``"max-autotune"``); off by default.
        finite_check_interval: Check losses and alphas for NaN/inf every this many steps (and
            the alphas at every epoch end); a check waits for the GPU, so not every step.

    For a supernet built with ``aux_skip=True`` (DARTS-), the auxiliary skip weight ``beta``
    decays linearly from 1 at the first epoch to 0 at the last.

    Example:
        .. code-block:: python

            import lightning.pytorch as pl
            import torch
            from optuna_nas.darts import DartsDataModule, DartsModule, NB201Supernet

            x, y = torch.randn(64, 3, 8, 8), torch.randint(0, 10, (64,))
            dm = DartsDataModule(data=(x, y), batch_size=16)
            module = DartsModule(supernet=NB201Supernet(num_classes=10, channels=4,
                                                        cells_per_stage=1))
            pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False).fit(module, dm)
            print(module.supernet.derive())
    """

    def __init__(
        self,
        *,
        supernet: Supernet,
        second_order: bool = False,
        max_epochs: int | None = None,
        lr: float = 0.025,
        lr_min: float = 0.001,
        momentum: float = 0.9,
        weight_decay: float = 3e-4,
        grad_clip: float | None = 5.0,
        arch_lr: float = 3e-4,
        arch_betas: tuple[float, float] = (0.5, 0.999),
        arch_weight_decay: float = 1e-3,
        bf16: bool | None = None,
        channels_last: bool | None = None,
        torch_compile: bool | str = False,
        finite_check_interval: int = 10,
    ) -> None:
        super().__init__()
        if not isinstance(supernet, Supernet):
            raise ValueError(f"supernet must be a Supernet, got {type(supernet).__name__}.")
        if max_epochs is not None:
            check_int("max_epochs", max_epochs, minimum=1)
        check_number("lr", lr, minimum=0.0, min_inclusive=False)
        check_number("lr_min", lr_min, minimum=0.0, maximum=lr)
        check_number("momentum", momentum, minimum=0.0, maximum=1.0, max_inclusive=False)
        check_number("weight_decay", weight_decay, minimum=0.0)
        if grad_clip is not None:
            check_number("grad_clip", grad_clip, minimum=0.0, min_inclusive=False)
        check_number("arch_lr", arch_lr, minimum=0.0, min_inclusive=False)
        if (
            not isinstance(arch_betas, Sequence)
            or isinstance(arch_betas, str)
            or len(arch_betas) != 2
        ):
            raise ValueError(f"arch_betas must be a pair of numbers, got {arch_betas!r}.")
        for i, beta in enumerate(arch_betas):
            # Adam's betas: decay rates in [0, 1).
            check_number(f"arch_betas[{i}]", beta, minimum=0.0, maximum=1.0, max_inclusive=False)
        check_number("arch_weight_decay", arch_weight_decay, minimum=0.0)
        check_int("finite_check_interval", finite_check_interval, minimum=1)
        # The options live in self.hparams (saved in checkpoints), not in copies of them.
        self.save_hyperparameters(ignore=["supernet"])
        self.automatic_optimization = False
        self.supernet = supernet
        self._use_bf16 = False
        self._use_channels_last = False
        self._architect: Architect | None = None

    # ----------------------------------------------------------------- setup
    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        weight_opt = torch.optim.SGD(
            self.supernet.weight_parameters(),
            lr=self.hparams["lr"],
            momentum=self.hparams["momentum"],
            weight_decay=self.hparams["weight_decay"],
        )
        arch_opt = torch.optim.Adam(
            self.supernet.arch_parameters(),
            lr=self.hparams["arch_lr"],
            betas=self.hparams["arch_betas"],
            weight_decay=self.hparams["arch_weight_decay"],
        )
        return [weight_opt, arch_opt]

    def on_fit_start(self) -> None:
        cuda = self.device.type == "cuda"
        hp = self.hparams
        self._use_bf16 = cuda if hp["bf16"] is None else hp["bf16"]
        self._use_channels_last = cuda if hp["channels_last"] is None else hp["channels_last"]
        if self._use_channels_last:
            self.supernet.to(memory_format=torch.channels_last)
        if hp["torch_compile"]:
            mode = hp["torch_compile"] if isinstance(hp["torch_compile"], str) else None
            self.supernet.compile(mode=mode)

    def _total_epochs(self) -> int:
        if self.hparams["max_epochs"] is not None:
            return self.hparams["max_epochs"]
        trainer_epochs = self.trainer.max_epochs if self._trainer is not None else None
        if trainer_epochs is None or trainer_epochs < 1:
            raise ValueError("Set DartsModule(max_epochs=...) when the trainer has no max_epochs.")
        return trainer_epochs

    def on_train_epoch_start(self) -> None:
        epoch = self.current_epoch
        total = self._total_epochs()
        hp = self.hparams
        lr = cosine_lr(epoch, lr=hp["lr"], lr_min=hp["lr_min"], max_epochs=total)
        weight_opt = self._weight_optimizer()
        for group in weight_opt.param_groups:
            group["lr"] = lr
        beta = 1.0 - epoch / (total - 1) if total > 1 else 0.0
        self.supernet.aux_skip_beta.fill_(max(beta, 0.0))
        self.log("lr", lr, on_epoch=True, on_step=False)

    def _weight_optimizer(self) -> torch.optim.Optimizer:
        opts = self.optimizers()
        assert isinstance(opts, list)
        return opts[0].optimizer

    # ----------------------------------------------------------------- steps
    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if not self._use_bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if self._use_channels_last:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def _check_finite(self, values: dict[str, torch.Tensor], batch_idx: int) -> None:
        # One host sync for all values; NaNs persist once they appear, so checking every
        # ``finite_check_interval`` steps still catches them, without a sync per step.
        flags = torch.stack([torch.isfinite(v.detach()).all() for v in values.values()])
        if bool(flags.all()):
            return
        bad = [name for name, ok in zip(values, flags.tolist()) if not ok]
        raise NonFiniteError(
            f"Non-finite {', '.join(bad)} at epoch {self.current_epoch}, step {batch_idx}."
        )

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        (x_w, y_w), (x_a, y_a) = batch
        x_w, x_a = self._prepare(x_w), self._prepare(x_a)
        opts = self.optimizers()
        assert isinstance(opts, list)
        # Steps go through Lightning's optimizer wrappers (hooks, global_step).
        weight_opt, arch_opt = opts
        if self._architect is None:
            self._architect = Architect(
                supernet=self.supernet,
                weight_optimizer=weight_opt.optimizer,
                second_order=self.hparams["second_order"],
            )

        # Architecture step on the architecture half (DARTS' architect.step comes first).
        arch_opt.zero_grad()
        with self._autocast():
            arch_loss = self._architect.step(arch_opt, x_w, y_w, x_a, y_a)

        # Weight step on the weight half.
        weight_opt.zero_grad()
        with self._autocast():
            logits = self.supernet(x_w)
            loss = F.cross_entropy(logits, y_w)
        if batch_idx % self.hparams["finite_check_interval"] == 0:
            self._check_finite(
                {
                    "architecture loss": arch_loss,
                    "training loss": loss,
                    **self._named_alphas(),
                },
                batch_idx,
            )
        self.manual_backward(loss)
        # The alphas' gradient from this backward is not used (their optimizer already stepped).
        for alpha in self.supernet.arch_parameters():
            alpha.grad = None
        if self.hparams["grad_clip"] is not None:
            self.clip_gradients(
                weight_opt.optimizer,
                gradient_clip_val=self.hparams["grad_clip"],
                gradient_clip_algorithm="norm",
            )
        weight_opt.step()

        self.log("train_loss", loss.detach(), on_step=False, on_epoch=True, batch_size=len(y_w))
        self.log("arch_loss", arch_loss, on_step=False, on_epoch=True, batch_size=len(y_a))
        return loss.detach()

    def on_train_epoch_end(self) -> None:
        # The derived architecture must never come from non-finite alphas.
        self._check_finite(self._named_alphas(), -1)

    def _named_alphas(self) -> dict[str, torch.Tensor]:
        return {f"alphas ({n})": a for n, a in self.supernet.named_arch_parameters().items()}

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        with self._autocast():
            logits = self.supernet(self._prepare(x))
        loss = F.cross_entropy(logits.float(), y)
        acc = (logits.argmax(dim=-1) == y).float().mean()
        self.log("val_loss", loss, on_epoch=True, sync_dist=True, batch_size=len(y))
        self.log("val_acc", acc, on_epoch=True, prog_bar=True, sync_dist=True, batch_size=len(y))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.supernet(x)
