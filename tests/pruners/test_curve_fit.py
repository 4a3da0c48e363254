from __future__ import annotations

import numpy as np
import pytest

from optuna_nas.pruners import fit_inverse_power_law
from optuna_nas.pruners._curve_fit import DEFAULT_EXPONENTS


def _ipl(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a - b * x ** (-c)


@pytest.mark.parametrize(
    ("a", "b", "c"),
    [(0.93, 0.4, 0.5), (0.8, 0.7, 1.3), (2.5, 1.0, 0.1), (-0.2, 0.3, 2.0)],
)
def test_recovers_known_parameters_from_exact_curves(a: float, b: float, c: float) -> None:
    x = np.arange(1, 31, dtype=float)
    fit = fit_inverse_power_law(x, _ipl(x, a, b, c))
    # The exponent is searched on a grid refined to ratio ~1.007: found to about 1%.
    assert fit.c[0] == pytest.approx(c, rel=0.01)
    assert fit.a[0] == pytest.approx(a, abs=0.01 * b)
    assert fit.b[0] == pytest.approx(b, rel=0.01)
    # Over the fitted range the curve itself is reproduced closely ...
    np.testing.assert_allclose(fit.predict(x)[0], _ipl(x, a, b, c), atol=1e-3 * b)
    # ... and so is the extrapolation three times beyond it.
    assert abs(fit.predict(100.0)[0] - _ipl(np.array(100.0), a, b, c)) < 5e-3 * b


def test_exact_recovery_when_exponent_is_on_the_grid() -> None:
    x = np.arange(1, 21, dtype=float)
    c = float(DEFAULT_EXPONENTS[20])
    fit = fit_inverse_power_law(x, _ipl(x, 0.9, 0.5, c))
    assert fit.c[0] == pytest.approx(c)
    assert fit.a[0] == pytest.approx(0.9, abs=1e-9)
    assert fit.b[0] == pytest.approx(0.5, abs=1e-9)
    assert fit.sse[0] == pytest.approx(0.0, abs=1e-12)
    assert fit.n_points[0] == 20


def test_noisy_curves_are_recovered_within_tolerance() -> None:
    rng = np.random.default_rng(0)
    x = np.arange(1, 51, dtype=float)
    a, b, c = 0.92, 0.45, 0.6
    y = _ipl(x, a, b, c) + rng.normal(0.0, 0.003, size=(200, x.size))
    fit = fit_inverse_power_law(x, y)
    # Individual fits scatter, but their median sits on the truth and few stray far.
    assert np.median(fit.a) == pytest.approx(a, abs=0.005)
    assert np.median(fit.c) == pytest.approx(c, rel=0.15)
    assert np.quantile(np.abs(fit.predict(98.0) - _ipl(np.array(98.0), a, b, c)), 0.9) < 0.01


def test_batched_fit_equals_individual_fits() -> None:
    rng = np.random.default_rng(1)
    x = np.arange(1, 16, dtype=float)
    y = np.stack([_ipl(x, 0.9, rng.uniform(0.2, 0.6), rng.uniform(0.1, 2.0)) for _ in range(5)])
    y += rng.normal(0, 0.01, size=y.shape)
    batched = fit_inverse_power_law(x, y)
    for row in range(5):
        single = fit_inverse_power_law(x, y[row])
        assert single.a.shape == (1,)
        np.testing.assert_allclose(
            [batched.a[row], batched.b[row], batched.c[row], batched.sse[row]],
            [single.a[0], single.b[0], single.c[0], single.sse[0]],
            rtol=1e-10,
            atol=1e-12,
        )


def test_non_finite_values_are_ignored() -> None:
    x = np.arange(1, 13, dtype=float)
    y = _ipl(x, 0.9, 0.5, 0.7) + np.linspace(0.0, 0.01, 12) ** 2
    holes = y.copy()
    holes[[2, 5, 9]] = [np.nan, np.inf, -np.inf]
    keep = np.isfinite(holes)
    with_holes = fit_inverse_power_law(x, holes)
    subset = fit_inverse_power_law(x[keep], y[keep])
    assert with_holes.n_points[0] == 9
    np.testing.assert_allclose(with_holes.predict(50.0), subset.predict(50.0), rtol=1e-12)


def test_weights_select_points() -> None:
    x = np.arange(1, 11, dtype=float)
    y = _ipl(x, 0.9, 0.5, 0.7)
    y[7:] = 0.0  # garbage the weights must hide
    weights = np.ones_like(y)
    weights[7:] = 0.0
    fit = fit_inverse_power_law(x, y, weights)
    clean = fit_inverse_power_law(x[:7], y[:7])
    np.testing.assert_allclose(fit.predict(30.0), clean.predict(30.0), rtol=1e-12)


def test_decreasing_curve_is_clamped_to_its_mean() -> None:
    x = np.arange(1, 11, dtype=float)
    y = 0.5 + 0.4 * x ** (-0.5)  # decreasing: would need b < 0
    fit = fit_inverse_power_law(x, y)
    assert fit.b[0] == 0.0
    assert fit.a[0] == pytest.approx(y.mean())
    assert fit.predict(1000.0)[0] == pytest.approx(y.mean())


def test_constant_and_empty_curves() -> None:
    x = np.arange(1, 6, dtype=float)
    fit = fit_inverse_power_law(x, np.array([[0.7] * 5, [np.nan] * 5]))
    assert fit.predict(100.0)[0] == pytest.approx(0.7)
    assert fit.b[0] == 0.0
    assert np.isnan(fit.a[1]) and np.isnan(fit.predict(100.0)[1])
    assert fit.n_points.tolist() == [5, 0]


def test_predict_broadcasts_over_positions() -> None:
    x = np.arange(1, 11, dtype=float)
    fit = fit_inverse_power_law(x, np.stack([_ipl(x, 0.9, 0.5, 0.7), _ipl(x, 0.8, 0.3, 1.0)]))
    assert fit.predict(np.array([20.0, 40.0, 80.0])).shape == (2, 3)
    assert fit.predict(20.0).shape == (2,)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (np.array([0.0, 1.0, 2.0]), np.ones(3), "x must be finite and positive"),
        (np.array([1.0, np.nan, 2.0]), np.ones(3), "x must be finite and positive"),
        (np.arange(1.0, 4.0), np.ones(4), "y.shape=\\(4,\\)"),
    ],
)
def test_invalid_inputs_raise(x: np.ndarray, y: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fit_inverse_power_law(x, y)


def test_invalid_exponents_and_weights_raise() -> None:
    x = np.arange(1.0, 5.0)
    with pytest.raises(ValueError, match="exponents"):
        fit_inverse_power_law(x, np.ones(4), exponents=[0.5, -1.0])
    with pytest.raises(ValueError, match="weights"):
        fit_inverse_power_law(x, np.ones(4), weights=[1.0, -1.0, 1.0, 1.0])
