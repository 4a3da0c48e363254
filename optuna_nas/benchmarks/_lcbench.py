"""LCBench (YAHPO Gym surrogate): learning curves of MLPs on 34 OpenML datasets."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import os
from pathlib import Path
import shutil
import tempfile
import threading
from typing import Any
from unittest import mock
import warnings

import numpy as np
import optuna

from optuna_nas._validation import check_int
from optuna_nas.benchmarks._data import resolve_data_dir


#: The surrogate predicts the learning curve after 1..52 epochs of training.
LCBENCH_MAX_EPOCHS = 52
#: The OpenML task ids LCBench covers (YAHPO Gym's instances).
LCBENCH_INSTANCES: tuple[str, ...] = (
    "3945",
    "7593",
    "34539",
    "126025",
    "126026",
    "126029",
    "146212",
    "167104",
    "167149",
    "167152",
    "167161",
    "167168",
    "167181",
    "167184",
    "167185",
    "167190",
    "167200",
    "167201",
    "168329",
    "168330",
    "168331",
    "168335",
    "168868",
    "168908",
    "168910",
    "189354",
    "189862",
    "189865",
    "189866",
    "189873",
    "189905",
    "189906",
    "189908",
    "189909",
)
#: The hyperparameters of LCBench's funnel-shaped MLPs: name -> (low, high, log, integer).
LCBENCH_SPACE: dict[str, tuple[float, float, bool, bool]] = {
    "batch_size": (16, 512, True, True),
    "learning_rate": (1e-4, 1e-1, True, False),
    "max_dropout": (0.0, 1.0, False, False),
    "max_units": (64, 1024, True, True),
    "momentum": (0.1, 0.99, False, False),
    "num_layers": (1, 5, False, True),
    "weight_decay": (1e-5, 1e-1, False, False),
}

_FILES = ("model.onnx", "encoding.json", "config_space.json")
_CACHE: dict[Path, Any] = {}  # one yahpo BenchmarkSet per process and data folder
_CACHE_LOCK = threading.Lock()


class LCBenchBenchmark:
    """The LCBench surrogate (Zimmer et al. 2021, YAHPO Gym ``lcbench``) on one dataset.

    Predicts the validation accuracy (percent) of an MLP configuration of
    :data:`LCBENCH_SPACE` after each of 1..52 epochs on the OpenML task ``instance``. Its
    curves differ from NAS-Bench-301's: many saturate within a few epochs, some peak and
    decline. Needs ``yahpo-gym`` (the ``nb301`` extra) and the three surrogate files
    (``model.onnx``, ``encoding.json``, ``config_space.json``) in ``<data_dir>/lcbench/``; the
    surrogate is loaded once per process and folder, a curve takes about 2 ms.

    Args:
        instance: The OpenML task id, one of :data:`LCBENCH_INSTANCES`.
        data_dir: The folder holding ``lcbench/``; ``None`` means ``$OPTUNA_NAS_DATA`` (see
            :func:`~optuna_nas.benchmarks.resolve_data_dir`).

    Raises:
        ValueError: ``instance`` is not an LCBench task.
        FileNotFoundError: The data folder or one of the files is missing.
        ImportError: ``yahpo-gym`` is not installed.

    Example:
        .. code-block:: python

            import optuna
            from optuna_nas.benchmarks import LCBenchBenchmark

            objective = LCBenchBenchmark(instance="3945").objective()
            study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner())
            study.optimize(objective, n_trials=20)
    """

    def __init__(
        self, *, instance: str = "3945", data_dir: str | os.PathLike[str] | None = None
    ) -> None:
        instance = str(instance)
        if instance not in LCBENCH_INSTANCES:
            raise ValueError(
                f"instance must be one of the LCBench tasks {list(LCBENCH_INSTANCES)!r}, "
                f"got {instance=}."
            )
        folder = resolve_data_dir(data_dir) / "lcbench"
        missing = [name for name in _FILES if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(f"LCBench file(s) {missing!r} missing in {str(folder)!r}.")
        self._folder = folder
        self.instance = instance
        self._bench = _benchmark_set(folder)

    def learning_curve(
        self,
        config: Mapping[str, Any],
        epochs: int | Sequence[int] = LCBENCH_MAX_EPOCHS,
        metric: str = "val_accuracy",
    ) -> np.ndarray:
        """Predicted ``metric`` of ``config`` after each epoch, in one batched call.

        Args:
            config: Values of the :data:`LCBENCH_SPACE` hyperparameters.
            epochs: ``n`` for epochs ``1..n``, or an explicit list of epochs (1..52).
            metric: A YAHPO ``lcbench`` output: ``val_accuracy`` (percent, the default),
                ``val_balanced_accuracy``, ``val_cross_entropy``, ``test_balanced_accuracy``,
                ``test_cross_entropy`` or ``time``.
        """
        if isinstance(epochs, (int, np.integer)):
            epochs = list(range(1, int(epochs) + 1))
        epoch_list = [int(e) for e in epochs]
        if not epoch_list or not all(1 <= e <= LCBENCH_MAX_EPOCHS for e in epoch_list):
            raise ValueError(f"epochs must lie in 1..{LCBENCH_MAX_EPOCHS}, got {epochs!r}.")
        missing = sorted(set(LCBENCH_SPACE) - set(config))
        if missing:
            raise ValueError(f"config lacks the LCBench hyperparameter(s) {missing!r}.")
        row = {name: _cast(name, config[name]) for name in LCBENCH_SPACE}
        row["OpenML_task_id"] = self.instance
        batch = [{**row, "epoch": e} for e in epoch_list]
        with _BENCH_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self._bench.set_instance(self.instance)
            results = self._bench.objective_function(batch)
        return np.array([float(r[metric]) for r in results])

    def objective(self, *, max_epochs: int = LCBENCH_MAX_EPOCHS) -> LCBenchObjective:
        """An objective that suggests a configuration and reports its curve epoch by epoch."""
        return LCBenchObjective(bench=self, max_epochs=max_epochs)

    def __repr__(self) -> str:
        return (
            f"LCBenchBenchmark(instance={self.instance!r}, data_dir={str(self._folder.parent)!r})"
        )


class LCBenchObjective:
    """LCBench objective; made by :meth:`LCBenchBenchmark.objective`.

    Each call suggests the seven hyperparameters of :data:`LCBENCH_SPACE` (parameter names as
    in LCBench, integers as ``suggest_int``, log scales as in the surrogate's space), predicts
    the validation-accuracy curve in one batched call and reports it with 0-based epochs
    (``trial.report(acc, epoch)``, the accuracy in percent after ``epoch + 1`` epochs),
    raising :class:`optuna.TrialPruned` when the pruner says so. It returns the accuracy at
    ``max_epochs`` (the *final* value, not the best of the curve: LCBench curves may peak and
    decline). User attributes: ``learning_curve`` (the values reported) and ``epochs_used``.
    """

    directions: tuple[str, ...] = ("maximize",)

    def __init__(self, *, bench: LCBenchBenchmark, max_epochs: int) -> None:
        check_int("max_epochs", max_epochs, minimum=1, maximum=LCBENCH_MAX_EPOCHS)
        self.bench = bench
        self.max_epochs = int(max_epochs)

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Suggest one configuration of :data:`LCBENCH_SPACE`."""
        config: dict[str, Any] = {}
        for name, (low, high, log, integer) in LCBENCH_SPACE.items():
            if integer:
                config[name] = trial.suggest_int(name, int(low), int(high), log=log)
            else:
                config[name] = trial.suggest_float(name, low, high, log=log)
        return config

    def __call__(self, trial: optuna.Trial) -> float:
        curve = self.bench.learning_curve(self.suggest(trial), self.max_epochs)
        for epoch, accuracy in enumerate(curve):
            trial.report(float(accuracy), epoch)
            if trial.should_prune():
                trial.set_user_attr("learning_curve", [float(a) for a in curve[: epoch + 1]])
                trial.set_user_attr("epochs_used", epoch + 1)
                raise optuna.TrialPruned(f"Pruned at epoch {epoch}.")
        trial.set_user_attr("learning_curve", [float(a) for a in curve])
        trial.set_user_attr("epochs_used", self.max_epochs)
        return float(curve[-1])

    def __repr__(self) -> str:
        return f"LCBenchObjective(max_epochs={self.max_epochs}, bench={self.bench!r})"


_BENCH_LOCK = threading.Lock()  # set_instance + query must not interleave across threads


def _cast(name: str, value: Any) -> Any:
    return int(round(float(value))) if LCBENCH_SPACE[name][3] else float(value)


def _benchmark_set(folder: Path) -> Any:
    """The yahpo ``lcbench`` BenchmarkSet for ``folder``, created once per process."""
    with _CACHE_LOCK:
        if folder not in _CACHE:
            _CACHE[folder] = _load_benchmark_set(folder)
        return _CACHE[folder]


def _load_benchmark_set(folder: Path) -> Any:
    try:
        from yahpo_gym import BenchmarkSet
        from yahpo_gym import configuration as yahpo_configuration
        from yahpo_gym.local_config import LocalConfiguration
    except ImportError as e:
        raise ImportError(
            "The LCBench benchmark needs yahpo-gym: pip install 'optuna-nas[nb301]'."
        ) from e
    with tempfile.TemporaryDirectory(prefix="optuna_nas_lcbench_") as tmp:
        # As for NB301: a private yahpo configuration, active only while loading, so that the
        # user's ~/.config/yahpo_gym is left alone.
        (Path(tmp) / "lcbench").mkdir()
        for name in _FILES:
            shutil.copy(folder / name, Path(tmp) / "lcbench" / name)
        config = LocalConfiguration(settings_path=str(Path(tmp) / "yahpo_gym.yaml"))
        config.init_config(data_path=tmp)
        with (
            warnings.catch_warnings(),
            mock.patch.object(yahpo_configuration, "local_config", config),
        ):
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            bench = BenchmarkSet(
                "lcbench", instance=LCBENCH_INSTANCES[0], check=False, multithread=False
            )
    space = bench.config_space
    if not hasattr(space, "_sort_hyperparameters"):
        # yahpo-gym 1.0.x calls this ConfigSpace < 1.0 method before every query; ConfigSpace
        # >= 1.0 always keeps hyperparameters sorted, so a no-op is exact (see _nasbench301).
        space._sort_hyperparameters = lambda: None
    return bench
