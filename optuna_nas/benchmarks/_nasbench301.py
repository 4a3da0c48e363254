"""NAS-Bench-301 (YAHPO Gym surrogate) over our DARTS search space, with learning curves."""

from __future__ import annotations

from collections.abc import Sequence
import os
from pathlib import Path
import shutil
import tempfile
import threading
from typing import TYPE_CHECKING
from typing import Any
from unittest import mock
import warnings

import numpy as np
import optuna

from optuna_nas._validation import check_int
from optuna_nas.benchmarks._data import resolve_data_dir
from optuna_nas.search_spaces._darts import PRIMITIVES
from optuna_nas.trial_outcome import InvalidArchitectureError
from optuna_nas.trial_outcome import TrialGuard


if TYPE_CHECKING:
    from optuna_nas.search_spaces._darts import DartsSearchSpace


#: The operations NAS-Bench-301 knows: the DARTS space's, without ``none``.
NB301_OPERATIONS: tuple[str, ...] = PRIMITIVES[1:]
#: The surrogate predicts the validation accuracy after 1..98 epochs of training.
NB301_MAX_EPOCHS = 98

_FILES = ("model.onnx", "encoding.json", "config_space.json")
_NUM_NODES = 4
_PREFIX = "NetworkSelectorDatasetInfo_COLON_darts_COLON_"
_CACHE: dict[Path, Any] = {}  # one yahpo BenchmarkSet per process and data folder
_CACHE_LOCK = threading.Lock()


def to_nb301_config(genotype: Any) -> dict[str, str]:
    """Map a DARTS genotype to NAS-Bench-301's configuration (YAHPO Gym ``nb301`` names).

    NAS-Bench-301 encodes a cell by its 14 possible edges (``edge_{cell}_{e}`` = operation of
    edge ``e``) and, for intermediate nodes 3..5, the unordered pair of inputs
    (``inputs_node_{cell}_{k}`` such as ``"0_2"``). Only active hyperparameters are returned; add
    ``"epoch"`` to query. Every genotype of the default ``darts`` space (``distinct_inputs=True``)
    with its seven operations maps to a configuration; the order of a node's two inputs does not
    matter.

    Args:
        genotype: A :class:`~optuna_nas.search_spaces.Genotype` (or any object with ``normal``,
            ``normal_concat``, ``reduce`` and ``reduce_concat``).

    Raises:
        InvalidArchitectureError: The genotype is outside NAS-Bench-301's space (a
            ``ValueError``): not 4 intermediate nodes, an operation NAS-Bench-301 lacks, not
            all nodes concatenated, or a node whose two inputs are the same (NAS-Bench-301
            needs two distinct inputs per node).
    """
    config: dict[str, str] = {}
    for cell in ("normal", "reduce"):
        pairs = list(getattr(genotype, cell))
        concat = list(getattr(genotype, f"{cell}_concat"))
        if len(pairs) != 2 * _NUM_NODES:
            raise InvalidArchitectureError(
                f"NAS-Bench-301 cells have {_NUM_NODES} intermediate nodes; the {cell} cell has "
                f"{len(pairs)} (operation, input) pairs instead of {2 * _NUM_NODES}."
            )
        if concat != list(range(2, 2 + _NUM_NODES)):
            raise InvalidArchitectureError(
                f"NAS-Bench-301 concatenates all intermediate nodes [2, 3, 4, 5]; "
                f"{cell}_concat is {concat!r}."
            )
        for position in range(0, len(pairs), 2):
            node = 2 + position // 2
            (op_a, in_a), (op_b, in_b) = pairs[position], pairs[position + 1]
            for op in (op_a, op_b):
                if op not in NB301_OPERATIONS:
                    raise InvalidArchitectureError(
                        f"Operation {op!r} of the {cell} cell is not in NAS-Bench-301 "
                        f"({list(NB301_OPERATIONS)!r})."
                    )
            if in_a == in_b:
                raise InvalidArchitectureError(
                    f"Node {node} of the {cell} cell reads input {in_a} twice; NAS-Bench-301 "
                    "needs two distinct inputs per node."
                )
            # Edges are numbered node by node: node k's edge from input i is offset(k) + i.
            offset = (node - 1) * node // 2 - 1
            for op, source in ((op_a, in_a), (op_b, in_b)):
                if not 0 <= source < node:
                    raise InvalidArchitectureError(
                        f"Node {node} of the {cell} cell reads node {source}."
                    )
                config[f"{_PREFIX}edge_{cell}_{offset + source}"] = op
            if node > 2:  # node 2 always reads inputs 0 and 1
                low, high = sorted((in_a, in_b))
                config[f"{_PREFIX}inputs_node_{cell}_{node}"] = f"{low}_{high}"
    return config


class NB301Benchmark:
    """The NAS-Bench-301 surrogate (YAHPO Gym ``nb301``) over the DARTS space.

    Predicts the CIFAR-10 validation accuracy (percent) of a DARTS genotype after each of 1..98
    epochs, so pruners see learning curves. Needs the ``nb301`` extra
    (``pip install optuna-nas[nb301]``, i.e. ``yahpo-gym``) and the three surrogate files
    (``model.onnx``, ``encoding.json``, ``config_space.json``) in ``<data_dir>/nasbench301/``.
    The surrogate is loaded once per process and folder.

    Args:
        data_dir: The folder holding ``nasbench301/``; ``None`` means ``$OPTUNA_NAS_DATA`` (see
            :func:`~optuna_nas.benchmarks.resolve_data_dir`).

    Example:
        .. code-block:: python

            import optuna
            from optuna_nas.benchmarks import NB301Benchmark

            bench = NB301Benchmark()
            objective = bench.objective(max_epochs=20)
            study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner())
            study.optimize(objective, n_trials=20)
    """

    def __init__(self, *, data_dir: str | os.PathLike[str] | None = None) -> None:
        folder = resolve_data_dir(data_dir) / "nasbench301"
        missing = [name for name in _FILES if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(
                f"NAS-Bench-301 file(s) {missing!r} missing in {str(folder)!r}."
            )
        self._folder = folder
        self._bench = _benchmark_set(folder)

    @classmethod
    def load(cls, data_dir: str | os.PathLike[str] | None = None) -> NB301Benchmark:
        """``NB301Benchmark(data_dir=data_dir)``, named like :meth:`NB201Benchmark.load`."""
        return cls(data_dir=data_dir)

    def learning_curve(
        self, genotype: Any, epochs: int | Sequence[int] = NB301_MAX_EPOCHS
    ) -> np.ndarray:
        """Predicted validation accuracy (percent) of ``genotype``.

        Args:
            genotype: A DARTS genotype inside NAS-Bench-301's space (see :func:`to_nb301_config`).
            epochs: ``n`` for epochs ``1..n``, or an explicit list of epochs (1..98).

        Returns:
            One accuracy per epoch, predicted in a single batched surrogate call.
        """
        if isinstance(epochs, (int, np.integer)):
            epochs = list(range(1, int(epochs) + 1))
        epoch_list = [int(e) for e in epochs]
        if not epoch_list or not all(1 <= e <= NB301_MAX_EPOCHS for e in epoch_list):
            raise ValueError(f"epochs must lie in 1..{NB301_MAX_EPOCHS}, got {epochs!r}.")
        config = to_nb301_config(genotype)
        batch = [{**config, "epoch": e} for e in epoch_list]
        with warnings.catch_warnings():
            # yahpo-gym calls ConfigSpace APIs that ConfigSpace >= 1.0 deprecates, once a row.
            warnings.simplefilter("ignore", DeprecationWarning)
            results = self._bench.objective_function(batch)
        return np.array([100.0 * float(r["val_accuracy"]) for r in results])

    def accuracy(self, genotype: Any, epoch: int = NB301_MAX_EPOCHS) -> float:
        """Predicted validation accuracy (percent) of ``genotype`` after ``epoch`` epochs."""
        return float(self.learning_curve(genotype, [epoch])[0])

    def objective(
        self, *, max_epochs: int = NB301_MAX_EPOCHS, space: DartsSearchSpace | None = None
    ) -> NB301Objective:
        """An objective reporting the predicted learning curve epoch by epoch.

        Args:
            max_epochs: Epochs to report (1..98); the returned value is the accuracy at
                ``max_epochs``.
            space: A 4-node :class:`~optuna_nas.search_spaces.DartsSearchSpace` with operations
                from ``NB301_OPERATIONS`` (default: ``DartsSearchSpace()``, the DARTS space, whose
                nodes read two distinct inputs, so every trial is a valid NAS-Bench-301 query).
                With ``distinct_inputs=False``, cells reading the same input twice are outside
                NAS-Bench-301; those trials FAIL (NaN) with the reason in the ``fail_reason``
                user attribute.
        """
        return NB301Objective(bench=self, max_epochs=max_epochs, space=space)

    def __repr__(self) -> str:
        return f"NB301Benchmark(data_dir={str(self._folder.parent)!r})"


class NB301Objective:
    """NAS-Bench-301 objective; made by :meth:`NB301Benchmark.objective`.

    Each call suggests a genotype through the DARTS space, predicts its learning curve in one
    batched surrogate call, and reports it with 0-based epochs like every objective of the
    package (``trial.report(acc, epoch)`` for ``epoch`` in ``0..max_epochs - 1``, the accuracy
    after ``epoch + 1`` epochs of training), raising :class:`optuna.TrialPruned` when the pruner
    says so. User attributes: ``arch`` (DARTS genotype string), ``learning_curve`` (accuracies
    reported, in percent), ``epochs_used`` (epochs "trained", for compute accounting: the last
    reported epoch + 1) and, for cells outside
    NAS-Bench-301 (only possible with a ``distinct_inputs=False`` space), ``fail_reason``.
    """

    directions: tuple[str, ...] = ("maximize",)

    def __init__(
        self, *, bench: NB301Benchmark, max_epochs: int, space: DartsSearchSpace | None
    ) -> None:
        check_int("max_epochs", max_epochs, minimum=1, maximum=NB301_MAX_EPOCHS)
        if space is None:
            from optuna_nas.search_spaces._darts import DartsSearchSpace

            space = DartsSearchSpace()
        num_nodes = getattr(space, "num_nodes", None)
        outside = sorted(set(getattr(space, "operations", ())) - set(NB301_OPERATIONS))
        if num_nodes != _NUM_NODES or outside:
            raise ValueError(
                f"space must be a DARTS space with {_NUM_NODES} nodes and operations from "
                f"{list(NB301_OPERATIONS)!r}; got {space!r}."
            )
        self.bench = bench
        self.max_epochs = int(max_epochs)
        self.space = space

    def __call__(self, trial: optuna.Trial) -> float:
        guard = TrialGuard(trial)
        with guard:
            return self._evaluate(trial)
        # Outside NB301 (a node reading one input twice, possible only in a
        # distinct_inputs=False space): this trial FAILs, not the study.
        return float("nan")

    def _evaluate(self, trial: optuna.Trial) -> float:
        genotype = self.space.suggest(trial)
        trial.set_user_attr("arch", self.space.to_string(genotype))
        curve = self.bench.learning_curve(genotype, self.max_epochs)
        # Step `epoch` (0-based) holds the surrogate's value after `epoch + 1` epochs.
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
        return f"NB301Objective(max_epochs={self.max_epochs}, space={self.space!r})"


def _benchmark_set(folder: Path) -> Any:
    """The yahpo ``nb301`` BenchmarkSet for ``folder``, created once per process."""
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
            "The NAS-Bench-301 benchmark needs yahpo-gym: pip install 'optuna-nas[nb301]'."
        ) from e
    with tempfile.TemporaryDirectory(prefix="optuna_nas_nb301_") as tmp:
        # yahpo reads <data_path>/nb301/; it keeps its data path in ~/.config/yahpo_gym, which
        # set_data_path would overwrite for every program of the user. A private configuration
        # pointed at the temporary folder, active only while loading, leaves that file alone.
        (Path(tmp) / "nb301").mkdir()
        for name in _FILES:
            shutil.copy(folder / name, Path(tmp) / "nb301" / name)
        config = LocalConfiguration(settings_path=str(Path(tmp) / "yahpo_gym.yaml"))
        config.init_config(data_path=tmp)
        with (
            warnings.catch_warnings(),
            mock.patch.object(yahpo_configuration, "local_config", config),
        ):
            # ConfigSpace >= 1.0 warns about the legacy JSON format of config_space.json.
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            # The ONNX session is created here, so the temporary files are not needed later.
            bench = BenchmarkSet("nb301", check=False, multithread=False)
    space = bench.config_space
    if not hasattr(space, "_sort_hyperparameters"):
        # yahpo-gym 1.0.x calls this ConfigSpace < 1.0 method before every query; ConfigSpace
        # >= 1.0 removed it because it always keeps hyperparameters sorted, so a no-op is exact.
        space._sort_hyperparameters = lambda: None
    return bench
