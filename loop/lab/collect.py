"""What comes back from the lab, read by the ingest policy of :class:`~nanoloop.loop.campaign.campaign.Campaign`.

Polling instruments until results arrive, keeping the replicates that pass
the plausibility checks, and the kinetic summary stored with each measured curve.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

import numpy as np
import pandas as pd

from nanoloop.loop.campaign.evaluation import mean_curves
from nanoloop.loop.lab.plausibility import result_problems


def kinetics_row(fid: str, curve_rows: list[dict]) -> dict:
    """The kinetic summary (best law, t50, t80, burst, MDT) of the mean of a formulation's replicates."""
    from nanoloop.loop.kinetics import summarize_curve

    mean = mean_curves(pd.DataFrame(curve_rows))[fid]
    summary = summarize_curve(mean.index.to_numpy(float), mean.to_numpy(float))
    return {
        "formulation_id": fid, "best_model": summary.get("best_model") or "", "params_json": json.dumps(summary.get("best_params") or {}),
        **{k: _number(summary.get(k)) for k in ("r2", "t50_hours", "t80_hours", "burst_24h_pct", "mdt_hours")},
    }


def _number(value) -> float:
    return float(value) if value is not None else np.nan


def usable_curves(result) -> tuple[list, list[str]]:
    """The replicates that pass the plausibility checks, and what was wrong with the others."""
    kept, notes = [], []
    for curve in result.curves:
        problems = [str(p) for p in result_problems(replace(result, curves=(curve,), characterization=None)) if p.kind != "nan_reading"]
        if problems:
            notes.append(f"dropped {'; '.join(problems)}")
        else:
            kept.append(curve)
    return kept, notes


def wait_and_collect(instrument, ids: list[str], wait_s: float, timeout_s: float, poll_s: float = 0.05):
    """Collect what finishes within ``wait_s``; the rest stays in flight for the next poll.

    A result delivered twice is taken once.
    """
    if not ids:
        return []
    deadline = time.monotonic() + wait_s
    results, pending = {}, set(ids)
    while pending:
        for result in instrument.collect(sorted(pending), timeout_s=timeout_s):
            if result.key in pending:
                results[result.key] = result
                pending.discard(result.key)
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(poll_s)
    return [results[k] for k in ids if k in results]
