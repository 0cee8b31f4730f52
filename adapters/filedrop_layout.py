"""CSV layouts the file-drop adapter writes (worklists) and reads (results).

Worklist (written to the outbox, one row per vessel)::

    key,vessel,drug_logp,drug_loading_pct,...    <- "key", "vessel", then the recipe keys, sorted
    F-3a9c...,1,2.1,10,...

Dissolution result (a dissolution tester's export; one row per reading)::

    key,replicate,time_hours,dissolved_pct[,failure_reason]
    F-3a9c...,1,1,4.2
    F-3a9c...,1,24,21.7

Synthesis result (one row per batch)::

    key,size_nm,pdi,zeta_mv,encapsulation_efficiency_pct,actual_drug_loading_pct[,failure_reason]

(``actual_drug_loading_pct`` is the measured loading; a file from before it was
renamed, with ``drug_loading_pct`` instead, is read as well.)

Rules: UTF-8 (a BOM is fine), comma-separated, a header row naming at least
the required columns (order free, extra columns ignored); ``replicate`` is an
integer >= 1; ``time_hours`` a number >= 0, not repeated within a replicate;
``dissolved_pct`` a number from -10 to 150; characterization numbers finite
(size_nm > 0). A non-empty ``failure_reason`` marks the key FAILED; its other
cells may then be empty.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Any

from nanoloop.loop.lab.instruments import RENAMED_FIELDS, Characterization, JobResult, JobState, ReleaseCurve

DISSOLUTION_COLUMNS = ("key", "replicate", "time_hours", "dissolved_pct")
SYNTHESIS_COLUMNS = ("key", *Characterization.fields())
FAILURE_COLUMN = "failure_reason"
DISSOLVED_PCT_RANGE = (-10.0, 150.0)


class LayoutError(ValueError):
    """A result file does not follow the documented layout; the message says where."""


@dataclass
class ParsedFile:
    """The results in one valid result file, by key."""

    results: dict[str, JobResult] = field(default_factory=dict)


def worklist_csv(rows: list[tuple[str, dict[str, Any]]]) -> str:
    """CSV text of a worklist: (key, recipe) per vessel, vessels numbered from 1."""
    recipe_keys = sorted({k for _, recipe in rows for k in recipe})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["key", "vessel", *recipe_keys])
    for vessel, (key, recipe) in enumerate(rows, start=1):
        writer.writerow([key, vessel, *(recipe.get(k, "") for k in recipe_keys)])
    return buffer.getvalue()


def worklist_keys(text: str) -> list[str]:
    """Keys listed in a worklist (or cancel list) CSV."""
    return [row["key"] for row in csv.DictReader(io.StringIO(text)) if row.get("key")]


def cell_number(row: dict[str, str], column: str, line: int) -> float:
    """The number in ``row``'s ``column`` (CSV line ``line``); LayoutError naming the line and column otherwise."""
    raw = (row.get(column) or "").strip()
    try:
        value = float(raw)
    except ValueError:
        raise LayoutError(f"line {line}: {column} = {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise LayoutError(f"line {line}: {column} = {raw!r} is not a finite number")
    return value


def csv_rows(data: bytes, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of a UTF-8 CSV export that has the ``required`` columns; LayoutError saying what is wrong otherwise."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LayoutError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if "\x00" in text:
        raise LayoutError("contains NUL bytes: not a CSV text file")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    header = [RENAMED_FIELDS.get(h, h) if RENAMED_FIELDS.get(h) in required and RENAMED_FIELDS[h] not in header else h for h in header]
    missing = [c for c in required if c not in header]
    if missing:
        raise LayoutError(f"missing column(s) {missing}; header is {header}")
    reader.fieldnames = header
    rows = []
    try:
        for row in reader:
            if None in row:
                raise LayoutError(f"line {reader.line_num}: more cells than header columns")
            if all(not (v or "").strip() for v in row.values()):
                continue
            rows.append((reader.line_num, {k: (v or "").strip() for k, v in row.items()}))
    except csv.Error as exc:
        raise LayoutError(f"line {reader.line_num}: {exc}") from None
    if not rows:
        raise LayoutError("no data rows")
    for line, row in rows:
        if not row["key"]:
            raise LayoutError(f"line {line}: empty key")
    return rows


def parse_dissolution(data: bytes, checksum: str) -> ParsedFile:
    """Parse and validate a dissolution export; raises LayoutError naming the first problem."""
    readings: dict[str, dict[int, dict[float, float]]] = {}
    failures: dict[str, str] = {}
    low, high = DISSOLVED_PCT_RANGE
    for line, row in csv_rows(data, DISSOLUTION_COLUMNS):
        key = row["key"]
        if row.get(FAILURE_COLUMN):
            failures.setdefault(key, row[FAILURE_COLUMN])
            continue
        replicate = cell_number(row, "replicate", line)
        if replicate != int(replicate) or replicate < 1:
            raise LayoutError(f"line {line}: replicate = {row['replicate']!r} must be an integer >= 1")
        time_h = cell_number(row, "time_hours", line)
        if time_h < 0:
            raise LayoutError(f"line {line}: time_hours = {time_h:g} is negative")
        pct = cell_number(row, "dissolved_pct", line)
        if not low <= pct <= high:
            raise LayoutError(f"line {line}: dissolved_pct = {pct:g} is outside [{low:g}, {high:g}]")
        series = readings.setdefault(key, {}).setdefault(int(replicate), {})
        if time_h in series:
            raise LayoutError(f"line {line}: key {key!r} replicate {int(replicate)} has time {time_h:g} h twice")
        series[time_h] = pct
    parsed = ParsedFile()
    for key in dict.fromkeys([*readings, *failures]):
        if key in failures:
            parsed.results[key] = JobResult(key, JobState.FAILED, reason=failures[key], raw_checksum=checksum)
            continue
        curves = tuple(
            ReleaseCurve(rep, tuple(sorted(series)), tuple(series[t] for t in sorted(series)))
            for rep, series in sorted(readings[key].items())
        )
        parsed.results[key] = JobResult(key, JobState.DONE, curves=curves, raw_checksum=checksum)
    return parsed


def parse_synthesis(data: bytes, checksum: str) -> ParsedFile:
    """Parse and validate a synthesis export; raises LayoutError naming the first problem."""
    parsed = ParsedFile()
    for line, row in csv_rows(data, SYNTHESIS_COLUMNS):
        key = row["key"]
        if key in parsed.results:
            raise LayoutError(f"line {line}: key {key!r} appears twice")
        if row.get(FAILURE_COLUMN):
            parsed.results[key] = JobResult(key, JobState.FAILED, reason=row[FAILURE_COLUMN], raw_checksum=checksum)
            continue
        values = {c: cell_number(row, c, line) for c in SYNTHESIS_COLUMNS[1:]}
        if values["size_nm"] <= 0:
            raise LayoutError(f"line {line}: size_nm = {values['size_nm']:g} must be > 0")
        parsed.results[key] = JobResult(
            key, JobState.DONE, characterization=Characterization(**values), raw_checksum=checksum
        )
    return parsed


PARSERS = {"dissolution": parse_dissolution, "synthesis": parse_synthesis}
