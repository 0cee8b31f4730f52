"""Release mechanism read from the Korsmeyer-Peppas exponent and the Peppas-Sahlin terms, by geometry.

The limits of the Korsmeyer-Peppas release exponent n (F = kKP·t^n, fitted to
F ≤ 60 %) depend on the geometry of the device (Ritger & Peppas, J. Control.
Release 5, 23-36 and 37-42, 1987; reviewed by Siepmann & Peppas, Adv. Drug
Deliv. Rev. 48, 139-157, 2001):

    geometry   Fickian diffusion   anomalous (non-Fickian)   case II transport
    slab       n ≤ 0.50            0.50 < n < 1.00           n ≥ 1.00
    cylinder   n ≤ 0.45            0.45 < n < 0.89           n ≥ 0.89
    sphere     n ≤ 0.43            0.43 < n < 0.85           n ≥ 0.85

The Peppas-Sahlin law F = k1·t^m + k2·t^(2m) separates a Fickian term k1·t^m
from a relaxation (case II) term k2·t^(2m); their ratio at a time says which
dominates there (Peppas & Sahlin, Int. J. Pharm. 57, 169-172, 1989), and m is
compared with the Fickian limit of the geometry.

When a burst law wins (a law with an F0 term ranks best, or Korsmeyer-Peppas
with F0 fits its points better than without), n is read from the
burst-corrected variant F = F0 + kKP·t^n: an unmodelled burst lowers n.
"""

from __future__ import annotations

import numpy as np

#: Limits of n: (Fickian at or below, case II at or above), by geometry (module docstring).
PEPPAS_EXPONENT_LIMITS = {"slab": (0.5, 1.0), "cylinder": (0.45, 0.89), "sphere": (0.43, 0.85)}
GEOMETRIES = tuple(PEPPAS_EXPONENT_LIMITS)


def release_mechanism(n: float, geometry: str = "sphere") -> str:
    """Transport mechanism read from the Korsmeyer-Peppas exponent n (limits in the module docstring).

    Args:
        n: fitted release exponent (dimensionless).
        geometry: "sphere" (nanoparticles), "cylinder" or "slab".
    """
    try:
        fickian, case_ii = PEPPAS_EXPONENT_LIMITS[geometry]
    except KeyError:
        raise ValueError(f"geometry must be one of {sorted(PEPPAS_EXPONENT_LIMITS)}, not {geometry!r}") from None
    if n <= fickian:
        return "Fickian diffusion"
    if n < case_ii:
        return "anomalous (non-Fickian) transport"
    return "case II transport"


def _burst_wins(curve_fit) -> tuple[bool, str]:
    best = curve_fit.best
    plain, burst = curve_fit.get("korsmeyer_peppas"), curve_fit.get("korsmeyer_peppas_burst")
    if burst is None:
        return False, ""
    if best is not None and "F0" in best.params:
        return True, f"the best law, {best.law.title}, has a burst term"
    if plain is None or (burst.aicc is not None and plain.aicc is not None and burst.aicc < plain.aicc):
        versus = "" if plain is None else f" {plain.aicc:.2f} without"
        return True, f"the burst variant fits better (AICc {burst.aicc:.2f} with F0,{versus})"
    return False, ""


def mechanism_reading(curve_fit, geometry: str = "sphere", at_hours: float = 1.0) -> dict | None:
    """The mechanism of one fitted curve: Korsmeyer-Peppas n (burst-corrected when the burst wins).

    Args:
        curve_fit: a `CurveFit` with Korsmeyer-Peppas fitted (with or without F0).
        geometry: "sphere", "cylinder" or "slab".
        at_hours: time at which the Peppas-Sahlin terms are compared.

    Returns:
        dict with model (the law n is read from), n, geometry, mechanism, why (why
        that law), and peppas_sahlin (see `peppas_sahlin_reading`) or None;
        None when neither Korsmeyer-Peppas variant was fitted.
    """
    use_burst, why = _burst_wins(curve_fit)
    fit = curve_fit.get("korsmeyer_peppas_burst" if use_burst else "korsmeyer_peppas")
    if fit is None:
        return None
    n = fit.params["n"]
    sahlin = curve_fit.get("peppas_sahlin")
    return {
        "model": fit.law.name,
        "title": fit.law.title,
        "n": n,
        "geometry": geometry,
        "mechanism": release_mechanism(n, geometry),
        "why": why or "no burst term needed",
        "peppas_sahlin": None if sahlin is None else peppas_sahlin_reading(
            sahlin.params["k1"], sahlin.params["k2"], sahlin.params["m"], geometry, at_hours),
    }


def peppas_sahlin_reading(k1: float, k2: float, m: float, geometry: str = "sphere",
                          at_hours: float = 1.0) -> dict:
    """Which term of F = k1·t^m + k2·t^(2m) dominates, and m against the geometry's Fickian limit.

    Args:
        k1, k2, m: fitted Peppas-Sahlin parameters (time in h).
        geometry: "sphere", "cylinder" or "slab".
        at_hours: time at which the relaxation/Fickian ratio k2·t^m/k1 is given.

    Returns:
        dict with ratio (relaxation over Fickian at `at_hours`, None if k1 is 0),
        fickian_limit (n of pure diffusion for the geometry), and reading.
    """
    fickian = PEPPAS_EXPONENT_LIMITS[geometry][0]
    ratio = None if k1 == 0 else float(k2 * at_hours**m / k1)
    if ratio is None or not np.isfinite(ratio):
        reading = "relaxation only (no Fickian term)"
    elif ratio < 1:
        reading = f"diffusion dominates at {at_hours:g} h (relaxation/Fickian = {ratio:.2f})"
    else:
        reading = f"relaxation dominates at {at_hours:g} h (relaxation/Fickian = {ratio:.2f})"
    return {"ratio": ratio, "at_hours": at_hours, "m": m, "fickian_limit": fickian, "reading": reading}
