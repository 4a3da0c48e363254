"""The curve families of ``benchmarks/pruning.py``, by name: each gives the epochs of a full
trial and an objective that reports a learning curve for the trial's suggested parameters.

``nb301`` (DARTS cells, NAS-Bench-301 surrogate), ``lcbench-<task>`` (MLPs on an OpenML task,
LCBench surrogate), and the synthetic families of ``_pruning_synthetic.SYNTHETIC_FAMILIES``.
Real training (``real``) is its own part of the benchmark (``--real``, ``_pruning_real.py``),
since it shares trained cells between the pruners of a seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from _pruning_lcbench import LCBENCH_DEFAULT_TASKS
from _pruning_lcbench import lcbench_objective
from _pruning_nb301 import NB301_EPOCHS
from _pruning_nb301 import nb301_objective
from _pruning_synthetic import SYNTHETIC_FAMILIES
from _pruning_synthetic import SyntheticObjective


@dataclass(frozen=True)
class Family:
    name: str
    epochs: int  # epochs of a full trial (0-based steps 0..epochs - 1)
    make: Callable[[str | None], Any]  # data_dir -> objective (built once per process)
    needs_data: bool = False
    scale: float = 1.0  # multiplies values into percent (all families report percent)


def _synthetic(name: str) -> Family:
    spec = SYNTHETIC_FAMILIES[name]
    objective = SyntheticObjective(spec)
    return Family(name, spec.epochs, lambda _data_dir: objective)


def _lcbench(task: str) -> Family:
    return Family(f"lcbench-{task}", 52, lambda data_dir: lcbench_objective(task, data_dir), True)


def family(name: str) -> Family:
    """The family ``name`` (``nb301``, ``lcbench-<task>`` or a synthetic family)."""
    if name == "nb301":
        return Family("nb301", NB301_EPOCHS, nb301_objective, needs_data=True)
    if name.startswith("lcbench-"):
        from optuna_nas.benchmarks import LCBENCH_INSTANCES

        task = name.removeprefix("lcbench-")
        if task not in LCBENCH_INSTANCES:
            raise ValueError(f"Unknown LCBench task {task!r}; choose from {LCBENCH_INSTANCES}.")
        return _lcbench(task)
    if name in SYNTHETIC_FAMILIES:
        return _synthetic(name)
    raise ValueError(f"Unknown family {name!r}; choose from {list(default_families())}.")


def default_families() -> tuple[str, ...]:
    """Every family the benchmark runs by default: NB301, LCBench tasks, synthetic ones."""
    return ("nb301", *(f"lcbench-{t}" for t in LCBENCH_DEFAULT_TASKS), *SYNTHETIC_FAMILIES)
