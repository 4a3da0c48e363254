"""A DARTS search as one Optuna trial; the derived architecture is enqueued in the same study."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
import math
import time
from typing import Any

import lightning.pytorch as pl
import optuna
from optuna_integration import PyTorchLightningPruningCallback

from optuna_nas._validation import check_int
from optuna_nas._validation import check_seed
from optuna_nas.darts._data import DartsDataModule
from optuna_nas.darts._data import DataSource
from optuna_nas.darts._derive import count_skip_connections
from optuna_nas.darts._module import DartsModule
from optuna_nas.darts._supernet import Supernet
from optuna_nas.darts._supernet import create_supernet
from optuna_nas.search_spaces._base import SearchSpace
from optuna_nas.training._fit_context import quiet_lightning
from optuna_nas.training._fit_context import restore_sigint
from optuna_nas.training._fit_context import trial_trainer_kwargs
from optuna_nas.trial_outcome import Outcome
from optuna_nas.trial_outcome import TrialGuard
from optuna_nas.trial_outcome import Verdict


DeriveFn = Callable[[Supernet], Any]


def _default_derive(supernet: Supernet) -> Any:
    return supernet.derive()


class SkipConnectionEarlyStopping(pl.Callback):
    """DARTS+ early stopping (Liang et al., 2019): a remedy for the collapse to skip connections.

    DARTS' architecture weights drift towards parameter-free skip connections the longer the
    search runs (NAS-Bench-201's DARTS baseline ends with all-skip cells, 54.30% on CIFAR-10).
    DARTS+ stops the search as soon as the derived normal cell has ``max_skip_connections`` or
    more skip connections (2 in the paper) and keeps that architecture. For NAS-Bench-201 the
    count is over the six edges of its single cell.

    Args:
        max_skip_connections: Stop when the derived cell has at least this many skips.
        derive_fn: ``derive_fn(supernet) -> architecture``; ``supernet.derive()`` by default.

    Example:
        .. code-block:: python

            import lightning.pytorch as pl
            import torch
            from optuna_nas.darts import (
                DartsDataModule, DartsModule, DartsSupernet, SkipConnectionEarlyStopping
            )

            x, y = torch.randn(64, 3, 8, 8), torch.randint(0, 10, (64,))
            stop = SkipConnectionEarlyStopping(max_skip_connections=2)
            module = DartsModule(supernet=DartsSupernet(num_classes=10, channels=4, layers=3))
            pl.Trainer(max_epochs=3, callbacks=[stop], logger=False,
                       enable_checkpointing=False).fit(module, DartsDataModule(data=(x, y)))
            print(stop.stop_reason)  # None, or why the search stopped
    """

    def __init__(
        self, *, max_skip_connections: int = 2, derive_fn: DeriveFn | None = None
    ) -> None:
        super().__init__()
        check_int("max_skip_connections", max_skip_connections, minimum=1)
        self.max_skip_connections = max_skip_connections
        self.derive_fn = derive_fn or _default_derive
        self.stopped_epoch: int | None = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        supernet: Supernet = pl_module.supernet  # type: ignore[assignment]
        skips = count_skip_connections(self.derive_fn(supernet))
        if skips >= self.max_skip_connections:
            trainer.should_stop = True
            self.stopped_epoch = trainer.current_epoch

    @property
    def stop_reason(self) -> str | None:
        """Why the search stopped, or ``None`` when it did not stop early."""
        if self.stopped_epoch is None:
            return None
        return (
            f"DARTS+: derived cell has >= {self.max_skip_connections} skip connections "
            f"at epoch {self.stopped_epoch}"
        )


class DartsTrialRecorder(pl.Callback):
    """Records the architecture weights and the derived architecture in the trial every epoch.

    User attributes ``darts:epoch_{epoch:03d}:alphas`` (softmax weights by cell type, with the
    operation names) and ``darts:epoch_{epoch:03d}:arch`` (the space's string of the derived
    architecture) after each validation, so the evolution of the search is visible in
    optuna-dashboard.

    Args:
        trial: The trial of the search.
        space: The discrete search space (for ``to_string``).
        derive_fn: ``derive_fn(supernet) -> architecture``; ``supernet.derive()`` by default.

    Example:
        .. code-block:: python

            import lightning.pytorch as pl
            import optuna
            import torch
            from optuna_nas.darts import (
                DartsDataModule, DartsModule, DartsTrialRecorder, NB201Supernet
            )
            from optuna_nas.search_spaces import create_search_space

            x, y = torch.randn(64, 3, 8, 8), torch.randint(0, 10, (64,))
            trial = optuna.create_study().ask()
            recorder = DartsTrialRecorder(trial=trial, space=create_search_space("nasbench201"))
            net = NB201Supernet(num_classes=10, channels=4, cells_per_stage=1)
            pl.Trainer(max_epochs=1, callbacks=[recorder], logger=False,
                       enable_checkpointing=False).fit(DartsModule(supernet=net),
                                                       DartsDataModule(data=(x, y)))
            print(trial.user_attrs["darts:epoch_000:arch"])
    """

    def __init__(
        self,
        *,
        trial: optuna.Trial,
        space: SearchSpace[Any],
        derive_fn: DeriveFn | None = None,
    ) -> None:
        super().__init__()
        self.trial = trial
        self.space = space
        self.derive_fn = derive_fn or _default_derive
        self.history: list[dict[str, Any]] = []

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        supernet: Supernet = pl_module.supernet  # type: ignore[assignment]
        epoch = trainer.current_epoch
        arch = self.derive_fn(supernet)
        weights = {
            name: [[round(v, 5) for v in row] for row in w.tolist()]
            for name, w in supernet.arch_weights().items()
        }
        val_acc = trainer.callback_metrics.get("val_acc")
        entry = {
            "epoch": epoch,
            "arch": self.space.to_string(arch),
            "skip_connections": count_skip_connections(arch),
            "val_acc": float(val_acc) if val_acc is not None else math.nan,
        }
        self.history.append(entry)
        if trainer.is_global_zero:
            alphas = {"operations": list(supernet.operations), **weights}
            self.trial.set_user_attr(f"darts:epoch_{epoch:03d}:alphas", alphas)
            self.trial.set_user_attr(f"darts:epoch_{epoch:03d}:arch", entry["arch"])


@dataclass
class DartsSearchResult:
    """What one :meth:`DartsSearch.run` produced.

    Attributes:
        arch: The derived architecture (``None`` when the search failed).
        arch_string: Its string in the space's format.
        val_acc: Final supernet validation accuracy.
        history: Per epoch: ``epoch``, ``arch``, ``skip_connections``, ``val_acc``.
        stop_reason: Why the search stopped early (DARTS+), or ``None``.
        fail_reason: Why the search failed, or ``None``.
        supernet: The trained supernet.
        seconds: Wall-clock time of the search.
    """

    arch: Any = None
    arch_string: str | None = None
    val_acc: float = math.nan
    history: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None
    fail_reason: str | None = None
    supernet: Supernet | None = None
    seconds: float = 0.0


class DartsSearch:
    """Runs a DARTS search inside one Optuna trial and enqueues the derived architecture.

    The supernet's validation accuracy is reported each epoch (``trial.report``; Optuna's
    pruners can stop a search, which is how DARTS' own hyperparameters can be tuned by a study),
    the architecture weights and derived architecture are recorded as user attributes every
    epoch (:class:`DartsTrialRecorder`), and at the end the derived architecture is enqueued in
    the same study (``study.enqueue_trial(space.to_params(arch), user_attrs={"source": "darts",
    ...})``) so that the next trial of ``NASObjective`` re-trains it from scratch, next to the
    other strategies' trials. The search trial returns the supernet's final validation accuracy
    (not comparable with a re-trained network's; filter on the ``source`` attribute).

    Failures end the trial, never the study, by the same policy as ``NASObjective``
    (:mod:`optuna_nas.trial_outcome`): NaN/inf losses or alphas PRUNE the trial with the user
    attribute ``pruned_reason`` (divergence says something about the DARTS hyperparameters
    that a sampler can learn from); out of memory FAILs it with ``fail_reason`` (the search
    returns NaN). The reason is also in ``result.fail_reason``.

    Collapse remedies (both off by default, so the default is DARTS as published):
    ``early_stop_skip_connections=2`` is DARTS+ (:class:`SkipConnectionEarlyStopping`);
    ``aux_skip=True`` is DARTS- (an auxiliary ``beta * x`` skip on every edge, beta decaying
    linearly from 1 to 0 over the search, which removes skip connections' unfair advantage).

    Args:
        space: A ``darts`` or ``nasbench201`` search space.
        data: A :class:`DartsDataModule`, or anything it accepts as ``data`` (``(x, y)``
            tensors, a ``Dataset``, a ``LightningDataModule``), then split in two halves.
        max_epochs: Search epochs (50 in DARTS).
        batch_size: Batch size when ``data`` is not a :class:`DartsDataModule` (64 in DARTS).
        second_order: DARTS-V2's second-order gradient; first order (DARTS-V1) by default.
        supernet_kwargs: Passed to :func:`create_supernet`; the defaults are the papers'
            (``channels=16``; ``layers=8`` for ``darts``, ``cells_per_stage=5`` for NB201).
        module_kwargs: Passed to :class:`DartsModule` (``lr``, ``arch_lr``, ``bf16``, ...).
        trainer_kwargs: Passed to ``lightning.pytorch.Trainer`` (``accelerator``, ``callbacks``,
            ``limit_train_batches``, ...).
        include_none: Whether ``none`` may be derived (``Supernet.derive``); ``None`` is the
            supernet's rule (NB201's DARTS baseline: argmax over all operations; DARTS: never).
        early_stop_skip_connections: DARTS+ threshold, or ``None`` for no early stop.
        aux_skip: DARTS-'s decaying auxiliary skip connection.
        enqueue: Enqueue the derived architecture in the trial's study.
        seed: Seed of the supernet initialisation and of the data split/order.
        ckpt_path: A Lightning checkpoint to resume the search from.
        verbose: Keep Lightning's informational logs (device banners, hints).

    Example:
        .. code-block:: python

            import optuna
            import torch
            from optuna_nas.darts import DartsSearch
            from optuna_nas.search_spaces import create_search_space

            space = create_search_space("nasbench201")
            x, y = torch.randn(128, 3, 8, 8), torch.randint(0, 10, (128,))
            search = DartsSearch(
                space, (x, y), max_epochs=2, batch_size=32,
                supernet_kwargs={"channels": 4, "cells_per_stage": 1},
            )
            study = optuna.create_study(direction="maximize")
            study.optimize(search, n_trials=1)
            print(study.trials[0].user_attrs["darts:arch"])  # also enqueued as trial 1
    """

    def __init__(
        self,
        space: SearchSpace[Any],
        data: DartsDataModule | DataSource,
        *,
        max_epochs: int = 50,
        batch_size: int = 64,
        second_order: bool = False,
        supernet_kwargs: Mapping[str, Any] | None = None,
        module_kwargs: Mapping[str, Any] | None = None,
        trainer_kwargs: Mapping[str, Any] | None = None,
        include_none: bool | None = None,
        early_stop_skip_connections: int | None = None,
        aux_skip: bool = False,
        enqueue: bool = True,
        seed: int | None = 0,
        ckpt_path: str | None = None,
        verbose: bool = False,
    ) -> None:
        if not space.has_supernet:
            raise ValueError(
                f"DARTS needs a space with a supernet (SearchSpace.create_supernet, e.g. 'darts', "
                f"'nasbench201'); {space.name!r} has none."
            )
        check_int("max_epochs", max_epochs, minimum=1)
        check_int("batch_size", batch_size, minimum=1)
        if early_stop_skip_connections is not None:
            check_int("early_stop_skip_connections", early_stop_skip_connections, minimum=1)
        check_seed(seed)
        if include_none and "none" not in getattr(space, "operations", ("none",)):
            raise ValueError("include_none=True, but the search space has no 'none' operation.")
        self.space = space
        self.datamodule = (
            data
            if isinstance(data, DartsDataModule)
            else DartsDataModule(data=data, batch_size=batch_size, seed=seed or 0)
        )
        self.max_epochs = max_epochs
        self.second_order = second_order
        self.supernet_kwargs = dict(supernet_kwargs or {})
        self.module_kwargs = dict(module_kwargs or {})
        self.trainer_kwargs = dict(trainer_kwargs or {})
        self.include_none = include_none
        self.early_stop_skip_connections = early_stop_skip_connections
        self.aux_skip = aux_skip
        self.enqueue = enqueue
        self.seed = seed
        self.ckpt_path = ckpt_path
        self.verbose = verbose
        self.result: DartsSearchResult | None = None

    def derive(self, supernet: Supernet) -> Any:
        """The discrete architecture of ``supernet`` (honours ``include_none``)."""
        return supernet.derive(include_none=self.include_none)

    def _make_trainer(self, callbacks: list[pl.Callback]) -> pl.Trainer:
        # The same Trainer defaults as NASObjective; trainer_kwargs may override max_epochs.
        kwargs = {"max_epochs": self.max_epochs, **self.trainer_kwargs}
        return pl.Trainer(**trial_trainer_kwargs(kwargs, callbacks))

    def run(self, trial: optuna.Trial) -> float:
        """Run the search in ``trial``; return the supernet's final validation accuracy.

        Raises:
            optuna.TrialPruned: The study's pruner stopped the search, or it diverged.
        """
        result = DartsSearchResult()
        self.result = result

        def record(verdict: Verdict) -> None:
            if verdict.outcome is not Outcome.RAISE and verdict.cause != "pruner":
                result.fail_reason = verdict.reason  # it failed or diverged

        guard = TrialGuard(trial, on_outcome=record)
        with guard:
            return self._search(trial, result, guard)
        return guard.fail_value  # type: ignore[return-value]

    def _search(self, trial: optuna.Trial, result: DartsSearchResult, guard: TrialGuard) -> float:
        start = time.perf_counter()
        trial.set_user_attr("source", "darts_search")
        if self.seed is not None:
            pl.seed_everything(self.seed, verbose=False)
        dm = self.datamodule
        dm.setup("fit")
        supernet = create_supernet(
            self.space,
            num_classes=dm.num_classes,
            in_channels=dm.input_shape[0],
            aux_skip=self.aux_skip,
            **self.supernet_kwargs,
        )
        module = DartsModule(
            supernet=supernet,
            second_order=self.second_order,
            max_epochs=self.max_epochs,
            **self.module_kwargs,
        )
        recorder = DartsTrialRecorder(trial=trial, space=self.space, derive_fn=self.derive)
        callbacks: list[pl.Callback] = [recorder]
        early_stop = None
        if self.early_stop_skip_connections is not None:
            early_stop = SkipConnectionEarlyStopping(
                max_skip_connections=self.early_stop_skip_connections, derive_fn=self.derive
            )
            callbacks.append(early_stop)
        pruning = PyTorchLightningPruningCallback(trial, monitor="val_acc")
        callbacks.append(pruning)
        result.supernet = supernet
        result.history = recorder.history
        self.result = result  # partial results stay readable if the trial is pruned
        # The same helpers and guard as NASObjective, so both objectives end, log and stop
        # alike.
        try:
            with quiet_lightning(not self.verbose), restore_sigint():
                trainer = self._make_trainer(callbacks)
                trainer.fit(module, datamodule=dm, ckpt_path=self.ckpt_path)
            if isinstance(trial, optuna.Trial):
                pruning.check_pruned()  # only does something under DDP
        finally:
            result.seconds = time.perf_counter() - start
        val_acc = trainer.callback_metrics.get("val_acc")
        if val_acc is None:
            return guard.fail("no validation accuracy was logged")  # type: ignore[return-value]
        arch = self.derive(supernet)
        result.arch = arch
        result.arch_string = self.space.to_string(arch)
        result.val_acc = float(val_acc)
        result.stop_reason = early_stop.stop_reason if early_stop is not None else None

        trial.set_user_attr("darts:arch", result.arch_string)
        trial.set_user_attr("darts:skip_connections", count_skip_connections(arch))
        trial.set_user_attr("darts:epochs", len(recorder.history))
        trial.set_user_attr("darts:second_order", self.second_order)
        trial.set_user_attr("darts:search_seconds", round(result.seconds, 3))
        if result.stop_reason is not None:
            trial.set_user_attr("darts:stop_reason", result.stop_reason)
        study = getattr(trial, "study", None)
        if self.enqueue and study is not None:
            study.enqueue_trial(
                self.space.to_params(arch),
                user_attrs={
                    "source": "darts",
                    "darts:search_trial": trial.number,
                    "darts:arch": result.arch_string,
                },
            )
        return result.val_acc

    __call__ = run
