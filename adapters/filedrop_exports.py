"""Dissolution-tester export layouts for the file-drop adapter (option ``layout``).

``"wide"``: one vessel per column, one row per key and sampling time::

    key,time_hours,vessel_1,vessel_2,vessel_3[,failure_reason]
    F-3a9c,1,4.2,4.0,NA
    F-3a9c,24,21.7,22.5,NA

Vessel columns are named ``vessel_<n>``, ``vessel <n>`` or ``V<n>``; the time is
``time_hours`` or ``time_min``. A cell that is empty, ``NA``, ``N/A``, ``failed``
or ``excluded`` has no reading; a vessel without any reading for a key failed:
it is left out and named in the result's ``reason``. A key whose vessels all
failed, or a row with a ``failure_reason``, is FAILED.

``"uv-absorbance"``: one row per vessel and time with the UV absorbance of the sample::

    key,vessel,time_hours,absorbance[,failure_reason]
    F-3a9c,1,1,0.112

converted to % released with the calibration line and the dose from the config::

    concentration_mg_per_ml = (absorbance - intercept) / slope
    released_pct = concentration_mg_per_ml * medium_volume_ml / dose_mg * 100

An absorbance above ``max_absorbance`` (the top of the calibrated range) is not
extrapolated: the reading is dropped (NaN in the curve) and flagged in the
result's ``reason``. A row with a ``failure_reason`` fails its vessel (or the
whole key when ``vessel`` is empty).

A DONE result's ``reason`` lists what was dropped (failed vessels, flagged
readings); the campaign keeps it on the ``measured`` event.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

from nanoloop.adapters.filedrop_layout import (
    DISSOLVED_PCT_RANGE,
    FAILURE_COLUMN,
    LayoutError,
    ParsedFile,
    cell_number,
    csv_rows,
)
from nanoloop.loop.errors import InputError
from nanoloop.loop.lab.instruments import JobResult, JobState, ReleaseCurve

NO_READING = {"", "na", "n/a", "nan", "failed", "excluded", "-"}
VESSEL_COLUMN = re.compile(r"^(?:vessel[ _-]?|v)(\d+)$", re.IGNORECASE)


def _time_hours(row: dict[str, str], line: int) -> float:
    if row.get("time_hours", "") != "":
        hours = cell_number(row, "time_hours", line)
    else:
        hours = cell_number(row, "time_min", line) / 60.0
    if hours < 0:
        raise LayoutError(f"line {line}: time {hours:g} h is negative")
    return hours


def _check_pct(pct: float, line: int, where: str) -> float:
    low, high = DISSOLVED_PCT_RANGE
    if not low <= pct <= high:
        raise LayoutError(f"line {line}: {where} = {pct:g} % released is outside [{low:g}, {high:g}]")
    return pct


def _results(
    readings: dict[str, dict[int, dict[float, float]]], failed: dict[str, str], vessel_notes: dict[str, list[str]],
    checksum: str,
) -> ParsedFile:
    """Results by key from readings[key][vessel][time] (NaN = dropped reading)."""
    parsed = ParsedFile()
    for key in dict.fromkeys([*readings, *failed]):
        notes = vessel_notes.get(key, [])
        vessels = {v: s for v, s in readings.get(key, {}).items() if any(not math.isnan(x) for x in s.values())}
        for vessel in sorted(set(readings.get(key, {})) - set(vessels)):
            if not any(f"vessel {vessel} " in n for n in notes):
                notes.append(f"vessel {vessel} failed: no readings")
        if key in failed or not vessels:
            reason = failed.get(key) or "; ".join(notes) or "no readings"
            parsed.results[key] = JobResult(key, JobState.FAILED, reason=reason, raw_checksum=checksum)
            continue
        curves = tuple(
            ReleaseCurve(v, tuple(sorted(series)), tuple(series[t] for t in sorted(series)))
            for v, series in sorted(vessels.items())
        )
        parsed.results[key] = JobResult(key, JobState.DONE, curves=curves, reason="; ".join(notes), raw_checksum=checksum)
    return parsed


def parse_wide(data: bytes, checksum: str) -> ParsedFile:
    """Parse a one-vessel-per-column export; raises LayoutError naming the first problem."""
    rows = csv_rows(data, ("key",))
    header = list(rows[0][1])
    vessels = {c: int(m.group(1)) for c in header if (m := VESSEL_COLUMN.match(c))}
    if not vessels:
        raise LayoutError(f"no vessel columns (vessel_1, V1, ...); header is {header}")
    if "time_hours" not in header and "time_min" not in header:
        raise LayoutError(f"missing column 'time_hours' (or 'time_min'); header is {header}")
    readings: dict[str, dict[int, dict[float, float]]] = {}
    failed: dict[str, str] = {}
    for line, row in rows:
        key = row["key"]
        if row.get(FAILURE_COLUMN):
            failed.setdefault(key, row[FAILURE_COLUMN])
            continue
        hours = _time_hours(row, line)
        for column, vessel in vessels.items():
            series = readings.setdefault(key, {}).setdefault(vessel, {})
            if hours in series:
                raise LayoutError(f"line {line}: key {key!r} has time {hours:g} h twice")
            cell = row.get(column, "")
            series[hours] = math.nan if cell.lower() in NO_READING else _check_pct(cell_number(row, column, line), line, column)
    return _results(readings, failed, {}, checksum)


@dataclass(frozen=True)
class UvCalibration:
    """Absorbance = slope * concentration (mg/mL) + intercept, valid up to ``max_absorbance``."""

    slope: float
    intercept: float
    max_absorbance: float
    dose_mg: float
    medium_volume_ml: float

    @classmethod
    def from_options(cls, calibration: Any, dose_mg: Any, medium_volume_ml: Any, name: str) -> UvCalibration:
        if not isinstance(calibration, Mapping) or set(calibration) != {"slope", "intercept", "max_absorbance"}:
            raise InputError(f"{name}: option 'calibration' must be {{ slope = ..., intercept = ..., max_absorbance = ... }} "
                             f"for layout 'uv-absorbance', got {calibration!r}")
        values = {**calibration, "dose_mg": dose_mg, "medium_volume_ml": medium_volume_ml}
        for option, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InputError(f"{name}: option {option!r} must be a number for layout 'uv-absorbance', got {value!r}")
        for option in ("slope", "max_absorbance", "dose_mg", "medium_volume_ml"):
            if values[option] <= 0:
                raise InputError(f"{name}: option {option!r} must be > 0, got {values[option]!r}")
        return cls(**{k: float(v) for k, v in values.items()})

    def released_pct(self, absorbance: float) -> float:
        concentration = (absorbance - self.intercept) / self.slope
        return concentration * self.medium_volume_ml / self.dose_mg * 100.0

    def parse(self, data: bytes, checksum: str) -> ParsedFile:
        """Parse a one-row-per-vessel-and-time absorbance export; raises LayoutError naming the first problem."""
        readings: dict[str, dict[int, dict[float, float]]] = {}
        failed: dict[str, str] = {}
        notes: dict[str, list[str]] = {}
        for line, row in csv_rows(data, ("key", "vessel", "time_hours", "absorbance")):
            key = row["key"]
            if row.get(FAILURE_COLUMN) and not row["vessel"]:
                failed.setdefault(key, row[FAILURE_COLUMN])
                continue
            vessel = cell_number(row, "vessel", line)
            if vessel != int(vessel) or vessel < 1:
                raise LayoutError(f"line {line}: vessel = {row['vessel']!r} must be an integer >= 1")
            series = readings.setdefault(key, {}).setdefault(int(vessel), {})
            if row.get(FAILURE_COLUMN):
                notes.setdefault(key, []).append(f"vessel {int(vessel)} failed: {row[FAILURE_COLUMN]}")
                series.clear()
                continue
            hours = _time_hours(row, line)
            if hours in series:
                raise LayoutError(f"line {line}: key {key!r} vessel {int(vessel)} has time {hours:g} h twice")
            absorbance = cell_number(row, "absorbance", line)
            if absorbance > self.max_absorbance:
                notes.setdefault(key, []).append(
                    f"vessel {int(vessel)} at {hours:g} h: absorbance {absorbance:g} above the calibrated range "
                    f"(max {self.max_absorbance:g}), reading dropped"
                )
                series[hours] = math.nan
                continue
            series[hours] = round(_check_pct(self.released_pct(absorbance), line, "absorbance"), 3)
        for key, vessels in readings.items():  # a vessel marked failed keeps no readings, even ones listed before
            for vessel in [v for v in vessels if any(f"vessel {v} failed" in n for n in notes.get(key, []))]:
                vessels[vessel] = {}
        return _results(readings, failed, notes, checksum)
