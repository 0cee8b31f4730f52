"""A lab's earlier experiments, read from a spreadsheet: recipes, release curves, characterization.

`read_experiments(path, space)` reads a CSV or Excel file in one of two layouts:

- long: one row per formulation (vessel) and time, with a time column and a release
  column (named as the kinetics reader names them, see :mod:`nanoloop.loop.kinetics.reading`),
  and optionally a replicate column (``replicate``, ``vessel``) or a sample id column;
- wide (DDSolver-like): one row per vessel and one release column per time, headed
  ``0.5 h``, ``24 h``, ``7 d``, ``30 min``, ``day 7`` or ``t=1``.

Every other column is a design variable of the space (header == variable name, case and
spaces ignored, or through a mapping "Header" -> variable), a characterization field
(:meth:`nanoloop.loop.lab.instruments.Characterization.fields`) or is listed in a note and
ignored. Rows with the same recipe are replicates of one formulation.

Nothing is written here: the campaign stores the result (:mod:`nanoloop.loop.store.importing`).
Rows that cannot be used are returned as `BadRow`s (file, row, column, problem);
the caller refuses the file or skips them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nanoloop.loop.errors import InputError
from nanoloop.loop.store.experiment_columns import assign_columns, layout_columns, header_key, parse_assignments, read_mapping
from nanoloop.loop.kinetics.curves import RELEASE_MIN_PCT
from nanoloop.loop.io.sheets import TIME_UNITS_IN_HOURS, column_time_unit, numbers, read_table, release_factor
from nanoloop.loop.lab.plausibility import MAX_PLAUSIBLE_PCT
from nanoloop.loop.design.space import Categorical, DesignSpace, formulation_id

__all__ = ["BadRow", "Experiments", "read_experiments", "read_mapping", "parse_assignments", "experiments_summary"]

#: A fall of cumulative release by more than this many %-points within one vessel is a bad row. The kinetics
#: reader flags (keeps) falls above 2 points; near a plateau of ~100 % an assay error of 2 % of the reading
#: plus ~1 point (the simulated lab's) makes falls of 5-6 points between two readings, so only a larger fall
#: is refused as "not a cumulative curve".
FALL_LIMIT_PCT = 10.0
#: Release above this (in %) is a bad row: the dose, the unit or the column is wrong (the lab-result plausibility limit).
RELEASE_MAX_PCT = MAX_PLAUSIBLE_PCT
LAYOUTS = ("auto", "long", "wide")
RELEASE_UNITS = {"auto": "auto", "pct": "percent", "percent": "percent", "fraction": "fraction"}


@dataclass(frozen=True)
class BadRow:
    """A row that cannot be imported: where it is and why."""

    file: str
    row: str  # "line 12" (CSV) or "row 12" (Excel)
    column: str
    message: str

    def __str__(self) -> str:
        return f"{self.file} {self.row}, column {self.column!r}: {self.message}"

    def to_dict(self) -> dict:
        return {"file": self.file, "row": self.row, "column": self.column, "message": self.message}


@dataclass
class Experiments:
    """What a file of earlier experiments holds, ready to train on or to store.

    Attributes:
        path: the file read.
        sha256: the file's content hash.
        recipes: design variables, one row per formulation (index: formulation key).
        curves: release in long form: key, replicate (1, 2, ...), time_hours, release_pct.
        characterization: measured properties per formulation (mean over its rows; index: key); may be empty.
        source_rows: key -> the file's rows that hold it ("line 3", ...).
        outside_space: key -> why it lies outside the design space (only those outside).
        notes: how the file was read (layout, units, columns ignored, ...).
        bad_rows: rows left out, with the reason.
    """

    path: Path
    sha256: str
    recipes: pd.DataFrame
    curves: pd.DataFrame
    characterization: pd.DataFrame
    source_rows: dict[str, list[str]]
    outside_space: dict[str, list[str]]
    notes: list[str] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        return list(self.recipes.index)

    def recipe(self, key: str) -> dict:
        """One formulation's design variables as a plain dict (floats and category names)."""
        row = self.recipes.loc[key]
        return {name: (str(v) if isinstance(v, str) else float(v)) for name, v in row.items()}


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()



def _recipe_cell(value, variable, column: str, row: str, name: str, decimal: str) -> tuple[object, BadRow | None]:
    if value is None or (isinstance(value, float) and np.isnan(value)) or (isinstance(value, str) and not value.strip()):
        return None, BadRow(name, row, column, f"missing value of {variable.name}")
    if isinstance(variable, Categorical):
        text = str(value).strip()
        match = next((c for c in variable.categories if header_key(c) == header_key(text)), None)
        if match is None:
            return None, BadRow(name, row, column, f"unknown {variable.name} {text!r} (known: {', '.join(variable.categories)})")
        return match, None
    number = numbers(pd.Series([value], dtype=object), decimal)[0]
    if not np.isfinite(number):
        return None, BadRow(name, row, column, f"{variable.name} {str(value).strip()!r} is not a number")
    return float(number), None


def _fixed_values(space: DesignSpace, fixed: dict, columns: dict[str, str]) -> dict:
    out = {}
    for name, value in (fixed or {}).items():
        variable = space.by_name.get(name)
        if variable is None:
            raise InputError(f"--set {name}={value}: {name!r} is not a variable of the space ({', '.join(space.names)})")
        if name in columns.values():
            column = next(c for c, v in columns.items() if v == name)
            raise InputError(f"--set {name}={value}: the file has a column for it ({column!r}); drop one of them")
        parsed, bad = _recipe_cell(value, variable, name, "--set", "--set", ".")
        if bad:
            raise InputError(f"--set {name}={value}: {bad.message}")
        out[name] = parsed
    return out


def read_experiments(path, space: DesignSpace, mapping: dict[str, str] | None = None, fixed: dict | None = None, *,
                     time_unit: str = "auto", release_unit: str = "auto", layout: str = "auto", sheet: str | None = None,
                     campaign: str = "") -> Experiments:
    """Read a file of earlier experiments against a design space (pure: nothing is written).

    Args:
        path: CSV (any separator, decimal commas) or .xlsx.
        space: the campaign's design space; every variable must be a column or in `fixed`.
        mapping: file header -> variable or characterization field.
        fixed: variable -> value for variables the file lacks (the same for every row).
        time_unit: "auto" (from the headers, else h), "min", "h" or "d".
        release_unit: "auto" (fraction when no value exceeds 1.5), "pct" or "fraction".
        layout: "auto", "long" or "wide".
        sheet: Excel sheet (default: the first).
        campaign: the campaign name; keys are then the campaign's formulation ids.

    Raises:
        InputError: unreadable file, no time columns, space variables missing and not
            fixed, a mapping naming an unknown column or variable.
    """
    path = Path(path)
    time_unit = {"days": "d", "day": "d", "hours": "h", "minutes": "min"}.get(time_unit, time_unit)
    if layout not in LAYOUTS:
        raise InputError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    if release_unit not in RELEASE_UNITS:
        raise InputError(f"release unit must be pct or fraction, not {release_unit!r}")
    frame, decimal, described, rows = read_table(path, sheet=sheet)
    if frame.empty:
        raise InputError(f"{path}: no data rows")
    notes = [f"{path.name}: {described}"]
    variables, chars, rest = assign_columns(frame, space, dict(mapping or {}), path)
    fixed = _fixed_values(space, fixed or {}, variables)
    missing = [n for n in space.names if n not in variables.values() and n not in fixed]
    if missing:
        raise InputError(f"{path.name}: no column for the space variable(s) {', '.join(missing)}; map a column to each "
                         f"(--map \"Header=variable\") or give the value all rows share (--set variable=value)")
    cols = layout_columns(frame, rest, layout, time_unit, path, notes)
    used = {cols.time, cols.release, cols.replicate, cols.sample, *cols.times}
    ignored = [str(c) for c in rest if c not in used]
    if ignored:
        notes.append(f"column(s) not in the space, ignored: {', '.join(ignored)}")
    if fixed:
        notes.append("set for every row: " + ", ".join(f"{k} = {v}" for k, v in fixed.items()))
    long = cols.time is not None
    release_columns = [cols.release] if long else list(cols.times)
    release = {c: numbers(frame[c], decimal) for c in release_columns}
    factor, _, scale_note = release_factor(np.concatenate(list(release.values())), RELEASE_UNITS[release_unit])
    notes.append(scale_note)
    times = numbers(frame[cols.time], decimal) * TIME_UNITS_IN_HOURS[column_time_unit(cols.time, time_unit, path)[0]] if long else None
    name, bad = path.name, []
    # one vessel per (recipe, sample, replicate); its points as (row, column, hours, %)
    vessels: dict[tuple, list] = {}
    recipes: dict[tuple, dict] = {}
    char_values: dict[tuple, list] = {}
    row_bad: set[int] = set()
    bad_vessels: set[tuple] = set()
    blank_cells = 0
    for i, row in enumerate(rows):
        recipe, problems = dict(fixed), []
        for column, variable in variables.items():
            value, problem = _recipe_cell(frame[column].iloc[i], space.by_name[variable], str(column), row, name, decimal)
            recipe[variable] = value
            if problem:
                problems.append(problem)
        measured = {}
        for column, fld in chars.items():
            value = frame[column].iloc[i]
            number = numbers(pd.Series([value], dtype=object), decimal)[0]
            if pd.notna(value) and str(value).strip() and not np.isfinite(number):
                problems.append(BadRow(name, row, str(column), f"{fld} {str(value).strip()!r} is not a number"))
            measured[fld] = number
        points = []
        for column in release_columns:
            raw = frame[column].iloc[i]
            value = release[column][i]
            if pd.isna(raw) or not str(raw).strip():
                if long:
                    problems.append(BadRow(name, row, str(column), "release is missing"))
                blank_cells += 1
                continue
            if not np.isfinite(value):
                problems.append(BadRow(name, row, str(column), f"release {str(raw).strip()!r} is not a number"))
                continue
            pct = value * factor
            if pct > RELEASE_MAX_PCT or pct < RELEASE_MIN_PCT:
                problems.append(BadRow(name, row, str(column), f"release {pct:.4g} % is outside {RELEASE_MIN_PCT:g} to "
                                       f"{RELEASE_MAX_PCT:g} % (check the unit, the dose or the column)"))
                continue
            hours = times[i] if long else cols.times[column]
            if long and not np.isfinite(hours):
                problems.append(BadRow(name, row, str(cols.time), f"time {str(frame[cols.time].iloc[i]).strip()!r} is not a number"))
                continue
            points.append((row, str(column), float(hours), float(pct)))
        recipe_key = tuple(recipe[n] for n in space.names)
        sample = str(frame[cols.sample].iloc[i]).strip() if cols.sample else ""
        replicate = str(frame[cols.replicate].iloc[i]).strip() if cols.replicate else ""
        vessel = (recipe_key, sample, replicate, "" if long else row)
        if problems:
            bad.append(problems[0])
            row_bad.add(i)
            bad_vessels.add(vessel)  # a long sheet's vessel with a bad row is left out whole
            continue
        vessels.setdefault(vessel, []).extend((i, *p) for p in points)
        recipes[recipe_key] = recipe
        char_values.setdefault(recipe_key, []).append(measured)
    curve_rows, keep = [], {}
    replicate_no: dict[tuple, int] = {}
    sources: dict[tuple, list[str]] = {}
    for vessel, points in vessels.items():
        if vessel in bad_vessels:
            continue
        problem = _vessel_problem(points, name, long)
        if problem is not None:
            bad.append(problem)
            continue
        recipe_key = vessel[0]
        replicate_no[recipe_key] = replicate_no.get(recipe_key, 0) + 1
        for _, row, _, hours, pct in sorted(points, key=lambda p: p[3]):
            curve_rows.append((recipe_key, replicate_no[recipe_key], hours, pct))
        sources.setdefault(recipe_key, []).extend(dict.fromkeys(p[1] for p in sorted(points, key=lambda p: p[0])))
        keep[recipe_key] = True
    if blank_cells and not long:
        notes.append(f"{blank_cells} empty release cell(s) read as not sampled at that time")
    sorted_note = _unsorted_note(vessels, long)
    if sorted_note:
        notes.append(sorted_note)
    keys = {rk: formulation_id(campaign, recipes[rk]) for rk in keep}
    recipe_frame = pd.DataFrame([recipes[rk] for rk in keep], index=[keys[rk] for rk in keep], columns=space.names)
    curves = pd.DataFrame([(keys[rk], rep, t, f) for rk, rep, t, f in curve_rows],
                          columns=["key", "replicate", "time_hours", "release_pct"])
    char_frame = pd.DataFrame()
    if chars:
        char_frame = pd.DataFrame({keys[rk]: pd.DataFrame(char_values[rk]).mean() for rk in keep}).T
        char_frame = char_frame.dropna(how="all")
    replicated = sum(1 for rk in keep if replicate_no[rk] > 1)
    notes.append(f"{len(keep)} formulation(s) from {len(rows) - len(row_bad)} good row(s)"
                 + (f"; {replicated} with replicate vessels (rows with the same recipe)" if replicated else ""))
    outside = {keys[rk]: r for rk in keep if (r := space.outside_reasons(recipes[rk]))}
    return Experiments(path, file_sha256(path), recipe_frame, curves, char_frame, {keys[rk]: sources[rk] for rk in keep},
                       outside, notes, bad)


def _vessel_problem(points: list, name: str, long: bool) -> BadRow | None:
    """A duplicated time, a fall of cumulative release, or fewer than 2 points in one vessel."""
    if len(points) < 2:
        row = points[0][1] if points else "?"
        return BadRow(name, row, points[0][2] if points else "", "fewer than 2 release values: not a curve")
    by_time = sorted(points, key=lambda p: (p[3], p[0]))
    for a, b in zip(by_time, by_time[1:]):
        if a[3] == b[3]:
            return BadRow(name, b[1], b[2], f"time {b[3]:g} h appears twice in one vessel "
                          f"({a[1]} and {b[1]}); give each vessel a replicate number")
    for a, b in zip(by_time, by_time[1:]):
        if a[4] - b[4] > FALL_LIMIT_PCT:
            return BadRow(name, b[1], b[2], f"cumulative release falls from {a[4]:.3g} % at {a[3]:g} h to {b[4]:.3g} % at "
                          f"{b[3]:g} h (more than {FALL_LIMIT_PCT:g} %-points): not a cumulative curve")
    return None


def _unsorted_note(vessels: dict, long: bool) -> str | None:
    if not long:
        return None
    unsorted = sum(1 for points in vessels.values() if any(b[3] < a[3] for a, b in zip(points, points[1:])))
    return f"times sorted in {unsorted} vessel(s) listed out of order" if unsorted else None


def experiments_summary(experiments: Experiments) -> dict:
    """JSON-ready facts about what was read (no curves)."""
    return {"file": experiments.path.name, "sha256": experiments.sha256, "formulations": len(experiments.recipes),
            "curve_points": len(experiments.curves), "outside_space": experiments.outside_space,
            "notes": experiments.notes, "bad_rows": [b.to_dict() for b in experiments.bad_rows]}

