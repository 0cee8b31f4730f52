"""Model-independent comparison of release profiles: the FDA f1 and f2 factors.

`compare_curves` applies the regulatory conditions (FDA 1997, EMA 2010) for
f1/f2 to be meaningful and reports each one that fails:

- both curves sampled at the same times (else an `InputError`);
- t = 0 excluded, and no point after the first one where both curves exceed
  85 % (later points are dropped and the drop is noted);
- at least 3 points left;
- with replicate units: coefficient of variation ≤ 20 % at early points (the
  first point and any point at ≤ 10 min) and ≤ 10 % elsewhere.

When the CV limits fail, the bootstrap f2 confidence interval is the fallback.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nanoloop.loop.errors import InputError
from nanoloop.loop.kinetics.curves import ReleaseCurve
from nanoloop.loop.kinetics.measures import finite_or_none

PLATEAU_PCT = 85.0  # only one point may follow both curves passing this
MIN_POINTS = 3
EARLY_HOURS = 10.0 / 60.0  # "early" points: the first, and any at or before 10 min
EARLY_CV_LIMIT_PCT = 20.0
CV_LIMIT_PCT = 10.0
REGULATORY_UNITS = 12
F1_LIMIT = 15.0
F2_LIMIT = 50.0


def f2(reference_pct, test_pct) -> np.ndarray:
    """FDA similarity factor f2 between two release profiles on the same time points.

    f2 = 50 * log10(100 / sqrt(1 + mean((R_t - T_t)^2)))

    Args:
        reference_pct: cumulative release in %, shape (..., n_times).
        test_pct: cumulative release in %, broadcastable to the same shape.

    Returns:
        f2 per profile, shape (...); 100 for identical curves, >= 50 means similar.
    """
    reference = np.asarray(reference_pct, dtype=float)
    test = np.asarray(test_pct, dtype=float)
    mean_sq = np.mean((reference - test) ** 2, axis=-1)
    return 50.0 * np.log10(100.0 / np.sqrt(1.0 + mean_sq))


def f1(reference_pct, test_pct) -> np.ndarray:
    """FDA difference factor f1 between two release profiles on the same time points.

    f1 = 100 * sum(|R_t - T_t|) / sum(R_t)

    Args:
        reference_pct: cumulative release in %, shape (..., n_times).
        test_pct: cumulative release in %, broadcastable to the same shape.

    Returns:
        f1 in % per profile, shape (...); 0 for identical curves, <= 15 means similar.
    """
    reference = np.asarray(reference_pct, dtype=float)
    test = np.asarray(test_pct, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 100.0 * np.sum(np.abs(reference - test), axis=-1) / np.sum(reference, axis=-1)


@dataclass(frozen=True)
class BootstrapF2:
    """Bootstrap distribution summary of f2 (units resampled with replacement).

    Attributes:
        f2: f2 of the mean profiles.
        lower, upper: percentile confidence interval of f2.
        confidence: coverage of the interval, e.g. 0.90.
        n_bootstrap: number of bootstrap samples.
    """

    f2: float
    lower: float
    upper: float
    confidence: float
    n_bootstrap: int


def bootstrap_f2(reference_replicates_pct, test_replicates_pct, *, n_bootstrap: int = 1000,
                 confidence: float = 0.90, seed: int | None = 0) -> BootstrapF2:
    """Bootstrap f2: resample the units of each product, recompute f2 of the mean profiles.

    Args:
        reference_replicates_pct: release of each reference unit in %, shape (n_units, n_times).
        test_replicates_pct: release of each test unit in %, shape (n_units, n_times).
        n_bootstrap: number of bootstrap samples.
        confidence: coverage of the percentile interval (0.90 is the usual choice;
            similar when its lower end is ≥ 50).
        seed: random seed, for a reproducible interval.
    """
    reference = np.asarray(reference_replicates_pct, dtype=float)
    test = np.asarray(test_replicates_pct, dtype=float)
    if n_bootstrap < 1:
        raise ValueError("n_bootstrap must be at least 1")
    rng = np.random.default_rng(seed)
    reference_means = reference[rng.integers(0, len(reference), (n_bootstrap, len(reference)))].mean(axis=1)
    test_means = test[rng.integers(0, len(test), (n_bootstrap, len(test)))].mean(axis=1)
    samples = f2(reference_means, test_means)
    tail = 100.0 * (1.0 - confidence) / 2.0
    lower, upper = np.percentile(samples, [tail, 100.0 - tail])
    return BootstrapF2(float(f2(reference.mean(axis=0), test.mean(axis=0))), float(lower), float(upper),
                       confidence, n_bootstrap)


def _comparable_points(times_hours, reference_pct, test_pct) -> tuple[np.ndarray, list[str]]:
    """Mask of the points f1/f2 use (t > 0, up to the first with both > 85 %), and notes."""
    t = np.asarray(times_hours, dtype=float)
    keep = t > 0
    notes = ["t = 0 excluded"] if not keep.all() else []
    both_high = np.flatnonzero(keep & (np.asarray(reference_pct) > PLATEAU_PCT) & (np.asarray(test_pct) > PLATEAU_PCT))
    if both_high.size and both_high[0] + 1 < t.size:
        first = both_high[0]
        keep[first + 1:] = False
        notes.append(f"{t.size - first - 1} points after {t[first]:g} h dropped: both curves are above "
                     f"{PLATEAU_PCT:g} % from {t[first]:g} h")
    return keep, notes


def _cv_problem(curve: ReleaseCurve, role: str, keep: np.ndarray) -> str | None:
    """Why the replicate CVs of `curve` break the limits at the used points, or None."""
    reps = curve.replicates_pct[:, keep]
    t = curve.times_hours[keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = 100.0 * reps.std(axis=0, ddof=1) / reps.mean(axis=0)
    limits = np.where((np.arange(t.size) == 0) | (t <= EARLY_HOURS), EARLY_CV_LIMIT_PCT, CV_LIMIT_PCT)
    over = np.flatnonzero(np.isfinite(cv) & (cv > limits))
    if not over.size:
        return None
    worst = over[np.argmax(cv[over] - limits[over])]
    return (f"{role} {curve.curve_id!r}: CV above the limit at {over.size} of {t.size} points "
            f"(worst {cv[worst]:.1f} % at {t[worst]:g} h, limit {limits[worst]:g} %); "
            f"use the bootstrap f2 interval")


@dataclass(frozen=True)
class Comparison:
    """f1/f2 comparison of a test curve with a reference, and whether it is valid.

    Attributes:
        reference_id, test_id: the curves compared.
        times_hours: the time points used, in h.
        f1, f2: difference and similarity factors on those points (None if undefined).
        valid: whether the regulatory conditions hold.
        similar: f1 ≤ 15 and f2 ≥ 50 when valid, else None.
        reasons: each condition that fails.
        notes: what was done to the data (points excluded), and advisories.
        bootstrap: the bootstrap f2 interval, if asked for.
    """

    reference_id: str
    test_id: str
    times_hours: np.ndarray
    f1: float | None
    f2: float | None
    valid: bool
    similar: bool | None
    reasons: tuple[str, ...]
    notes: tuple[str, ...]
    bootstrap: BootstrapF2 | None = None

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        boot = self.bootstrap
        return {
            "reference": self.reference_id,
            "test": self.test_id,
            "times_hours": [float(x) for x in self.times_hours],
            "f1": self.f1,
            "f2": self.f2,
            "valid": self.valid,
            "similar": self.similar,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "bootstrap": None if boot is None else {
                "n_bootstrap": boot.n_bootstrap, "confidence": boot.confidence,
                "f2_lower": boot.lower, "f2_upper": boot.upper,
                "similar": boot.lower >= F2_LIMIT,
            },
        }


def compare_curves(reference: ReleaseCurve, test: ReleaseCurve, *, n_bootstrap: int = 0,
                   confidence: float = 0.90, seed: int | None = 0) -> Comparison:
    """Compare a test release curve with a reference by f1, f2 and the regulatory conditions.

    Args:
        reference: the reference curve (replicate units optional).
        test: the test curve, sampled at the same times.
        n_bootstrap: bootstrap samples for the f2 interval; 0 for none. Needs at
            least 2 replicate units per curve.
        confidence: coverage of the bootstrap interval.
        seed: random seed of the bootstrap.

    Raises:
        InputError: the curves are not sampled at the same times, or a bootstrap
            is asked for curves without replicate units.
    """
    t_ref, t_test = reference.times_hours, test.times_hours
    if t_ref.size != t_test.size or not np.allclose(t_ref, t_test):
        raise InputError(
            f"curves {reference.curve_id!r} and {test.curve_id!r} are not sampled at the same times: "
            f"{', '.join(f'{x:g}' for x in t_ref)} h against {', '.join(f'{x:g}' for x in t_test)} h")
    keep, notes = _comparable_points(t_ref, reference.release_pct, test.release_pct)
    reasons = []
    if keep.sum() < MIN_POINTS:
        reasons.append(f"only {keep.sum()} time points usable, at least {MIN_POINTS} are needed "
                       f"(t = 0 excluded, none after both curves pass {PLATEAU_PCT:g} %)")
    for role, curve in (("reference", reference), ("test", test)):
        if curve.n_replicates >= 2:
            problem = _cv_problem(curve, role, keep)
            if problem:
                reasons.append(problem)
            if curve.n_replicates < REGULATORY_UNITS:
                notes.append(f"{role} {curve.curve_id!r} has {curve.n_replicates} units; "
                             f"{REGULATORY_UNITS} are required for a regulatory f2")
        else:
            units = "a single unit" if curve.n_replicates == 1 else "no replicate units"
            notes.append(f"{role} {curve.curve_id!r} has {units}: CV limits not checked")
    boot = None
    if n_bootstrap > 0:
        for role, curve in (("reference", reference), ("test", test)):
            if curve.n_replicates < 2:
                raise InputError(f"bootstrap f2 needs replicate units; {role} curve {curve.curve_id!r} "
                                 f"has {curve.n_replicates or 'none'} (add a replicate column)")
        boot = bootstrap_f2(reference.replicates_pct[:, keep], test.replicates_pct[:, keep],
                            n_bootstrap=n_bootstrap, confidence=confidence, seed=seed)
    ref_used, test_used = reference.release_pct[keep], test.release_pct[keep]
    f1_value = finite_or_none(f1(ref_used, test_used)) if keep.any() else None
    f2_value = finite_or_none(f2(ref_used, test_used)) if keep.any() else None
    valid = not reasons and f1_value is not None and f2_value is not None
    similar = (f1_value <= F1_LIMIT and f2_value >= F2_LIMIT) if valid else None
    return Comparison(reference.curve_id, test.curve_id, t_ref[keep], f1_value, f2_value,
                      valid, similar, tuple(reasons), tuple(notes), boot)
