"""Release kinetics: mechanistic release laws, curve fitting, similarity factors, and reading curve files.

Time is in hours and release in percent throughout (`times_hours`, `release_pct`).
Imports only the errors and the sheet reader (:mod:`nanoloop.loop.io`): the same
laws serve the CLI's ``kinetics`` commands, the ingest of measured curves and the
surrogate's release-law heads.
"""

from importlib import import_module

#: public name -> the module of this package it is loaded from on first use (fitting loads scipy.optimize:
#: code that only computes f2 or reads a curve file should not pay for it)
_EXPORTS = {
    **dict.fromkeys(("CurveFile", "ReleaseCurve", "tidy_curve", "validate_curve"), "curves"),
    **dict.fromkeys(("CurveFit", "LawFit", "fit_law", "fit_laws", "fit_statistics"), "fitting"),
    **dict.fromkeys(("LAWS", "LAWS_BY_NAME", "Parameter", "ReleaseLaw", "get_law"), "laws"),
    **dict.fromkeys(("GEOMETRIES", "mechanism_reading", "release_mechanism"), "mechanism"),
    "read_curves": "reading",
    **dict.fromkeys(("burst_release", "dissolution_efficiency", "mean_dissolution_time", "release_at", "time_to_release"), "measures"),
    **dict.fromkeys(("BootstrapF2", "Comparison", "bootstrap_f2", "compare_curves", "f1", "f2"), "similarity"),
    "summarize_curve": "summary",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "GEOMETRIES",
    "LAWS",
    "LAWS_BY_NAME",
    "BootstrapF2",
    "Comparison",
    "CurveFile",
    "CurveFit",
    "LawFit",
    "Parameter",
    "ReleaseCurve",
    "ReleaseLaw",
    "bootstrap_f2",
    "burst_release",
    "compare_curves",
    "dissolution_efficiency",
    "f1",
    "f2",
    "fit_law",
    "fit_laws",
    "fit_statistics",
    "get_law",
    "mean_dissolution_time",
    "mechanism_reading",
    "read_curves",
    "release_at",
    "release_mechanism",
    "summarize_curve",
    "tidy_curve",
    "time_to_release",
    "validate_curve",
]
