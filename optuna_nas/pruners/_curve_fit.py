"""Least-squares fit of the saturating inverse power law ``y(x) = a - b * x**(-c)``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


#: Exponents ``c`` searched by :func:`fit_inverse_power_law` (log-spaced, ``0.02 .. 4``).
#: Small ``c`` makes the curve rise almost logarithmically, large ``c`` saturates within a
#: few steps; learning curves of neural networks sit in between.
DEFAULT_EXPONENTS: np.ndarray = np.geomspace(0.02, 4.0, 48)

# Variances below this are treated as zero (a constant basis or a constant curve).
_TINY = 1e-12


@dataclass(frozen=True)
class InversePowerLawFit:
    """Parameters of fitted curves ``y(x) = a - b * x**(-c)`` (one entry per curve).

    Attributes:
        a: Asymptote: the value the curve approaches as ``x`` grows.
        b: Gap between the asymptote and the value at ``x = 1`` (never negative: the fitted
            curve never moves away from its asymptote).
        c: Exponent (the speed of saturation).
        sse: Weighted sum of squared residuals of the fit.
        n_points: Number of points (non-zero weights) each curve was fitted to.
    """

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    sse: np.ndarray
    n_points: np.ndarray

    def predict(self, x: ArrayLike) -> np.ndarray:
        """Evaluate every fitted curve at ``x`` (broadcast: shape ``(n_curves,) + x.shape``)."""
        x_arr = np.asarray(x, dtype=float)
        shape = (-1,) + (1,) * x_arr.ndim
        a = self.a.reshape(shape)
        b = self.b.reshape(shape)
        c = self.c.reshape(shape)
        return a - b * np.power(x_arr, -c)


def fit_inverse_power_law(
    x: ArrayLike,
    y: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    exponents: ArrayLike | None = None,
) -> InversePowerLawFit:
    """Fit ``y = a - b * x**(-c)`` with ``b >= 0`` to one or many curves by least squares.

    For a fixed exponent ``c`` the model is linear in ``(a, b)``, so it is solved in closed
    form (weighted simple regression of ``y`` on ``x**(-c)``); the exponent is chosen by the
    smallest squared error on a log-spaced grid, refined on a 16 times finer grid around the
    best grid point. Everything is vectorised over curves and
    exponents with NumPy, so fitting hundreds of curves takes about a millisecond and never
    fails to converge, which an iterative optimiser (``scipy.optimize.curve_fit``) cannot
    promise on short, noisy curves. When the best regression slope would make the curve
    *decrease* (``b < 0``), ``b`` is clamped to ``0`` and the curve is the weighted mean.

    Non-finite values in ``y`` are ignored (their weight is set to zero), so ragged curves can
    be passed as a NaN-padded matrix.

    Args:
        x: Positions, shape ``(n_steps,)``, all ``> 0`` (use ``step + 1`` for 0-based steps).
        y: Values, shape ``(n_steps,)`` for one curve or ``(n_curves, n_steps)``.
        weights: Optional non-negative weights with the shape of ``y``.
        exponents: Candidate values of ``c`` (all ``> 0``); defaults to
            :data:`DEFAULT_EXPONENTS`.

    Returns:
        The fitted parameters, one entry per curve (arrays of shape ``(n_curves,)``, with
        ``n_curves = 1`` for a one-dimensional ``y``). A curve without any finite point gets
        NaN parameters.

    Raises:
        ValueError: ``x`` has a non-positive or non-finite entry, shapes do not match, or an
            exponent is not positive.

    Example:
        .. code-block:: python

            import numpy as np
            from optuna_nas.pruners import fit_inverse_power_law

            x = np.arange(1, 21)
            fit = fit_inverse_power_law(x, 0.9 - 0.5 * x**-0.7)
            fit.predict(100)  # about 0.9 - 0.5 * 100**-0.7 = 0.876
    """
    x_arr = np.asarray(x, dtype=float)
    y_arr = np.asarray(y, dtype=float)
    y2 = np.atleast_2d(y_arr)
    if x_arr.ndim != 1 or y2.ndim != 2 or y2.shape[1] != x_arr.shape[0]:
        raise ValueError(
            f"x must have shape (n_steps,) and y (n_steps,) or (n_curves, n_steps); got "
            f"x.shape={x_arr.shape} and y.shape={y_arr.shape}."
        )
    if not np.all(np.isfinite(x_arr)) or np.any(x_arr <= 0):
        raise ValueError(f"x must be finite and positive; got x={x_arr.tolist()!r}.")
    c_grid = DEFAULT_EXPONENTS if exponents is None else np.asarray(exponents, dtype=float)
    if c_grid.ndim != 1 or c_grid.size == 0 or np.any(~(c_grid > 0)):
        raise ValueError(f"exponents must be positive; got exponents={c_grid.tolist()!r}.")
    if weights is None:
        w = np.ones_like(y2)
    else:
        w = np.broadcast_to(np.asarray(weights, dtype=float), y_arr.shape).reshape(y2.shape)
        if np.any(w < 0) or not np.all(np.isfinite(w)):
            raise ValueError("weights must be finite and non-negative.")
        w = w.copy()
    finite = np.isfinite(y2)
    w = np.where(finite, w, 0.0)
    yz = np.where(finite, y2, 0.0)

    rows = np.arange(y2.shape[0])
    # Coarse search on the shared grid, then a finer one around each curve's best exponent
    # (16 steps between grid neighbours), so `c` is found to ~1% without an iterative solver.
    candidates = np.broadcast_to(c_grid, (y2.shape[0], c_grid.size))
    sse, slope, intercept = _fit_linear(x_arr, yz, w, candidates)
    best = np.argmin(sse, axis=1)
    if c_grid.size > 1:
        grid = np.sort(c_grid)
        ratio = float(np.max(grid[1:] / grid[:-1]))
        fine = candidates[rows, best][:, None] * ratio ** np.linspace(-1.0, 1.0, 33)[None, :]
        sse_f, slope_f, intercept_f = _fit_linear(x_arr, yz, w, fine)
        # The coarse optimum stays a candidate, so refining never makes the fit worse.
        keep = (rows, best)
        sse = np.column_stack([sse[keep], sse_f])
        slope = np.column_stack([slope[keep], slope_f])
        intercept = np.column_stack([intercept[keep], intercept_f])
        candidates = np.column_stack([candidates[keep], fine])
        best = np.argmin(sse, axis=1)
    # Ties (e.g. a constant curve) resolve to the first candidate: deterministic.
    b = -slope[rows, best]
    a = intercept[rows, best]
    c = candidates[rows, best].astype(float)
    best_sse = sse[rows, best]
    has_points = w.sum(axis=1) > 0
    nan = np.full(y2.shape[0], np.nan)
    return InversePowerLawFit(
        a=np.where(has_points, a, nan),
        b=np.where(has_points, b, nan),
        c=np.where(has_points, c, nan),
        sse=np.where(has_points, best_sse, nan),
        n_points=(w > 0).sum(axis=1),
    )


def _fit_linear(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, exponents: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted least squares of ``y`` on ``x**(-c)`` for each curve and candidate ``c``.

    Args:
        x: ``(n_steps,)``; y, w: ``(n_curves, n_steps)`` (zero weight where y is missing);
        exponents: ``(n_curves, n_candidates)``.

    Returns:
        ``(sse, slope, intercept)``, each ``(n_curves, n_candidates)``; ``slope = -b <= 0``.
    """
    phi = np.power(x[None, :, None], -exponents[:, None, :])  # (n_curves, n_steps, n_cand)
    sw = w.sum(axis=1)[:, None]
    sw_safe = np.where(sw > 0, sw, 1.0)
    y_mean = (w * y).sum(axis=1)[:, None] / sw_safe
    # Centring y first keeps the variances accurate for curves far from zero.
    yc = np.where(w > 0, y - y_mean, 0.0)
    y_var = (w * yc * yc).sum(axis=1)[:, None] / sw_safe
    phi_mean = np.einsum("nt,ntg->ng", w, phi) / sw_safe
    phi_c = phi - phi_mean[:, None, :]
    phi_var = np.einsum("nt,ntg->ng", w, phi_c * phi_c) / sw_safe
    cov = np.einsum("nt,ntg->ng", w * yc, phi_c) / sw_safe
    usable = (phi_var > _TINY) & (y_var > _TINY * _TINY)
    slope = np.where(usable, cov / np.where(usable, phi_var, 1.0), 0.0)
    slope = np.minimum(slope, 0.0)  # b >= 0: the curve approaches its asymptote from below
    explained = np.where(slope < 0, slope * cov, 0.0)
    sse = sw * np.maximum(y_var - explained, 0.0)
    intercept = y_mean - slope * phi_mean
    return sse, slope, intercept
