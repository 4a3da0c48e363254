"""Cost measures of a child network: parameters, FLOPs and latency."""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING

import torch
from torch import nn

from optuna_nas._flops import count_flops
from optuna_nas._flops import evaluation_mode


if TYPE_CHECKING:
    import optuna

#: The cost measures :func:`record_costs` records (and ``NASObjective`` can return).
COST_ATTRS = ("n_params", "flops", "latency_ms")


def count_parameters(network: nn.Module, *, exclude_auxiliary: bool = True) -> int:
    """Number of parameters of ``network`` (trainable or not, each shared tensor once).

    Args:
        network: The network.
        exclude_auxiliary: Leave out a training-only auxiliary classifier kept in the
            ``auxiliary_head`` attribute (DARTS), as the published parameter counts do.
    """
    aux = getattr(network, "auxiliary_head", None) if exclude_auxiliary else None
    skip = {id(p) for p in aux.parameters()} if isinstance(aux, nn.Module) else set()
    return sum(p.numel() for p in network.parameters() if id(p) not in skip)


def measure_latency(
    network: nn.Module,
    input_shape: tuple[int, ...],
    *,
    device: torch.device | str = "cpu",
    warmup: int = 3,
    repeats: int = 10,
) -> float:
    """Median forward latency in milliseconds at batch size 1, after ``warmup`` passes.

    Runs in evaluation mode under ``torch.inference_mode`` and synchronizes CUDA around each
    pass. ``network`` is moved to ``device`` (and left there). Latency on a shared machine is
    noisy; the median of ``repeats`` passes damps it.

    Example:
        .. code-block:: python

            from torch import nn
            from optuna_nas.training import measure_latency

            ms = measure_latency(nn.Conv2d(3, 8, 3), (3, 32, 32), repeats=3)
            assert ms > 0
    """
    if warmup < 0 or repeats < 1:
        raise ValueError(f"Need warmup >= 0 and repeats >= 1; got {warmup!r}, {repeats!r}.")
    device = torch.device(device)
    network.to(device)
    x = torch.zeros((1, *input_shape), device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = []
    with evaluation_mode(network), torch.inference_mode():
        for i in range(warmup + repeats):
            sync()
            start = time.perf_counter()
            network(x)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def record_costs(
    trial: optuna.Trial,
    network: nn.Module,
    input_shape: tuple[int, ...],
    *,
    device: torch.device | str = "cpu",
    latency_repeats: int | None = 10,
) -> dict[str, float]:
    """Measure a trial's network and record each measure as a user attribute at once.

    ``n_params`` (:func:`count_parameters`), ``flops`` (:func:`count_flops`, on the network's
    current device) and, unless ``latency_repeats`` is ``None``, ``latency_ms``
    (:func:`measure_latency` on ``device``, which moves the network there). Each attribute is
    set as soon as it is measured, so the dashboard shows it while the trial trains.

    Returns:
        The measures by attribute name.
    """
    measured: dict[str, float] = {}

    def record(name: str, value: float) -> None:
        measured[name] = value
        trial.set_user_attr(name, value)

    record("n_params", count_parameters(network))
    record("flops", count_flops(network, input_shape))
    if latency_repeats is not None:
        record(
            "latency_ms",
            measure_latency(network, input_shape, device=device, repeats=latency_repeats),
        )
    return measured
