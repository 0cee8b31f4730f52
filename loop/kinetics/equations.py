"""Release equations: cumulative release F (%) as a function of time t (h).

Every function takes `times_hours` first and the parameters after it, and is
vectorised with numpy broadcasting: parameters may be arrays of shape (k, 1)
to evaluate k parameter sets over n times at once, giving shape (k, n).
The forms follow DDSolver (Zhang et al., AAPS J 2010) with time in hours;
`log10` is the decimal logarithm of the time in hours.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, ndtr

#: Crank's sphere: switch from the short-time expansion to the series at D·t/r² = 0.05.
_SPHERE_SHORT_TIME_LIMIT = 0.05
_SPHERE_TERMS = np.arange(1, 31, dtype=float)


def zero_order(times_hours, k0):
    """Zero-order release: F = k0·t.

    Args:
        times_hours: time t in h.
        k0: zero-order rate constant in %/h.
    """
    return k0 * np.asarray(times_hours, dtype=float)


def zero_order_burst(times_hours, F0, k0):
    """Zero-order release with a burst: F = F0 + k0·t.

    Args:
        times_hours: time t in h.
        F0: burst (release at t = 0) in %.
        k0: zero-order rate constant in %/h.
    """
    return F0 + zero_order(times_hours, k0)


def first_order(times_hours, k1):
    """First-order release: F = 100·(1 − exp(−k1·t)).

    Args:
        times_hours: time t in h.
        k1: first-order rate constant in 1/h.
    """
    return 100.0 * -np.expm1(-k1 * np.asarray(times_hours, dtype=float))


def first_order_plateau(times_hours, Fmax, k1):
    """First-order release to a plateau: F = Fmax·(1 − exp(−k1·t)).

    Args:
        times_hours: time t in h.
        Fmax: plateau (final release) in %.
        k1: first-order rate constant in 1/h.
    """
    return Fmax / 100.0 * first_order(times_hours, k1)


def first_order_burst(times_hours, F0, k1):
    """First-order release after a burst: F = F0 + (100 − F0)·(1 − exp(−k1·t)).

    Args:
        times_hours: time t in h.
        F0: burst (release at t = 0) in %.
        k1: first-order rate constant of the remaining drug in 1/h.
    """
    return F0 + (100.0 - F0) / 100.0 * first_order(times_hours, k1)


def higuchi(times_hours, kH):
    """Higuchi matrix diffusion: F = kH·t^0.5.

    Args:
        times_hours: time t in h.
        kH: Higuchi constant in %/h^0.5.
    """
    return kH * np.sqrt(np.asarray(times_hours, dtype=float))


def higuchi_burst(times_hours, F0, kH):
    """Higuchi with a burst: F = F0 + kH·t^0.5.

    Args:
        times_hours: time t in h.
        F0: burst (release at t = 0) in %.
        kH: Higuchi constant in %/h^0.5.
    """
    return F0 + higuchi(times_hours, kH)


def korsmeyer_peppas(times_hours, kKP, n):
    """Korsmeyer-Peppas power law: F = kKP·t^n (valid up to F = 60 %).

    Args:
        times_hours: time t in h.
        kKP: release constant in %/h^n.
        n: release exponent (dimensionless), read for the mechanism.
    """
    return kKP * np.power(np.asarray(times_hours, dtype=float), n)


def korsmeyer_peppas_burst(times_hours, F0, kKP, n):
    """Korsmeyer-Peppas with a burst: F = F0 + kKP·t^n (valid up to F = 60 %).

    Args:
        times_hours: time t in h.
        F0: burst (release at t = 0) in %.
        kKP: release constant in %/h^n.
        n: release exponent (dimensionless).
    """
    return F0 + korsmeyer_peppas(times_hours, kKP, n)


def hixson_crowell(times_hours, kHC):
    """Hixson-Crowell cube-root law (eroding sphere): F = 100·(1 − (1 − kHC·t)³).

    Complete release (100 %) from t = 1/kHC on.

    Args:
        times_hours: time t in h.
        kHC: Hixson-Crowell constant in 1/h.
    """
    return hopfenberg(times_hours, kHC, 3.0)


def hopfenberg(times_hours, kHB, n):
    """Hopfenberg surface erosion: F = 100·(1 − (1 − kHB·t)^n).

    Complete release from t = 1/kHB on.

    Args:
        times_hours: time t in h.
        kHB: erosion constant k0/(C0·a0) in 1/h.
        n: geometry factor (1 slab, 2 cylinder, 3 sphere), fitted freely.
    """
    remaining = np.clip(1.0 - kHB * np.asarray(times_hours, dtype=float), 0.0, None)
    return 100.0 * (1.0 - np.power(remaining, n))


def baker_lonsdale(times_hours, kBL):
    """Baker-Lonsdale (diffusion from a sphere): 3/2·(1 − (1 − f)^(2/3)) − f = kBL·t, f = F/100.

    Solved in closed form: with u = (1 − f)^(1/3), u³ − 1.5·u² + 0.5 − kBL·t = 0,
    whose root in [0, 1] is u = 0.5 + cos((arccos(4·kBL·t − 1) − 2π)/3).
    Complete release from t = 0.5/kBL on.

    Args:
        times_hours: time t in h.
        kBL: Baker-Lonsdale constant in 1/h.
    """
    y = np.clip(kBL * np.asarray(times_hours, dtype=float), 0.0, 0.5)
    u = 0.5 + np.cos((np.arccos(4.0 * y - 1.0) - 2.0 * np.pi) / 3.0)
    return 100.0 * (1.0 - u**3)


def peppas_sahlin(times_hours, k1, k2, m):
    """Peppas-Sahlin diffusion plus relaxation: F = k1·t^m + k2·t^(2m).

    Args:
        times_hours: time t in h.
        k1: Fickian diffusion constant in %/h^m.
        k2: polymer relaxation (case II) constant in %/h^(2m); may be negative.
        m: Fickian diffusion exponent (dimensionless).
    """
    tm = np.power(np.asarray(times_hours, dtype=float), m)
    return k1 * tm + k2 * tm * tm


def weibull(times_hours, tau, beta):
    """Weibull: F = 100·(1 − exp(−(t/τ)^β)).

    DDSolver's scale α equals τ^β (in h^β).

    Args:
        times_hours: time t in h.
        tau: time scale τ in h (time to 63.2 % release).
        beta: shape β (dimensionless): < 1 parabolic, 1 first-order, > 1 sigmoid.
    """
    return weibull_lag(times_hours, tau, beta, 0.0)


def weibull_lag(times_hours, tau, beta, t_lag):
    """Weibull with a lag time: F = 100·(1 − exp(−((t − t_lag)/τ)^β)), 0 before t_lag.

    Args:
        times_hours: time t in h.
        tau: time scale τ in h.
        beta: shape β (dimensionless).
        t_lag: lag time before release starts, in h.
    """
    elapsed = np.clip(np.asarray(times_hours, dtype=float) - t_lag, 0.0, None)
    return 100.0 * -np.expm1(-np.power(elapsed / tau, beta))


def weibull_plateau(times_hours, Fmax, tau, beta):
    """Weibull to a plateau: F = Fmax·(1 − exp(−(t/τ)^β)).

    Args:
        times_hours: time t in h.
        Fmax: plateau (final release) in %.
        tau: time scale τ in h.
        beta: shape β (dimensionless).
    """
    return Fmax / 100.0 * weibull(times_hours, tau, beta)


def gompertz(times_hours, alpha, beta):
    """Gompertz (DDSolver form): F = 100·exp(−α·exp(−β·log10 t)).

    Args:
        times_hours: time t in h (α depends on this unit).
        alpha: scale α (dimensionless), larger means slower release.
        beta: shape β per decade of time (dimensionless), the release rate.
    """
    t = np.asarray(times_hours, dtype=float)
    with np.errstate(divide="ignore", over="ignore"):
        return 100.0 * np.exp(-alpha * np.power(t, -beta / np.log(10.0)))


def gompertz_plateau(times_hours, Fmax, alpha, beta):
    """Gompertz to a plateau: F = Fmax·exp(−α·exp(−β·log10 t)).

    Args:
        times_hours: time t in h.
        Fmax: plateau (final release) in %.
        alpha: scale α (dimensionless).
        beta: shape β per decade of time (dimensionless).
    """
    return Fmax / 100.0 * gompertz(times_hours, alpha, beta)


def logistic(times_hours, alpha, beta):
    """Logistic (DDSolver form): F = 100·e^(α + β·log10 t)/(1 + e^(α + β·log10 t)).

    Half release at log10 t50 = −α/β.

    Args:
        times_hours: time t in h (α depends on this unit).
        alpha: location α (dimensionless).
        beta: slope β per decade of time (dimensionless).
    """
    t = np.asarray(times_hours, dtype=float)
    with np.errstate(divide="ignore"):
        return 100.0 * expit(alpha + beta * np.log10(t))


def logistic_plateau(times_hours, Fmax, alpha, beta):
    """Logistic to a plateau: F = Fmax·e^(α + β·log10 t)/(1 + e^(α + β·log10 t)).

    Args:
        times_hours: time t in h.
        Fmax: plateau (final release) in %.
        alpha: location α (dimensionless).
        beta: slope β per decade of time (dimensionless).
    """
    return Fmax / 100.0 * logistic(times_hours, alpha, beta)


def fickian_sphere(times_hours, kD):
    """Fickian diffusion from a sphere (Crank): F = 100·(1 − 6/π²·Σ exp(−n²π²·kD·t)/n²).

    For kD·t < 0.05 the equivalent short-time form 100·(6·√(kD·t/π) − 3·kD·t)
    is used (error < 1e-7 %); 30 series terms otherwise.

    Args:
        times_hours: time t in h.
        kD: diffusion rate D/r² in 1/h (D the diffusivity, r the particle radius).
    """
    tau = np.clip(kD * np.asarray(times_hours, dtype=float), 0.0, None)
    short = 6.0 * np.sqrt(tau / np.pi) - 3.0 * tau
    n2 = _SPHERE_TERMS**2
    terms = np.exp(-np.pi**2 * n2 * np.maximum(tau, _SPHERE_SHORT_TIME_LIMIT)[..., None]) / n2
    long = 1.0 - 6.0 / np.pi**2 * terms.sum(axis=-1)
    return 100.0 * np.where(tau < _SPHERE_SHORT_TIME_LIMIT, short, long)


def makoid_banakar(times_hours, kMB, n, k):
    """Makoid-Banakar: F = kMB·t^n·exp(−k·t) (DDSolver form).

    Args:
        times_hours: time t in h.
        kMB: release constant in %/h^n.
        n: time exponent (dimensionless).
        k: exponential slowing constant in 1/h.
    """
    t = np.asarray(times_hours, dtype=float)
    return kMB * np.power(t, n) * np.exp(-k * t)


def probit(times_hours, alpha, beta):
    """Probit (DDSolver form): F = 100·Φ(α + β·log10 t), Φ the standard normal CDF.

    Half release at log10 t50 = −α/β.

    Args:
        times_hours: time t in h (α depends on this unit).
        alpha: location α (dimensionless).
        beta: slope β per decade of time (dimensionless).
    """
    t = np.asarray(times_hours, dtype=float)
    with np.errstate(divide="ignore"):
        return 100.0 * ndtr(alpha + beta * np.log10(t))


def quadratic(times_hours, k1, k2):
    """Quadratic (DDSolver form): F = 100·(k1·t² + k2·t).

    Args:
        times_hours: time t in h.
        k1: curvature constant in 1/h² (negative for a release that slows down).
        k2: initial rate constant in 1/h (as a fraction of the dose).
    """
    t = np.asarray(times_hours, dtype=float)
    return 100.0 * (k1 * t * t + k2 * t)
