"""``NASObjective``: one trial = suggest an architecture, build it, train it with Lightning."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import math
import os
import shutil
import time
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

import lightning.pytorch as pl
import numpy as np
import optuna
from optuna_integration import PyTorchLightningPruningCallback
import torch
from torch import nn

from optuna_nas._validation import check_int
from optuna_nas._validation import check_seed
from optuna_nas._weights import BUILD_ATTR
from optuna_nas._weights import KEEP_WEIGHTS_ATTR
from optuna_nas._weights import WeightKeeper
from optuna_nas._weights import build_record
from optuna_nas.search_spaces import SearchSpace
from optuna_nas.storages import retried_trial_number
from optuna_nas.training._callbacks import EpochCheckpoint
from optuna_nas.training._callbacks import LearningCurveCallback
from optuna_nas.training._ddp import DDPWorkerCallback
from optuna_nas.training._ddp import check_launcher
from optuna_nas.training._ddp import finish_fit
from optuna_nas.training._ddp import pruned_if_decided
from optuna_nas.training._fit_context import quiet_lightning
from optuna_nas.training._fit_context import restore_sigint
from optuna_nas.training._fit_context import trial_trainer_kwargs
from optuna_nas.training._measure import COST_ATTRS
from optuna_nas.training._measure import record_costs
from optuna_nas.training._module import ChildModule
from optuna_nas.trial_outcome import TrialGuard
from optuna_nas.trial_outcome import invalid_architecture
from optuna_nas.visualization import upload_cell_diagram


if TYPE_CHECKING:
    from optuna_nas._optuna_compat import ArtifactStore


Direction = Literal["minimize", "maximize"]

#: The environment variable whose value a trial records as its ``worker`` user attribute
#: (``optuna-nas worker`` sets it to each worker's host and device).
WORKER_ENV = "OPTUNA_NAS_WORKER"

_RESERVED_TRAINER_KWARGS = ("max_epochs",)


def known_direction(metric: str) -> Direction | None:
    """The study direction a metric's name implies, or ``None`` when the name does not tell.

    Accuracies (``val_acc``, ``train_acc``, ``test_accuracy``, ...) are maximized; losses
    (``val_loss``, ...) and cost attributes (``n_params``, ``flops``, ``latency_ms``) are
    minimized. For any other metric (e.g. ``val_f1``) pass ``directions`` to
    :class:`NASObjective`, or let the study decide.
    """
    if metric in COST_ATTRS or metric.endswith("loss"):
        return "minimize"
    if metric.endswith(("_acc", "accuracy")):
        return "maximize"
    return None


class NASObjective:
    """An Optuna objective that searches architectures by training each one with Lightning.

    Each call is one trial:

    1. ``arch = space.suggest(trial)`` (define-by-run, parameters namespaced like
       ``nb201/edge_1_0``), then your own hyperparameters (:meth:`suggest_hyperparameters`);
    2. ``network = space.build(arch, num_classes=dm.num_classes, in_channels=dm.in_channels,
       **build_kwargs)`` with a seed derived from ``seed + trial.number``;
    3. user attributes recorded *before* training, so they are visible in optuna-dashboard
       while the trial runs: ``arch`` (``space.to_string``), ``search_space``, ``n_params``,
       ``flops`` (forward FLOPs per image), ``latency_ms`` (median batch-1 forward time on
       the training device) and ``build`` (``num_classes``, ``in_channels``, ``image_size``,
       the build ``kwargs`` and the space's non-default ``space_kwargs``: what
       :func:`optuna_nas.export.export_trial` needs to rebuild the network);
    4. ``Trainer.fit(ChildModule(network, **hyperparameters), datamodule)``; the validation
       accuracy is reported to Optuna every epoch, so ``MedianPruner``,
       ``SuccessiveHalvingPruner`` and ``HyperbandPruner`` stop weak architectures mid-training;
    5. after training: ``train_time_s``, ``epochs_trained``, ``val_acc_curve`` (one value per
       epoch) and ``best_val_acc``; the return value is the **final** epoch's ``metric``.

    A trial run with the environment variable ``OPTUNA_NAS_WORKER`` set (as ``optuna-nas
    worker`` does) records its value as the ``worker`` user attribute.

    The final value, not the best epoch's, is returned: the maximum over epochs is an
    optimistic, noisy statistic, the published NAS benchmarks (NAS-Bench-201/301) tabulate the
    final epoch, and pruners compare trials at equal epochs. ``best_val_acc`` is kept as an
    attribute for reference.

    Failures end the trial, never the study (the policy of :mod:`optuna_nas.trial_outcome`):

    * a NaN/inf training loss (the network diverged): the trial is **PRUNED** (raises
      :class:`optuna.TrialPruned`) with the reason in ``user_attrs["pruned_reason"]``, because
      divergence says something about the configuration that samplers such as TPE should learn
      from (they rank pruned trials by how far they got);
    * out of device memory, an architecture the space cannot build or suggest (e.g. an enqueued
      trial with an invalid value), and exceptions listed in ``catch``: the trial **FAILs**
      (the objective returns NaN, which Optuna records as FAIL without raising) with the
      reason in ``user_attrs["fail_reason"]``, because these say something about the machine
      or the input, not the architecture's quality. Samplers ignore failed trials.

    Configuration errors end the study instead of failing every trial alike: a study whose
    directions contradict ``metric`` raises ``ValueError``, and a parameter suggested with
    another distribution than the study recorded (e.g. a study resumed with other operations)
    raises :class:`~optuna_nas.trial_outcome.ParameterConflictError`, naming the parameter and
    both distributions. Any other exception propagates, as with any Optuna objective (pass
    ``catch=`` to ``study.optimize`` if you want to continue after it).

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

    Resuming a trial whose worker died: with ``checkpoint_dir``, every epoch of a trial saves
    its training state (weights, optimizer, scheduler, epoch, the learning curve and the random
    number generators; written atomically) to ``checkpoint_dir/<study name>/trial_<n>``. When
    the trial ends, COMPLETE, PRUNED or FAIL (including an exception that propagates and
    Ctrl+C), the folder is removed; it is kept only when the process dies (SIGKILL, a lost
    machine, a preempted job's SIGTERM, which Lightning turns into ``SystemExit``; Optuna then
    leaves the trial RUNNING). A storage opened with
    :func:`optuna_nas.storages.create_storage` then fails the trial as stale and queues it once
    more with its parameters and learning curve; that re-run finds the checkpoint under the
    original trial's number ``n``, resumes training at the next epoch
    (``Trainer.fit(..., ckpt_path=...)``), reports only the new epochs and records
    ``resumed_at_epoch``. A re-run trains with the original trial's seed, so the resumed result
    equals an uninterrupted run's (on the same device). The checkpoint must be visible to the
    worker that picks up the re-run: use a folder on a shared file system when workers run on
    several machines (a re-run that finds no checkpoint trains from the first epoch).

    Keeping the trained weights of the best trials: with ``keep_weights=k``, a trial that
    completes among the study's best ``k`` saves its network's ``state_dict`` (the network
    itself, not a ``torch.compile`` wrapper), as a file
    ``weights_dir/<study name>/trial_<n>/weights.pt`` (user attribute ``weights_path``) or, without
    ``weights_dir``, as an artifact of ``artifact_store`` (``weights_artifact_id``); the trial
    that falls out of the best ``k`` then loses its weights. The trial is ranked by its final
    value(s) with the study's COMPLETE trials, ties going to the earlier trial; a
    multi-objective study ranks by Pareto front (non-domination rank), so with ``k`` at least
    the front's size every Pareto-optimal trial keeps its weights. Finished trials' attributes
    cannot change, so a trial whose weights were removed still names them: export it with
    :func:`optuna_nas.export.export_trial`, which says that they were not kept. With several
    workers, two trials finishing at the same moment may both keep their weights; the next
    trial to finish removes the extra ones.

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
        directions: ``"maximize"`` or ``"minimize"`` per metric. Needed for a metric whose
            sense its name does not tell (see :func:`known_direction`; e.g. ``"val_f1"``) if
            you want :attr:`directions` to create the study; otherwise the study's directions
            are used. A contradiction with a known sense (e.g. ``val_acc`` minimized) is an
            error.
        compile: Wrap the network in ``torch.compile``. It pays off only for long runs on a
            GPU: compilation takes tens of seconds per architecture.
        compile_kwargs: Arguments of ``torch.compile`` (e.g. ``{"mode": "max-autotune"}``).
        measure_latency: Record ``latency_ms``.
        latency_repeats: Timed forward passes for ``latency_ms`` (after 3 warm-up passes).
        seed: Base seed; trial ``n`` trains with seed ``(seed + n) % 2**32`` (a heartbeat
            re-run of trial ``n`` too).
        prune: Report each epoch to the trial so the study's pruner can stop it.
        csv_log_dir: Write each trial's metrics with a ``CSVLogger`` under
            ``csv_log_dir/<study name>/trial_<number>``.
        catch: More exception types that FAIL the trial instead of propagating.
        verbose: Keep Lightning's informational logs (device banners, hints).
        artifact_store: An Optuna artifact store (e.g.
            ``optuna.artifacts.FileSystemArtifactStore("./artifacts")``): each trial uploads an
            SVG diagram of its cell, shown by ``optuna-dashboard --artifact-dir ./artifacts``.
        checkpoint_dir: Save each trial's training state at the end of every epoch under
            ``checkpoint_dir/<study name>/trial_<number>/last.ckpt`` (see "Resuming a trial"
            above). ``None`` (the default): no checkpoints.
        keep_weights: Keep the trained weights of the best ``keep_weights`` trials (see
            "Keeping the trained weights" above); ``0`` (the default) keeps none, as suits a
            large search. Needs ``weights_dir`` or ``artifact_store``.
        weights_dir: Keep the weights as files under this folder instead of as artifacts of
            ``artifact_store``.

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
        directions: Sequence[Direction] | None = None,
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
        checkpoint_dir: str | os.PathLike[str] | None = None,
        keep_weights: int = 0,
        weights_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if not isinstance(space, SearchSpace):
            raise ValueError(f"space must be a SearchSpace; got {type(space).__name__}.")
        check_int("max_epochs", max_epochs, minimum=1)
        check_int("latency_repeats", latency_repeats, minimum=1)
        check_seed(seed, allow_none=False)
        check_int("keep_weights", keep_weights, minimum=0)
        if keep_weights >= 1 and artifact_store is None and weights_dir is None:
            raise ValueError(
                f"keep_weights={keep_weights!r} needs somewhere to keep the weights: pass "
                "artifact_store= (an Optuna artifact store) or weights_dir= (a folder)."
            )
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
        if all(m in COST_ATTRS for m in metrics):
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
        if directions is not None:
            directions = _check_directions_arg(metrics, directions)

        self.space = space
        self.datamodule = datamodule
        self.max_epochs = max_epochs
        self.trainer_kwargs = trainer_kwargs
        self.module_kwargs = dict(module_kwargs or {})
        self.build_kwargs = dict(build_kwargs or {})
        self.metrics = metrics
        self._directions = directions
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
        self.checkpoint_dir = None if checkpoint_dir is None else os.fspath(checkpoint_dir)
        self.keep_weights = int(keep_weights)
        self.weights_dir = None if weights_dir is None else os.fspath(weights_dir)
        self._weights = (
            WeightKeeper(
                self.keep_weights, artifact_store=artifact_store, weights_dir=self.weights_dir
            )
            if self.keep_weights >= 1
            else None
        )
        self._check_build()
        # Checked now, not in the first trial: a build option JSON cannot hold is an error of
        # the configuration (the trials could not be rebuilt from their record).
        self._build_record = build_record(
            space,
            num_classes=self.num_classes,
            in_channels=self.input_shape[0],
            image_size=self.input_shape[1],
            build_kwargs=self.build_kwargs,
        )

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
    def directions(self) -> list[Direction]:
        """Study directions matching ``metric``: ``optuna.create_study(directions=...)``.

        The ``directions`` argument, or else the directions the metrics' names imply (see
        :func:`known_direction`).

        Raises:
            ValueError: A metric's name does not tell its direction and ``directions`` was not
                given.
        """
        if self._directions is not None:
            return list(self._directions)
        unknown = [m for m in self.metrics if known_direction(m) is None]
        if unknown:
            raise ValueError(
                f"The direction of metric(s) {unknown!r} is not known from the name; pass "
                "NASObjective(..., directions=[...]) (one 'maximize'/'minimize' per metric) or "
                "create the study with the directions you want."
            )
        return [d for d in map(known_direction, self.metrics) if d is not None]

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
        kwargs = trial_trainer_kwargs(self.trainer_kwargs, callbacks)
        if self.csv_log_dir is not None:
            from lightning.pytorch.loggers import CSVLogger

            study_name = trial.study.study_name if hasattr(trial, "study") else "study"
            kwargs["logger"] = CSVLogger(
                self.csv_log_dir, name=study_name, version=f"trial_{trial.number}"
            )
        return pl.Trainer(max_epochs=self.max_epochs, **kwargs)

    # ------------------------------------------------------------------------ the trial
    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        self._check_directions(trial)
        guard = TrialGuard(trial, catch=self.catch, n_values=len(self.metrics))
        checkpoint = self.checkpoint_path(trial)
        exiting = False
        try:
            with guard:
                return self._run_trial(trial, guard, checkpoint)
            return guard.fail_value
        except SystemExit:
            # The process exits (e.g. Lightning's SIGTERMException on a preemption): Optuna
            # leaves the trial RUNNING, for the heartbeat to re-run it from its checkpoint.
            exiting = True
            raise
        finally:
            # Otherwise the trial ends here (COMPLETE, PRUNED or FAIL, Ctrl+C included): only
            # a process that dies (SIGKILL, SIGTERM, a lost machine) keeps its checkpoint.
            if checkpoint is not None and not exiting:
                shutil.rmtree(os.path.dirname(checkpoint), ignore_errors=True)

    def checkpoint_path(self, trial: optuna.Trial) -> str | None:
        """The file of the trial's per-epoch checkpoint (``None`` without ``checkpoint_dir``).

        ``checkpoint_dir/<study name>/trial_<n>/last.ckpt``, where ``n`` is the trial's number
        or, for a heartbeat re-run of a trial whose worker died, the original trial's number
        (:func:`optuna_nas.storages.retried_trial_number`), so the re-run finds its checkpoint.
        """
        if self.checkpoint_dir is None or not isinstance(trial, optuna.Trial):
            return None
        study_name = trial.study.study_name
        for sep in {os.sep, os.altsep or os.sep}:
            study_name = study_name.replace(sep, "_")
        return os.path.join(
            self.checkpoint_dir, study_name, f"trial_{_trial_key(trial)}", "last.ckpt"
        )

    def _run_trial(
        self, trial: optuna.Trial, guard: TrialGuard, checkpoint: str | None
    ) -> float | tuple[float, ...]:
        worker = os.environ.get(WORKER_ENV)
        if worker:
            trial.set_user_attr("worker", worker)
        with invalid_architecture():
            arch = self.suggest_architecture(trial)
        trial.set_user_attr("search_space", self.space.name)
        trial.set_user_attr("arch", self.space.to_string(arch))
        # What optuna_nas.export needs to rebuild the network: see its architecture.json.
        trial.set_user_attr(BUILD_ATTR, self._build_record)
        if self._weights is not None:
            trial.set_user_attr(KEEP_WEIGHTS_ATTR, self.keep_weights)
        if self.artifact_store is not None and isinstance(trial, optuna.Trial):
            try:
                upload_cell_diagram(
                    trial, arch, artifact_store=self.artifact_store, space=self.space
                )
            except NotImplementedError:
                pass  # a user-defined space without cell_graphs: nothing to draw
        hyperparameters = {**self.module_kwargs, **self.suggest_hyperparameters(trial)}

        # A heartbeat re-run trains with its original trial's seed: the same initial network,
        # so that resuming from the original's checkpoint gives the uninterrupted result.
        # Modulo 2**32: seed_everything's range, which seed + trial number may pass.
        pl.seed_everything((self.seed + _trial_key(trial)) % 2**32, workers=True, verbose=False)
        with invalid_architecture(build=True):
            network: nn.Module | None = self.build_network(trial, arch)
        assert network is not None
        # The network itself, not a torch.compile wrapper: its state_dict is what is kept.
        # (Under ddp_spawn/ddp_fork Lightning loads rank 0's trained weights back into it.)
        trained = network if self._weights is not None else None

        curve = LearningCurveCallback(monitor=tuple(dict.fromkeys(("val_acc", *self.metrics))))
        callbacks: list[pl.Callback] = [curve, DDPWorkerCallback(trial, curve)]
        pruning: PyTorchLightningPruningCallback | None = None
        if self.prune and len(self.metrics) == 1:
            # optuna-integration's callback reports in on_validation_end and raises
            # TrialPruned there; checked with Lightning 2.6 and Optuna 5.
            pruning = PyTorchLightningPruningCallback(trial, monitor=self.metrics[0])
            callbacks.append(pruning)
        resume = None
        if checkpoint is not None:
            callbacks.append(EpochCheckpoint(checkpoint))
            resume = checkpoint if os.path.isfile(checkpoint) else None

        start = time.perf_counter()
        trainer: pl.Trainer | None = None
        module: pl.LightningModule | None = None
        try:
            with quiet_lightning(not self.verbose):
                trainer = self.create_trainer(trial, callbacks)
                check_launcher(trainer)
                measured = record_costs(
                    trial,
                    network,
                    self.input_shape,
                    device=trainer.strategy.root_device,
                    latency_repeats=self.latency_repeats if self.measure_latency else None,
                )
                if self.compile:
                    network = torch.compile(network, **self.compile_kwargs)  # type: ignore[assignment]
                assert network is not None
                module = self.create_module(network, hyperparameters)
                start = time.perf_counter()
                with restore_sigint(), pruned_if_decided(trial, pruning):
                    # The checkpoint is this objective's own file: trusted, not weights only
                    # (it holds the random number generators' states).
                    trainer.fit(
                        module, datamodule=self.datamodule, ckpt_path=resume, weights_only=False
                    )
            if resume is not None:
                trial.set_user_attr("resumed_at_epoch", curve.resumed_epochs)
            finish_fit(trainer, trial, curve, pruning)
        finally:
            self._record_training(trial, curve, start)
            # Drop every reference to the trial's model (Lightning leaves one in the
            # datamodule) so that its memory can be freed before the next trial.
            if getattr(self.datamodule, "trainer", None) is trainer:
                self.datamodule.trainer = None
            network = module = trainer = None  # noqa: F841

        values = []
        for name in self.metrics:
            value = measured[name] if name in COST_ATTRS else curve.last(name)
            if not math.isfinite(value):
                return guard.fail(
                    f"Metric {name!r} was not logged (or not finite) after training; "
                    "check the datamodule's validation split and Trainer limits."
                )
            values.append(float(value))
        if self._weights is not None and isinstance(trial, optuna.Trial) and trained is not None:
            self._weights.after_trial(trial, values, trained)
        trained = None
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

    def _check_directions(self, trial: optuna.Trial) -> None:
        study = getattr(trial, "study", None)
        if study is None:
            return  # e.g. optuna.trial.FixedTrial
        actual = [d.name.lower() for d in study.directions]
        if len(actual) != len(self.metrics):
            raise ValueError(
                f"The study has {len(actual)} direction(s) {actual} but metric "
                f"{list(self.metrics)} has {len(self.metrics)} value(s); create it with "
                "optuna.create_study(directions=objective.directions)."
            )
        expected = self._directions or [known_direction(m) for m in self.metrics]
        wrong = [
            f"{m!r} is to {e} (study: {a})"
            for m, e, a in zip(self.metrics, expected, actual)
            if e is not None and e != a
        ]
        if wrong:
            raise ValueError(
                f"The study's directions {actual} contradict metric {list(self.metrics)}: "
                f"{'; '.join(wrong)}. Create it with "
                "optuna.create_study(directions=objective.directions)."
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


def _trial_key(trial: optuna.Trial) -> int:
    """The trial's number, or the original's for a heartbeat re-run (seed, checkpoint)."""
    retried = retried_trial_number(trial) if isinstance(trial, optuna.Trial) else None
    return trial.number if retried is None else retried


def _check_directions_arg(
    metrics: tuple[str, ...], directions: Sequence[str] | str
) -> tuple[Direction, ...]:
    """Validate ``NASObjective(directions=...)`` against the metrics."""
    given = (directions,) if isinstance(directions, str) else tuple(directions)
    if len(given) != len(metrics) or any(d not in ("minimize", "maximize") for d in given):
        raise ValueError(
            f"directions must hold one 'maximize' or 'minimize' per metric {list(metrics)}; "
            f"got {directions!r}."
        )
    for metric, direction in zip(metrics, given):
        known = known_direction(metric)
        if known is not None and known != direction:
            raise ValueError(
                f"directions says {direction!r} for metric {metric!r}, which is to {known}."
            )
    return given  # type: ignore[return-value]
