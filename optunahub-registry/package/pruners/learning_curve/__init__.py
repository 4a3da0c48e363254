from optuna_nas.pruners import LearningCurvePruner
from optuna_nas.pruners import pruned_reason


__all__ = ["LearningCurvePruner", "pruned_reason"]
