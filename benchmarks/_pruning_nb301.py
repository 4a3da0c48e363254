"""The NAS-Bench-301 part of ``benchmarks/pruning.py``: cells in NB301's own encoding and the
surrogate objective, built once per process with its curves memoised."""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna


NB301_EPOCHS = 98  # the surrogate's epochs 1..98, reported as 0-based steps 0..97


class NB301Cells:
    """DARTS cells inside NAS-Bench-301's own space, suggested in its encoding.

    NAS-Bench-301 requires two *distinct* inputs per node; the generic DARTS space lets both
    inputs be equal (about 96% of random cells), which the surrogate cannot score. So each node
    suggests its input *pair* (``"0_2"``, like NB301's ``inputs_node_*``) and one operation per
    input: every trial is a valid query and no budget is lost to failed trials.
    ``NB301Objective`` only needs ``num_nodes``, ``operations``, ``suggest`` and ``to_string``.
    """

    num_nodes = 4

    def __init__(self) -> None:
        from optuna_nas.benchmarks import NB301_OPERATIONS

        self.operations = tuple(NB301_OPERATIONS)

    def suggest(self, trial: optuna.Trial) -> Any:
        from optuna_nas.search_spaces import Genotype

        cells: dict[str, list[tuple[str, int]]] = {}
        for cell in ("normal", "reduce"):
            pairs: list[tuple[str, int]] = []
            for node in range(2, 2 + self.num_nodes):
                if node == 2:
                    low, high = 0, 1  # node 2 can only read the two cell inputs
                else:
                    choices = [f"{i}_{j}" for i in range(node) for j in range(i + 1, node)]
                    text = trial.suggest_categorical(f"nb301/{cell}/node{node}/inputs", choices)
                    low, high = (int(v) for v in text.split("_"))
                for slot, source in enumerate((low, high)):
                    op = trial.suggest_categorical(
                        f"nb301/{cell}/node{node}/op{slot}", self.operations
                    )
                    pairs.append((op, source))
            cells[cell] = pairs
        concat = list(range(2, 2 + self.num_nodes))
        return Genotype(
            normal=cells["normal"],
            normal_concat=concat,
            reduce=cells["reduce"],
            reduce_concat=concat,
        )

    def to_string(self, genotype: Any) -> str:
        return str(genotype)

    def __repr__(self) -> str:
        return "NB301Cells()"


_NB301_OBJECTIVE: Any = None


def nb301_objective(data_dir: str | None) -> Any:
    global _NB301_OBJECTIVE
    if _NB301_OBJECTIVE is None:
        from optuna_nas.benchmarks import NB301Benchmark

        bench = NB301Benchmark(data_dir=data_dir)
        objective = bench.objective(
            max_epochs=NB301_EPOCHS,
            space=NB301Cells(),  # type: ignore[arg-type]
        )
        if hasattr(objective, "bench"):  # speed only: memoise the surrogate's curves
            objective.bench = CachedCurves(bench)  # type: ignore[assignment]
        _NB301_OBJECTIVE = objective
    return _NB301_OBJECTIVE


class CachedCurves:
    """NB301Benchmark whose learning curves are memoised per genotype (the surrogate is
    deterministic): runs of different pruners with the same sampler seed query the same cells.
    """

    def __init__(self, bench: Any) -> None:
        self.bench = bench
        self.cache: dict[tuple[Any, Any], np.ndarray] = {}

    def learning_curve(self, genotype: Any, epochs: Any = NB301_EPOCHS) -> np.ndarray:
        key = (genotype, epochs if isinstance(epochs, int) else tuple(epochs))
        if key not in self.cache:
            if len(self.cache) > 50_000:  # ~40 MB
                self.cache.clear()
            self.cache[key] = self.bench.learning_curve(genotype, epochs)
        return self.cache[key]
