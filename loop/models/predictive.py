"""Draws from a surrogate's calibrated predictive distribution: the spread of f2 (or any objective).

The curve bands of ``predict(X, return_std=True)`` are the members' spread plus
the noise, rescaled by the calibration factor ``std_scale_``. The spread of an
objective must come from that same distribution, not from the members alone
(the members agree far more than the data do). A draw here is

    mean + s * (member_m - mean) + s * noise * e,

with ``s`` the calibration factor, ``noise`` the std of the noise the members
do not explain (the model's ``predict_noise``), and ``e`` one standard normal number per
draw shared by every time of the curve (the errors on unseen formulations are
whole-curve offsets, not independent per time point). Draws come in
antithetic pairs (+e, -e), so their mean is the model's mean curve. Per time,
the draws' variance is the variance of the calibrated band.
"""

from __future__ import annotations

import numpy as np

from nanoloop.loop.models.base import curve_rows

DRAWS_PER_MEMBER = 8


def _calibrated_noise(model, features: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, float]:
    """(noise std not explained by the members, (n, T), uncalibrated; the calibration factor)."""
    noise = np.asarray(model.predict_noise(curve_rows(features, times)), dtype=np.float64)
    return noise.reshape(len(features), len(times)), float(model.std_scale_)


def _antithetic(n_sets: int, half: int, n: int, seed: int) -> np.ndarray:
    e = np.random.default_rng(seed).standard_normal((n_sets, half, n, 1))
    return np.concatenate([e, -e], axis=1)  # (n_sets, 2*half, n, 1): one number per curve


def predictive_draws(model, features, times_hours, draws: int = DRAWS_PER_MEMBER, seed: int = 0) -> np.ndarray:
    """Curves drawn from the calibrated predictive distribution, fractions, shape (n_members * draws, n, T).

    Args:
        model: fitted model with ``predict_curves``, ``predict_noise`` and ``std_scale_``
            (a :class:`~nanoloop.loop.models.base.ReleaseModel`).
        features: (n, d) encoded formulations.
        times_hours: (T,) times.
        draws: draws per member (rounded up to even: antithetic pairs).
        seed: seed of the noise draws.
    """
    features = np.asarray(features, dtype=np.float64)
    times = np.asarray(times_hours, dtype=np.float64).reshape(-1)
    members = np.asarray(model.predict_curves(features, times), dtype=np.float64)  # (M, n, T)
    noise, scale = _calibrated_noise(model, features, times)
    mean = members.mean(axis=0)
    e = _antithetic(members.shape[0], max(1, (int(draws) + 1) // 2), len(features), seed)
    out = mean + scale * (members - mean)[:, None] + scale * noise * e
    return np.clip(out, 0.0, 1.0).reshape(-1, len(features), len(times))


def residual_draws(corrected, features, times_hours, seed: int = 0) -> np.ndarray:
    """As :func:`predictive_draws` for a residual-GP-corrected model (``corrected.curve_model`` the surrogate):
    its curves (members plus GP draws) plus the surrogate's calibrated noise, fractions (S * 2, n, T)."""
    features = np.asarray(features, dtype=np.float64)
    times = np.asarray(times_hours, dtype=np.float64).reshape(-1)
    curves = np.asarray(corrected.predict_curves(features, times), dtype=np.float64)  # (S, n, T)
    noise, scale = _calibrated_noise(corrected.curve_model, features, times)
    e = _antithetic(curves.shape[0], 1, len(features), seed)
    return np.clip(curves[:, None] + scale * noise * e, 0.0, 1.0).reshape(-1, len(features), len(times))


class PredictiveCurves:
    """A fitted model whose ``predict_curves`` returns predictive draws (members, noise, calibration).

    Pass it wherever a curve model is expected (e.g. :meth:`Objective.samples`) to get the
    objective's honest spread.
    """

    def __init__(self, model, draws: int = DRAWS_PER_MEMBER, seed: int = 0):
        self.model, self.draws, self.seed = model, draws, seed

    def predict_curves(self, features, times_hours) -> np.ndarray:
        if hasattr(self.model, "curve_model"):  # the residual GP's correction of the surrogate
            return residual_draws(self.model, features, times_hours, self.seed)
        return predictive_draws(self.model, features, times_hours, self.draws, self.seed)

    def predict(self, X, return_std: bool = False):
        return self.model.predict(X, return_std=return_std)


def interval_90(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Central 90 % interval over draws (axis 0): the 5th and 95th percentiles."""
    lower, upper = np.percentile(np.asarray(values, dtype=np.float64), [5.0, 95.0], axis=0)
    return lower, upper


__all__ = ["DRAWS_PER_MEMBER", "PredictiveCurves", "interval_90", "predictive_draws", "residual_draws"]
