"""Measured release curves from the ledger: the mean over replicates, its kinetic summary, and its objective.

Every view that shows a measured curve, an f2 or a measured objective reads it here.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from nanoloop.loop.design.objective import Objective, measured_f2
from nanoloop.loop.design.target import TargetProfile
from nanoloop.loop.store.ledger import Ledger
from nanoloop.loop.store.status import Status


def mean_curves(curves: pd.DataFrame) -> dict[str, pd.Series]:
    """Mean over replicates of each curve in rows like the ledger's ``curves`` table: id -> Series (hours -> %)."""
    if curves.empty:
        return {}
    mean = curves.groupby(["formulation_id", "time_hours"])["release_pct"].mean()
    return {fid: group.droplevel(0) for fid, group in mean.groupby(level=0)}


def measured_mean_curves(ledger: Ledger) -> dict[str, pd.Series]:
    """Mean over replicates of each measured curve in the ledger: id -> Series (index time in hours, release in %)."""
    return mean_curves(ledger.read("curves"))


def measured_objective(ledger: Ledger, target: TargetProfile) -> pd.Series:
    """f2 to the target of every measured formulation's mean curve (index: formulation id)."""
    return pd.Series(
        {fid: measured_f2(c.index.to_numpy(float), c.to_numpy(float), target) for fid, c in measured_mean_curves(ledger).items()},
        dtype=float,
    )


def kinetics_row(fid: str, curve_rows: list[dict]) -> dict:
    """The kinetic summary (best law, t50, t80, burst, MDT) of the mean of a formulation's replicates."""
    from nanoloop.loop.kinetics.summary import summarize_curve  # fitting loads scipy.optimize: only when curves are ingested

    mean = mean_curves(pd.DataFrame(curve_rows))[fid]
    summary = summarize_curve(mean.index.to_numpy(float), mean.to_numpy(float))
    return {
        "formulation_id": fid, "best_model": summary.get("best_model") or "", "params_json": json.dumps(summary.get("best_params") or {}),
        **{k: _number(summary.get(k)) for k in ("r2", "t50_hours", "t80_hours", "burst_24h_pct", "mdt_hours")},
    }


def _number(value) -> float:
    return float(value) if value is not None else np.nan


def measured_objectives_from(ledger: Ledger, config) -> pd.DataFrame:
    """Objective, f2, feasibility and round of every measured formulation (index: formulation id).

    The objective and f2 stored on the ``measured`` event are used; a ledger
    written before they were stored gets them computed from its curves.
    """
    objective = Objective.from_config(config)
    chars = ledger.read("characterization") if objective.characterization_constraints else None
    frame = objective.measured(measured_mean_curves(ledger), chars)
    events = ledger.read("events")
    stored = events[(events["status"] == Status.MEASURED) & events["measured_objective"].notna()].groupby("formulation_id")[["measured_objective", "measured_f2"]].last()
    known = frame.index.intersection(stored.index)
    frame.loc[known, "objective"] = stored.loc[known, "measured_objective"].to_numpy(float)
    frame.loc[known, "f2"] = stored.loc[known, "measured_f2"].to_numpy(float)
    rounds = ledger.read("formulations").set_index("formulation_id")["round"]
    return frame.assign(round=rounds.reindex(frame.index).fillna(-1).astype(int).to_numpy())


def measured_scores(ledger: Ledger, config, curve_rows: list[dict]) -> dict[str, tuple[float, float]]:
    """id -> (objective, f2 to the target) of each formulation's mean curve in new curve rows (ledger ``curves`` rows).

    The campaign's objective (``config``), with its characterization constraints read from the ledger;
    stored on the ``measured`` events when the curves are ingested or imported.
    """
    if not curve_rows:
        return {}
    objective = Objective.from_config(config)
    chars = ledger.read("characterization") if objective.characterization_constraints else None
    scores = objective.measured(mean_curves(pd.DataFrame(curve_rows)), chars)
    return {fid: (float(r.objective), float(r.f2)) for fid, r in scores.iterrows()}
