"""Reading lab sheets: CSV (any separator, decimal commas) and Excel, and what their headers say.

The one front door for the files labs have, shared by the release-curve reader
(:mod:`nanoloop.loop.kinetics.reading`) and the import of earlier experiments
(:mod:`nanoloop.loop.store.experiments`): the table and its decimal mark
(:func:`read_table`), numbers from cells (:func:`numbers`), which column plays
which role (:data:`COLUMN_RULES`, :func:`find_column`), the time unit a header
names (:func:`column_time_unit`) and whether release is a fraction or percent
(:func:`release_factor`). It imports nothing of nanoloop but its errors.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from nanoloop.loop.errors import InputError

#: Hours per unit of a time column.
TIME_UNITS_IN_HOURS = {"h": 1.0, "d": 24.0, "min": 1.0 / 60.0}
#: Largest release value (over the file) read as a fraction of the dose rather than %.
FRACTION_MAX = 1.5
#: Words a header may use for a time unit -> the unit.
UNIT_WORDS = {"min": "min", "mins": "min", "minute": "min", "minutes": "min", "h": "h", "hr": "h", "hrs": "h",
              "hour": "h", "hours": "h", "d": "d", "day": "d", "days": "d"}

_SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab"}
_DECIMAL_COMMA = re.compile(r"^\s*[-+]?\d*,\d+\s*$")
_SPREAD = re.compile(r"(^|[\s_(])(sd|std|stdev|sem|se|error)($|[\s_)])")  # an SD/error column, never a release

#: role -> does a (lower-case, stripped) header name a column of that role
COLUMN_RULES = {
    "time": lambda c: c in ("t", "t (h)", "t (min)", "t (d)") or c.startswith("time"),
    "release": lambda c: (any(w in c for w in ("releas", "dissol", "cumulative")) or c in ("f", "fraction", "percent"))
    and not _SPREAD.search(c),
    "curve": lambda c: c.startswith(("curve", "file", "formulation")) or c in ("id", "sample", "batch", "name", "product"),
    "replicate": lambda c: c.startswith("rep") or c in ("unit", "vessel"),
}


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


def numbers(column: pd.Series, decimal: str) -> np.ndarray:
    """A column of cells as floats (NaN where a cell is empty or not a number); ``decimal`` is "." or ","."""
    text = column.astype(str).str.strip()
    if decimal == ",":
        text = text.str.replace(",", ".", regex=False)
    return pd.to_numeric(text.where(column.notna()), errors="coerce").to_numpy(dtype=float)

def find_column(columns, role: str) -> str | None:
    """The first column whose header names ``role`` (a key of :data:`COLUMN_RULES`), None when none does."""
    return next((c for c in columns if COLUMN_RULES[role](str(c).strip().lower())), None)


def release_factor(values: np.ndarray, release_scale: str) -> tuple[float, str, str]:
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


def column_time_unit(column: str, given: str, path: Path) -> tuple[str, str]:
    """(unit, note): the unit the time column's header names, checked against the one given."""
    named = next((UNIT_WORDS[w] for w in re.findall(r"[a-z]+", str(column).lower()) if w in UNIT_WORDS), None)
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
