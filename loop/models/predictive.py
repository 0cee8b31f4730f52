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

from nanoloop.loop.models.ensemble import curve_rows

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


def prospective_widening(formulations, measured_f2, min_records: int = 4) -> tuple[float, int]:
    """Factor widening the f2 interval so it covers 90 % of this campaign's own prospective record.

    The model's predictive distribution is calibrated on held-out curves, but the
    formulations an acquisition picks are the ones it is most optimistic about: on
    them the errors are larger. This factor is the 90th percentile, over the
    formulations the model proposed and the lab measured, of the measured f2's
    distance from the predicted f2 in units of the interval's (unwidened) half on
    that side; 1 with fewer than ``min_records`` such formulations, never below 1.

    Args:
        formulations: the ledger's formulations (``formulation_id``, ``acquisition_params_json``
            holding the stored ``f2``, ``f2_lower_90``, ``f2_upper_90`` and ``f2_widening``).
        measured_f2: measured f2 by formulation id (a mapping or Series).

    Returns:
        (factor, number of formulations it was computed on).
    """
    import json

    z = []
    for fid, text in zip(formulations["formulation_id"], formulations["acquisition_params_json"]):
        try:
            notes = json.loads(text) if isinstance(text, str) and text else {}
        except ValueError:
            continue
        if not isinstance(notes, dict) or "f2_lower_90" not in notes or fid not in measured_f2:
            continue
        measured, mean, k = float(measured_f2[fid]), float(notes["f2"]), float(notes.get("f2_widening", 1.0))
        if not np.isfinite(measured):
            continue
        side = (notes["f2_upper_90"] - mean) if measured >= mean else (mean - notes["f2_lower_90"])
        z.append(abs(measured - mean) / max(side / k, 1e-6))
    if len(z) < min_records:
        return 1.0, len(z)
    return float(np.clip(np.quantile(z, 0.90), 1.0, 10.0)), len(z)
