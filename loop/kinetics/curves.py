"""Release curves: validation, and reading them from CSV files.

A curve CSV has a time column and a release column, and optionally a curve id
column (several curves in one file) and a replicate column (replicate units of
one curve, each sampled at the same times). Release may be in percent or as a
fraction of the dose; the scale is detected from the largest value and said.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nanoloop.loop.errors import InputError

#: Hours per unit of the time column.
TIME_UNITS_IN_HOURS = {"h": 1.0, "d": 24.0, "min": 1.0 / 60.0}
#: Largest release value (over the file) read as a fraction of the dose rather than %.
FRACTION_MAX = 1.5


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
    """

    curve_id: str
    times_hours: np.ndarray
    release_pct: np.ndarray
    replicates_pct: np.ndarray | None = None

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
    def from_replicates(cls, curve_id: str, times_hours, replicates_pct) -> "ReleaseCurve":
        """A curve whose mean profile is the mean of `replicates_pct` (n_replicates, n_times), in %."""
        reps = np.atleast_2d(np.asarray(replicates_pct, dtype=float))
        return cls(curve_id, times_hours, reps.mean(axis=0), reps)

    @property
    def n_replicates(self) -> int:
        return 0 if self.replicates_pct is None else self.replicates_pct.shape[0]


@dataclass(frozen=True)
class CurveFile:
    """The curves read from one CSV file.

    Attributes:
        path: the file.
        curves: the curves, in the order they first appear.
        release_scale: "percent" or "fraction" (converted to %), as read.
        note: one sentence saying how release was read.
    """

    path: Path
    curves: tuple[ReleaseCurve, ...]
    release_scale: str
    note: str


def _find_column(columns, matches) -> str | None:
    for column in columns:
        name = str(column).strip().lower()
        if matches(name):
            return column
    return None


_COLUMN_RULES = {
    "time": lambda c: c == "t" or c.startswith("time"),
    "release": lambda c: any(w in c for w in ("releas", "dissol", "cumulative")) or c in ("f", "fraction", "percent"),
    "curve": lambda c: c.startswith("curve") or c in ("id", "sample", "formulation", "batch"),
    "replicate": lambda c: c.startswith("rep") or c in ("unit", "vessel"),
}


def _numeric(frame: pd.DataFrame, column: str, label: str, ids: pd.Series, path: Path) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        row = bad[0]
        raise InputError(f"curve {ids.iloc[row]!r} in {path.name}: {label} is missing or not a number "
                         f"on line {row + 2} ({frame[column].iloc[row]!r})")
    return values


def _release_scale(release: np.ndarray, release_scale: str) -> tuple[float, str, str]:
    """(factor to %, scale, note) for the release values of a file."""
    largest = float(np.max(release))
    if release_scale == "auto":
        release_scale = "fraction" if largest <= FRACTION_MAX else "percent"
    if release_scale == "fraction":
        return 100.0, "fraction", f"release read as a fraction of the dose (largest value {largest:g}) and converted to %"
    if release_scale == "percent":
        return 1.0, "percent", f"release read as percent (largest value {largest:g})"
    raise InputError(f"release scale must be auto, percent or fraction, not {release_scale!r}")


def _build_curve(curve_id: str, times: np.ndarray, release: np.ndarray, replicates: np.ndarray | None,
                 path: Path) -> ReleaseCurve:
    if replicates is None:
        return ReleaseCurve(curve_id, *_checked(times, release, f"curve {curve_id!r} in {path.name}"))
    series = []
    for rep in pd.unique(replicates):
        mask = replicates == rep
        name = f"curve {curve_id!r} replicate {rep!r} in {path.name}"
        series.append((rep, *_checked(times[mask], release[mask], name)))
    first_rep, first_t, _ = series[0]
    for rep, t, _ in series[1:]:
        if t.size != first_t.size or not np.allclose(t, first_t):
            raise InputError(
                f"curve {curve_id!r} in {path.name}: replicate {rep!r} is sampled at "
                f"{', '.join(f'{x:g}' for x in t)} h but replicate {first_rep!r} at {', '.join(f'{x:g}' for x in first_t)} h")
    return ReleaseCurve.from_replicates(curve_id, first_t, np.array([F for _, _, F in series]))


def read_curves(path, *, time_unit: str = "h", release_scale: str = "auto") -> CurveFile:
    """Read one or many release curves from a CSV file.

    Args:
        path: the CSV file, with columns time, release, and optionally curve id and replicate.
        time_unit: unit of the time column: "h", "d" or "min"; converted to h.
        release_scale: "auto" (fraction if no value exceeds 1.5, else percent),
            "percent" or "fraction".

    Returns:
        The curves in % against h, with a note on how release was read.

    Raises:
        InputError: unreadable file, missing columns, or an invalid curve (the
            message names the curve and the problem).
    """
    path = Path(path)
    if time_unit not in TIME_UNITS_IN_HOURS:
        raise InputError(f"time unit must be one of {', '.join(TIME_UNITS_IN_HOURS)}, not {time_unit!r}")
    try:
        frame = pd.read_csv(path, skipinitialspace=True)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not a readable CSV file ({err})") from None
    columns = {role: _find_column(frame.columns, rule) for role, rule in _COLUMN_RULES.items()}
    for role in ("time", "release"):
        if columns[role] is None:
            raise InputError(f"{path}: no {role} column (columns: {', '.join(map(str, frame.columns))}); "
                             f"name it '{role}'")
    if frame.empty:
        raise InputError(f"{path}: no data rows")
    if columns["curve"] is not None and frame[columns["curve"]].isna().any():
        row = int(np.flatnonzero(frame[columns["curve"]].isna())[0])
        raise InputError(f"{path}: curve id is missing on line {row + 2}")
    ids = frame[columns["curve"]].astype(str).str.strip() if columns["curve"] else pd.Series([path.stem] * len(frame))
    times = _numeric(frame, columns["time"], "time", ids, path) * TIME_UNITS_IN_HOURS[time_unit]
    release = _numeric(frame, columns["release"], "release", ids, path)
    factor, scale, note = _release_scale(release, release_scale)
    replicates = frame[columns["replicate"]].astype(str).to_numpy() if columns["replicate"] else None
    curves = []
    for curve_id in pd.unique(ids):
        mask = (ids == curve_id).to_numpy()
        curves.append(_build_curve(curve_id, times[mask], release[mask] * factor,
                                   None if replicates is None else replicates[mask], path))
    return CurveFile(path, tuple(curves), scale, note)
