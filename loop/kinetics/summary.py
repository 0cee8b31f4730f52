"""One-call summary of a release curve, for the campaign ledger."""

from __future__ import annotations

from nanoloop.loop.kinetics.curves import validate_curve
from nanoloop.loop.kinetics.fitting import fit_laws
from nanoloop.loop.kinetics.measures import (
    burst_release,
    dissolution_efficiency,
    finite_or_none,
    mean_dissolution_time,
    time_to_release,
)


def summarize_curve(times_hours, release_pct, *, curve_id: str = "curve") -> dict:
    """Fit every release law and compute the model-independent measures of one curve.

    Never raises on a valid curve: a quantity the data cannot define is None
    (e.g. t80 when 80 % is never reached, burst when sampling stops before 24 h).

    Args:
        times_hours: sampling times in h, strictly increasing, ≥ 0, at least 2.
        release_pct: cumulative release in %.
        curve_id: name of the curve in error messages.

    Returns:
        JSON-serialisable dict: best_model (law name, lowest AICc over the whole
        curve), best_params (name -> value, units of that law), best_aicc, r2 (of
        the best model), t50_hours, t80_hours, burst_24h_pct, mdt_hours, de_pct.

    Raises:
        InputError: the curve is invalid (see `validate_curve`).
    """
    t, F = validate_curve(times_hours, release_pct, curve_id=curve_id)
    best = fit_laws(t, F, curve_id=curve_id).best
    return {
        "best_model": best.law.name if best else None,
        "best_params": {name: finite_or_none(value) for name, value in best.params.items()} if best else None,
        "best_aicc": finite_or_none(best.aicc) if best else None,
        "r2": finite_or_none(best.r2) if best else None,
        "t50_hours": finite_or_none(time_to_release(t, F, 50.0)),
        "t80_hours": finite_or_none(time_to_release(t, F, 80.0)),
        "burst_24h_pct": finite_or_none(burst_release(t, F, 24.0)),
        "mdt_hours": finite_or_none(mean_dissolution_time(t, F)),
        "de_pct": finite_or_none(dissolution_efficiency(t, F)),
    }
