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

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from nanoloop.loop.errors import InputError
from nanoloop.loop.kinetics.curves import CurveFile, tidy_curve

#: Hours per unit of the time column.
TIME_UNITS_IN_HOURS = {"h": 1.0, "d": 24.0, "min": 1.0 / 60.0}
#: Largest release value (over the file) read as a fraction of the dose rather than %.
FRACTION_MAX = 1.5
LAYOUTS = ("auto", "long", "wide", "vessels")

_SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab"}
_DECIMAL_COMMA = re.compile(r"^\s*[-+]?\d*,\d+\s*$")
_VESSEL_ONLY = re.compile(r"^\s*(?:(?:vessel|unit|rep|replicate|v|r)\s*[_\-.#]?\s*)?\d+\s*$", re.I)
_NAMED_VESSEL = re.compile(r"^(?P<name>.*?\S)\s*[_\-.#\s]\s*(?:(?:vessel|unit|rep|replicate|v|r)\s*[_\-.#]?\s*)?\d+\s*$",
                           re.I)

_SPREAD = re.compile(r"(^|[\s_(])(sd|std|stdev|sem|se|error)($|[\s_)])")  # an SD/error column, never a release

_COLUMN_RULES = {
    "time": lambda c: c in ("t", "t (h)", "t (min)", "t (d)") or c.startswith("time"),
    "release": lambda c: (any(w in c for w in ("releas", "dissol", "cumulative")) or c in ("f", "fraction", "percent"))
    and not _SPREAD.search(c),
    "curve": lambda c: c.startswith(("curve", "file", "formulation")) or c in ("id", "sample", "batch", "name", "product"),
    "replicate": lambda c: c.startswith("rep") or c in ("unit", "vessel"),
}


# ------------------------------------------------------------------ the table
def _split(line: str, sep: str) -> list[str]:
    return next(csv.reader([line], delimiter=sep))


def _separator(lines: list[str], path: Path) -> str:
    """The separator that splits the header and every data line into the same number of fields."""
    header = lines[0]
    if "\t" in header:
        return "\t"
    fits = {}
    for sep in (";", ","):
        width = len(_split(header, sep))
        if width >= 2:
            fits[sep] = all(len(_split(line, sep)) == width for line in lines[1:])
    if not fits:
        raise InputError(f"{path.name}: no separator found in the header {header!r}: "
                         "expected columns separated by commas, semicolons or tabs")
    if len(fits) == 2:
        if fits[";"] and fits[","]:
            raise InputError(f"{path.name}: ambiguous separators: both ',' and ';' split every line into the same "
                             "number of fields; use one separator")
        return ";" if fits[";"] else ","
    return next(iter(fits))


def _check_widths(lines: list[str], sep: str, path: Path) -> None:
    header = _split(lines[0], sep)
    for number, line in enumerate(lines[1:], 2):
        fields = _split(line, sep)
        if len(fields) != len(header):
            hint = ""
            if sep == "," and len(fields) > len(header) and re.search(r"\d,\d", line):
                hint = "; decimal commas in a comma-separated file? separate columns with ';' or quote the values"
            raise InputError(f"{path.name} line {number}: {len(fields)} fields ({line.strip()!r}) but the header "
                             f"has {len(header)} ({', '.join(h.strip() for h in header)}){hint}")


def _read_csv(path: Path) -> tuple[pd.DataFrame, str, str, list[str]]:
    """(table of text cells, decimal mark, description, label of each row)."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    numbered = [(i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not numbered:
        raise InputError(f"{path}: empty file")
    lines = [line for _, line in numbered]
    sep = _separator(lines, path)
    _check_widths(lines, sep, path)
    frame = pd.read_csv(io.StringIO("\n".join(lines)), sep=sep, dtype=str, skipinitialspace=True,
                        keep_default_na=True)
    cells = frame.to_numpy(dtype=object).ravel()
    commas = sum(1 for cell in cells if isinstance(cell, str) and _DECIMAL_COMMA.match(cell))
    decimal = "," if commas else "."
    described = f"{_SEPARATORS[sep]}-separated" + (", decimal commas" if commas else "")
    return frame, decimal, described, [f"line {i}" for i, _ in numbered[1:]]


def _read_excel(path: Path, sheet: str | None) -> tuple[pd.DataFrame, str, str, list[str]]:
    try:
        book = pd.ExcelFile(path, engine="openpyxl")
    except Exception as err:  # openpyxl raises several types for a damaged or non-Excel file
        raise InputError(f"{path}: not a readable .xlsx workbook ({type(err).__name__}: {err})") from None
    name = sheet if sheet is not None else book.sheet_names[0]
    if name not in book.sheet_names:
        raise InputError(f"{path}: no sheet {name!r} (sheets: {', '.join(book.sheet_names)})")
    frame = pd.read_excel(book, sheet_name=name, dtype=object).dropna(how="all").dropna(axis=1, how="all")
    frame.columns = [str(c) for c in frame.columns]
    cells = frame.to_numpy(dtype=object).ravel()
    commas = any(isinstance(cell, str) and _DECIMAL_COMMA.match(cell) for cell in cells)
    return (frame, "," if commas else ".", f"Excel sheet {name!r}" + (", decimal commas" if commas else ""),
            [f"row {i + 2}" for i in frame.index])


def read_table(path, *, sheet: str | None = None) -> tuple[pd.DataFrame, str, str, list[str]]:
    """A CSV or Excel file as a table: (cells, decimal mark, what was detected, label of each row).

    Raises:
        InputError: missing, empty or unreadable file, ambiguous separators, or a
            line whose number of fields differs from the header's.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise InputError(f"{path}: old .xls workbooks are not read; save it as .xlsx or CSV")
    if suffix in (".xlsx", ".xlsm"):
        return _read_excel(path, sheet)
    try:
        return _read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, csv.Error) as err:
        raise InputError(f"{path}: not a readable CSV file ({err})") from None


def _numbers(column: pd.Series, decimal: str) -> np.ndarray:
    text = column.astype(str).str.strip()
    if decimal == ",":
        text = text.str.replace(",", ".", regex=False)
    return pd.to_numeric(text.where(column.notna()), errors="coerce").to_numpy(dtype=float)


# ---------------------------------------------------------------- the layout
def _find_column(columns, role: str) -> str | None:
    return next((c for c in columns if _COLUMN_RULES[role](str(c).strip().lower())), None)


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
    return [c for c in frame.columns if c not in skip and np.isfinite(_numbers(frame[c], decimal)).any()]


def _release_scale(values: np.ndarray, release_scale: str) -> tuple[float, str, str]:
    """(factor to %, scale, note) for the release values of a file."""
    finite = values[np.isfinite(values)]
    largest = float(np.max(finite)) if finite.size else float("nan")
    if release_scale == "auto":
        release_scale = "fraction" if largest <= FRACTION_MAX else "percent"
    if release_scale == "fraction":
        return 100.0, "fraction", f"release read as a fraction of the dose (largest value {largest:g}) and converted to %"
    if release_scale == "percent":
        return 1.0, "percent", f"release read as percent (largest value {largest:g})"
    raise InputError(f"release scale must be auto, percent or fraction, not {release_scale!r}")


_UNIT_WORDS = {"min": "min", "mins": "min", "minute": "min", "minutes": "min", "h": "h", "hr": "h", "hrs": "h",
               "hour": "h", "hours": "h", "d": "d", "day": "d", "days": "d"}


def _time_unit(column: str, given: str, path: Path) -> tuple[str, str]:
    """(unit, note): the unit the time column's header names, checked against the one given."""
    named = next((_UNIT_WORDS[w] for w in re.findall(r"[a-z]+", str(column).lower()) if w in _UNIT_WORDS), None)
    if given == "auto":
        if named is None:
            return "h", f"time in h (the header {str(column)!r} names no unit; --time-unit to change)"
        return named, f"time in {named} from the header {str(column)!r}" + (", converted to h" if named != "h" else "")
    if given not in TIME_UNITS_IN_HOURS:
        raise InputError(f"time unit must be one of auto, {', '.join(TIME_UNITS_IN_HOURS)}, not {given!r}")
    if named is not None and named != given:
        raise InputError(f"{path.name}: the time column {str(column)!r} is in {named} but --time-unit {given} was "
                         "given; drop the option or rename the column")
    return given, f"time in {given}" + (", converted to h" if given != "h" else "")


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
    columns = {role: _find_column(frame.columns, role) for role in _COLUMN_RULES}
    if columns["time"] is None:
        raise InputError(f"{path}: no time column (columns: {', '.join(map(str, frame.columns))}); name it 'time'")
    unit, unit_note = _time_unit(columns["time"], time_unit, path)
    times = _numbers(frame[columns["time"]], decimal) * TIME_UNITS_IN_HOURS[unit]
    keyed = {columns[r] for r in ("time", "curve", "replicate") if columns[r] is not None}
    values = _value_columns(frame, decimal, keyed)
    release_named = [c for c in values if _COLUMN_RULES["release"](str(c).strip().lower())]
    long_file = layout == "long" or (layout == "auto" and (
        columns["curve"] is not None or columns["replicate"] is not None or len(release_named) == 1))
    series = []  # (curve id, times, release, replicate labels or None, row labels)
    if long_file:
        if columns["release"] is None:
            raise InputError(f"{path}: no release column (columns: {', '.join(map(str, frame.columns))}); "
                             f"name it 'release', or pass --layout wide for one column per curve")
        release = _numbers(frame[columns["release"]], decimal)
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
            release = np.concatenate([_numbers(frame[c], decimal) for c in cols])
            labels = np.repeat(np.array([str(c) for c in cols]), n) if len(cols) > 1 else None
            series.append((curve_id, np.tile(times, len(cols)), release, labels,
                           [f"{r}, column {c!r}" for c in cols for r in rows]))
        vessels = sum(len(cols) > 1 for cols in groups.values())
        layout_note = (f"wide layout: {len(groups)} curve(s) from {len(values)} release column(s)"
                       + (f", {vessels} with vessels" if vessels else ""))
    factor, scale, note = _release_scale(np.concatenate([s[2] for s in series]), release_scale)
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
