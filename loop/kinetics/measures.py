"""Model-independent measures of one release curve: t_x, burst, MDT and DE.

All measures take validated arrays (times in h, strictly increasing, and
cumulative release in %). Release is taken as 0 % at t = 0 when the curve
does not start at t = 0. A measure that the data cannot define returns None.
"""

from __future__ import annotations

import numpy as np


def finite_or_none(value) -> float | None:
    """`value` as a float, or None when it is None, NaN or infinite (JSON-ready)."""
    return float(value) if value is not None and np.isfinite(value) else None


def _from_origin(times_hours, release_pct) -> tuple[np.ndarray, np.ndarray]:
    """The curve with the point (0 h, 0 %) prepended when it starts after t = 0."""
    t = np.asarray(times_hours, dtype=float)
    f = np.asarray(release_pct, dtype=float)
    if t[0] > 0:
        t = np.concatenate(([0.0], t))
        f = np.concatenate(([0.0], f))
    return t, f


def time_to_release(times_hours, release_pct, target_pct: float) -> float | None:
    """Time t_x at which the release first reaches `target_pct`, by linear interpolation.

    Args:
        times_hours: sampling times in h.
        release_pct: cumulative release in %.
        target_pct: release level x in %, e.g. 50 for t50 or 80 for t80.

    Returns:
        t_x in h, or None if the curve never reaches `target_pct`.
    """
    t, f = _from_origin(times_hours, release_pct)
    reached = np.flatnonzero(f >= target_pct)
    if reached.size == 0:
        return None
    i = int(reached[0])
    if i == 0:
        return float(t[0])
    t0, t1, f0, f1 = t[i - 1], t[i], f[i - 1], f[i]
    return float(t0 + (target_pct - f0) * (t1 - t0) / (f1 - f0))


def release_at(times_hours, release_pct, at_hours: float) -> float | None:
    """Release in % at `at_hours` by linear interpolation; None beyond the last sample."""
    t, f = _from_origin(times_hours, release_pct)
    if at_hours < 0 or at_hours > t[-1]:
        return None
    return float(np.interp(at_hours, t, f))


def burst_release(times_hours, release_pct, at_hours: float = 24.0) -> float | None:
    """Burst release: the release in % at 24 h (or `at_hours`); None if not sampled that long."""
    return release_at(times_hours, release_pct, at_hours)


def mean_dissolution_time(times_hours, release_pct) -> float | None:
    """Mean dissolution time MDT = Σ t̂_j·ΔF_j / Σ ΔF_j, in h.

    t̂_j is the midpoint of sampling interval j and ΔF_j the release during it
    (DDSolver's model-independent MDT). It describes the drug released within
    the sampled window.

    Returns:
        MDT in h, or None if no net release occurs.
    """
    t, f = _from_origin(times_hours, release_pct)
    released = np.diff(f)
    total = released.sum()
    if not total > 0:
        return None
    midpoints = 0.5 * (t[1:] + t[:-1])
    return float(np.sum(midpoints * released) / total)


def dissolution_efficiency(times_hours, release_pct, until_hours: float | None = None) -> float | None:
    """Dissolution efficiency DE = ∫₀ᵀ F dt / (100 %·T) × 100, in %.

    The area under the curve (trapezoidal rule) as a percentage of the rectangle
    of 100 % release over the same time.

    Args:
        times_hours: sampling times in h.
        release_pct: cumulative release in %.
        until_hours: end T of the integral in h; the last sample by default.

    Returns:
        DE in %, or None if T is beyond the last sample or not positive.
    """
    t, f = _from_origin(times_hours, release_pct)
    end = t[-1] if until_hours is None else float(until_hours)
    if not 0 < end <= t[-1]:
        return None
    keep = t < end
    t_in = np.append(t[keep], end)
    f_in = np.append(f[keep], np.interp(end, t, f))
    area = np.sum(0.5 * (f_in[1:] + f_in[:-1]) * np.diff(t_in))
    return float(area / (100.0 * end) * 100.0)


def time_scale(max_hours: float) -> tuple[float, str]:
    """(hours per unit, unit name) of a plot's time axis: days for runs longer than 72 h, else hours."""
    return (24.0, "days") if max_hours > 72 else (1.0, "hours")
