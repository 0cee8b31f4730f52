"""Plausibility checks of a JobResult before it is trusted.

Instruments deliver NaN readings, readings far above 100 %, truncated curves
and plain garbage (the simulated lab does all of these on demand). This module
only *reports* problems; what to do about them (drop a reading, drop a
replicate, re-measure) is the caller's policy.
"""

from __future__ import annotations

import math

from nanoloop.adapters.protocol import JobResult, JobState

#: readings above this (in %) are implausible for a cumulative release
MAX_PLAUSIBLE_PCT = 110.0
#: readings below this (in %) are implausible (assay noise allows a little below 0)
MIN_PLAUSIBLE_PCT = -5.0


def result_problems(result: JobResult, expected_times_hours: tuple[float, ...] | None = None) -> list[str]:
    """Human-readable problems of one result; empty if it looks sound.

    Args:
        result: what an instrument's ``collect`` returned.
        expected_times_hours: the sampling plan; a curve lacking any of these
            times is reported as partial.
    """
    problems: list[str] = []
    if result.state is JobState.FAILED:
        return [] if result.reason else ["failed without a reason"]
    if result.state is not JobState.DONE:
        return [f"state {result.state.value} is not a finished result"]
    if result.characterization is None and not result.curves:
        return ["DONE without a characterization or curves"]
    if result.characterization is not None:
        c = result.characterization
        checks = {
            "size_nm": 1.0 <= c.size_nm <= 10_000.0,
            "pdi": 0.0 <= c.pdi <= 1.0,
            "zeta_mv": -200.0 <= c.zeta_mv <= 200.0,
            "encapsulation_efficiency_pct": 0.0 <= c.encapsulation_efficiency_pct <= 100.0,
            "drug_loading_pct": 0.0 <= c.drug_loading_pct <= 100.0,
        }
        problems += [f"{name} = {getattr(c, name)!r} is implausible" for name, ok in checks.items() if not ok]
    replicates = [c.replicate for c in result.curves]
    if len(set(replicates)) != len(replicates):
        problems.append(f"replicate numbers repeat: {replicates}")
    for curve in result.curves:
        label = f"replicate {curve.replicate}"
        if curve.replicate < 1:
            problems.append(f"{label}: replicate numbers start at 1")
        if len(curve.times_hours) != len(curve.release_pct):
            problems.append(f"{label}: {len(curve.times_hours)} times but {len(curve.release_pct)} readings")
            continue
        if not curve.times_hours:
            problems.append(f"{label}: no readings")
            continue
        times = curve.times_hours
        if any(not math.isfinite(t) or t < 0 for t in times) or any(b <= a for a, b in zip(times, times[1:])):
            problems.append(f"{label}: times must be finite, >= 0 and strictly increasing")
        nan = sum(1 for r in curve.release_pct if not math.isfinite(r))
        if nan:
            problems.append(f"{label}: {nan} reading(s) are NaN or infinite")
        high = [r for r in curve.release_pct if math.isfinite(r) and r > MAX_PLAUSIBLE_PCT]
        if high:
            problems.append(f"{label}: {len(high)} reading(s) above {MAX_PLAUSIBLE_PCT:g} % (max {max(high):g})")
        low = [r for r in curve.release_pct if math.isfinite(r) and r < MIN_PLAUSIBLE_PCT]
        if low:
            problems.append(f"{label}: {len(low)} reading(s) below {MIN_PLAUSIBLE_PCT:g} %")
        if expected_times_hours is not None:
            missing = [t for t in expected_times_hours if t not in set(times)]
            if missing:
                problems.append(f"{label}: partial curve, missing times {missing} h")
    return problems
