"""Campaign objectives: how close a release curve is to the target profile.

The objective is computed on each ensemble member's curve, then summarised by
its mean and spread over members (never on the mean curve).
"""

from __future__ import annotations

import numpy as np

from loop.config import TargetProfile
from loop.kinetics import f2


def f2_to_target(release_pct: np.ndarray, target: TargetProfile) -> np.ndarray:
    """f2 of curves sampled at the target's times.

    Args:
        release_pct: cumulative release in %, shape (..., len(target.times_hours)).
        target: the target profile.

    Returns:
        f2, shape (...).
    """
    return f2(np.asarray(target.release_pct), release_pct)


def measured_f2(times_hours: np.ndarray, release_pct: np.ndarray, target: TargetProfile) -> float:
    """f2 of one measured (mean) curve to the target, interpolating at the target's times.

    Times past the last measurement use the last value (no extrapolation).
    """
    at_target = np.interp(target.times_hours, times_hours, release_pct)
    return float(f2_to_target(at_target, target))


def objective_samples(member_curves_fraction: np.ndarray, target: TargetProfile) -> np.ndarray:
    """f2 per member: curves (n_members, n, T) as fractions at the target times -> (n_members, n)."""
    return f2_to_target(100.0 * member_curves_fraction, target)
