"""Retrain a found architecture at full scale with its search space's published protocol.

A search trains many children briefly (few epochs, narrow networks); the architecture it finds
is then trained once more from scratch with the evaluation recipe of its space's paper, and
that run's test accuracy is the number papers report. This module holds those recipes
(:data:`PROTOCOLS`, :class:`RetrainProtocol`), the run (:func:`retrain`, one Lightning fit of a
:class:`~optuna_nas.training.ChildModule` plus a test) and the record of its result in the
search study (:func:`retrain_results`), so that the dashboard shows search and retrained
accuracy side by side.

Importing this module does not import Lightning (only :func:`retrain` does), so reading the
protocols or a study's results stays light.

Example:
    A smoke run: the NAS-Bench-201 protocol cut down to one epoch of a tiny network on the
    embedded 8x8 digits (a few seconds on a CPU).

    .. code-block:: python

        from optuna_nas.retrain import get_protocol, retrain
        from optuna_nas.training import EmbeddedDataModule

        cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
        smoke = get_protocol("nasbench201", epochs=1, batch_size=64, build_kwargs={"channels": 4, "cells_per_stage": 1})
        result = retrain("nasbench201", cell, EmbeddedDataModule(dataset="digits", subset=300, image_size=8), protocol=smoke)
        print(result.test_acc, result.n_params)
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
from dataclasses import dataclass
from dataclasses import field
import datetime
import json
import math
import os
import re
import time
from typing import TYPE_CHECKING
from typing import Any
import warnings

from optuna_nas._validation import check_int
from optuna_nas._validation import check_number
from optuna_nas._validation import check_seed
from optuna_nas.search_spaces import SearchSpace
from optuna_nas.search_spaces import create_search_space
from optuna_nas.trial_outcome import InvalidArchitectureError


if TYPE_CHECKING:
    import optuna
    from torch import nn


__all__ = [
    "PROTOCOLS",
    "RetrainProtocol",
    "RetrainResult",
    "get_protocol",
    "retrain",
    "retrain_results",
]

_OPTIMIZERS = ("sgd", "adamw")
_SCHEDULERS = ("cosine", "none")
#: The study user attribute of the retrain of trial ``n`` (read by the dashboard helper).
_ATTR_PREFIX = "retrain:trial_"
_ATTR_RE = re.compile(r"retrain:trial_(0|[1-9]\d*)")
#: Lightning Trainer defaults of a retrain (``trainer_kwargs`` overrides them).
_TRAINER_DEFAULTS: Mapping[str, Any] = {
    "accelerator": "auto",
    "devices": 1,
    "logger": False,
    # Checkpoints are this module's own (EpochCheckpoint, see retrain()).
    "enable_checkpointing": False,
    "num_sanity_val_steps": 0,
}
#: Trainer arguments that the protocol sets: giving them too would contradict it.
_PROTOCOL_TRAINER_KEYS = {"max_epochs": "epochs", "gradient_clip_val": "gradient_clip_val"}


@dataclass(frozen=True)
class RetrainProtocol:
    """One evaluation recipe: how a found architecture is trained from scratch and tested.

    The fields map onto :class:`~optuna_nas.training.ChildModule` (optimizer and schedule,
    auxiliary loss, drop-path), the ``lightning.Trainer`` (``epochs``, ``gradient_clip_val``),
    the data module (``batch_size``, ``cutout``) and ``space.build`` (``build_kwargs``). The
    cosine schedule is stepped every batch (the references step it every epoch; the curves
    differ by less than one epoch's step).

    Attributes:
        epochs: Training epochs.
        batch_size: Training batch size per process (under DDP each of ``N`` devices takes
            this many, as Lightning does).
        optimizer: ``"sgd"`` or ``"adamw"``.
        lr: Initial learning rate.
        momentum: SGD momentum.
        nesterov: Nesterov momentum (SGD).
        weight_decay: Weight decay.
        lr_min: Final learning rate of the cosine schedule.
        scheduler: ``"cosine"`` or ``"none"``.
        cutout: Side of the Cutout square (0: none).
        drop_path_prob: Final drop-path probability, ramped linearly from 0 over the epochs
            (networks with a ``drop_path_prob`` attribute, e.g. DARTS).
        aux_weight: Weight of the auxiliary head's loss (networks that return one).
        gradient_clip_val: Gradient norm clipping, ``None`` for none.
        build_kwargs: Options of ``space.build`` (width, depth, auxiliary head).
        label_smoothing: Label smoothing of the training loss.
        source: Where the recipe comes from (paper and code).
    """

    epochs: int
    batch_size: int
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    lr_min: float = 0.0
    scheduler: str = "cosine"
    cutout: int = 0
    drop_path_prob: float = 0.0
    aux_weight: float = 0.0
    gradient_clip_val: float | None = None
    build_kwargs: Mapping[str, Any] = field(default_factory=dict, hash=False)
    label_smoothing: float = 0.0
    source: str = ""

    def __post_init__(self) -> None:
        check_int("epochs", self.epochs, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {_OPTIMIZERS}; got {self.optimizer!r}.")
        if self.scheduler not in _SCHEDULERS:
            raise ValueError(f"scheduler must be one of {_SCHEDULERS}; got {self.scheduler!r}.")
        check_number("lr", self.lr, minimum=0.0, min_inclusive=False)
        check_number("lr_min", self.lr_min, minimum=0.0, maximum=self.lr)
        check_number("momentum", self.momentum, minimum=0.0, maximum=1.0, max_inclusive=False)
        if not isinstance(self.nesterov, bool):
            raise ValueError(f"nesterov must be a bool; got {self.nesterov!r}.")
        check_number("weight_decay", self.weight_decay, minimum=0.0)
        check_int("cutout", self.cutout, minimum=0)
        check_number(
            "drop_path_prob", self.drop_path_prob, minimum=0.0, maximum=1.0, max_inclusive=False
        )
        check_number("aux_weight", self.aux_weight, minimum=0.0)
        if self.gradient_clip_val is not None:
            check_number(
                "gradient_clip_val", self.gradient_clip_val, minimum=0.0, min_inclusive=False
            )
        check_number(
            "label_smoothing", self.label_smoothing, minimum=0.0, maximum=1.0, max_inclusive=False
        )
        if not isinstance(self.build_kwargs, Mapping) or not all(
            isinstance(k, str) for k in self.build_kwargs
        ):
            raise ValueError(
                f"build_kwargs must be a mapping with str keys; got {self.build_kwargs!r}."
            )
        if not isinstance(self.source, str):
            raise ValueError(f"source must be a str; got {self.source!r}.")
        # A private copy: the caller's dict may change later, a protocol may not.
        object.__setattr__(self, "build_kwargs", dict(self.build_kwargs))

    def replace(self, **overrides: Any) -> RetrainProtocol:
        """A copy with some fields changed (validated like the constructor).

        ``build_kwargs`` is replaced as a whole, not merged.

        Raises:
            ValueError: A name is not a field (the message lists the fields), or a value is
                invalid (the message names it).

        Example:
            >>> from optuna_nas.retrain import get_protocol
            >>> get_protocol("darts").replace(epochs=2, cutout=4).epochs
            2
        """
        fields = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(overrides) - set(fields))
        if unknown:
            raise ValueError(
                f"Unknown RetrainProtocol field(s) {unknown!r}; expected some of {fields!r}."
            )
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-friendly dict (``dataclasses.asdict``)."""
        return dataclasses.asdict(self)


#: The published evaluation protocols of the built-in search spaces, by space name.
PROTOCOLS: Mapping[str, RetrainProtocol] = {
    "darts": RetrainProtocol(
        epochs=600,
        batch_size=96,
        optimizer="sgd",
        lr=0.025,
        momentum=0.9,
        # DARTS' cnn/train.py builds torch.optim.SGD(..., momentum=0.9, weight_decay=3e-4)
        # without nesterov=True: plain momentum.
        nesterov=False,
        weight_decay=3e-4,
        lr_min=0.0,
        scheduler="cosine",
        cutout=16,
        drop_path_prob=0.2,
        aux_weight=0.4,
        gradient_clip_val=5.0,
        build_kwargs={"channels": 36, "layers": 20, "auxiliary": True},
        label_smoothing=0.0,
        source=(
            "Liu, Simonyan & Yang, DARTS: Differentiable Architecture Search, ICLR 2019, "
            "CIFAR-10 evaluation (Sec. 3.3 and A.2; quark0/darts cnn/train.py defaults)."
        ),
    ),
    "nasbench201": RetrainProtocol(
        epochs=200,
        batch_size=256,
        optimizer="sgd",
        lr=0.1,
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-4,
        lr_min=0.0,
        scheduler="cosine",
        cutout=0,
        drop_path_prob=0.0,
        aux_weight=0.0,
        gradient_clip_val=None,
        build_kwargs={"channels": 16, "cells_per_stage": 5},
        label_smoothing=0.0,
        source=(
            "Dong & Yang, NAS-Bench-201: Extending the Scope of Reproducible Neural "
            "Architecture Search, ICLR 2020, Table 4 (200 epochs; AutoDL-Projects "
            "configs/nas-benchmark/hyper-opts/200E.config)."
        ),
    ),
    "macro": RetrainProtocol(
        epochs=200,
        batch_size=256,
        optimizer="sgd",
        lr=0.1,
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-4,
        lr_min=0.0,
        scheduler="cosine",
        cutout=0,
        drop_path_prob=0.0,
        aux_weight=0.0,
        gradient_clip_val=None,
        build_kwargs={},
        label_smoothing=0.0,
        source=(
            "No published evaluation protocol for this macro space (Zoph & Le, ICLR 2017 / "
            "Pham et al., ENAS, ICML 2018): ENAS retrains its macro networks with cosine warm "
            "restarts (SGDR), which ChildModule does not implement, so the NAS-Bench-201 "
            "recipe (Dong & Yang, ICLR 2020) is used, at the space's own widths."
        ),
    ),
}


def get_protocol(space_name: str, **overrides: Any) -> RetrainProtocol:
    """The published protocol of a search space, optionally with some fields changed.

    Args:
        space_name: A key of :data:`PROTOCOLS` (``"darts"``, ``"nasbench201"``, ``"macro"``).
        **overrides: Fields to change (:meth:`RetrainProtocol.replace`).

    Raises:
        ValueError: The space has no protocol (the message lists those that do), or an
            override is invalid.

    Example:
        >>> from optuna_nas.retrain import get_protocol
        >>> get_protocol("nasbench201", epochs=1).lr
        0.1
    """
    try:
        protocol = PROTOCOLS[space_name]
    except (KeyError, TypeError):
        raise ValueError(
            f"No retraining protocol for search space {space_name!r}; known: "
            f"{sorted(PROTOCOLS)!r}. Pass protocol=RetrainProtocol(...) for other spaces."
        ) from None
    return protocol.replace(**overrides) if overrides else protocol


@dataclass(frozen=True)
class RetrainResult:
    """What :func:`retrain` returns.

    Attributes:
        test_acc: Top-1 accuracy on the data module's test split (or its validation split when
            it has no test split, see ``split``).
        test_loss: Cross-entropy on the same split.
        val_acc_curve: Validation accuracy after each epoch (resumed runs included).
        epochs: Epochs trained in all (those of a resumed checkpoint included).
        protocol: The protocol used.
        n_params: Parameters of the network without its auxiliary head (as papers count).
        train_time_s: Seconds of training in this call (a resumed call counts only its own).
        network: The trained ``torch.nn.Module`` (on the CPU after DDP, in evaluation mode).
        checkpoint_path: The last epoch's checkpoint, or ``None`` without ``checkpoint_dir``.
        split: ``"test"`` or ``"val"``: the split ``test_acc`` was measured on.
        arch: The architecture's string.
    """

    test_acc: float
    test_loss: float
    val_acc_curve: tuple[float, ...]
    epochs: int
    protocol: RetrainProtocol
    n_params: int
    train_time_s: float
    network: nn.Module = field(repr=False, compare=False)
    checkpoint_path: str | None = None
    split: str = "test"
    arch: str = ""


def retrain_results(study: optuna.Study) -> dict[int, dict[str, Any]]:
    """The retrain results recorded in ``study`` by :func:`retrain`, by search trial number.

    They are study user attributes ``"retrain:trial_<n>"`` (a finished trial's own
    attributes cannot change), each a dict with ``test_acc``, ``test_loss``, ``epochs``,
    ``protocol`` (the :class:`RetrainProtocol` as a dict), ``n_params``, ``train_time_s`` and
    ``finished_at`` (ISO 8601, UTC), plus ``arch``, ``search_space`` and ``split``.

    Example:
        >>> import optuna
        >>> from optuna_nas.retrain import retrain_results
        >>> retrain_results(optuna.create_study())
        {}
    """
    results: dict[int, dict[str, Any]] = {}
    for key, value in study.user_attrs.items():
        match = _ATTR_RE.fullmatch(key)
        if match is not None and isinstance(value, dict):
            results[int(match.group(1))] = value
    return dict(sorted(results.items()))


# ------------------------------------------------------------------------------------ retrain
def _resolve(space: SearchSpace[Any] | str, arch: Any) -> tuple[SearchSpace[Any], Any, str]:
    if isinstance(space, str):
        space = create_search_space(space)
    elif not isinstance(space, SearchSpace):
        raise ValueError(
            f"space must be a SearchSpace or a registered name; got {type(space).__name__}."
        )
    try:
        parsed = space.from_string(arch) if isinstance(arch, str) else arch
        text = space.to_string(parsed)
    except (ValueError, TypeError, AttributeError, KeyError) as error:
        raise InvalidArchitectureError(
            f"Cannot retrain {arch!r}: not an architecture of search space {space.name!r} "
            f"({error})"
        ) from error
    return space, parsed, text


def _check_record_target(study: optuna.Study | None, trial_number: int | None) -> None:
    if study is None and trial_number is None:
        return
    if study is None or trial_number is None:
        raise ValueError(
            "study and trial_number go together (the result is recorded for that trial of that "
            f"study); got study={study!r}, trial_number={trial_number!r}."
        )
    check_int("trial_number", trial_number, minimum=0)
    if not any(t.number == trial_number for t in study.get_trials(deepcopy=False)):
        raise ValueError(
            f"trial_number={trial_number!r} is not a trial of study {study.study_name!r}."
        )


def _has_test_split(datamodule: Any) -> bool:
    from lightning.pytorch import LightningDataModule

    from optuna_nas.training._datamodules import _ImageDataModule

    if isinstance(datamodule, _ImageDataModule):
        datamodule.setup("test")
        return datamodule._has("test")
    # Another data module: it has a test split if it overrides Lightning's test_dataloader.
    return type(datamodule).test_dataloader is not LightningDataModule.test_dataloader


def _check_resume(checkpoint_dir: str, run: dict[str, Any]) -> str:
    """Path of ``last.ckpt``; refuse to resume a checkpoint of another run (JSON sidecar)."""
    os.makedirs(checkpoint_dir, exist_ok=True)
    sidecar = os.path.join(checkpoint_dir, "retrain.json")
    checkpoint = os.path.join(checkpoint_dir, "last.ckpt")
    if os.path.isfile(checkpoint) and os.path.isfile(sidecar):
        with open(sidecar) as f:
            previous = json.load(f)
        if previous != run:
            changed = sorted(k for k in run if previous.get(k) != run[k])
            raise ValueError(
                f"checkpoint_dir={checkpoint_dir!r} holds a retrain with other settings "
                f"({changed!r} differ); resume with the same ones or use another folder."
            )
    with open(sidecar, "w") as f:
        json.dump(run, f, indent=1, sort_keys=True)
    return checkpoint


def retrain(
    space: SearchSpace[Any] | str,
    arch: Any,
    datamodule: Any,
    *,
    protocol: RetrainProtocol | str | None = None,
    trainer_kwargs: Mapping[str, Any] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    study: optuna.Study | None = None,
    trial_number: int | None = None,
    verbose: bool = False,
) -> RetrainResult:
    """Train ``arch`` from scratch with a protocol, test it, and optionally record the result.

    Builds ``space.build(arch, num_classes=datamodule.num_classes,
    in_channels=datamodule.in_channels, **protocol.build_kwargs)`` (after
    ``lightning.seed_everything(seed)``), trains it as a
    :class:`~optuna_nas.training.ChildModule` with the protocol's optimizer, cosine schedule,
    auxiliary loss and drop-path ramp, in a ``lightning.Trainer(max_epochs=protocol.epochs,
    gradient_clip_val=protocol.gradient_clip_val, **trainer_kwargs)``, and evaluates it with
    ``Trainer.test`` on the data module's test split, or with ``Trainer.validate`` on its
    validation split when it has no test split (``result.split`` says which).

    The data module is the caller's: for the fit, its ``batch_size`` and ``cutout`` attributes
    (the built-in image data modules have both) are set to the protocol's, and put back
    afterwards. A data module without ``cutout`` gets none (with a warning if the protocol has
    one); its own augmentation applies as configured (e.g. ``augment=True`` for the random
    crop and flip that DARTS and NAS-Bench-201 use on CIFAR-10).

    Devices: ``trainer_kwargs`` goes to the Trainer, so one GPU is the default
    (``accelerator="auto", devices=1``) and data-parallel training is
    ``trainer_kwargs={"devices": 2, "strategy": "ddp_spawn"}`` (or ``"ddp_fork"``). Lightning's
    plain ``"ddp"`` re-runs the calling script in every process and is refused. ``max_epochs``
    and ``gradient_clip_val`` come from the protocol: change them with
    ``protocol.replace(...)``.

    Resuming: with ``checkpoint_dir``, the training state (weights, optimizer, schedule, loop
    progress, learning curve and random number generators) is saved at the end of every epoch
    to ``checkpoint_dir/last.ckpt``, and a later call with the same folder resumes from it:
    the result equals an uninterrupted run's (on the same device). The folder also keeps
    ``retrain.json`` (space, architecture, protocol, seed), and a call with other settings
    refuses to resume. A finished run's checkpoint stays (``result.checkpoint_path``); calling
    again only re-tests it.

    Recording: with ``study`` and ``trial_number`` (the search trial whose architecture this
    is), the result is stored as the study user attribute ``"retrain:trial_<n>"`` (see
    :func:`retrain_results`). A failed retrain records nothing.

    Args:
        space: The search space, or its registry name (created with default arguments).
        arch: The architecture, or its string (``space.to_string`` format).
        datamodule: A Lightning data module with ``num_classes`` and ``in_channels``.
        protocol: A :class:`RetrainProtocol`, a space name of :data:`PROTOCOLS`, or ``None``
            for the protocol of ``space.name``.
        trainer_kwargs: More ``lightning.Trainer`` arguments (``callbacks`` are added after
            this function's own).
        checkpoint_dir: Folder of the per-epoch checkpoint (see "Resuming").
        seed: Seed of the network's initialization and of training randomness (drop-path).
            The data order and augmentation follow the data module's own ``seed``.
        study: The search study to record the result in (with ``trial_number``).
        trial_number: The number of the search trial that found ``arch``.
        verbose: Show Lightning's progress bar, model summary and messages.

    Returns:
        The :class:`RetrainResult`.

    Raises:
        InvalidArchitectureError: ``arch`` is not an architecture of ``space`` (a
            ``ValueError`` that quotes it).
        ValueError: A bad argument: an unknown space or protocol, a protocol field given in
            ``trainer_kwargs``, ``strategy="ddp"``, a cutout as large as the images, a
            checkpoint of other settings, ``study`` without ``trial_number`` or a trial number
            the study does not have.
        NonFiniteError: The training loss became NaN or infinite.
        RuntimeError: The device ran out of memory (the message suggests a smaller batch).
    """
    import lightning.pytorch as pl

    from optuna_nas.training._callbacks import EpochCheckpoint
    from optuna_nas.training._callbacks import LearningCurveCallback
    from optuna_nas.training._ddp import DDPWorkerCallback
    from optuna_nas.training._ddp import check_launcher
    from optuna_nas.training._ddp import finish_fit
    from optuna_nas.training._fit_context import quiet_lightning
    from optuna_nas.training._measure import count_parameters
    from optuna_nas.training._module import ChildModule
    from optuna_nas.trial_outcome import NonFiniteError
    from optuna_nas.trial_outcome import is_out_of_memory

    space, parsed, arch_text = _resolve(space, arch)
    if protocol is None:
        protocol = space.name
    if isinstance(protocol, str):
        protocol = get_protocol(protocol)
    if not isinstance(protocol, RetrainProtocol):
        raise ValueError(
            f"protocol must be a RetrainProtocol, a space name or None; got {protocol!r}."
        )
    check_seed(seed, allow_none=False)
    _check_record_target(study, trial_number)
    for attr in ("num_classes", "in_channels"):
        if not hasattr(datamodule, attr):
            raise ValueError(f"datamodule must have a {attr!r} attribute; got {datamodule!r}.")
    trainer_kwargs = dict(trainer_kwargs or {})
    clashes = {k: v for k, v in _PROTOCOL_TRAINER_KEYS.items() if k in trainer_kwargs}
    if clashes:
        raise ValueError(
            f"trainer_kwargs must not set {sorted(clashes)!r}: they come from the protocol; use "
            f"protocol.replace({', '.join(f'{v}=...' for v in clashes.values())}) instead."
        )
    has_cutout = hasattr(datamodule, "cutout")
    image_size = getattr(datamodule, "image_size", None)
    if has_cutout and isinstance(image_size, int) and protocol.cutout >= image_size:
        raise ValueError(
            f"protocol.cutout={protocol.cutout!r} is not smaller than the images "
            f"({image_size}x{image_size}); use protocol.replace(cutout=...)."
        )
    if protocol.cutout and not has_cutout:
        warnings.warn(
            f"{type(datamodule).__name__} has no 'cutout' attribute: the protocol's "
            f"cutout={protocol.cutout} is not applied.",
            stacklevel=2,
        )
    checkpoint: str | None = None
    if checkpoint_dir is not None:
        run = {
            "search_space": space.name,
            "arch": arch_text,
            "protocol": protocol.to_dict(),
            "seed": int(seed),
        }
        checkpoint = _check_resume(os.fspath(checkpoint_dir), run)
    resume = checkpoint if checkpoint is not None and os.path.isfile(checkpoint) else None

    pl.seed_everything(seed, workers=True, verbose=False)
    network = space.build(
        parsed,
        num_classes=datamodule.num_classes,
        in_channels=datamodule.in_channels,
        **protocol.build_kwargs,
    )
    module = ChildModule(
        network=network,
        num_classes=datamodule.num_classes,
        optimizer=protocol.optimizer,
        lr=protocol.lr,
        momentum=protocol.momentum,
        nesterov=protocol.nesterov,
        weight_decay=protocol.weight_decay,
        scheduler=protocol.scheduler,
        lr_min=protocol.lr_min,
        label_smoothing=protocol.label_smoothing,
        aux_weight=protocol.aux_weight,
        drop_path_prob=protocol.drop_path_prob,
    )
    curve = LearningCurveCallback(monitor=("val_acc",))
    # No trial: the callback only carries rank 0's curve back from ddp_spawn workers.
    callbacks: list[pl.Callback] = [curve, DDPWorkerCallback(None, curve)]  # type: ignore[arg-type]
    if checkpoint is not None:
        # Not ModelCheckpoint: EpochCheckpoint also saves the random number generators (the
        # drop-path masks draw from them), so that a resumed run equals an uninterrupted one.
        callbacks.append(EpochCheckpoint(checkpoint))
    kwargs = {
        **_TRAINER_DEFAULTS,
        "enable_progress_bar": verbose,
        "enable_model_summary": verbose,
        **trainer_kwargs,
    }
    kwargs["callbacks"] = [*callbacks, *list(kwargs.pop("callbacks", None) or [])]

    saved = {name: getattr(datamodule, name) for name in ("batch_size", "cutout")}
    saved = {name: value for name, value in saved.items() if hasattr(datamodule, name)}
    for name, value in (("batch_size", protocol.batch_size), ("cutout", protocol.cutout)):
        if name in saved:
            setattr(datamodule, name, value)
    start = time.perf_counter()
    try:
        with quiet_lightning(not verbose):
            trainer = pl.Trainer(
                max_epochs=protocol.epochs, gradient_clip_val=protocol.gradient_clip_val, **kwargs
            )
            check_launcher(trainer)
            start = time.perf_counter()
            # The checkpoint is this function's own file: trusted, not weights only (it holds
            # the random number generators' states).
            trainer.fit(module, datamodule=datamodule, ckpt_path=resume, weights_only=False)
            train_time = time.perf_counter() - start
            finish_fit(trainer, None, curve, None)  # type: ignore[arg-type]
            val_curve = tuple(curve.curves["val_acc"])
            epochs = curve.epochs_trained
            split = "test" if _has_test_split(datamodule) else "val"
            if split == "test":
                metrics = trainer.test(module, datamodule=datamodule, verbose=verbose)
            else:
                metrics = trainer.validate(module, datamodule=datamodule, verbose=verbose)
    except NonFiniteError as error:
        raise NonFiniteError(
            f"Retraining {arch_text!r} diverged: {error} Lower protocol.lr or set "
            "protocol.gradient_clip_val."
        ) from error
    except Exception as error:
        if is_out_of_memory(error):
            raise RuntimeError(
                f"Retraining {arch_text!r} ran out of device memory with batch_size="
                f"{protocol.batch_size} and build_kwargs={protocol.build_kwargs!r}: use a "
                "smaller protocol.batch_size, more devices or precision='16-mixed'."
            ) from error
        raise
    finally:
        for name, value in saved.items():
            setattr(datamodule, name, value)
        # Lightning leaves a reference to the trainer (and the model) in the data module.
        if getattr(datamodule, "trainer", None) is not None:
            datamodule.trainer = None

    result_metrics = metrics[0] if metrics else {}
    test_acc = float(result_metrics.get(f"{split}_acc", math.nan))
    test_loss = float(result_metrics.get(f"{split}_loss", math.nan))
    network.eval()
    result = RetrainResult(
        test_acc=test_acc,
        test_loss=test_loss,
        val_acc_curve=val_curve,
        epochs=epochs,
        protocol=protocol,
        n_params=count_parameters(network),
        train_time_s=round(train_time, 3),
        network=network,
        checkpoint_path=checkpoint,
        split=split,
        arch=arch_text,
    )
    if study is not None and trial_number is not None:
        study.set_user_attr(
            f"{_ATTR_PREFIX}{trial_number}",
            {
                "test_acc": result.test_acc,
                "test_loss": result.test_loss,
                "epochs": result.epochs,
                "protocol": protocol.to_dict(),
                "n_params": result.n_params,
                "train_time_s": result.train_time_s,
                "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                "arch": arch_text,
                "search_space": space.name,
                "split": split,
            },
        )
    return result
