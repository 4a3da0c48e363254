"""The LCBench part of ``benchmarks/pruning.py``: one objective per OpenML task, the surrogate's
curves memoised (it is deterministic, and every pruner of a seed queries the same configs)."""

from __future__ import annotations

from typing import Any

import numpy as np


#: LCBench tasks the benchmark runs by default (``lcbench-<task>`` families): one whose curves
#: saturate within a few epochs (3945) and three where a third to a half of the curves peak
#: and decline by more than half a point (7593, 126025, 189909).
LCBENCH_DEFAULT_TASKS = ("3945", "7593", "126025", "189909")

_OBJECTIVES: dict[str, Any] = {}


def lcbench_objective(instance: str, data_dir: str | None) -> Any:
    """The (process-wide) ``LCBenchObjective`` of ``instance`` with memoised curves."""
    if instance not in _OBJECTIVES:
        from optuna_nas.benchmarks import LCBenchBenchmark

        bench = LCBenchBenchmark(instance=instance, data_dir=data_dir)
        objective = bench.objective()
        objective.bench = CachedLCBench(bench)  # type: ignore[assignment]
        _OBJECTIVES[instance] = objective
    return _OBJECTIVES[instance]


class CachedLCBench:
    """``LCBenchBenchmark`` whose curves are memoised per configuration."""

    def __init__(self, bench: Any) -> None:
        self.bench = bench
        self.cache: dict[tuple[Any, ...], np.ndarray] = {}

    def learning_curve(self, config: dict[str, Any], epochs: Any) -> np.ndarray:
        key = (tuple(sorted(config.items())), epochs)
        if key not in self.cache:
            if len(self.cache) > 50_000:
                self.cache.clear()
            self.cache[key] = self.bench.learning_curve(config, epochs)
        return self.cache[key]
