"""Reading release curves from the files labs have: CSV (any separator, decimal commas) and Excel.

Two layouts are read:

- long: a time column and a release column, optionally a curve id column
  (several curves in one file: `curve`, `formulation`, `sample`, `file_name`, ...)
  and a replicate column (`replicate`, `vessel`, `unit`: replicate units of one curve);
- wide (DDSolver, dissolution testers): a time column and one release column per
  curve or vessel, detected when no curve or replicate column exists and not
  exactly one column is named like release. Columns named NAME_1, NAME_2, ... (or "NAME 1", "NAME.1",
  "NAME vessel 1") are vessels of curve NAME; columns named 1, 2, ... or
  "vessel 1", "V1", ... are vessels of one curve named after the file.

Separators (comma, semicolon, tab) and decimal commas are detected, and a
data line whose number of fields differs from the header's is refused (the
usual sign of decimal commas in a comma-separated file). Release may be in
percent or a fraction of the dose (detected from the largest value and said).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from nanoloop.loop.errors import InputError
from nanoloop.loop.io.sheets import (
    COLUMN_RULES,
    TIME_UNITS_IN_HOURS,
    column_time_unit,
    find_column,
    numbers,
    read_table,
    release_factor,
)
from nanoloop.loop.kinetics.curves import CurveFile, tidy_curve

LAYOUTS = ("auto", "long", "wide", "vessels")

_VESSEL_ONLY = re.compile(r"^\s*(?:(?:vessel|unit|rep|replicate|v|r)\s*[_\-.#]?\s*)?\d+\s*$", re.I)
_NAMED_VESSEL = re.compile(r"^(?P<name>.*?\S)\s*[_\-.#\s]\s*(?:(?:vessel|unit|rep|replicate|v|r)\s*[_\-.#]?\s*)?\d+\s*$",
                           re.I)


# ---------------------------------------------------------------- the layout
def _vessel_groups(columns: list[str], stem: str, layout: str) -> dict[str, list[str]]:
    """Curve name -> its columns (vessels) in a wide table."""
    if layout == "vessels":
        return {stem: list(columns)}
    groups: dict[str, list[str]] = {}
    for column in columns:
        name = str(column).strip()
        if layout == "auto":
            if _VESSEL_ONLY.match(name):
                name = stem
            elif match := _NAMED_VESSEL.match(name):
                name = match["name"]
        groups.setdefault(name, []).append(column)
    # a "group" of one column is a curve of its own, under its full name
    return {(name if len(cols) > 1 else str(cols[0]).strip()): cols for name, cols in groups.items()}


def _value_columns(frame: pd.DataFrame, decimal: str, skip: set) -> list[str]:
    """Columns other than `skip` with at least one number."""
    return [c for c in frame.columns if c not in skip and np.isfinite(numbers(frame[c], decimal)).any()]


def read_curves(path, *, time_unit: str = "auto", release_scale: str = "auto", layout: str = "auto",
                sheet: str | None = None, strict: bool = False) -> CurveFile:
    """Read release curves from a CSV or Excel file, long or wide, tidying each curve.

    Args:
        path: a .csv (or other text) or .xlsx file.
        time_unit: unit of the time column: "h", "d" or "min", converted to h; "auto"
            reads it from the header ("Time (min)", "time_hours", "Days"), else h.
        release_scale: "auto" (fraction if no value exceeds 1.5, else percent),
            "percent" or "fraction".
        layout: "auto" (detected and said), "long", "wide" (each release column
            a curve), or "vessels" (every release column a vessel of one curve).
        sheet: Excel sheet name; the first sheet by default.
        strict: refuse the file at the first unusable curve or missing value,
            instead of skipping the curve (or dropping the point) and saying why.

    Returns:
        The usable curves in % against h, the skipped ones with their reasons,
        and notes on how the file was read.

    Raises:
        InputError: unreadable file, missing columns, no usable curve, or (with
            `strict`) an unusable curve; the message names the file and problem.
    """
    path = Path(path)
    if time_unit != "auto" and time_unit not in TIME_UNITS_IN_HOURS:
        raise InputError(f"time unit must be one of auto, {', '.join(TIME_UNITS_IN_HOURS)}, not {time_unit!r}")
    if layout not in LAYOUTS:
        raise InputError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    frame, decimal, described, rows = read_table(path, sheet=sheet)
    if frame.empty:
        raise InputError(f"{path}: no data rows")
    columns = {role: find_column(frame.columns, role) for role in COLUMN_RULES}
    if columns["time"] is None:
        raise InputError(f"{path}: no time column (columns: {', '.join(map(str, frame.columns))}); name it 'time'")
    unit, unit_note = column_time_unit(columns["time"], time_unit, path)
    times = numbers(frame[columns["time"]], decimal) * TIME_UNITS_IN_HOURS[unit]
    keyed = {columns[r] for r in ("time", "curve", "replicate") if columns[r] is not None}
    values = _value_columns(frame, decimal, keyed)
    release_named = [c for c in values if COLUMN_RULES["release"](str(c).strip().lower())]
    long_file = layout == "long" or (layout == "auto" and (
        columns["curve"] is not None or columns["replicate"] is not None or len(release_named) == 1))
    series = []  # (curve id, times, release, replicate labels or None, row labels)
    if long_file:
        if columns["release"] is None:
            raise InputError(f"{path}: no release column (columns: {', '.join(map(str, frame.columns))}); "
                             f"name it 'release', or pass --layout wide for one column per curve")
        release = numbers(frame[columns["release"]], decimal)
        ids = (frame[columns["curve"]].astype(str).str.strip().where(frame[columns["curve"]].notna(), "")
               if columns["curve"] else pd.Series([path.stem] * len(frame)))
        if (ids == "").any():
            raise InputError(f"{path}: curve id is missing on {rows[int(np.flatnonzero(ids == '')[0])]}")
        reps = frame[columns["replicate"]].astype(str).str.strip().to_numpy() if columns["replicate"] else None
        for curve_id, where in ids.groupby(ids, sort=False).indices.items():
            series.append((curve_id, times[where], release[where], None if reps is None else reps[where],
                           [rows[i] for i in where]))
        unused = [str(c) for c in values if c != columns["release"]]
        layout_note = ("long layout" + (f", curves by {columns['curve']!r}" if columns["curve"] else ", one curve")
                       + (f", replicates by {columns['replicate']!r}" if columns["replicate"] else "")
                       + (f", column(s) not used: {', '.join(unused)}" if unused else ""))
    else:
        if not values:
            raise InputError(f"{path}: no release column with numbers (columns: {', '.join(map(str, frame.columns))})")
        groups = _vessel_groups(values, path.stem, "vessels" if layout == "vessels" else
                                ("auto" if layout == "auto" else "wide"))
        for curve_id, cols in groups.items():
            n = len(frame)
            release = np.concatenate([numbers(frame[c], decimal) for c in cols])
            labels = np.repeat(np.array([str(c) for c in cols]), n) if len(cols) > 1 else None
            series.append((curve_id, np.tile(times, len(cols)), release, labels,
                           [f"{r}, column {c!r}" for c in cols for r in rows]))
        vessels = sum(len(cols) > 1 for cols in groups.values())
        layout_note = (f"wide layout: {len(groups)} curve(s) from {len(values)} release column(s)"
                       + (f", {vessels} with vessels" if vessels else ""))
    factor, scale, note = release_factor(np.concatenate([s[2] for s in series]), release_scale)
    curves, skipped = [], {}
    for curve_id, t, F, reps, labels in series:
        try:
            curves.append(tidy_curve(curve_id, t, F * factor, replicates=reps, lines=labels,
                                     where=f" in {path.name}", strict=strict))
        except InputError as err:
            if strict:
                raise
            skipped[curve_id] = str(err)
    if not curves:
        first = next(iter(skipped.values()))
        raise InputError(f"{path}: no usable curve; {first}" if len(skipped) > 1 else first)
    format_note = f"{described}; {layout_note}; {unit_note}"
    return CurveFile(path, tuple(curves), scale, note, format_note, skipped)
