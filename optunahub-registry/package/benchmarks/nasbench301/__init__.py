from optuna_nas.benchmarks import NB301Benchmark
from optuna_nas.benchmarks import NB301Objective

from ._problem import Problem


__all__ = ["NB301Benchmark", "NB301Objective", "Problem"]
