"""Plausibility checks of a JobResult before it is trusted.

Instruments deliver NaN readings, readings far above 100 %, truncated curves
and plain garbage (the simulated lab does all of these on demand). This module
only *reports* problems, as typed :class:`Problem` values; what to do about them
(drop a reading, drop a replicate, re-measure) is the caller's policy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nanoloop.loop.lab.instruments import CHARACTERIZATION_RANGES, JobResult, JobState

#: readings above this (in %) are implausible for a cumulative release
MAX_PLAUSIBLE_PCT = 110.0
#: readings below this (in %) are implausible (assay noise allows a little below 0)
MIN_PLAUSIBLE_PCT = -5.0


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a result.

    Attributes:
        kind: what is wrong, one of ``state``, ``characterization``,
            ``replicate_numbers``, ``times``, ``nan_reading``, ``too_high``,
            ``too_low``, ``partial``.
        message: the problem in words, naming the replicate or field.
        replicate: the replicate concerned (None for the whole result).
    """

    kind: str
    message: str
    replicate: int | None = None

    def __str__(self) -> str:
        return self.message


def result_problems(result: JobResult, expected_times_hours: tuple[float, ...] | None = None) -> list[Problem]:
    """Problems of one result; empty if it looks sound.

    Args:
        result: what an instrument's ``collect`` returned.
        expected_times_hours: the sampling plan; a curve lacking any of these
            times is reported as partial.
    """
    if result.state is JobState.FAILED:
        return [] if result.reason else [Problem("state", "failed without a reason")]
    if result.state is not JobState.DONE:
        return [Problem("state", f"state {result.state.value} is not a finished result")]
    if result.characterization is None and not result.curves:
        return [Problem("state", "DONE without a characterization or curves")]
    problems: list[Problem] = []
    if result.characterization is not None:
        for name, (low, high) in CHARACTERIZATION_RANGES.items():
            value = getattr(result.characterization, name)
            if not low <= value <= high:
                problems.append(Problem("characterization", f"{name} = {value!r} is implausible"))
    replicates = [c.replicate for c in result.curves]
    if len(set(replicates)) != len(replicates):
        problems.append(Problem("replicate_numbers", f"replicate numbers repeat: {replicates}"))
    for curve in result.curves:
        problems += _curve_problems(curve, expected_times_hours)
    return problems


def _curve_problems(curve, expected_times_hours) -> list[Problem]:
    rep = curve.replicate
    label = f"replicate {rep}"
    if len(curve.times_hours) != len(curve.release_pct):
        return [Problem("times", f"{label}: {len(curve.times_hours)} times but {len(curve.release_pct)} readings", rep)]
    if not curve.times_hours:
        return [Problem("times", f"{label}: no readings", rep)]
    problems = []
    if rep < 1:
        problems.append(Problem("replicate_numbers", f"{label}: replicate numbers start at 1", rep))
    times = curve.times_hours
    if any(not math.isfinite(t) or t < 0 for t in times) or any(b <= a for a, b in zip(times, times[1:])):
        problems.append(Problem("times", f"{label}: times must be finite, >= 0 and strictly increasing", rep))
    nan = sum(1 for r in curve.release_pct if not math.isfinite(r))
    if nan:
        problems.append(Problem("nan_reading", f"{label}: {nan} reading(s) are NaN or infinite", rep))
    high = [r for r in curve.release_pct if math.isfinite(r) and r > MAX_PLAUSIBLE_PCT]
    if high:
        problems.append(Problem("too_high", f"{label}: {len(high)} reading(s) above {MAX_PLAUSIBLE_PCT:g} % (max {max(high):g})", rep))
    low = [r for r in curve.release_pct if math.isfinite(r) and r < MIN_PLAUSIBLE_PCT]
    if low:
        problems.append(Problem("too_low", f"{label}: {len(low)} reading(s) below {MIN_PLAUSIBLE_PCT:g} %", rep))
    if expected_times_hours is not None:
        missing = [t for t in expected_times_hours if t not in set(times)]
        if missing:
            problems.append(Problem("partial", f"{label}: partial curve, missing times {missing} h", rep))
    return problems
