"""Release laws as small frozen value objects (the mechanism reading is in `loop.kinetics.mechanism`).

A `ReleaseLaw` bundles a vectorised equation from `loop.kinetics.equations`
(see each function's docstring for the equation, parameter meanings and units)
with its parameter names, units and bounds, and a data-driven initial guess
(mostly from the law's linearised form). `LAWS` lists them all, DDSolver's
burst (F0) and plateau (Fmax) variants, Makoid-Banakar, probit and quadratic
included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import ndtri

from nanoloop.loop.kinetics import equations as eq
from nanoloop.loop.kinetics.measures import time_to_release

Guess = Callable[[np.ndarray, np.ndarray], tuple[float, ...]]

_RATE_MAX = 1e4  # 1/h, %/h, ...: far beyond any release still sampled in hours


@dataclass(frozen=True)
class Parameter:
    """One fitted parameter: symbol, unit, meaning and the bounds used in fitting."""

    name: str
    unit: str
    meaning: str
    lower: float
    upper: float


@dataclass(frozen=True)
class ReleaseLaw:
    """A release law F(t): cumulative release in % against time in h.

    Attributes:
        name: identifier, e.g. "first_order_plateau".
        title: display name, e.g. "First-order (Fmax)".
        equation: the equation in text, time t in h.
        parameters: the fitted parameters, in the order `function` takes them.
        function: vectorised equation `function(times_hours, *params) -> release_pct`.
        initial_guess: `initial_guess(times_hours, release_pct) -> params` from the data.
        max_release_pct: fit only the points before the release first exceeds this
            (Korsmeyer-Peppas: 60 %); None to fit every point.
    """

    name: str
    title: str
    equation: str
    parameters: tuple[Parameter, ...]
    function: Callable[..., np.ndarray]
    initial_guess: Guess
    max_release_pct: float | None = None

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    @property
    def lower_bounds(self) -> np.ndarray:
        return np.array([p.lower for p in self.parameters])

    @property
    def upper_bounds(self) -> np.ndarray:
        return np.array([p.upper for p in self.parameters])

    def __call__(self, times_hours, *params) -> np.ndarray:
        """Release in % at `times_hours` (h) for the given parameters."""
        return self.function(times_hours, *params)


# Parameters shared by several laws.
_F0 = Parameter("F0", "%", "burst release at t = 0", 0.0, 100.0)
_FMAX = Parameter("Fmax", "%", "plateau (final) release", 1.0, 150.0)
_TAU = Parameter("tau", "h", "Weibull time scale (63.2 % of release)", 1e-4, 1e6)
_BETA_WEIBULL = Parameter("beta", "-", "Weibull shape", 0.05, 10.0)
_ALPHA_GOMPERTZ = Parameter("alpha", "-", "Gompertz scale", 1e-6, 1e6)
_BETA_GOMPERTZ = Parameter("beta", "-", "Gompertz rate per decade of time", 1e-3, 50.0)
_ALPHA_LOGISTIC = Parameter("alpha", "-", "logistic location", -100.0, 100.0)
_BETA_LOGISTIC = Parameter("beta", "-", "logistic slope per decade of time", 1e-3, 50.0)
_K1 = Parameter("k1", "1/h", "first-order rate constant", 0.0, _RATE_MAX)
_KKP = Parameter("kKP", "%/h^n", "Korsmeyer-Peppas release constant", 0.0, _RATE_MAX)
_N_KP = Parameter("n", "-", "release exponent (mechanism)", 0.01, 2.0)
_KMB = Parameter("kMB", "%/h^n", "Makoid-Banakar release constant", 0.0, _RATE_MAX)


# ----------------------------------------------------------------- initial guesses
def _fraction(release_pct, plateau_pct=100.0) -> np.ndarray:
    """Release as a fraction of the plateau, kept inside (0.001, 0.99) for linearisations."""
    return np.clip(np.asarray(release_pct, dtype=float) / plateau_pct, 1e-3, 0.99)


def _usable(t, f) -> np.ndarray:
    """Points that carry information for a linearisation: t > 0 and 1 % < F < 99 % of plateau."""
    return (t > 0) & (f > 0.01) & (f < 0.99)


def _slope_through_origin(x, y) -> float | None:
    sxx = float(np.dot(x, x))
    return float(np.dot(x, y)) / sxx if sxx > 0 else None


def _line(x, y) -> tuple[float, float] | None:
    """Least-squares (slope, intercept), or None with fewer than two distinct x."""
    if np.unique(x).size < 2:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


def _half_time(t, F, plateau_pct=100.0) -> float:
    """Rough time to half the plateau in h: interpolated, else extrapolated from the last point."""
    t50 = time_to_release(t, F, 0.5 * plateau_pct)
    if t50 is not None and t50 > 0:
        return t50
    top = max(float(np.max(F)), 1.0)
    return float(t[-1]) * max(0.5 * plateau_pct / top, 1.0)


def _bounded_exp(log_value: float, parameter: Parameter) -> float:
    """exp(log_value) kept within the parameter's bounds (and clear of overflow)."""
    low = np.log(max(parameter.lower, 1e-300))
    return float(np.exp(np.clip(log_value, low, np.log(parameter.upper))))


def _plateau(F) -> float:
    return float(np.clip(1.02 * np.max(F), _FMAX.lower, _FMAX.upper))


def _rate_from(t, y, t_half_guess):
    """k from y = k·t through the origin on usable points, else ln 2 / t½."""
    k = _slope_through_origin(t, y) if t.size else None
    return k if k is not None and k > 0 else np.log(2.0) / t_half_guess


def _guess_first_order(t, F, plateau=100.0, burst=0.0):
    f = _fraction(np.asarray(F) - burst, plateau - burst)
    ok = _usable(t, f)
    return _rate_from(t[ok], -np.log1p(-f[ok]), _half_time(t, F, plateau))


def _guess_zero_order(t, F):
    k = _slope_through_origin(t, F)
    return (max(k or 0.0, 1e-6),)


def _guess_line(x, F):
    line = _line(x, F)
    slope, intercept = line if line else (float(F[-1]) / max(float(x[-1]), 1e-9), 0.0)
    return float(np.clip(intercept, 0.0, 100.0)), max(slope, 1e-6)


def _guess_first_order_burst(t, F):
    burst = float(np.clip(np.min(F[t > 0]) if np.any(t > 0) else 0.0, 0.0, 90.0)) * 0.8
    return burst, _guess_first_order(t, F, burst=burst)


def _guess_power(t, F, burst=0.0):
    y = np.asarray(F, dtype=float) - burst
    ok = (t > 0) & (y > 0.01)
    line = _line(np.log(t[ok]), np.log(y[ok])) if ok.sum() >= 2 else None
    if line is None:
        return 10.0, 0.5
    n = float(np.clip(line[0], 0.05, 1.5))
    return _bounded_exp(line[1], _KKP), n


def _guess_power_burst(t, F):
    burst = 0.5 * float(np.clip(F[t > 0][0] if np.any(t > 0) else 0.0, 0.0, 100.0))
    return (burst, *_guess_power(t, F, burst))


def _guess_erosion(t, F, n=3.0):
    f = _fraction(F)
    ok = _usable(t, f)
    return _rate_from(t[ok], 1.0 - np.power(1.0 - f[ok], 1.0 / n), 4.0 * _half_time(t, F))


def _guess_baker_lonsdale(t, F):
    f = _fraction(F)
    ok = _usable(t, f)
    y = 1.5 * (1.0 - np.power(1.0 - f[ok], 2.0 / 3.0)) - f[ok]
    return (_rate_from(t[ok], y, 12.6 * _half_time(t, F)),)


def _guess_peppas_sahlin(t, F, m=0.45):
    tm = np.power(t, m)
    basis = np.column_stack([tm, tm * tm])
    (k1, k2), *_ = np.linalg.lstsq(basis, np.asarray(F, dtype=float), rcond=None)
    return max(float(k1), 1e-3), float(k2), m


def _guess_weibull(t, F, plateau=100.0):
    f = _fraction(F, plateau)
    ok = _usable(t, f)
    line = _line(np.log(t[ok]), np.log(-np.log1p(-f[ok]))) if ok.sum() >= 2 else None
    if line is None or line[0] <= 0:
        return _half_time(t, F, plateau) / np.log(2.0), 1.0
    beta = float(np.clip(line[0], 0.1, 5.0))
    return _bounded_exp(-line[1] / line[0], _TAU), beta


def _guess_weibull_lag(t, F):
    started = np.flatnonzero(np.asarray(F) > 1.0)
    lag = 0.5 * float(t[started[0] - 1]) if started.size and started[0] > 0 else 0.0
    tau, beta = _guess_weibull(np.clip(t - lag, 0.0, None), F)
    return tau, beta, lag


def _guess_log_time(t, F, transform, plateau=100.0):
    """(intercept, slope) of transform(f) against log10 t; the DDSolver linearisation."""
    f = _fraction(F, plateau)
    ok = _usable(t, f)
    line = _line(np.log10(t[ok]), transform(f[ok])) if ok.sum() >= 2 else None
    if line is None:
        return None
    return line[1], line[0]


def _guess_gompertz(t, F, plateau=100.0):
    line = _guess_log_time(t, F, lambda f: np.log(-np.log(f)), plateau)
    if line is None or line[1] >= 0:
        # with β = 1, F = plateau/2 at t½ means α = ln 2·e^(log10 t½)
        return float(np.log(2.0) * np.exp(np.log10(_half_time(t, F, plateau)))), 1.0
    return _bounded_exp(line[0], _ALPHA_GOMPERTZ), -line[1]


def _guess_logistic(t, F, plateau=100.0):
    line = _guess_log_time(t, F, lambda f: np.log(f / (1.0 - f)), plateau)
    if line is None or line[1] <= 0:
        return -2.0 * np.log10(_half_time(t, F, plateau)), 2.0
    return line


def _guess_fickian_sphere(t, F):
    # Crank: half of the drug has left a sphere at D·t/r² = 0.0305.
    return (0.0305 / _half_time(t, F),)


def _guess_makoid_banakar(t, F):
    ok = (t > 0) & (np.asarray(F) > 0.01)
    if ok.sum() >= 3 and np.unique(t[ok]).size >= 3:
        basis = np.column_stack([np.ones(ok.sum()), np.log(t[ok]), -t[ok]])
        (log_k, n, k), *_ = np.linalg.lstsq(basis, np.log(np.asarray(F)[ok]), rcond=None)
        if np.isfinite([log_k, n, k]).all():
            return _bounded_exp(log_k, _KMB), float(np.clip(n, 0.05, 2.5)), float(np.clip(k, 0.0, 1.0))
    return (*_guess_power(t, F), 0.0)


def _guess_probit(t, F):
    line = _guess_log_time(t, F, ndtri)
    if line is None or line[1] <= 0:
        return -np.log10(_half_time(t, F)), 1.0
    return float(np.clip(line[0], -100, 100)), float(np.clip(line[1], 1e-3, 50.0))


def _guess_quadratic(t, F):
    basis = np.column_stack([t * t, t])
    (k1, k2), *_ = np.linalg.lstsq(basis, np.asarray(F, dtype=float) / 100.0, rcond=None)
    return float(k1), float(k2)


def _with_plateau(guess):
    def plateau_guess(t, F):
        fmax = _plateau(F)
        return (fmax, *np.atleast_1d(guess(t, F, plateau=fmax)))

    return plateau_guess


# ----------------------------------------------------------------------- the laws
LAWS: tuple[ReleaseLaw, ...] = (
    ReleaseLaw(
        "zero_order", "Zero-order", "F = k0·t",
        (Parameter("k0", "%/h", "zero-order rate constant", 0.0, _RATE_MAX),),
        eq.zero_order, _guess_zero_order,
    ),
    ReleaseLaw(
        "zero_order_burst", "Zero-order (F0)", "F = F0 + k0·t",
        (_F0, Parameter("k0", "%/h", "zero-order rate constant", 0.0, _RATE_MAX)),
        eq.zero_order_burst, _guess_line,
    ),
    ReleaseLaw(
        "first_order", "First-order", "F = 100·(1 − e^(−k1·t))",
        (_K1,), eq.first_order, lambda t, F: (_guess_first_order(t, F),),
    ),
    ReleaseLaw(
        "first_order_plateau", "First-order (Fmax)", "F = Fmax·(1 − e^(−k1·t))",
        (_FMAX, _K1), eq.first_order_plateau, _with_plateau(_guess_first_order),
    ),
    ReleaseLaw(
        "first_order_burst", "First-order with burst", "F = F0 + (100 − F0)·(1 − e^(−k1·t))",
        (_F0, _K1), eq.first_order_burst, _guess_first_order_burst,
    ),
    ReleaseLaw(
        "higuchi", "Higuchi", "F = kH·t^0.5",
        (Parameter("kH", "%/h^0.5", "Higuchi constant", 0.0, _RATE_MAX),),
        eq.higuchi, lambda t, F: (max(_slope_through_origin(np.sqrt(t), F) or 0.0, 1e-6),),
    ),
    ReleaseLaw(
        "higuchi_burst", "Higuchi (F0)", "F = F0 + kH·t^0.5",
        (_F0, Parameter("kH", "%/h^0.5", "Higuchi constant", 0.0, _RATE_MAX)),
        eq.higuchi_burst, lambda t, F: _guess_line(np.sqrt(t), F),
    ),
    ReleaseLaw(
        "korsmeyer_peppas", "Korsmeyer-Peppas", "F = kKP·t^n (F ≤ 60 %)",
        (_KKP, _N_KP), eq.korsmeyer_peppas, _guess_power, max_release_pct=60.0,
    ),
    ReleaseLaw(
        "korsmeyer_peppas_burst", "Korsmeyer-Peppas (F0)", "F = F0 + kKP·t^n (F ≤ 60 %)",
        (_F0, _KKP, _N_KP), eq.korsmeyer_peppas_burst, _guess_power_burst, max_release_pct=60.0,
    ),
    ReleaseLaw(
        "hixson_crowell", "Hixson-Crowell", "F = 100·(1 − (1 − kHC·t)³)",
        (Parameter("kHC", "1/h", "Hixson-Crowell constant", 0.0, _RATE_MAX),),
        eq.hixson_crowell, lambda t, F: (_guess_erosion(t, F),),
    ),
    ReleaseLaw(
        "hopfenberg", "Hopfenberg", "F = 100·(1 − (1 − kHB·t)^n)",
        (Parameter("kHB", "1/h", "erosion constant k0/(C0·a0)", 0.0, _RATE_MAX),
         Parameter("n", "-", "geometry factor (1 slab, 2 cylinder, 3 sphere)", 0.1, 10.0)),
        eq.hopfenberg, lambda t, F: (_guess_erosion(t, F, 2.0), 2.0),
    ),
    ReleaseLaw(
        "baker_lonsdale", "Baker-Lonsdale", "3/2·(1 − (1 − F/100)^(2/3)) − F/100 = kBL·t",
        (Parameter("kBL", "1/h", "Baker-Lonsdale constant", 0.0, _RATE_MAX),),
        eq.baker_lonsdale, _guess_baker_lonsdale,
    ),
    ReleaseLaw(
        "peppas_sahlin", "Peppas-Sahlin", "F = k1·t^m + k2·t^(2m)",
        (Parameter("k1", "%/h^m", "Fickian diffusion constant", 0.0, _RATE_MAX),
         Parameter("k2", "%/h^2m", "relaxation (case II) constant", -_RATE_MAX, _RATE_MAX),
         Parameter("m", "-", "Fickian diffusion exponent", 0.01, 1.5)),
        eq.peppas_sahlin, _guess_peppas_sahlin,
    ),
    ReleaseLaw(
        "weibull", "Weibull", "F = 100·(1 − e^(−(t/τ)^β))",
        (_TAU, _BETA_WEIBULL), eq.weibull, _guess_weibull,
    ),
    ReleaseLaw(
        "weibull_lag", "Weibull (lag)", "F = 100·(1 − e^(−((t − t_lag)/τ)^β))",
        (_TAU, _BETA_WEIBULL, Parameter("t_lag", "h", "lag time", 0.0, 1e4)),
        eq.weibull_lag, _guess_weibull_lag,
    ),
    ReleaseLaw(
        "weibull_plateau", "Weibull (Fmax)", "F = Fmax·(1 − e^(−(t/τ)^β))",
        (_FMAX, _TAU, _BETA_WEIBULL), eq.weibull_plateau, _with_plateau(_guess_weibull),
    ),
    ReleaseLaw(
        "gompertz", "Gompertz", "F = 100·e^(−α·e^(−β·log10 t))",
        (_ALPHA_GOMPERTZ, _BETA_GOMPERTZ), eq.gompertz, _guess_gompertz,
    ),
    ReleaseLaw(
        "gompertz_plateau", "Gompertz (Fmax)", "F = Fmax·e^(−α·e^(−β·log10 t))",
        (_FMAX, _ALPHA_GOMPERTZ, _BETA_GOMPERTZ), eq.gompertz_plateau, _with_plateau(_guess_gompertz),
    ),
    ReleaseLaw(
        "logistic", "Logistic", "F = 100·e^(α+β·log10 t)/(1 + e^(α+β·log10 t))",
        (_ALPHA_LOGISTIC, _BETA_LOGISTIC), eq.logistic, _guess_logistic,
    ),
    ReleaseLaw(
        "logistic_plateau", "Logistic (Fmax)", "F = Fmax·e^(α+β·log10 t)/(1 + e^(α+β·log10 t))",
        (_FMAX, _ALPHA_LOGISTIC, _BETA_LOGISTIC), eq.logistic_plateau, _with_plateau(_guess_logistic),
    ),
    ReleaseLaw(
        "fickian_sphere", "Fickian sphere (Crank)", "F = 100·(1 − 6/π²·Σ e^(−n²π²·kD·t)/n²)",
        (Parameter("kD", "1/h", "diffusion rate D/r²", 0.0, _RATE_MAX),),
        eq.fickian_sphere, _guess_fickian_sphere,
    ),
    ReleaseLaw(
        "makoid_banakar", "Makoid-Banakar", "F = kMB·t^n·e^(−k·t)",
        (_KMB, Parameter("n", "-", "time exponent", 0.01, 3.0),
         Parameter("k", "1/h", "exponential slowing constant", 0.0, 10.0)),
        eq.makoid_banakar, _guess_makoid_banakar,
    ),
    ReleaseLaw(
        "probit", "Probit", "F = 100·Φ(α + β·log10 t)",
        (Parameter("alpha", "-", "probit location", -100.0, 100.0),
         Parameter("beta", "-", "probit slope per decade of time", 1e-3, 50.0)),
        eq.probit, _guess_probit,
    ),
    ReleaseLaw(
        "quadratic", "Quadratic", "F = 100·(k1·t² + k2·t)",
        (Parameter("k1", "1/h²", "curvature constant", -10.0, 10.0),
         Parameter("k2", "1/h", "initial rate constant (fraction of the dose)", -10.0, 100.0)),
        eq.quadratic, _guess_quadratic,
    ),
)

LAWS_BY_NAME: dict[str, ReleaseLaw] = {law.name: law for law in LAWS}


def get_law(name: str) -> ReleaseLaw:
    """The law called `name` (see `LAWS_BY_NAME`); KeyError lists the known names."""
    try:
        return LAWS_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown release law {name!r}; known: {', '.join(LAWS_BY_NAME)}") from None
