"""Release kinetics: mechanistic release laws, curve fitting, similarity factors, and reading curve files.

Time is in hours and release in percent throughout (`times_hours`, `release_pct`).
Imports only the errors and the sheet reader (:mod:`nanoloop.loop.io`): the same
laws serve the CLI's ``kinetics`` commands, the ingest of measured curves and the
surrogate's release-law heads.
"""

from nanoloop.loop.kinetics.curves import CurveFile, ReleaseCurve, tidy_curve, validate_curve
from nanoloop.loop.kinetics.fitting import CurveFit, LawFit, fit_law, fit_laws, fit_statistics
from nanoloop.loop.kinetics.laws import LAWS, LAWS_BY_NAME, Parameter, ReleaseLaw, get_law
from nanoloop.loop.kinetics.mechanism import GEOMETRIES, mechanism_reading, release_mechanism
from nanoloop.loop.kinetics.reading import read_curves
from nanoloop.loop.kinetics.measures import (
    burst_release,
    dissolution_efficiency,
    mean_dissolution_time,
    release_at,
    time_to_release,
)
from nanoloop.loop.kinetics.similarity import BootstrapF2, Comparison, bootstrap_f2, compare_curves, f1, f2
from nanoloop.loop.kinetics.summary import summarize_curve

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
