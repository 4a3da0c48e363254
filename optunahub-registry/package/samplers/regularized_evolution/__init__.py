from optuna_nas.samplers import RegularizedEvolutionSampler


__all__ = ["RegularizedEvolutionSampler"]
