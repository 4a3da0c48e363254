"""Synthetic learning-curve families of ``benchmarks/pruning.py``, designed to stress pruners.

A family is one row of :data:`SYNTHETIC_FAMILIES`: a curve shape and its settings. A trial
suggests ``N_PARAMS`` floats ``x0..x{N-1}`` in ``[0, 1]``; they set the candidate's *quality*
``q`` in ``[0, 1]`` (a smooth bowl with its optimum at ``OPTIMUM``, so samplers and evolution
matter) and its *speed* ``r`` in ``[0, 1]`` (how fast the curve approaches its end), from
``x{N-1}`` and, by ``speed_coupling``, from ``q``: ``speed_coupling < 0`` makes the better
candidates the slower ones, so the curves cross (a good candidate starts below a mediocre
one). The final value is ``low + (high - low) * q``; each curve shape below reaches about it at
the last epoch. Observation noise is Gaussian with standard deviation ``noise`` (in the units of
the values, percent), drawn from a generator seeded by the parameters, so that the same
candidate gets the same curve whatever the pruner (the benchmark pairs studies by seed).

Shapes (``t = 1..epochs`` the epochs trained, ``T = epochs``, ``A`` the asymptote):

- ``exp``: ``A - b * exp(-t / c)``, the saturating exponential of the issue; ``c`` from
  ``c_range`` by speed (fast: small ``c``).
- ``power``: ``A - b * t ** -alpha``, the inverse power law (``alpha`` from ``alpha_range``).
- ``logistic``: ``start + (A - start) / (1 + exp(-(t - t0) / s))``: flat, then a rise around
  ``t0`` (from ``t0_range``, as a share of ``T``), slow candidates rising late.
- ``peak``: the exponential rise to a peak ``P`` at epoch ``tp`` (``tp_range`` share of
  ``T``), then a linear decline by ``decline`` (a share of the rise, larger for faster
  candidates: they overfit more) to the final value; what the objective returns is the
  *final* value unless the family sets ``objective="best"`` (the best value so far).

Add a row to :data:`SYNTHETIC_FAMILIES` to add a family; ``--families`` of the benchmark picks
them by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
import hashlib
import math
from typing import Any

import numpy as np
import optuna


#: Parameters a trial suggests (floats in [0, 1]); the last one sets the speed.
N_PARAMS = 4
#: Where the quality bowl has its optimum (one coordinate per quality parameter).
OPTIMUM = (0.7, 0.3, 0.55)


@dataclass(frozen=True)
class CurveFamily:
    """Settings of one synthetic family (see the module docstring for the shapes)."""

    name: str
    shape: str  # "exp", "power", "logistic" or "peak"
    epochs: int = 50
    noise: float = 0.2  # standard deviation of the observation noise (percentage points)
    low: float = 60.0  # final value of the worst candidate (q = 0)
    high: float = 95.0  # final value of the best candidate (q = 1)
    start: float = 10.0  # value before any training (the curves start near it)
    speed_coupling: float = 0.0  # < 0: better candidates learn slower (crossing curves)
    objective: str = "final"  # what the objective returns: "final" or "best" (so far)
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.shape not in ("exp", "power", "logistic", "peak"):
            raise ValueError(f"unknown shape {self.shape!r} of family {self.name!r}")
        if self.objective not in ("final", "best"):
            raise ValueError(f"objective must be 'final' or 'best', got {self.objective!r}")


#: The synthetic families, by name. Settings not given take the defaults of `CurveFamily`.
SYNTHETIC_FAMILIES: dict[str, CurveFamily] = {
    f.name: f
    for f in (
        # The family: per-candidate rate, small noise.
        CurveFamily("exp", "exp", settings={"c_range": (1.0, 15.0)}),
        # Same, but the better candidates are the slow ones: curves cross.
        CurveFamily("exp-crossing", "exp", speed_coupling=-0.8, settings={"c_range": (1.0, 20.0)}),
        CurveFamily("power", "power", settings={"alpha_range": (0.3, 1.5)}),
        CurveFamily(
            "logistic",
            "logistic",
            speed_coupling=-0.5,
            settings={"t0_range": (0.05, 0.5), "s_range": (1.0, 4.0)},
        ),
        CurveFamily(
            "peak-decline",
            "peak",
            settings={"c_range": (1.0, 6.0), "tp_range": (0.15, 0.6), "decline": (0.01, 0.08)},
        ),
        CurveFamily(
            "peak-decline-best",
            "peak",
            objective="best",
            settings={"c_range": (1.0, 6.0), "tp_range": (0.15, 0.6), "decline": (0.01, 0.08)},
        ),
        # Noise levels on the exponential family; short, noisy curves.
        CurveFamily("exp-noise1", "exp", noise=1.0, settings={"c_range": (1.0, 15.0)}),
        CurveFamily("short-noisy", "exp", epochs=12, noise=1.5, settings={"c_range": (0.5, 5.0)}),
    )
}


def quality_and_speed(x: np.ndarray, family: CurveFamily) -> tuple[float, float]:
    """``(q, r)`` in ``[0, 1]`` of the parameter vector ``x`` (``N_PARAMS`` floats)."""
    d2 = float(sum((x[i] - o) ** 2 for i, o in enumerate(OPTIMUM)))
    q = math.exp(-3.0 * d2)  # 1 at the optimum, about 0.2 at the far corner
    r = float(x[-1]) + family.speed_coupling * (q - 0.5)
    return q, min(max(r, 0.0), 1.0)


def _between(bounds: Any, share: float) -> float:
    low, high = bounds
    return float(low + (high - low) * share)


def clean_curve(q: float, r: float, family: CurveFamily) -> np.ndarray:
    """The noise-free curve (``family.epochs`` values) of quality ``q`` and speed ``r``."""
    s = family.settings
    t = np.arange(1, family.epochs + 1, dtype=float)
    T = float(family.epochs)
    final = family.low + (family.high - family.low) * q
    rise = final - family.start
    if family.shape == "exp":
        c = _between(s["c_range"], 1.0 - r)  # fast: small time constant
        # The asymptote sits so that the last epoch reaches `final` exactly.
        a = (final - family.start * math.exp(-T / c)) / (1.0 - math.exp(-T / c))
        return a - (a - family.start) * np.exp(-t / c)
    if family.shape == "power":
        alpha = _between(s["alpha_range"], r)
        b = rise / (1.0 - T**-alpha)  # y(1) = start, y(T) = final
        return final + b * T**-alpha - b * t**-alpha
    if family.shape == "logistic":
        t0 = _between(s["t0_range"], 1.0 - r) * T
        width = _between(s["s_range"], 1.0 - r)
        shape = 1.0 / (1.0 + np.exp(-(t - t0) / width))
        end = 1.0 / (1.0 + math.exp(-(T - t0) / width))
        first = 1.0 / (1.0 + math.exp(-(1.0 - t0) / width))
        return family.start + rise * (shape - first) / (end - first)
    # "peak": a fast rise to the peak, then a linear decline to the final value.
    c = _between(s["c_range"], 1.0 - r)
    tp = max(2.0, _between(s["tp_range"], 1.0 - r) * T)
    decline = _between(s["decline"], r) * rise  # faster candidates overfit more
    peak = final + decline
    up = family.start + (peak - family.start) * (1.0 - np.exp(-t / c)) / (1.0 - math.exp(-tp / c))
    down = peak - decline * (t - tp) / (T - tp)
    return np.where(t <= tp, np.minimum(up, peak), down)


def synthetic_curve(params: dict[str, float], family: CurveFamily) -> np.ndarray:
    """The observed curve of the candidate with ``params`` (``x0..``): deterministic noise."""
    x = np.array([float(params[f"x{i}"]) for i in range(N_PARAMS)])
    q, r = quality_and_speed(x, family)
    curve = clean_curve(q, r, family)
    if family.noise > 0:
        digest = hashlib.sha256(repr((family.name, x.round(12).tolist())).encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        curve = curve + rng.normal(0.0, family.noise, curve.shape)
    return curve


class SyntheticObjective:
    """Suggest ``x0..``, report the family's curve epoch by epoch (0-based steps), obey the
    pruner; return the final value (or the best so far, when the family says so)."""

    directions: tuple[str, ...] = ("maximize",)

    def __init__(self, family: CurveFamily) -> None:
        self.family = family
        self.max_epochs = family.epochs

    def __call__(self, trial: optuna.Trial) -> float:
        params = {f"x{i}": trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(N_PARAMS)}
        curve = synthetic_curve(params, self.family)
        for epoch, value in enumerate(curve):
            trial.report(float(value), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(curve.max() if self.family.objective == "best" else curve[-1])
