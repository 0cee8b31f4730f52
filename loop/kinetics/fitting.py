"""Fitting release laws to a curve and ranking them, as DDSolver reports them.

Each law is fitted by bounded nonlinear least squares
(`scipy.optimize.least_squares`, trust-region reflective) from several
starts: the law's data-driven initial guess and the best of a set of
perturbed guesses scored on the data. Statistics follow DDSolver:

    R² = 1 − SSE/SST            adjusted R² = 1 − (n − 1)/(n − p)·(1 − R²)
    RMSE = √(SSE/(n − p))       MSC = ln(SST/SSE) − 2p/n
    AIC = n·ln(SSE) + 2p        AICc = AIC + 2p(p + 1)/(n − p − 1)
    BIC = n·ln(SSE) + p·ln(n)

with n the points fitted, p the parameters, SSE the residual and SST the
total (about the mean) sum of squares. With replicate SDs, points are weighted
by w = 1/SD² (SD floored at `SD_FLOOR_PCT`, weights scaled to mean 1 so the
statistics stay in %): SSE = Σ w·(F − F̂)², SST = Σ w·(F − F̄_w)².

Each fit is flagged (`LawFit.flags`) when a parameter ends at or within 1 %
of a bound (relative to the bound; for a bound of 0, within 1e-9 of the
other bound's size), or when a standard error exceeds its estimate. Models are ranked by AICc; a law fitted
on part of the curve (Korsmeyer-Peppas: up to 60 % released) has statistics
that do not compare with the others and is ranked after them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
from scipy.optimize import least_squares

from nanoloop.loop.kinetics.curves import validate_curve
from nanoloop.loop.kinetics.laws import LAWS, ReleaseLaw, get_law
from nanoloop.loop.kinetics.measures import finite_or_none

_SSE_FLOOR = 1e-12  # keeps ln(SSE) finite for an exact fit
_BAD_RESIDUAL = 1e6  # stands in for a non-finite model value
_START_FACTORS = (0.1, 0.3, 3.0, 10.0)
_RELATIVE_STEP = np.sqrt(np.finfo(float).eps)  # forward-difference step, as scipy's "2-point"
#: Replicate SDs below this (in % points) are raised to it, so a point measured without spread
#: (e.g. 0 % at t = 0) does not get an infinite weight.
SD_FLOOR_PCT = 1.0
BOUND_TOLERANCE = 0.01  # "at a bound": within 1 % of it


@dataclass(frozen=True)
class LawFit:
    """One law fitted to one curve.

    Attributes:
        law: the fitted law.
        params: fitted value of each parameter, in the units of `law.parameters`.
        std_errors: asymptotic standard error of each parameter (None if undefined).
        n_points: number of points fitted.
        fitted_on_all_points: False when the law used only part of the curve.
        sse: residual sum of squares in %².
        r2, r2_adjusted, rmse, aic, aicc, bic, msc: goodness of fit (module
            docstring); None where undefined (e.g. AICc when n ≤ p + 1).
        flags: parameters at a bound, standard errors larger than the estimate.
        weighted: whether points were weighted by replicate SD.
    """

    law: ReleaseLaw
    params: dict[str, float]
    std_errors: dict[str, float | None]
    n_points: int
    fitted_on_all_points: bool
    sse: float
    r2: float | None
    r2_adjusted: float | None
    rmse: float | None
    aic: float
    aicc: float | None
    bic: float
    msc: float | None
    flags: tuple[str, ...] = ()
    weighted: bool = False

    def predict(self, times_hours) -> np.ndarray:
        """Fitted release in % at `times_hours` (h)."""
        with np.errstate(all="ignore"):
            return self.law(np.asarray(times_hours, dtype=float), *self.params.values())

    def to_dict(self) -> dict:
        """JSON-serialisable summary: name, equation, parameters with units, statistics."""
        return {
            "model": self.law.name,
            "title": self.law.title,
            "equation": self.law.equation,
            "params": dict(self.params),
            "std_errors": dict(self.std_errors),
            "units": {p.name: p.unit for p in self.law.parameters},
            "n_points": self.n_points,
            "fitted_on_all_points": self.fitted_on_all_points,
            "weighted": self.weighted,
            "flags": list(self.flags),
            **{key: finite_or_none(getattr(self, key))
               for key in ("sse", "r2", "r2_adjusted", "rmse", "aic", "aicc", "bic", "msc")},
        }


@dataclass(frozen=True)
class CurveFit:
    """All laws fitted to one curve, ranked.

    Attributes:
        fits: ranked best first: whole-curve fits by AICc, then partial fits by AICc.
        skipped: law name -> why it was not fitted (e.g. too few points below 60 %).
    """

    fits: tuple[LawFit, ...]
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def best(self) -> LawFit | None:
        """The lowest-AICc law fitted on the whole curve, or None if none could be."""
        return next((fit for fit in self.fits if fit.fitted_on_all_points), None)

    def get(self, name: str) -> LawFit | None:
        """The fit of the law called `name`, or None if it was skipped or not asked for."""
        return next((fit for fit in self.fits if fit.law.name == name), None)


def fit_statistics(observed_pct, predicted_pct, n_params: int, weights=None) -> dict[str, float | None]:
    """Goodness-of-fit statistics of a fitted curve (DDSolver definitions, module docstring).

    Args:
        observed_pct: measured release in %.
        predicted_pct: model release in % at the same times.
        n_params: number of fitted parameters p.
        weights: weight of each point (mean 1), or None for equal weights.

    Returns:
        sse, r2, r2_adjusted, rmse, aic, aicc, bic, msc; None where undefined.
    """
    observed = np.asarray(observed_pct, dtype=float)
    n, p = observed.size, n_params
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    sse = float(np.sum(w * (observed - np.asarray(predicted_pct, dtype=float)) ** 2))
    sst = float(np.sum(w * (observed - np.average(observed, weights=w)) ** 2))
    log_sse = np.log(max(sse, _SSE_FLOOR))
    r2 = 1.0 - sse / sst if sst > 0 else None
    aic = n * log_sse + 2 * p
    return {
        "sse": sse,
        "r2": r2,
        "r2_adjusted": 1.0 - (n - 1) / (n - p) * (1.0 - r2) if r2 is not None and n > p else None,
        "rmse": float(np.sqrt(sse / (n - p))) if n > p else None,
        "aic": float(aic),
        "aicc": float(aic + 2 * p * (p + 1) / (n - p - 1)) if n > p + 1 else None,
        "bic": float(n * log_sse + p * np.log(n)),
        "msc": float(np.log(sst / max(sse, _SSE_FLOOR)) - 2 * p / n) if sst > 0 else None,
    }


def _points_for(law: ReleaseLaw, F: np.ndarray) -> int:
    """How many leading points a law is fitted on: all, or those before release first exceeds its limit."""
    if law.max_release_pct is None:
        return F.size
    above = np.flatnonzero(F > law.max_release_pct)
    return int(above[0]) if above.size else F.size


def weights_from_sd(sd_pct) -> np.ndarray | None:
    """Weights 1/SD² (SD floored at `SD_FLOOR_PCT`), scaled to mean 1; None when `sd_pct` is None."""
    if sd_pct is None:
        return None
    w = 1.0 / np.maximum(np.asarray(sd_pct, dtype=float), SD_FLOOR_PCT) ** 2
    return w / w.mean()


def _fit_flags(law: ReleaseLaw, params: np.ndarray, errors: np.ndarray) -> tuple[str, ...]:
    flags = []
    for p, value, se in zip(law.parameters, params, errors):
        for side, bound, other in (("lower", p.lower, p.upper), ("upper", p.upper, p.lower)):
            tolerance = BOUND_TOLERANCE * abs(bound) if bound != 0 else 1e-9 * max(1.0, abs(other))
            if abs(value - bound) <= tolerance:
                flags.append(f"{p.name} at its {side} bound {bound:g}")
        if np.isfinite(se) and se > abs(value):
            flags.append(f"{p.name}: standard error {se:.2g} exceeds the estimate {value:.4g}")
    return tuple(flags)


def _starts(law: ReleaseLaw, t: np.ndarray, F: np.ndarray, n_starts: int) -> list[np.ndarray]:
    """The initial guess, then the best-scoring perturbations of it (each parameter and all
    together scaled by 0.1, 0.3, 3 and 10), up to `n_starts` starting points."""
    lower, upper = law.lower_bounds, law.upper_bounds
    guess = np.clip(np.asarray(law.initial_guess(t, F), dtype=float), lower, upper)
    if n_starts <= 1:
        return [guess]
    p = guess.size
    scales = [np.full(p, f) for f in _START_FACTORS]
    scales += [np.where(np.arange(p) == i, f, 1.0) for i in range(p) for f in _START_FACTORS]
    candidates = np.clip(guess * np.array(scales), lower, upper)
    with np.errstate(all="ignore"):
        predicted = law(t, *(column[:, None] for column in candidates.T))
        sse = np.nansum((predicted - F) ** 2, axis=-1)
    sse[~np.isfinite(sse)] = np.inf
    distinct = ~np.all(np.isclose(candidates, guess), axis=1)
    order = [i for i in np.argsort(sse, kind="stable") if distinct[i]]
    return [guess] + [candidates[i] for i in order[: n_starts - 1]]


def _fit_points(law: ReleaseLaw, t: np.ndarray, F: np.ndarray, n_starts: int, scale: np.ndarray):
    """Best least-squares solution of the residuals times `scale` (√weights) over the starts:
    (params, jacobian of the scaled residuals)."""
    upper = law.upper_bounds

    def residuals(params):
        with np.errstate(all="ignore"):
            r = (law(t, *params) - F) * scale
        return np.where(np.isfinite(r), r, _BAD_RESIDUAL)

    def jacobian(params):
        # Forward differences for all parameters in one vectorised call of the law.
        step = _RELATIVE_STEP * np.maximum(1.0, np.abs(params))
        step = np.where(params + step > upper, -step, step)
        shifted = params + np.diag(step)
        with np.errstate(all="ignore"):
            columns = (law(t, *(shifted[:, j, None] for j in range(params.size))) - law(t, *params)) / step[:, None]
        return np.where(np.isfinite(columns), columns * scale, 0.0).T

    best = None
    for x0 in _starts(law, t, F, n_starts):
        result = least_squares(residuals, x0, jac=jacobian, bounds=(law.lower_bounds, upper),
                               method="trf", x_scale="jac")
        if best is None or result.cost < best.cost:
            best = result
    return best.x, best.jac


def _standard_errors(jacobian: np.ndarray, sse: float, n: int, p: int) -> np.ndarray:
    """√diag(s²·(JᵀJ)⁻¹) with s² = SSE/(n − p); NaN where undefined."""
    if n <= p:
        return np.full(p, np.nan)
    with np.errstate(all="ignore"):
        covariance = np.linalg.pinv(jacobian.T @ jacobian) * sse / (n - p)
        return np.sqrt(np.diag(covariance))


def fit_law(law: ReleaseLaw | str, times_hours, release_pct, *, n_starts: int = 2,
            curve_id: str = "curve", sd_pct=None) -> LawFit:
    """Fit one release law to one curve.

    Args:
        law: a `ReleaseLaw` or its name.
        times_hours: sampling times in h, strictly increasing, ≥ 0.
        release_pct: cumulative release in % (values a little above 100 are fine).
        n_starts: number of least-squares starts.
        curve_id: name of the curve in error messages.
        sd_pct: replicate SD at each time in %, to weight the points by 1/SD²; None for equal weights.

    Returns:
        The fitted `LawFit`.

    Raises:
        InputError: the curve is invalid.
        ValueError: too few points for this law (at least p + 1 needed, p the
            number of parameters, counting only points ≤ 60 % for Korsmeyer-Peppas).
    """
    t, F = validate_curve(times_hours, release_pct, curve_id=curve_id)
    return _fit(get_law(law) if isinstance(law, str) else law, t, F, n_starts, weights_from_sd(sd_pct))


def _fit(law: ReleaseLaw, t: np.ndarray, F: np.ndarray, n_starts: int, weights: np.ndarray | None) -> LawFit:
    n, p = _points_for(law, F), len(law.parameters)
    if n <= p:
        where = f" at or below {law.max_release_pct:g} % release" if law.max_release_pct else ""
        raise ValueError(f"{law.title} needs at least {p + 1} points{where}, the curve has {n}")
    t_fit, F_fit = t[:n], F[:n]
    w = None if weights is None else weights[:n] / weights[:n].mean()
    params, jacobian = _fit_points(law, t_fit, F_fit, n_starts, np.ones(n) if w is None else np.sqrt(w))
    with np.errstate(all="ignore"):  # e.g. exp overflow to inf on the way to 0 % or 100 %
        stats = fit_statistics(F_fit, law(t_fit, *params), p, w)
    errors = _standard_errors(jacobian, stats["sse"], n, p)
    return LawFit(
        law=law,
        params={name: float(value) for name, value in zip(law.param_names, params)},
        std_errors={name: finite_or_none(se) for name, se in zip(law.param_names, errors)},
        n_points=n,
        fitted_on_all_points=n == F.size,
        **stats,
        flags=_fit_flags(law, params, errors),
        weighted=w is not None,
    )


def _rank_key(fit: LawFit):
    aicc = fit.aicc if fit.aicc is not None else np.inf
    return (not fit.fitted_on_all_points, aicc, fit.aic)


def fit_laws(times_hours, release_pct, laws: Iterable[ReleaseLaw | str] = LAWS, *,
             n_starts: int = 2, curve_id: str = "curve", sd_pct=None) -> CurveFit:
    """Fit several release laws (all by default) to one curve and rank them by AICc.

    A law that cannot be fitted (too few points, a numerical failure) is listed
    in `CurveFit.skipped` with the reason instead of stopping the others.

    Args:
        times_hours: sampling times in h, strictly increasing, ≥ 0.
        release_pct: cumulative release in %.
        laws: the laws, or their names, to fit.
        n_starts: number of least-squares starts per law.
        curve_id: name of the curve in error messages.
        sd_pct: replicate SD at each time in %, to weight the points by 1/SD²; None for equal weights.

    Raises:
        InputError: the curve is invalid (see `validate_curve`).
    """
    t, F = validate_curve(times_hours, release_pct, curve_id=curve_id)
    weights = weights_from_sd(sd_pct)
    fits, skipped = [], {}
    for law in laws:
        law = get_law(law) if isinstance(law, str) else law
        try:
            fits.append(_fit(law, t, F, n_starts, weights))
        except (ValueError, np.linalg.LinAlgError) as err:
            skipped[law.name] = str(err)
    return CurveFit(fits=tuple(sorted(fits, key=_rank_key)), skipped=skipped)
