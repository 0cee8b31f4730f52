"""The ensemble's curves corrected by a Gaussian process per target time on its residuals.

Which measured formulations it is fitted on is the caller's choice
(:func:`nanoloop.loop.design.ensemble_recommender.corrected_by_measurements`).

With few measured formulations the ensemble's objective is too coarse for EI;
a GP with the ensemble as its mean function keeps the ensemble's mechanistic
extrapolation far from the data and follows the measurements near them.
"""

from __future__ import annotations

import numpy as np

from nanoloop.loop.models.gp import fit_standardised_gp


class ResidualCorrected:
    """The ensemble's member curves corrected by one Gaussian process per time on the ensemble's residuals.

    A GP with the ensemble as its mean function: far from measured formulations
    the curves are the ensemble's (mechanistic extrapolation); near them the
    GPs pull the curves onto what was measured, with the GP's uncertainty added
    to the members' spread.

    With ``select_mean`` the ensemble has to earn its place, time by time: a GP
    on the residuals and a GP on the measured release itself (constant mean)
    are both fitted, and the one with the higher log marginal likelihood (in
    % units; Bayesian model selection) is used. With few formulations the
    ensemble is often no better than a constant, and then the curves at that
    time are the plain GP's.

    Each member curve gets ``draws`` GP draws, fixed standard-normal draws that
    are the same for every candidate (common random numbers: a candidate's
    samples are deterministic), so ``predict_curves`` returns ``n_members * draws`` curves.

    Args:
        curve_model: fitted ensemble with ``predict_curves(features, times_hours) -> (M, n, T)`` fractions.
        times_hours: times the GPs are fitted at (the objective's times), shape (T,).
        draws: GP draws per member.
        seed: seed of the GP optimiser restarts and of the draws.
        select_mean: choose per time between the ensemble and a constant as the GP's mean.
        restarts: optimiser restarts of each GP fit (:func:`~nanoloop.loop.models.gp.fit_standardised_gp`).
    """

    def __init__(self, curve_model, times_hours, draws: int = 4, seed: int = 0, select_mean: bool = True, restarts: int = 1):
        self.curve_model = curve_model
        self.times_hours = np.asarray(times_hours, dtype=float)
        self.draws = int(draws)
        self.seed = seed
        self.select_mean = select_mean
        self.restarts = restarts

    def _gp(self, X: np.ndarray, y: np.ndarray):
        """A GP on y standardised by hand; returns (gp, mean, std, log marginal likelihood of y in its own units)."""
        gp, centre, scale = fit_standardised_gp(X, y, self.seed, restarts=self.restarts)
        return gp, centre, scale, float(gp.log_marginal_likelihood_value_) - len(y) * np.log(scale)

    def fit(self, encoded: np.ndarray, measured_pct: np.ndarray) -> "ResidualCorrected":
        """Fit on measured formulations (k, d) and their mean release (k, T) in % at ``times_hours``."""
        encoded = np.asarray(encoded, dtype=np.float64)
        measured_pct = np.asarray(measured_pct, dtype=np.float64)
        members = 100.0 * np.asarray(self.curve_model.predict_curves(encoded, self.times_hours))
        residual = measured_pct - members.mean(axis=0)
        self.gps_, self.uses_ensemble_ = [], []
        for j in range(len(self.times_hours)):
            corrected = self._gp(encoded, residual[:, j])
            plain = self._gp(encoded, measured_pct[:, j]) if self.select_mean else None
            use = plain is None or corrected[3] >= plain[3]
            self.gps_.append(corrected[:3] if use else plain[:3])
            self.uses_ensemble_.append(bool(use))
        n_samples = members.shape[0] * self.draws
        z = np.random.default_rng(self.seed).standard_normal((n_samples, len(self.times_hours)))
        self.z_ = z - z.mean(axis=0)  # centred: the mean of the draws is the GP mean
        return self

    def predict_curves(self, features, times_hours) -> np.ndarray:
        """Curves (M * draws, n, T) as fractions; ``times_hours`` must be among the fitted times."""
        times = np.asarray(times_hours, dtype=float)
        index = []
        for t in times:
            hit = np.flatnonzero(np.isclose(self.times_hours, t))
            if not len(hit):
                raise ValueError(f"time {t:g} h is not among the corrected times {self.times_hours.tolist()}")
            index.append(int(hit[0]))
        members = 100.0 * np.asarray(self.curve_model.predict_curves(features, times), dtype=np.float64)  # (M, n, T)
        x = np.asarray(features, dtype=np.float64)
        mean = np.empty((len(x), len(times)))
        std = np.empty((len(x), len(times)))
        for k, j in enumerate(index):
            gp, centre, scale = self.gps_[j]
            m, sd = gp.predict(x, return_std=True)
            mean[:, k], std[:, k] = centre + scale * m, scale * sd
            if not self.uses_ensemble_[j]:
                members[:, :, k] = 0.0
        n_members = members.shape[0]
        z = self.z_[:, index].reshape(n_members, self.draws, 1, len(times))  # (M, K, 1, T)
        curves = members[:, None] + mean[None, None] + std[None, None] * z  # (M, K, n, T)
        curves = np.clip(curves, 0.0, 100.0).reshape(-1, len(x), len(times))
        return curves / 100.0
