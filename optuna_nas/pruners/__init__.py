"""Pruners for NAS: learning-curve extrapolation on top of Optuna's own pruners.

Optuna's :class:`~optuna.pruners.MedianPruner`, :class:`~optuna.pruners.SuccessiveHalvingPruner`
and :class:`~optuna.pruners.HyperbandPruner` work unchanged with the per-epoch reports of
:class:`optuna_nas.NASObjective` (epochs are the resource).
"""

from optuna_nas.pruners._curve_fit import InversePowerLawFit
from optuna_nas.pruners._curve_fit import fit_inverse_power_law
from optuna_nas.pruners._learning_curve import DECISION_ATTR_KEY
from optuna_nas.pruners._learning_curve import LearningCurvePruner
from optuna_nas.pruners._learning_curve import pruned_reason


__all__ = [
    "DECISION_ATTR_KEY",
    "InversePowerLawFit",
    "LearningCurvePruner",
    "fit_inverse_power_law",
    "pruned_reason",
]
