"""Tabular and surrogate NAS benchmarks as Optuna objectives over our search spaces.

:class:`NB201Benchmark` looks cells of the NAS-Bench-201 space up in the published table (test
accuracy, hardware latency); :class:`NB301Benchmark` predicts learning curves of DARTS cells with
the NAS-Bench-301 surrogate. Both suggest through the same search spaces that train real
networks, so any sampler or pruner can be compared in seconds. :class:`LCBenchBenchmark`
predicts learning curves of MLPs on 34 OpenML datasets (the LCBench surrogate): curves of
another kind for pruners.
"""

from optuna_nas.benchmarks._data import DATA_ENV_VAR
from optuna_nas.benchmarks._data import resolve_data_dir
from optuna_nas.benchmarks._lcbench import LCBENCH_INSTANCES
from optuna_nas.benchmarks._lcbench import LCBENCH_MAX_EPOCHS
from optuna_nas.benchmarks._lcbench import LCBENCH_SPACE
from optuna_nas.benchmarks._lcbench import LCBenchBenchmark
from optuna_nas.benchmarks._lcbench import LCBenchObjective
from optuna_nas.benchmarks._nasbench201 import DEFAULT_HARDWARE_METRIC
from optuna_nas.benchmarks._nasbench201 import NB201Benchmark
from optuna_nas.benchmarks._nasbench201 import NB201MultiObjective
from optuna_nas.benchmarks._nasbench201 import NB201Objective
from optuna_nas.benchmarks._nasbench301 import NB301_MAX_EPOCHS
from optuna_nas.benchmarks._nasbench301 import NB301_OPERATIONS
from optuna_nas.benchmarks._nasbench301 import NB301Benchmark
from optuna_nas.benchmarks._nasbench301 import NB301Objective
from optuna_nas.benchmarks._nasbench301 import to_nb301_config


__all__ = [
    "DATA_ENV_VAR",
    "DEFAULT_HARDWARE_METRIC",
    "LCBENCH_INSTANCES",
    "LCBENCH_MAX_EPOCHS",
    "LCBENCH_SPACE",
    "LCBenchBenchmark",
    "LCBenchObjective",
    "NB201Benchmark",
    "NB201MultiObjective",
    "NB201Objective",
    "NB301Benchmark",
    "NB301Objective",
    "NB301_MAX_EPOCHS",
    "NB301_OPERATIONS",
    "resolve_data_dir",
    "to_nb301_config",
]
