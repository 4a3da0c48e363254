"""``NASObjective``: one trial = suggest an architecture, build it, train it with Lightning."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import copy
import gc
import logging
import math
import os
import time
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

import lightning.pytorch as pl
from lightning.pytorch.strategies.launchers import _MultiProcessingLauncher
from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher
import numpy as np
import optuna
from optuna_integration import PyTorchLightningPruningCallback
import torch
from torch import nn
from torch.multiprocessing import ProcessExitedException
from torch.multiprocessing import ProcessRaisedException

from optuna_nas.search_spaces import SearchSpace
from optuna_nas.training._callbacks import LearningCurveCallback
from optuna_nas.training._measure import count_flops
from optuna_nas.training._measure import count_parameters
from optuna_nas.training._measure import measure_latency as _measure_latency
from optuna_nas.training._module import ChildModule
from optuna_nas.training._module import NonFiniteLossError
from optuna_nas.training._trial_guard import describe_error
from optuna_nas.training._trial_guard import is_out_of_memory
from optuna_nas.training._trial_guard import qualified_name
from optuna_nas.training._trial_guard import quiet_lightning
from optuna_nas.training._trial_guard import restore_sigint
from optuna_nas.training._trial_guard import worker_exception
from optuna_nas.training._trial_guard import worker_raised
from optuna_nas.visualization import upload_cell_diagram


if TYPE_CHECKING:
    from optuna_nas._optuna_compat import ArtifactStore


_logger = logging.getLogger(__name__)

#: Metrics that are better when larger; every other metric is minimized.
_MAXIMIZED = frozenset({"val_acc", "train_acc", "test_acc"})
#: Objective values that are trial attributes measured before training (not logged metrics).
_COST_ATTRS = frozenset({"n_params", "flops", "latency_ms"})
_RESERVED_TRAINER_KWARGS = ("max_epochs",)
#: Prefix of the entries that carry the learning curve from DDP worker processes back.
_WORKER_CURVE_KEY = "optuna_nas/curve/"
_WORKER_EPOCHS_KEY = "optuna_nas/epochs_trained"


class NASObjective:
    """An Optuna objective that searches architectures by training each one with Lightning.

    Each call is one trial:

    1. ``arch = space.suggest(trial)`` (define-by-run, parameters namespaced like
       ``nb201/edge_1_0``), then your own hyperparameters (:meth:`suggest_hyperparameters`);
    2. ``network = space.build(arch, num_classes=dm.num_classes, in_channels=dm.in_channels,
       **build_kwargs)`` with a seed derived from ``seed + trial.number``;
    3. user attributes recorded *before* training, so they are visible in optuna-dashboard
       while the trial runs: ``arch`` (``space.to_string``), ``search_space``, ``n_params``,
       ``flops`` (forward FLOPs per image) and ``latency_ms`` (median batch-1 forward time on
       the training device);
    4. ``Trainer.fit(ChildModule(network, **hyperparameters), datamodule)``; the validation
       accuracy is reported to Optuna every epoch, so ``MedianPruner``,
       ``SuccessiveHalvingPruner`` and ``HyperbandPruner`` stop weak architectures mid-training;
    5. after training: ``train_time_s``, ``epochs_trained``, ``val_acc_curve`` (one value per
       epoch) and ``best_val_acc``; the return value is the **final** epoch's ``metric``.

    The final value, not the best epoch's, is returned: the maximum over epochs is an
    optimistic, noisy statistic, the published NAS benchmarks (NAS-Bench-201/301) tabulate the
    final epoch, and pruners compare trials at equal epochs. ``best_val_acc`` is kept as an
    attribute for reference.

    Failures end the trial, never the study; the reason is in ``user_attrs["fail_reason"]``:

    * a NaN/inf training loss (the network diverged): the trial is **PRUNED** (raises
      :class:`optuna.TrialPruned`), because divergence says something about the configuration
      that samplers such as TPE should learn from (they rank pruned trials by how far they got);
    * out of device memory, an architecture the space cannot build or suggest (e.g. an enqueued
      trial with an invalid value), and exceptions listed in ``catch``: the trial **FAILs**
      (the objective returns NaN, which Optuna records as FAIL without raising), because these
      say something about the machine or the input, not the architecture's quality. Samplers
      ignore failed trials.

    Any other exception propagates, as with any Optuna objective (pass ``catch=`` to
    ``study.optimize`` if you want to continue after it).

    Data-parallel training of each trial (DDP): pass e.g. ``trainer_kwargs={"devices": 2,
    "strategy": "ddp_spawn"}``, or ``"ddp_fork"`` (Linux; starts much faster, but only while
    this process has not initialized CUDA, so on GPUs use ``"ddp_spawn"``). Lightning starts the
    worker processes for each trial; the study, the sampler and the user attributes stay in
    this process, and rank 0's learning curve comes back to the trial. Pruning under DDP needs
    an RDB storage (e.g. ``storage="sqlite:///nas.db"``): rank 0 reports each epoch through it
    (optuna-integration's ``PyTorchLightningPruningCallback``). A worker's diverged loss, out of
    memory error or ``catch`` exception (matched by exact class) ends the trial as above.
    Lightning's plain ``"ddp"``, its default for ``devices > 1``, re-runs the whole script in
    every process and is rejected with a ``ValueError``.

    Extend it by passing ``suggest_hyperparameters`` or by subclassing and overriding
    :meth:`suggest_architecture`, :meth:`suggest_hyperparameters`, :meth:`build_network`,
    :meth:`create_module` or :meth:`create_trainer`.

    Args:
        space: The search space.
        datamodule: A ``LightningDataModule`` with ``num_classes``, ``in_channels`` and
            ``image_size`` attributes (e.g. :class:`EmbeddedDataModule`,
            :class:`CIFAR10DataModule`). It is reused across trials.
        max_epochs: Training epochs per trial (the fidelity).
        trainer_kwargs: Extra ``lightning.Trainer`` arguments, overriding the defaults
            ``accelerator="auto", devices=1, enable_checkpointing=False, logger=False,
            enable_model_summary=False, enable_progress_bar=False, num_sanity_val_steps=0``
            (e.g. ``precision="bf16-mixed"``, ``gradient_clip_val=5``, ``callbacks=[...]``;
            callbacks are deep-copied per trial so stateful ones start fresh).
        module_kwargs: Fixed :class:`ChildModule` arguments (``lr``, ``optimizer``, ...).
        build_kwargs: Extra ``space.build`` arguments (e.g. ``channels=16,
            cells_per_stage=5`` for NAS-Bench-201).
        suggest_hyperparameters: ``fn(trial) -> dict`` suggesting your own hyperparameters in
            the same trial; the returned dict updates ``module_kwargs``.
        metric: The returned value: a logged metric (``"val_acc"``, ``"val_loss"``) or a cost
            attribute (``"n_params"``, ``"flops"``, ``"latency_ms"``); a sequence of them makes
            a multi-objective study (see :attr:`directions`; pruning then is off, as Optuna
            does not prune multi-objective trials).
        compile: Wrap the network in ``torch.compile``. It pays off only for long runs on a
            GPU: compilation takes tens of seconds per architecture.
        compile_kwargs: Arguments of ``torch.compile`` (e.g. ``{"mode": "max-autotune"}``).
        measure_latency: Record ``latency_ms``.
        latency_repeats: Timed forward passes for ``latency_ms`` (after 3 warm-up passes).
        seed: Base seed; trial ``n`` trains with seed ``seed + n``.
        prune: Report each epoch to the trial so the study's pruner can stop it.
        csv_log_dir: Write each trial's metrics with a ``CSVLogger`` under
            ``csv_log_dir/<study name>/trial_<number>``.
        catch: More exception types that FAIL the trial instead of propagating.
        verbose: Keep Lightning's informational logs (device banners, hints).
        artifact_store: An Optuna artifact store (e.g.
            ``optuna.artifacts.FileSystemArtifactStore("./artifacts")``): each trial uploads an
            SVG diagram of its cell, shown by ``optuna-dashboard --artifact-dir ./artifacts``.

    Example:
        .. code-block:: python

            import optuna
            from optuna_nas.search_spaces import create_search_space
            from optuna_nas.training import EmbeddedDataModule, NASObjective

            objective = NASObjective(
                create_search_space("nasbench201"),
                EmbeddedDataModule(subset=1000, image_size=16),
                max_epochs=2,
                build_kwargs={"channels": 8, "cells_per_stage": 1},
                suggest_hyperparameters=lambda t: {"lr": t.suggest_float("lr", 0.01, 0.3)},
            )
            study = optuna.create_study(
                directions=objective.directions, pruner=optuna.pruners.MedianPruner()
            )
            study.optimize(objective, n_trials=3)
            print(study.best_trial.user_attrs["arch"])
    """

    def __init__(
        self,
        space: SearchSpace[Any],
        datamodule: pl.LightningDataModule,
        *,
        max_epochs: int,
        trainer_kwargs: Mapping[str, Any] | None = None,
        module_kwargs: Mapping[str, Any] | None = None,
        build_kwargs: Mapping[str, Any] | None = None,
        suggest_hyperparameters: Callable[[optuna.Trial], Mapping[str, Any]] | None = None,
        metric: str | Sequence[str] = "val_acc",
        compile: bool = False,
        compile_kwargs: Mapping[str, Any] | None = None,
        measure_latency: bool = True,
        latency_repeats: int = 10,
        seed: int = 0,
        prune: bool = True,
        csv_log_dir: str | None = None,
        catch: Sequence[type[Exception]] = (),
        verbose: bool = False,
        artifact_store: ArtifactStore | None = None,
    ) -> None:
        if not isinstance(space, SearchSpace):
            raise ValueError(f"space must be a SearchSpace; got {type(space).__name__}.")
        if not isinstance(max_epochs, int) or max_epochs < 1:
            raise ValueError(f"max_epochs must be a positive int; got {max_epochs!r}.")
        missing = [
            a for a in ("num_classes", "in_channels", "image_size") if not hasattr(datamodule, a)
        ]
        if missing:
            raise ValueError(
                f"datamodule {type(datamodule).__name__} lacks attribute(s) {missing}: "
                "NASObjective builds each network from datamodule.num_classes, .in_channels "
                "and .image_size; set them in your DataModule's __init__."
            )
        trainer_kwargs = dict(trainer_kwargs or {})
        for key in _RESERVED_TRAINER_KWARGS:
            if key in trainer_kwargs:
                raise ValueError(
                    f"Pass {key} as NASObjective's own argument, not in trainer_kwargs."
                )
        metrics = (metric,) if isinstance(metric, str) else tuple(metric)
        if not metrics or any(not isinstance(m, str) or not m for m in metrics):
            raise ValueError(f"metric must be a name or a sequence of names; got {metric!r}.")
        if all(m in _COST_ATTRS for m in metrics):
            raise ValueError(
                f"metric {metric!r} has only cost attributes; include a trained metric "
                "such as 'val_acc'."
            )
        if latency_repeats < 1:
            raise ValueError(f"latency_repeats must be positive; got {latency_repeats!r}.")
        if "latency_ms" in metrics and not measure_latency:
            raise ValueError("metric includes 'latency_ms' but measure_latency=False.")
        for exc in catch:
            if not (isinstance(exc, type) and issubclass(exc, Exception)):
                raise ValueError(f"catch must hold Exception subclasses; got {exc!r}.")

        self.space = space
        self.datamodule = datamodule
        self.max_epochs = max_epochs
        self.trainer_kwargs = trainer_kwargs
        self.module_kwargs = dict(module_kwargs or {})
        self.build_kwargs = dict(build_kwargs or {})
        self.metrics = metrics
        self.compile = compile
        self.compile_kwargs = dict(compile_kwargs or {})
        self.measure_latency = measure_latency
        self.latency_repeats = latency_repeats
        self.seed = int(seed)
        self.artifact_store = artifact_store
        self.prune = prune
        self.csv_log_dir = csv_log_dir
        self.catch = tuple(catch)
        self.verbose = verbose
        self._suggest_hyperparameters = suggest_hyperparameters
        self._check_build()

    # ------------------------------------------------------------------------ public helpers
    @property
    def _dm(self) -> Any:
        return self.datamodule  # typed Any: the shape attributes are duck-typed

    @property
    def num_classes(self) -> int:
        """Classes of the datamodule's task."""
        return int(self._dm.num_classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one input image."""
        side = int(self._dm.image_size)
        return (int(self._dm.in_channels), side, side)

    @property
    def directions(self) -> list[Literal["minimize", "maximize"]]:
        """Study directions matching ``metric``: ``optuna.create_study(directions=...)``."""
        return ["maximize" if m in _MAXIMIZED else "minimize" for m in self.metrics]

    def enqueue(
        self,
        study: optuna.Study,
        arch: Any,
        *,
        params: Mapping[str, Any] | None = None,
        user_attrs: Mapping[str, Any] | None = None,
    ) -> None:
        """Enqueue an architecture (object or string, e.g. a published cell) for evaluation.

        Args:
            study: The study.
            arch: An architecture of ``space`` or its string (``space.to_string`` format).
            params: Values for your own hyperparameters in the same trial.
            user_attrs: Extra user attributes of the trial.

        Raises:
            ValueError: ``arch`` is not a valid architecture of the space.
        """
        if isinstance(arch, str):
            arch = self.space.from_string(arch)
        all_params = self.space.to_params(arch)
        all_params.update(params or {})
        study.enqueue_trial(all_params, user_attrs=dict(user_attrs or {}) or None)

    # ------------------------------------------------------------------------ overridable steps
    def suggest_architecture(self, trial: optuna.Trial) -> Any:
        """Suggest the architecture (default: ``space.suggest(trial)``)."""
        return self.space.suggest(trial)

    def suggest_hyperparameters(self, trial: optuna.Trial) -> Mapping[str, Any]:
        """Suggest your own hyperparameters; the result updates the ``ChildModule`` kwargs.

        By default it calls the ``suggest_hyperparameters`` function given to the constructor,
        or returns ``{}``. Override it in a subclass, e.g.::

            class MyObjective(NASObjective):
                def suggest_hyperparameters(self, trial):
                    return {"lr": trial.suggest_float("lr", 1e-2, 0.2, log=True)}
        """
        if self._suggest_hyperparameters is None:
            return {}
        return self._suggest_hyperparameters(trial)

    def build_network(self, trial: optuna.Trial, arch: Any) -> nn.Module:
        """Build the network (default: ``space.build`` with the datamodule's shapes)."""
        channels = self.input_shape[0]
        return self.space.build(
            arch, num_classes=self.num_classes, in_channels=channels, **self.build_kwargs
        )

    def create_module(
        self, network: nn.Module, hyperparameters: Mapping[str, Any]
    ) -> pl.LightningModule:
        """Wrap the network into the LightningModule that trains it (default: ChildModule)."""
        return ChildModule(network=network, num_classes=self.num_classes, **hyperparameters)

    def create_trainer(self, trial: optuna.Trial, callbacks: Sequence[pl.Callback]) -> pl.Trainer:
        """Create the Trainer of one trial; ``callbacks`` (pruning, curve) must be included."""
        kwargs: dict[str, Any] = {
            "accelerator": "auto",
            "devices": 1,
            "enable_checkpointing": False,
            "logger": False,
            "enable_model_summary": False,
            "enable_progress_bar": False,
            # The same code validates every child: the sanity check would only cost time.
            "num_sanity_val_steps": 0,
        }
        kwargs.update(self.trainer_kwargs)
        # Fresh copies per trial: stateful callbacks (e.g. EarlyStopping) must not leak state.
        user_callbacks = copy.deepcopy(list(kwargs.pop("callbacks", None) or []))
        if self.csv_log_dir is not None:
            from lightning.pytorch.loggers import CSVLogger

            study_name = trial.study.study_name if hasattr(trial, "study") else "study"
            kwargs["logger"] = CSVLogger(
                self.csv_log_dir, name=study_name, version=f"trial_{trial.number}"
            )
        return pl.Trainer(
            max_epochs=self.max_epochs, callbacks=[*callbacks, *user_callbacks], **kwargs
        )

    # ------------------------------------------------------------------------ the trial
    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        self._check_directions(trial)
        try:
            arch = self.suggest_architecture(trial)
        except ValueError as error:
            return self._fail(trial, f"Invalid architecture: {error}")
        trial.set_user_attr("search_space", self.space.name)
        trial.set_user_attr("arch", self.space.to_string(arch))
        if self.artifact_store is not None and isinstance(trial, optuna.Trial):
            try:
                upload_cell_diagram(trial, arch, artifact_store=self.artifact_store)
            except ValueError:
                pass  # a user-defined space without a diagram: nothing to draw
        hyperparameters = {**self.module_kwargs, **self.suggest_hyperparameters(trial)}

        pl.seed_everything(self.seed + trial.number, workers=True, verbose=False)
        try:
            network: nn.Module | None = self.build_network(trial, arch)
        except ValueError as error:
            return self._fail(trial, f"Architecture build error: {error}")
        assert network is not None

        curve = LearningCurveCallback(monitor=tuple(dict.fromkeys(("val_acc", *self.metrics))))
        callbacks: list[pl.Callback] = [curve, _DDPWorkerCallback(trial, curve)]
        pruning: PyTorchLightningPruningCallback | None = None
        if self.prune and len(self.metrics) == 1:
            # optuna-integration's callback reports in on_validation_end and raises
            # TrialPruned there; checked with Lightning 2.6 and Optuna 5.
            pruning = PyTorchLightningPruningCallback(trial, monitor=self.metrics[0])
            callbacks.append(pruning)

        measured: dict[str, float] = {}
        failure: str | None = None
        oom = False
        start = time.perf_counter()
        trainer: pl.Trainer | None = None
        module: pl.LightningModule | None = None
        try:
            measured["n_params"] = count_parameters(network)
            measured["flops"] = count_flops(network, self.input_shape)
            for key, value in measured.items():
                trial.set_user_attr(key, value)
            with quiet_lightning(not self.verbose):
                trainer = self.create_trainer(trial, callbacks)
                _check_launcher(trainer)
                if self.measure_latency:
                    latency = _measure_latency(
                        network,
                        self.input_shape,
                        device=trainer.strategy.root_device,
                        repeats=self.latency_repeats,
                    )
                    measured["latency_ms"] = latency
                    trial.set_user_attr("latency_ms", latency)
                if self.compile:
                    network = torch.compile(network, **self.compile_kwargs)  # type: ignore[assignment]
                assert network is not None
                module = self.create_module(network, hyperparameters)
                start = time.perf_counter()
                with restore_sigint():
                    try:
                        trainer.fit(module, datamodule=self.datamodule)
                    except ProcessRaisedException as error:
                        # A DDP worker diverged: prune as without DDP (only the worker's
                        # traceback text reaches this process, not the exception).
                        worker = worker_exception(error)
                        if worker is not None and worker[0] == qualified_name(NonFiniteLossError):
                            raise NonFiniteLossError(worker[1]) from error
                        raise
                    except ProcessExitedException:
                        # A worker was killed by a signal (no Python exception), e.g. by the
                        # OOM killer or a C++ abort while tearing down after rank 0 had decided
                        # to prune: a stored pruning decision still prunes; otherwise FAIL.
                        if pruning is not None and isinstance(trial, optuna.Trial):
                            pruning.check_pruned()
                        raise
            # The launcher classes are underscored but in Lightning's launchers.__all__; they
            # are the only way Lightning 2.x tells ddp_spawn/ddp_fork from the script re-run.
            if isinstance(trainer.strategy.launcher, _MultiProcessingLauncher):
                # ddp_spawn/ddp_fork trained in worker processes: take rank 0's curve.
                _DDPWorkerCallback.restore_curve(curve, trainer.callback_metrics)
            if pruning is not None and isinstance(trial, optuna.Trial):
                # Only does something under DDP: rank 0 stored its reports and its pruning
                # decision in the storage; this reports them here and raises TrialPruned.
                pruning.check_pruned()
        except NonFiniteLossError as error:
            self._record_training(trial, curve, start)
            trial.set_user_attr("fail_reason", str(error))
            _logger.warning("Trial %d pruned: %s", trial.number, error)
            raise optuna.TrialPruned(str(error)) from None
        except optuna.TrialPruned:
            self._record_training(trial, curve, start)
            if isinstance(trial, optuna.Trial):
                # Lazy import: the pruners package is optional for plain training.
                from optuna_nas.pruners import pruned_reason

                trial.set_user_attr("pruned_reason", pruned_reason(trial))
            raise
        except Exception as error:
            name, text = describe_error(error)
            if is_out_of_memory(error):
                oom = True
                failure = f"Out of memory ({name}): {text[:300]}"
            elif isinstance(error, ProcessExitedException):
                failure = f"A DDP worker process died: {error}"
            elif isinstance(error, self.catch) or worker_raised(error, self.catch):
                failure = f"{name}: {text}"
            else:
                raise
        finally:
            # Drop every reference to the trial's model (Lightning leaves one in the
            # datamodule) so that its memory can be freed before the next trial.
            if getattr(self.datamodule, "trainer", None) is trainer:
                self.datamodule.trainer = None
            network = module = trainer = None  # noqa: F841
        if failure is not None:
            self._record_training(trial, curve, start)
            if oom:
                gc.collect()
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
            return self._fail(trial, failure)

        self._record_training(trial, curve, start)
        values = []
        for name in self.metrics:
            value = measured[name] if name in _COST_ATTRS else curve.last(name)
            if not math.isfinite(value):
                return self._fail(
                    trial,
                    f"Metric {name!r} was not logged (or not finite) after training; "
                    "check the datamodule's validation split and Trainer limits.",
                )
            values.append(float(value))
        return values[0] if len(values) == 1 else tuple(values)

    # ------------------------------------------------------------------------ internals
    def _record_training(
        self, trial: optuna.Trial, curve: LearningCurveCallback, start: float
    ) -> None:
        trial.set_user_attr("train_time_s", round(time.perf_counter() - start, 3))
        trial.set_user_attr("epochs_trained", curve.epochs_trained)
        accs = curve.curves.get("val_acc", [])
        trial.set_user_attr("val_acc_curve", accs)
        if accs:
            trial.set_user_attr("best_val_acc", max(accs))

    def _fail(self, trial: optuna.Trial, reason: str) -> float | tuple[float, ...]:
        trial.set_user_attr("fail_reason", reason)
        _logger.warning("Trial %d failed: %s", trial.number, reason)
        if len(self.metrics) == 1:
            return math.nan
        return tuple(math.nan for _ in self.metrics)

    def _check_directions(self, trial: optuna.Trial) -> None:
        study = getattr(trial, "study", None)
        if study is None:
            return  # e.g. optuna.trial.FixedTrial
        expected = [optuna.study.StudyDirection[d.upper()] for d in self.directions]
        if list(study.directions) != expected:
            raise ValueError(
                f"The study's directions {[d.name.lower() for d in study.directions]} do not "
                f"match metric {list(self.metrics)} (expected {self.directions}); create it "
                "with optuna.create_study(directions=objective.directions)."
            )

    def _check_build(self) -> None:
        # Fail fast on a configuration error (bad build_kwargs, shapes) instead of failing
        # every trial: build one sampled architecture now.
        arch = self.space.sample(np.random.default_rng(0))
        try:
            self.space.build(
                arch,
                num_classes=self.num_classes,
                in_channels=self.input_shape[0],
                **self.build_kwargs,
            )
        except ValueError as error:
            raise ValueError(
                f"Search space {self.space.name!r} cannot build networks with "
                f"build_kwargs={self.build_kwargs!r}: {error}"
            ) from error

    def __repr__(self) -> str:
        return (
            f"NASObjective(space={self.space!r}, datamodule={self.datamodule!r}, "
            f"max_epochs={self.max_epochs}, metric={list(self.metrics)!r})"
        )


def _check_launcher(trainer: pl.Trainer) -> None:
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


class _DDPWorkerCallback(pl.Callback):
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
