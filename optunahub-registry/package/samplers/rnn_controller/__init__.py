from optuna_nas.samplers import RNNControllerSampler


__all__ = ["RNNControllerSampler"]
