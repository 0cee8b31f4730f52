"""Model-independent comparison of release profiles: the FDA f1 and f2 factors.

`compare_curves` applies the regulatory conditions (FDA 1997, EMA 2010) for
f1/f2 to be meaningful and reports each one that fails:

- both curves sampled at the same times (else an `InputError`);
- t = 0 excluded, and at most one point above 85 %: no point after the first
  one where either curve exceeds 85 % (later points are dropped, and said);
- at least 3 points left;
- at least 12 units (vessels) per product;
- coefficient of variation of the units ≤ 20 % at early points (the first
  point and any point at ≤ 10 min) and ≤ 10 % elsewhere.

The comparison is valid only when no condition fails, and its one verdict
line is built from that list. When a condition fails and both products have
at least 2 units, the bootstrap f2 with a BCa interval is the fallback
(similar when the interval's lower end is ≥ 50).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nanoloop.loop.errors import InputError
from nanoloop.loop.kinetics.bootstrap import bca_interval
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
#: Bootstrap samples drawn when the conditions fail and no number was asked for.
AUTO_BOOTSTRAP = 2000


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
        lower, upper: bias-corrected and accelerated (BCa) confidence interval of f2.
        confidence: coverage of the interval, e.g. 0.90.
        n_bootstrap: number of bootstrap samples.
        z0: bias correction; acceleration: the BCa acceleration a.
        percentile_lower, percentile_upper: the plain percentile interval, for reference.
    """

    f2: float
    lower: float
    upper: float
    confidence: float
    n_bootstrap: int
    z0: float = 0.0
    acceleration: float = 0.0
    percentile_lower: float | None = None
    percentile_upper: float | None = None


def bootstrap_f2(reference_replicates_pct, test_replicates_pct, *, n_bootstrap: int = 1000,
                 confidence: float = 0.90, seed: int | None = 0) -> BootstrapF2:
    """Bootstrap f2 with a BCa interval: resample the units of each product, recompute f2 of
    the mean profiles; bias correction and acceleration as in `loop.kinetics.bootstrap`, the
    acceleration from the jackknife over the units of both products.

    Args:
        reference_replicates_pct: release of each reference unit in %, shape (n_units, n_times).
        test_replicates_pct: release of each test unit in %, shape (n_units, n_times).
        n_bootstrap: number of bootstrap samples.
        confidence: coverage of the interval (0.90 is the usual choice;
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
    estimate = float(f2(reference.mean(axis=0), test.mean(axis=0)))
    jackknife = [f2(_leave_one_out_means(reference), test.mean(axis=0)),
                 f2(reference.mean(axis=0), _leave_one_out_means(test))]
    lower, upper, z0, a = bca_interval(estimate, samples, jackknife, confidence)
    tail = 100.0 * (1.0 - confidence) / 2.0
    p_lower, p_upper = np.percentile(samples, [tail, 100.0 - tail])
    return BootstrapF2(estimate, lower, upper, confidence, n_bootstrap, z0, a, float(p_lower), float(p_upper))


def _leave_one_out_means(units: np.ndarray) -> np.ndarray:
    """Mean profile with each unit left out in turn, shape (n_units, n_times)."""
    n = len(units)
    return (units.sum(axis=0) - units) / (n - 1)


def _comparable_points(times_hours, reference_pct, test_pct) -> tuple[np.ndarray, list[str]]:
    """Mask of the points f1/f2 use (t > 0, up to the first with either > 85 %), and notes."""
    t = np.asarray(times_hours, dtype=float)
    keep = t > 0
    notes = ["t = 0 excluded"] if not keep.all() else []
    high = np.flatnonzero(keep & ((np.asarray(reference_pct) > PLATEAU_PCT) | (np.asarray(test_pct) > PLATEAU_PCT)))
    if high.size and high[0] + 1 < t.size:
        first = high[0]
        keep[first + 1:] = False
        notes.append(f"{t.size - first - 1} points after {t[first]:g} h dropped: at most one point above "
                     f"{PLATEAU_PCT:g} % is used, and a curve is above it at {t[first]:g} h")
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
        reasons: each regulatory condition that fails; valid only when empty.
        notes: what was done to the data (points excluded), and advisories.
        bootstrap: the bootstrap f2 interval, if drawn.
        units: (reference, test) number of units (vessels).
    """

    reference_id: str
    test_id: str
    times_hours: np.ndarray
    f1: float | None
    f2: float | None
    reasons: tuple[str, ...]
    notes: tuple[str, ...]
    bootstrap: BootstrapF2 | None = None
    units: tuple[int, int] = (0, 0)

    @property
    def valid(self) -> bool:
        """Whether every regulatory condition holds (no reason fails)."""
        return not self.reasons

    @property
    def similar(self) -> bool | None:
        """f1 ≤ 15 and f2 ≥ 50 when valid, else None."""
        if not self.valid:
            return None
        return self.f1 <= F1_LIMIT and self.f2 >= F2_LIMIT

    @property
    def verdict(self) -> str:
        """One line built from the reasons (and the bootstrap when they fail); never contradicts them."""
        if self.valid:
            return (f"valid f2 comparison: {'similar' if self.similar else 'not similar'} "
                    f"(f1 = {self.f1:.2f}, limit ≤ {F1_LIMIT:g}; f2 = {self.f2:.2f}, limit ≥ {F2_LIMIT:g})")
        failed = f"not a valid regulatory f2 comparison: {len(self.reasons)} condition(s) fail"
        boot = self.bootstrap
        if boot is None:
            return f"{failed}; no similarity conclusion"
        outcome = "similar" if boot.lower >= F2_LIMIT else "similarity not shown"
        return (f"{failed}; bootstrap f2 {boot.confidence:.0%} BCa interval {boot.lower:.2f} to "
                f"{boot.upper:.2f}: {outcome} (lower end vs {F2_LIMIT:g})")

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        boot = self.bootstrap
        return {
            "reference": self.reference_id,
            "test": self.test_id,
            "units": {"reference": self.units[0], "test": self.units[1]},
            "times_hours": [float(x) for x in self.times_hours],
            "f1": self.f1,
            "f2": self.f2,
            "valid": self.valid,
            "similar": self.similar,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "verdict": self.verdict,
            "bootstrap": None if boot is None else {
                "method": "BCa", "n_bootstrap": boot.n_bootstrap, "confidence": boot.confidence,
                "f2_lower": boot.lower, "f2_upper": boot.upper, "z0": boot.z0, "acceleration": boot.acceleration,
                "percentile_lower": boot.percentile_lower, "percentile_upper": boot.percentile_upper,
                "similar": boot.lower >= F2_LIMIT,
            },
        }


def compare_curves(reference: ReleaseCurve, test: ReleaseCurve, *, n_bootstrap: int | None = None,
                   confidence: float = 0.90, seed: int | None = 0) -> Comparison:
    """Compare a test release curve with a reference by f1, f2 and the regulatory conditions.

    Args:
        reference: the reference curve (its replicate units are the vessels).
        test: the test curve, sampled at the same times.
        n_bootstrap: bootstrap samples for the BCa f2 interval; 0 for none; None
            (default) for `AUTO_BOOTSTRAP` when a condition fails and both curves
            have at least 2 units. An explicit number needs at least 2 units per curve.
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
                       f"(t = 0 excluded, at most one point above {PLATEAU_PCT:g} %)")
    for role, curve in (("reference", reference), ("test", test)):
        if curve.n_replicates < REGULATORY_UNITS:
            units = {0: "no replicate units (a mean profile only)", 1: "a single unit"}.get(
                curve.n_replicates, f"{curve.n_replicates} units")
            reasons.append(f"{role} {curve.curve_id!r} has {units}; at least {REGULATORY_UNITS} are required "
                           "for a regulatory f2")
        if curve.n_replicates >= 2:
            problem = _cv_problem(curve, role, keep)
            if problem:
                reasons.append(problem)
        else:
            notes.append(f"{role} {curve.curve_id!r}: CV limits not checked (fewer than 2 units)")
    ref_used, test_used = reference.release_pct[keep], test.release_pct[keep]
    f1_value = finite_or_none(f1(ref_used, test_used)) if keep.any() else None
    f2_value = finite_or_none(f2(ref_used, test_used)) if keep.any() else None
    if keep.any() and (f1_value is None or f2_value is None):
        reasons.append("f1 is undefined: the reference releases nothing at the points used")
    boot = None
    both_have_units = min(reference.n_replicates, test.n_replicates) >= 2
    if n_bootstrap is None:
        n_bootstrap = AUTO_BOOTSTRAP if reasons and both_have_units and keep.sum() else 0
        if n_bootstrap:
            notes.append(f"conditions fail: bootstrap f2 drawn ({AUTO_BOOTSTRAP} samples, BCa interval)")
    if n_bootstrap > 0:
        for role, curve in (("reference", reference), ("test", test)):
            if curve.n_replicates < 2:
                raise InputError(f"bootstrap f2 needs replicate units; {role} curve {curve.curve_id!r} "
                                 f"has {curve.n_replicates or 'none'} (add a replicate column)")
        boot = bootstrap_f2(reference.replicates_pct[:, keep], test.replicates_pct[:, keep],
                            n_bootstrap=n_bootstrap, confidence=confidence, seed=seed)
    return Comparison(reference.curve_id, test.curve_id, t_ref[keep], f1_value, f2_value,
                      tuple(reasons), tuple(notes), boot, (reference.n_replicates, test.n_replicates))
