"""NAS-Bench-201 (NATS-Bench topology) as a table lookup over our NB201 search space."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import csv
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from optuna_nas._validation import check_number
from optuna_nas._validation import check_seed
from optuna_nas.benchmarks._data import resolve_data_dir
from optuna_nas.search_spaces._nasbench201 import NASBench201SearchSpace
from optuna_nas.search_spaces._nasbench201 import NB201Cell
from optuna_nas.trial_outcome import TrialGuard


if TYPE_CHECKING:
    import optuna


#: Latency column used by :meth:`NB201Benchmark.multi_objective` unless another is named:
#: median latency (ms) of the network on a Pixel phone with LiteRT (HW-NAS-Bench).
DEFAULT_HARDWARE_METRIC = "latency_ms_pixel_litert"

_CIFAR10_FILE = Path("nasbench201") / "cifar10.csv"
_HARDWARE_FILE = Path("nasbench201") / "hardware.csv"


class NB201Benchmark:
    """The NAS-Bench-201 table: the test accuracy (percent) of each of the 15,625 cells.

    Objectives made by :meth:`objective` and :meth:`multi_objective` suggest through
    :class:`~optuna_nas.search_spaces.NASBench201SearchSpace`, the same call that trains real
    networks, and look the accuracy up instead of training, so a sampler can be compared in
    seconds. Use :meth:`load` for the prepared CSV files, :meth:`from_csv` for a CSV of your own,
    or :meth:`from_nats_bench` for the official NATS-Bench files.

    Args:
        archs: NAS-Bench-201 strings, one per row, e.g.
            ``"|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"``.
        accuracies: Test accuracy in percent of each row.
        indices: Official NAS-Bench-201 index of each row (default: the row number).
        hardware: Optional per-row hardware costs by column name (e.g. latency in ms).
        dataset: Name of the dataset the accuracies belong to (for messages and CSV columns).

    Example:
        .. code-block:: python

            import optuna
            from optuna_nas.benchmarks import NB201Benchmark

            bench = NB201Benchmark.load()  # the folder named by $OPTUNA_NAS_DATA
            objective = bench.objective(noise_std=0.5, seed=0)
            study = optuna.create_study(direction="maximize")
            study.optimize(objective, n_trials=50)
            print(study.best_trial.user_attrs["true_accuracy"], bench.best_accuracy)
    """

    def __init__(
        self,
        *,
        archs: Sequence[str],
        accuracies: Sequence[float],
        indices: Sequence[int] | None = None,
        hardware: Mapping[str, Sequence[float]] | None = None,
        dataset: str = "cifar10",
    ) -> None:
        space = NASBench201SearchSpace()
        if len(archs) != len(accuracies) or len(archs) == 0:
            raise ValueError(
                f"archs and accuracies must be non-empty and of equal length; got {len(archs)} "
                f"and {len(accuracies)}."
            )
        if indices is None:
            indices = range(len(archs))
        elif len(indices) != len(archs):
            raise ValueError(f"indices has {len(indices)} entries for {len(archs)} archs.")
        self._space = space
        self._dataset = dataset
        # Canonical strings (parse, print) so differently spaced inputs still match.
        self._archs = tuple(space.to_string(space.from_string(a)) for a in archs)
        self._accuracies = np.asarray(accuracies, dtype=float)
        self._indices = np.asarray(indices, dtype=np.int64)
        if not np.all(np.isfinite(self._accuracies)):
            bad = int(np.flatnonzero(~np.isfinite(self._accuracies))[0])
            raise ValueError(f"Accuracy of {self._archs[bad]!r} is {self._accuracies[bad]!r}.")
        self._row = {arch: i for i, arch in enumerate(self._archs)}
        if len(self._row) != len(self._archs):
            raise ValueError("archs contains the same cell more than once.")
        self._row_of_index = {int(idx): i for i, idx in enumerate(self._indices)}
        if len(self._row_of_index) != len(self._indices):
            raise ValueError("indices contains the same index more than once.")
        self._hardware: dict[str, np.ndarray] = {}
        for metric, values in (hardware or {}).items():
            array = np.asarray(values, dtype=float)
            if array.shape != (len(self._archs),) or not np.all(np.isfinite(array)):
                raise ValueError(
                    f"Hardware column {metric!r} must hold {len(self._archs)} finite values."
                )
            self._hardware[metric] = array

    # ----------------------------------------------------------------- loaders
    @classmethod
    def load(
        cls, data_dir: str | os.PathLike[str] | None = None, *, hardware: bool = True
    ) -> NB201Benchmark:
        """Load the prepared CIFAR-10 table (and hardware costs) from the data folder.

        Reads ``<data_dir>/nasbench201/cifar10.csv`` (``index, arch, cifar10_test_acc``) and, if
        ``hardware`` and the file exists, ``<data_dir>/nasbench201/hardware.csv`` (``index, arch``
        and one column per latency/energy measurement).

        Args:
            data_dir: The folder holding ``nasbench201/``; ``None`` means ``$OPTUNA_NAS_DATA``
                (see :func:`~optuna_nas.benchmarks.resolve_data_dir`).
            hardware: Whether to load the hardware costs for :meth:`multi_objective`.
        """
        root = resolve_data_dir(data_dir)
        hardware_path = root / _HARDWARE_FILE
        return cls.from_csv(
            root / _CIFAR10_FILE,
            hardware_path=hardware_path if hardware and hardware_path.is_file() else None,
        )

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike[str],
        *,
        hardware_path: str | os.PathLike[str] | None = None,
        dataset: str = "cifar10",
    ) -> NB201Benchmark:
        """Load a table from CSV files.

        Args:
            path: CSV with columns ``arch`` and ``{dataset}_test_acc`` (percent) and optionally
                ``index``, the format :meth:`to_csv` writes.
            hardware_path: Optional CSV with ``arch`` and numeric cost columns (every column
                other than ``index`` and ``arch``); rows are matched by ``arch``.
            dataset: The dataset name that the accuracy column is named after.
        """
        column = f"{dataset}_test_acc"
        rows = _read_csv(path, required=("arch", column))
        archs = [row["arch"] for row in rows]
        accuracies = [_to_float(row[column], path, column) for row in rows]
        indices = [int(row["index"]) for row in rows] if "index" in rows[0] else None
        hardware = None
        if hardware_path is not None:
            hardware = _read_hardware(hardware_path, archs)
        return cls(
            archs=archs, accuracies=accuracies, indices=indices, hardware=hardware, dataset=dataset
        )

    @classmethod
    def from_nats_bench(
        cls,
        path: str | os.PathLike[str],
        *,
        dataset: str = "cifar10",
        hp: str = "200",
    ) -> NB201Benchmark:
        """Load the official NATS-Bench topology files (needs ``pip install nats_bench``).

        Args:
            path: The NATS-Bench topology benchmark, e.g. the folder
                ``NATS-tss-v1_0-3ffb9-simple`` (passed to ``nats_bench.create(path, "tss",
                fast_mode=True)``).
            dataset: ``"cifar10"``, ``"cifar100"`` or ``"ImageNet16-120"``.
            hp: Training schedule, ``"200"`` (as in the prepared table) or ``"12"``.

        Reading all 15,625 cells takes a while; save the result with :meth:`to_csv` and reload it
        with :meth:`from_csv`.
        """
        try:
            from nats_bench import create
        except ImportError as e:
            raise ImportError(
                "NB201Benchmark.from_nats_bench needs the nats_bench package: "
                "pip install nats_bench."
            ) from e
        api = create(str(path), "tss", fast_mode=True, verbose=False)
        return cls.from_api(api, dataset=dataset, hp=hp)

    @classmethod
    def from_api(cls, api: Any, *, dataset: str = "cifar10", hp: str = "200") -> NB201Benchmark:
        """Build the table from a NATS-Bench-style API object.

        ``api`` needs ``len(api)``, ``api.arch(index) -> str`` and
        ``api.get_more_info(index, dataset, hp=hp, is_random=False)["test-accuracy"]`` (the
        mean over training seeds), as ``nats_bench.create(..., "tss")`` provides.
        """
        archs: list[str] = []
        accuracies: list[float] = []
        for index in range(len(api)):
            archs.append(str(api.arch(index)))
            info = api.get_more_info(index, dataset, hp=hp, is_random=False)
            accuracies.append(float(info["test-accuracy"]))
        return cls(archs=archs, accuracies=accuracies, dataset=dataset)

    def to_csv(self, path: str | os.PathLike[str]) -> None:
        """Write ``index, arch, {dataset}_test_acc`` (the format :meth:`from_csv` reads)."""
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["index", "arch", f"{self._dataset}_test_acc"])
            for idx, arch, acc in zip(self._indices, self._archs, self._accuracies):
                writer.writerow([int(idx), arch, repr(float(acc))])

    # ----------------------------------------------------------------- facts and lookups
    @property
    def space(self) -> NASBench201SearchSpace:
        """The search space whose cells this table covers."""
        return self._space

    @property
    def dataset(self) -> str:
        """The dataset the accuracies belong to."""
        return self._dataset

    @property
    def archs(self) -> tuple[str, ...]:
        """The NAS-Bench-201 strings of all rows."""
        return self._archs

    @property
    def accuracies(self) -> np.ndarray:
        """The test accuracies (percent) of all rows, in :attr:`archs` order (a copy)."""
        return self._accuracies.copy()

    @property
    def hardware_metrics(self) -> tuple[str, ...]:
        """Names of the loaded hardware cost columns (empty without a hardware file)."""
        return tuple(self._hardware)

    @property
    def best_accuracy(self) -> float:
        """The highest test accuracy in the table (94.3733 for CIFAR-10)."""
        return float(self._accuracies.max())

    @property
    def best_arch(self) -> str:
        """The NAS-Bench-201 string of the best cell."""
        return self._archs[int(self._accuracies.argmax())]

    @property
    def best_index(self) -> int:
        """The official index of the best cell (6111 for CIFAR-10)."""
        return int(self._indices[int(self._accuracies.argmax())])

    @property
    def mean_accuracy(self) -> float:
        """The mean test accuracy over all rows (about 87.06 for CIFAR-10)."""
        return float(self._accuracies.mean())

    def __len__(self) -> int:
        return len(self._archs)

    def accuracy(self, cell: NB201Cell | str | int) -> float:
        """The test accuracy (percent) of a cell, its NAS-Bench-201 string or its index."""
        return float(self._accuracies[self._lookup(cell)])

    def index(self, cell: NB201Cell | str) -> int:
        """The official NAS-Bench-201 index of a cell or string."""
        return int(self._indices[self._lookup(cell)])

    def hardware_cost(
        self, cell: NB201Cell | str | int, metric: str = DEFAULT_HARDWARE_METRIC
    ) -> float:
        """A hardware cost (e.g. latency in ms) of a cell, string or index."""
        return float(self._hardware_column(metric)[self._lookup(cell)])

    def hardware_costs(self, metric: str = DEFAULT_HARDWARE_METRIC) -> np.ndarray:
        """One hardware cost column for all rows, in :attr:`archs` order (a copy)."""
        return self._hardware_column(metric).copy()

    # ----------------------------------------------------------------- objectives
    def objective(
        self,
        *,
        noise_std: float = 0.0,
        seed: int = 0,
        space: NASBench201SearchSpace | None = None,
    ) -> NB201Objective:
        """A single-objective function (maximize accuracy) for ``study.optimize``.

        Args:
            noise_std: Standard deviation (accuracy points) of Gaussian noise added to the
                returned search signal, to simulate a noisy validation accuracy. The noise of a
                trial depends only on ``(seed, trial.number)``, so reruns are identical. The
                true accuracy is always stored as the ``true_accuracy`` user attribute.
            seed: Seed of the noise.
            space: The space to suggest from, e.g. one without ``none``; defaults to the full
                NAS-Bench-201 space.
        """
        return NB201Objective(bench=self, noise_std=noise_std, seed=seed, space=space)

    def multi_objective(
        self,
        *,
        metric: str = DEFAULT_HARDWARE_METRIC,
        noise_std: float = 0.0,
        seed: int = 0,
        space: NASBench201SearchSpace | None = None,
    ) -> NB201MultiObjective:
        """A two-objective function: (accuracy, hardware cost), maximize and minimize.

        Args:
            metric: Hardware cost column, one of :attr:`hardware_metrics` (by default
                :data:`DEFAULT_HARDWARE_METRIC`, latency in ms on a Pixel phone with LiteRT).
            noise_std: Gaussian noise on the accuracy, as in :meth:`objective`. The hardware
                cost is a measured median and stays noiseless.
            seed: Seed of the noise.
            space: The space to suggest from.
        """
        self._hardware_column(metric)  # fail now, not in the first trial
        return NB201MultiObjective(
            bench=self, metric=metric, noise_std=noise_std, seed=seed, space=space
        )

    # ----------------------------------------------------------------- internals
    def _lookup(self, cell: NB201Cell | str | int) -> int:
        if isinstance(cell, NB201Cell):
            key = self._space.to_string(cell)
        elif isinstance(cell, str):
            key = cell
            if key not in self._row:
                key = self._space.to_string(self._space.from_string(cell))
        elif isinstance(cell, (int, np.integer)) and not isinstance(cell, bool):
            if int(cell) not in self._row_of_index:
                raise ValueError(f"Index {cell!r} is not in the NAS-Bench-201 table.")
            return self._row_of_index[int(cell)]
        else:
            raise ValueError(f"Expected an NB201Cell, a string or an index, got {cell!r}.")
        if key not in self._row:
            raise ValueError(f"Cell {key!r} is not in the NAS-Bench-201 table.")
        return self._row[key]

    def _hardware_column(self, metric: str) -> np.ndarray:
        if metric not in self._hardware:
            raise ValueError(
                f"Unknown hardware metric {metric!r}; loaded: {list(self._hardware)!r}."
            )
        return self._hardware[metric]

    def __repr__(self) -> str:
        return f"NB201Benchmark(dataset={self._dataset!r}, rows={len(self)})"


class NB201Objective:
    """Single-objective NAS-Bench-201 lookup; made by :meth:`NB201Benchmark.objective`.

    Calling it with a trial suggests a cell, looks up its accuracy, adds the seeded noise and
    returns the result. It records the user attributes ``arch`` (NAS-Bench-201 string),
    ``index``, ``true_accuracy`` (noiseless, percent), ``noise_std`` and, with noise, ``noise``.
    """

    #: Pass as ``optuna.create_study(directions=objective.directions)``.
    directions: tuple[str, ...] = ("maximize",)

    def __init__(
        self,
        *,
        bench: NB201Benchmark,
        noise_std: float,
        seed: int,
        space: NASBench201SearchSpace | None,
    ) -> None:
        check_number("noise_std", noise_std, minimum=0.0)
        check_seed(seed, allow_none=False)
        if space is not None and not isinstance(space, NASBench201SearchSpace):
            raise ValueError(f"space must be a NASBench201SearchSpace, got {space!r}.")
        self.bench = bench
        self.noise_std = float(noise_std)
        self.seed = int(seed)
        self.space = space if space is not None else bench.space

    def noise(self, trial_number: int) -> float:
        """The noise added in trial ``trial_number``: a function of ``(seed, trial_number)``."""
        if self.noise_std == 0.0:
            return 0.0
        rng = np.random.default_rng([self.seed, int(trial_number)])
        return float(rng.normal(0.0, self.noise_std))

    def _evaluate(self, trial: optuna.Trial) -> tuple[int, float]:
        cell = self.space.suggest(trial)
        row = self.bench._lookup(cell)
        true_accuracy = float(self.bench._accuracies[row])
        noise = self.noise(trial.number)
        trial.set_user_attr("arch", self.bench.archs[row])
        trial.set_user_attr("index", int(self.bench._indices[row]))
        trial.set_user_attr("true_accuracy", true_accuracy)
        trial.set_user_attr("noise_std", self.noise_std)
        if self.noise_std > 0.0:
            trial.set_user_attr("noise", noise)
        return row, true_accuracy + noise

    def __call__(self, trial: optuna.Trial) -> float:
        with TrialGuard(trial):
            return self._evaluate(trial)[1]
        return math.nan  # e.g. an enqueued cell outside the space: this trial FAILs

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(dataset={self.bench.dataset!r}, noise_std={self.noise_std}, "
            f"seed={self.seed})"
        )


class NB201MultiObjective(NB201Objective):
    """(accuracy, hardware cost) NAS-Bench-201 lookup; made by
    :meth:`NB201Benchmark.multi_objective`.

    Records the same user attributes as :class:`NB201Objective` plus the cost under its column
    name (e.g. ``latency_ms_pixel_litert``).
    """

    directions: tuple[str, ...] = ("maximize", "minimize")

    def __init__(
        self,
        *,
        bench: NB201Benchmark,
        metric: str,
        noise_std: float,
        seed: int,
        space: NASBench201SearchSpace | None,
    ) -> None:
        super().__init__(bench=bench, noise_std=noise_std, seed=seed, space=space)
        self.metric = metric
        self._costs = bench._hardware_column(metric)

    def __call__(self, trial: optuna.Trial) -> tuple[float, float]:  # type: ignore[override]
        with TrialGuard(trial, n_values=2):
            row, signal = self._evaluate(trial)
            cost = float(self._costs[row])
            trial.set_user_attr(self.metric, cost)
            return signal, cost
        return math.nan, math.nan

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(dataset={self.bench.dataset!r}, metric={self.metric!r}, "
            f"noise_std={self.noise_std}, seed={self.seed})"
        )


# --------------------------------------------------------------------- CSV helpers
def _read_csv(path: str | os.PathLike[str], *, required: Sequence[str]) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        missing = [c for c in required if c not in fields]
        if missing:
            raise ValueError(f"{str(path)!r} lacks column(s) {missing!r}; it has {fields!r}.")
        rows = list(reader)
    if not rows:
        raise ValueError(f"{str(path)!r} has no rows.")
    return rows


def _to_float(text: str, path: str | os.PathLike[str], column: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"Non-numeric {column!r} value {text!r} in {str(path)!r}.") from None


def _read_hardware(path: str | os.PathLike[str], archs: Sequence[str]) -> dict[str, list[float]]:
    rows = _read_csv(path, required=("arch",))
    metrics = [c for c in rows[0] if c not in ("index", "arch")]
    by_arch = {row["arch"]: row for row in rows}
    missing = [a for a in archs if a not in by_arch]
    if missing:
        raise ValueError(
            f"{str(path)!r} has no row for {len(missing)} cell(s), e.g. {missing[0]!r}."
        )
    return {m: [_to_float(by_arch[a][m], path, m) for a in archs] for m in metrics}
