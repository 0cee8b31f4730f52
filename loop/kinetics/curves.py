"""Release curves: validation, and tidying the curves that real files hold.

`validate_curve` checks a curve strictly (the fitting functions use it).
`tidy_curve` turns one curve as read from a file (times in any order,
repeated times, missing values, replicate units) into a `ReleaseCurve` and
says, in plain words, each change it made and each value that cannot be a
cumulative release:

- unsorted times are sorted; repeated times are averaged;
- points without a number are dropped (refused with `strict`); a replicate
  unit not sampled at the times most units were is left out (refused with `strict`);
- release below 0 % or above 100 % is kept as measured and flagged; a fall of
  cumulative release by more than `FALL_TOLERANCE_PCT` is flagged;
- a curve is unusable (an `InputError` the reader turns into "skipped") with
  fewer than 2 points, a negative time, or release outside
  [`RELEASE_MIN_PCT`, `RELEASE_MAX_PCT`].
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nanoloop.loop.errors import InputError

#: Release below this (in %) cannot be a measurement error around 0 %: the curve is refused.
RELEASE_MIN_PCT = -10.0
#: Release above this (in %) cannot be an overshoot of 100 % (dose or assay error): the curve is refused.
RELEASE_MAX_PCT = 150.0
#: Falls of cumulative release up to this many % points are read as noise (digitization, assay) and not flagged.
FALL_TOLERANCE_PCT = 2.0


def _hours(value: float) -> str:
    return f"{value:g} h"


def validate_curve(times_hours, release_pct, *, curve_id: str = "curve") -> tuple[np.ndarray, np.ndarray]:
    """Check one release curve and return it as float arrays.

    Args:
        times_hours: sampling times in h.
        release_pct: cumulative release in %.
        curve_id: name of the curve in error messages.

    Returns:
        (times_hours, release_pct) as 1-D float arrays.

    Raises:
        InputError: naming the curve and the problem: not 1-D, unequal lengths,
            fewer than 2 points, NaN or infinite values, negative or
            non-increasing times.
    """
    return _checked(times_hours, release_pct, f"curve {curve_id!r}")


def _checked(times_hours, release_pct, name: str) -> tuple[np.ndarray, np.ndarray]:
    """`validate_curve` with `name` (e.g. "curve 'A' in f.csv") opening each message."""
    t = np.asarray(times_hours, dtype=float)
    F = np.asarray(release_pct, dtype=float)
    if t.ndim != 1 or F.ndim != 1:
        raise InputError(f"{name}: times and release must be 1-D sequences")
    if t.size != F.size:
        raise InputError(f"{name}: {t.size} times but {F.size} release values")
    if t.size < 2:
        raise InputError(f"{name} has {'a single point' if t.size else 'no points'}; a release curve needs at least 2")
    for label, values in (("time", t), ("release", F)):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise InputError(f"{name}: {label} is not a number at point {bad[0] + 1} of {t.size}")
    if t[0] < 0:
        raise InputError(f"{name}: negative time {_hours(t[0])}")
    steps = np.flatnonzero(np.diff(t) <= 0)
    if steps.size:
        i = steps[0]
        raise InputError(f"{name}: times must increase, {_hours(t[i])} is followed by {_hours(t[i + 1])}")
    return t, F


@dataclass(frozen=True, eq=False)
class ReleaseCurve:
    """One release curve: the mean profile and, if measured, its replicate units.

    Attributes:
        curve_id: name of the curve.
        times_hours: sampling times in h, strictly increasing.
        release_pct: cumulative release in % (the mean of the replicates if given).
        replicates_pct: release of each replicate unit in %, shape
            (n_replicates, n_times); None when only the mean is known.
        notes: what was changed on reading (sorted, averaged, dropped points).
        flags: values that cannot be a cumulative release, kept as measured.
    """

    curve_id: str
    times_hours: np.ndarray
    release_pct: np.ndarray
    replicates_pct: np.ndarray | None = None
    notes: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()

    def __post_init__(self):
        t, F = validate_curve(self.times_hours, self.release_pct, curve_id=self.curve_id)
        object.__setattr__(self, "times_hours", t)
        object.__setattr__(self, "release_pct", F)
        if self.replicates_pct is not None:
            reps = np.atleast_2d(np.asarray(self.replicates_pct, dtype=float))
            if reps.ndim != 2 or reps.shape[1] != t.size:
                raise InputError(f"curve {self.curve_id!r}: replicates must have shape (n_replicates, {t.size})")
            if not np.all(np.isfinite(reps)):
                raise InputError(f"curve {self.curve_id!r}: a replicate value is not a number")
            object.__setattr__(self, "replicates_pct", reps)

    @classmethod
    def from_replicates(cls, curve_id: str, times_hours, replicates_pct, **notes) -> "ReleaseCurve":
        """A curve whose mean profile is the mean of `replicates_pct` (n_replicates, n_times), in %."""
        reps = np.atleast_2d(np.asarray(replicates_pct, dtype=float))
        return cls(curve_id, times_hours, reps.mean(axis=0), reps, **notes)

    @property
    def n_replicates(self) -> int:
        return 0 if self.replicates_pct is None else self.replicates_pct.shape[0]

    @property
    def replicate_sd_pct(self) -> np.ndarray | None:
        """Standard deviation of the replicate units at each time in %, or None with fewer than 2."""
        return self.replicates_pct.std(axis=0, ddof=1) if self.n_replicates >= 2 else None


@dataclass(frozen=True)
class CurveFile:
    """The curves read from one file.

    Attributes:
        path: the file.
        curves: the usable curves, in the order they first appear.
        release_scale: "percent" or "fraction" (converted to %), as read.
        note: one sentence saying how release was read.
        format_note: what was detected: file type, separator, decimal mark, layout.
        skipped: curve id -> why the curve could not be used.
    """

    path: Path
    curves: tuple[ReleaseCurve, ...]
    release_scale: str
    note: str
    format_note: str = ""
    skipped: dict[str, str] | None = None


def _listed(values, limit: int = 4) -> str:
    shown = ", ".join(values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _one_series(t: np.ndarray, F: np.ndarray, lines: list[str], name: str, strict: bool, notes: list[str]):
    """Sorted, averaged, complete points of one series (one curve or one replicate unit)."""
    missing = ~(np.isfinite(t) & np.isfinite(F))
    if missing.any():
        where = [lines[i] for i in np.flatnonzero(missing)]
        what = "time or release is missing or not a number"
        if strict or missing.all():
            raise InputError(f"{name}: {what} on {_listed(where)}"
                             + (" (no usable point)" if missing.all() else ""))
        notes.append(f"{missing.sum()} point(s) dropped: {what} on {_listed(where)}")
        t, F = t[~missing], F[~missing]
    if t.size and t.min() < 0:
        raise InputError(f"{name}: negative time {_hours(t.min())}")
    if np.any(np.diff(t) < 0):
        back = int(np.flatnonzero(np.diff(t) < 0)[0])
        notes.append(f"times sorted: {_hours(t[back])} came before {_hours(t[back + 1])} "
                     f"({int(np.sum(np.diff(t) < 0))} step(s) back)")
        order = np.argsort(t, kind="stable")
        t, F = t[order], F[order]
    unique, inverse, counts = np.unique(t, return_inverse=True, return_counts=True)
    if unique.size < t.size:
        repeated = [f"{_hours(x)} ({c} values)" for x, c in zip(unique, counts) if c > 1]
        notes.append(f"repeated times averaged: {_listed(repeated)}")
        F = np.bincount(inverse, weights=F) / counts
        t = unique
    if t.size < 2:
        raise InputError(f"{name} has {'a single point' if t.size else 'no points'}; a release curve needs at least 2")
    return t, F


def _value_flags(t: np.ndarray, F: np.ndarray, name: str, values: np.ndarray) -> list[str]:
    """Flags for release that cannot be cumulative; InputError beyond the refusal limits."""
    low, high = float(np.min(values)), float(np.max(values))
    if low < RELEASE_MIN_PCT or high > RELEASE_MAX_PCT:
        bad = low if low < RELEASE_MIN_PCT else high
        raise InputError(f"{name}: release {bad:.4g} % is outside the accepted {RELEASE_MIN_PCT:g} to "
                         f"{RELEASE_MAX_PCT:g} % (a cumulative release; check the unit, dose or column)")
    flags = []
    if np.min(F) < 0:
        flags.append(f"{int(np.sum(F < 0))} point(s) below 0 % kept as measured "
                     f"(lowest {np.min(F):.3g} % at {_hours(t[np.argmin(F)])})")
    if np.max(F) > 100:
        flags.append(f"{int(np.sum(F > 100))} point(s) above 100 % kept as measured "
                     f"(highest {np.max(F):.4g} % at {_hours(t[np.argmax(F)])})")
    falls = F[:-1] - F[1:]
    big = np.flatnonzero(falls > FALL_TOLERANCE_PCT)
    if big.size:
        i = int(big[np.argmax(falls[big])])
        flags.append(f"cumulative release falls {big.size} time(s) by more than {FALL_TOLERANCE_PCT:g} % "
                     f"(most: {falls[i]:.3g} % from {_hours(t[i])} to {_hours(t[i + 1])})")
    return flags


def tidy_curve(curve_id: str, times_hours, release_pct, *, replicates=None, lines=None,
               where: str = "", strict: bool = False) -> ReleaseCurve:
    """One curve as read from a file, tidied into a `ReleaseCurve` that says what was done.

    Args:
        curve_id: name of the curve.
        times_hours: sampling times in h, in any order, repeats allowed, NaN for missing.
        release_pct: cumulative release in %, NaN for missing.
        replicates: replicate unit label of each point, or None for one series.
        lines: where each point is in the file (e.g. "line 12"), for messages.
        where: " in FILE" appended to the curve name in messages.
        strict: refuse missing values instead of dropping the points.

    Raises:
        InputError: the curve is unusable (module docstring); the message names it.
    """
    t = np.asarray(times_hours, dtype=float)
    F = np.asarray(release_pct, dtype=float)
    lines = list(lines) if lines is not None else [f"point {i + 1}" for i in range(t.size)]
    name = f"curve {curve_id!r}{where}"
    notes: list[str] = []
    if replicates is None:
        t, F = _one_series(t, F, lines, name, strict, notes)
        flags = _value_flags(t, F, name, F)
        return ReleaseCurve(curve_id, t, F, notes=tuple(notes), flags=tuple(flags))
    replicates = np.asarray(replicates)
    series = []
    for rep in dict.fromkeys(replicates.tolist()):
        mask = replicates == rep
        rep_notes: list[str] = []
        rep_t, rep_F = _one_series(t[mask], F[mask], [lines[i] for i in np.flatnonzero(mask)],
                                   f"{name} replicate {rep!r}", strict, rep_notes)
        notes.extend(f"replicate {rep!r}: {note}" for note in rep_notes)
        series.append((rep, rep_t, rep_F))
    grids = [tuple(rep_t) for _, rep_t, _ in series]
    common = max(grids, key=grids.count)  # the times most units were sampled at (the first on a tie)
    first_rep = series[grids.index(common)][0]
    kept = []
    for (rep, rep_t, rep_F), grid in zip(series, grids):
        if grid == common:
            kept.append(rep_F)
            continue
        problem = (f"replicate {rep!r} is sampled at {', '.join(f'{x:g}' for x in rep_t)} h "
                   f"but replicate {first_rep!r} at {', '.join(f'{x:g}' for x in common)} h")
        if strict:
            raise InputError(f"{name}: {problem}")
        notes.append(f"replicate {rep!r} left out: {problem}")
    first_t = np.array(common)
    reps = np.array(kept)
    flags = _value_flags(first_t, reps.mean(axis=0), name, reps)
    return ReleaseCurve.from_replicates(curve_id, first_t, reps, notes=tuple(notes), flags=tuple(flags))
