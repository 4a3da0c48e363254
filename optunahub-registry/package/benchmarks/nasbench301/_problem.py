"""NAS-Bench-301 as an OptunaHub problem, over optuna-nas's NB301 benchmark."""

from __future__ import annotations

import os
from typing import Any

import optuna
from optuna_nas.benchmarks import NB301_MAX_EPOCHS
from optuna_nas.benchmarks import NB301Benchmark
from optuna_nas.search_spaces import DartsSearchSpace
import optunahub


class Problem(optunahub.benchmarks.BaseProblem):
    """The NAS-Bench-301 surrogate: CIFAR-10 validation accuracy of DARTS cells, per epoch.

    Calling the problem with a trial suggests the cell define-by-run (the parameters of
    :attr:`search_space`), reports the predicted learning curve epoch by epoch (0-based steps,
    so pruners work) and returns the accuracy (percent) after ``max_epochs`` epochs.
    """

    def __init__(
        self,
        *,
        max_epochs: int = NB301_MAX_EPOCHS,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self._bench = NB301Benchmark(data_dir=data_dir)
        self._space = DartsSearchSpace()
        self._objective = self._bench.objective(max_epochs=max_epochs, space=self._space)
        self.max_epochs = self._objective.max_epochs

    @property
    def search_space(self) -> dict[str, optuna.distributions.BaseDistribution]:
        return {
            decision.name: optuna.distributions.CategoricalDistribution(decision.choices)
            for decision in self._space.decisions
        }

    @property
    def directions(self) -> list[optuna.study.StudyDirection]:
        return [optuna.study.StudyDirection.MAXIMIZE]

    @property
    def benchmark(self) -> NB301Benchmark:
        """The optuna-nas benchmark behind the problem (genotype-level queries)."""
        return self._bench

    def __call__(self, trial: optuna.Trial) -> float:
        return self._objective(trial)

    def evaluate(self, params: dict[str, Any]) -> float:
        return self.learning_curve(params)[-1]

    def learning_curve(self, params: dict[str, Any]) -> list[float]:
        """Predicted accuracy (percent) after epochs ``1..max_epochs`` of the cell ``params``."""
        genotype = self._space.from_params(params)
        return [float(a) for a in self._bench.learning_curve(genotype, self.max_epochs)]
