"""Which column of a lab's sheet is what: design variables, characterization, times and release.

A header that names a space variable (case and spaces ignored) is that variable; a mapping
("Polymer MW (kDa)" -> polymer_mw_kda, from ``--map`` or a mapping file) says the rest. In a
long sheet the time and release columns are found as the kinetics reader finds them
(:mod:`nanoloop.loop.kinetics.reading`); in a wide sheet each header naming a time
(``0.5 h``, ``24 h``, ``7 d``, ``30 min``, ``day 7``, ``t=1``) is a release column at that time.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from nanoloop.loop.errors import InputError
from nanoloop.loop.lab.instruments import Characterization
from nanoloop.loop.io.sheets import COLUMN_RULES, TIME_UNITS_IN_HOURS, UNIT_WORDS, column_time_unit, find_column, read_table
from nanoloop.loop.design.space import DesignSpace

_TIME_HEADER = re.compile(
    r"^\s*(?:(?P<prefix>t|time|day|days|d|h|hour)\s*[=:]?\s*)?(?P<value>\d+(?:[.,]\d+)?)\s*"
    r"(?:\(?\s*(?P<unit>min|mins|minutes?|h|hrs?|hours?|d|days?)\s*\)?)?\s*$", re.I)



def header_key(text) -> str:
    """A header as it is matched: lower case, spaces and underscores as one space."""
    return re.sub(r"[\s_]+", " ", str(text).strip().lower())


def read_mapping(path) -> dict[str, str]:
    """A column mapping file: TOML (``"Polymer MW (kDa)" = "polymer_mw_kda"``, top level or under ``[map]``)
    or CSV with two columns (file header, variable)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such mapping file")
    if path.suffix.lower() == ".toml":
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise InputError(f"{path}: not a readable TOML mapping ({err})") from None
        data = data.get("map", data)
        bad = [k for k, v in data.items() if not isinstance(v, str)]
        if bad:
            raise InputError(f"{path}: mapping {bad[0]!r} must name a variable as a string")
        return dict(data)
    frame, _, _, rows = read_table(path)
    if frame.shape[1] != 2:
        raise InputError(f"{path}: a mapping CSV has two columns (file header, variable), not {frame.shape[1]}")
    mapping = {}
    for label, (header, variable) in zip(rows, frame.itertuples(index=False)):
        if pd.isna(header) or pd.isna(variable):
            raise InputError(f"{path} {label}: a header and a variable are both needed")
        mapping[str(header).strip()] = str(variable).strip()
    return mapping


def parse_assignments(texts, what: str = "--map") -> dict[str, str]:
    """``["A=b", ...]`` -> {"A": "b"}; the last ``=`` splits (headers may hold one: ``t=1``)."""
    out = {}
    for text in texts or []:
        left, sep, right = str(text).rpartition("=")
        if not sep or not left.strip() or not right.strip():
            raise InputError(f"{what} {text!r}: expected NAME=VALUE")
        out[left.strip()] = right.strip()
    return out


def _time_header(column: str) -> tuple[float, str | None] | None:
    """(number, unit or None) when a wide header names a sampling time, else None."""
    match = _TIME_HEADER.match(str(column))
    if not match:
        return None
    prefix = (match["prefix"] or "").lower()
    unit = match["unit"] or (prefix if prefix in ("day", "days", "d", "h", "hour") else None)
    return float(match["value"].replace(",", ".")), (UNIT_WORDS.get(unit.lower()) if unit else None)


@dataclass
class SheetColumns:
    """Which columns of a lab's sheet hold what (from :func:`assign_columns` and :func:`layout_columns`)."""

    variables: dict[str, str]  # file column -> space variable
    characterization: dict[str, str]  # file column -> field
    times: dict[str, float]  # wide: file column -> hours
    time: str | None = None  # long
    release: str | None = None
    replicate: str | None = None
    sample: str | None = None


def assign_columns(frame: pd.DataFrame, space: DesignSpace, mapping: dict[str, str], path: Path) -> tuple[dict, dict, list[str]]:
    """(column -> variable, column -> characterization field, columns left)."""
    names = {header_key(n): n for n in space.names}
    fields = {header_key(f): f for f in Characterization.fields()}
    wanted = {header_key(k): v for k, v in mapping.items()}
    for header, target in mapping.items():
        if target not in space.names and target not in Characterization.fields():
            raise InputError(f"mapping {header!r} -> {target!r}: {target!r} is neither a variable of the space "
                             f"({', '.join(space.names)}) nor a characterization field ({', '.join(Characterization.fields())})")
    unmatched = [h for h in mapping if header_key(h) not in {header_key(c) for c in frame.columns}]
    if unmatched:
        raise InputError(f"{path.name}: mapped column {unmatched[0]!r} is not in the file "
                         f"(columns: {', '.join(map(str, frame.columns))})")
    variables, chars, rest = {}, {}, []
    for column in frame.columns:
        target = wanted.get(header_key(column)) or names.get(header_key(column)) or fields.get(header_key(column))
        if target in space.names:
            if target in variables.values():
                raise InputError(f"{path.name}: two columns are read as {target!r}; map only one")
            variables[column] = target
        elif target in Characterization.fields():
            chars[column] = target
        else:
            rest.append(column)
    return variables, chars, rest


def layout_columns(frame, rest: list[str], layout: str, time_unit: str, path: Path, notes: list[str]) -> SheetColumns:
    """Which of the remaining columns hold times and release, by layout."""
    find = {role: find_column(rest, role) for role in COLUMN_RULES}
    times = {c: _time_header(c) for c in rest}
    times = {c: t for c, t in times.items() if t is not None}
    if layout == "auto":
        layout = "long" if find["time"] is not None and find["release"] is not None else "wide"
    if layout == "long":
        if find["time"] is None or find["release"] is None:
            raise InputError(f"{path.name}: a long sheet needs a time and a release column "
                             f"(columns: {', '.join(map(str, frame.columns))})")
        unit, unit_note = column_time_unit(find["time"], time_unit, path)
        notes.append(f"long layout: time {find['time']!r}, release {find['release']!r}"
                     + (f", replicates by {find['replicate']!r}" if find["replicate"] else "")
                     + (f", samples by {find['curve']!r}" if find["curve"] else "") + f"; {unit_note}")
        return SheetColumns({}, {}, {}, find["time"], find["release"], find["replicate"], find["curve"])
    if len(times) < 2:
        raise InputError(f"{path.name}: no time columns found: a wide sheet has one release column per time, headed like "
                         f"'1 h', '24 h', '7 d' or 't=1' (columns: {', '.join(map(str, frame.columns))})")
    named = {u for _, u in times.values() if u}
    if time_unit != "auto":
        if time_unit not in TIME_UNITS_IN_HOURS:
            raise InputError(f"time unit must be one of auto, {', '.join(TIME_UNITS_IN_HOURS)}, not {time_unit!r}")
        clash = [c for c, (_, u) in times.items() if u and u != time_unit]
        if clash:
            raise InputError(f"{path.name}: the time column {clash[0]!r} names its unit but --time-unit {time_unit} was given; "
                             "drop the option or rename the column")
    default = time_unit if time_unit != "auto" else "h"
    hours = {c: v * TIME_UNITS_IN_HOURS[u or default] for c, (v, u) in times.items()}
    seen: dict[float, str] = {}
    for column, h in hours.items():
        if h in seen:
            raise InputError(f"{path.name}: columns {seen[h]!r} and {column!r} are the same time ({h:g} h); keep one")
        seen[h] = column
    said = (f"time unit(s) from the headers: {', '.join(sorted(named))}" if named else
            f"time in {default} ({'--time-unit' if time_unit != 'auto' else 'the headers name no unit; --time-unit to change'})")
    notes.append(f"wide layout: {len(hours)} time columns ({', '.join(map(str, hours))}); {said}, converted to h"
                 + (f"; samples by {find['curve']!r}" if find["curve"] else ""))
    return SheetColumns({}, {}, hours, sample=find["curve"])
