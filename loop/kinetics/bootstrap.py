"""Bias-corrected and accelerated (BCa) bootstrap intervals, from the standard formulas.

For an estimate θ̂, B bootstrap replicates θ*_b and jackknife (leave-one-unit-out)
estimates θ_(i) of each group j of n_j units (Efron & Tibshirani, An
Introduction to the Bootstrap, 1993, ch. 14.3 and eq. 15.36):

    z0 = Φ⁻¹(#{θ*_b < θ̂} / B)                              bias correction
    U_ji = (n_j − 1)·(θ̄_(j·) − θ_(ji))                       θ̄_(j·) the mean of group j's θ_(i)
    a = Σ_j Σ_i U_ji³/n_j³ / (6·(Σ_j Σ_i U_ji²/n_j²)^(3/2))   acceleration
    α_lo = Φ(z0 + (z0 + z_α)/(1 − a·(z0 + z_α)))           z_α = Φ⁻¹(α), α = (1 − confidence)/2
    α_hi = Φ(z0 + (z0 + z_(1−α))/(1 − a·(z0 + z_(1−α))))

and the interval is the α_lo and α_hi percentiles of the θ*_b. With one group
this is the usual one-sample acceleration a = Σ U³ / (6·(Σ U²)^(3/2)).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.special import ndtr, ndtri


def bias_correction(estimate: float, replicates) -> float:
    """z0 = Φ⁻¹(share of bootstrap replicates below the estimate), the share kept within
    [1/(2B), 1 − 1/(2B)] so z0 stays finite."""
    replicates = np.asarray(replicates, dtype=float)
    share = np.mean(replicates < estimate)
    edge = 0.5 / replicates.size
    return float(ndtri(np.clip(share, edge, 1.0 - edge)))


def acceleration(jackknife_by_group: Sequence[Sequence[float]]) -> float:
    """Acceleration a from the leave-one-unit-out estimates of each group (module docstring)."""
    numerator = denominator = 0.0
    for values in jackknife_by_group:
        values = np.asarray(values, dtype=float)
        n = values.size
        influence = (n - 1) * (values.mean() - values)
        numerator += np.sum(influence**3) / n**3
        denominator += np.sum(influence**2) / n**2
    return float(numerator / (6.0 * denominator**1.5)) if denominator > 0 else 0.0


def bca_interval(estimate: float, replicates, jackknife_by_group, confidence: float = 0.90):
    """BCa interval (lower, upper, z0, a) of `estimate` from its bootstrap replicates and jackknife.

    Args:
        estimate: the estimate θ̂ on the data.
        replicates: the bootstrap replicates θ*_b.
        jackknife_by_group: for each group of units, θ with each unit left out in turn.
        confidence: two-sided coverage, e.g. 0.90.
    """
    replicates = np.asarray(replicates, dtype=float)
    z0 = bias_correction(estimate, replicates)
    a = acceleration(jackknife_by_group)
    z = ndtri((1.0 - confidence) / 2.0)
    levels = [ndtr(z0 + (z0 + zq) / (1.0 - a * (z0 + zq))) for zq in (z, -z)]
    lower, upper = np.percentile(replicates, [100.0 * levels[0], 100.0 * levels[1]])
    return float(lower), float(upper), z0, a
