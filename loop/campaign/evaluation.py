"""How the campaign is doing, read from the ledger: per-round counts, the model's
prospective error (predicted before measuring vs measured), and the best formulation.
Formulations imported from the lab's files (round -1) are counted apart ("imported"),
never as a designed round.

``campaign_status`` is what ``nanoloop status --json`` prints and what the
dashboard reads.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from nanoloop.loop.design.space import recipe_of
from nanoloop.loop.design.target import TargetProfile
from nanoloop.loop.store.ledger import Ledger, latest_status
from nanoloop.loop.store.measurements import measured_mean_curves, measured_objective
from nanoloop.loop.models.base import Z90
from nanoloop.loop.store.status import ACCEPTED, IN_FLIGHT, Status, status_of

def failure_reasons(ledger: Ledger) -> pd.DataFrame:
    """Failed formulations with their reason: formulation_id, round, stage (synthesis, dissolution, ...), reason.

    The reason is the one recorded on the formulation's ``failed`` event, as the instrument or check gave it.
    """
    events = ledger.read("events")
    states = latest_status(ledger)
    failed = events[(events["status"] == Status.FAILED) & events["formulation_id"].map(states).eq(Status.FAILED)]
    failed = failed.sort_values("time").groupby("formulation_id").tail(1)
    reasons = failed["reason"].fillna("").replace("", "failed (no reason recorded)")
    stage = reasons.str.extract(r"^([a-z-]+):", expand=False).fillna("unknown")
    return pd.DataFrame({
        "formulation_id": failed["formulation_id"].to_numpy(), "round": failed["round"].astype(int).to_numpy(),
        "stage": stage.to_numpy(), "reason": reasons.to_numpy(),
    })


def prospective_errors(ledger: Ledger) -> pd.DataFrame:
    """Per measured point of model-proposed formulations: predicted (stored at proposal) vs measured.

    Columns: formulation_id, round, time_hours, measured_pct, predicted_pct, std_pct, inside_90.
    """
    forms = ledger.read("formulations")
    forms = forms[forms["model_version"] != ""]
    means = measured_mean_curves(ledger)
    rows = []
    for form in forms.itertuples():
        curve = means.get(form.formulation_id)
        if curve is None or form.predicted_times_hours is None:
            continue
        grid = np.asarray(form.predicted_times_hours, float)
        times = curve.index.to_numpy(float)
        predicted = np.interp(times, grid, np.asarray(form.predicted_release_pct, float))
        std = np.interp(times, grid, np.asarray(form.predicted_std_pct, float))
        measured = curve.to_numpy(float)
        for t, m, p, s in zip(times, measured, predicted, std):
            rows.append((form.formulation_id, int(form.round), t, m, p, s, abs(m - p) <= Z90 * s))
    return pd.DataFrame(rows, columns=["formulation_id", "round", "time_hours", "measured_pct", "predicted_pct", "std_pct", "inside_90"])


def campaign_status(ledger: Ledger, target: TargetProfile, campaign: str) -> dict:
    """One JSON-ready object: campaign, rounds (counts, best f2 so far, prospective error), best, awaiting approval."""
    forms = ledger.read("formulations")
    status = latest_status(ledger)
    forms["status"] = status_of(forms["formulation_id"], status)
    scores = measured_objective(ledger, target)
    errors = prospective_errors(ledger)
    rounds, best_so_far = [], None
    for round_, group in forms[forms["round"] >= 0].groupby("round"):  # round -1: imported, shown apart
        ids = group["formulation_id"]
        round_scores = scores.reindex(ids).dropna()
        if len(round_scores):
            best_so_far = max(best_so_far or -np.inf, float(round_scores.max()))
        err = errors[errors["round"] == round_]
        rounds.append({
            "round": int(round_),
            "proposed": int((~group["origin"].str.startswith("edit-of:")).sum()),
            "approved": int(group["status"].isin(ACCEPTED).sum()),
            "rejected": int((group["status"] == Status.REJECTED).sum()),
            "measured": int((group["status"] == Status.MEASURED).sum()),
            "failed": int((group["status"] == Status.FAILED).sum()),
            "in_flight": int(group["status"].isin(IN_FLIGHT).sum()),
            "awaiting_approval": int((group["status"] == Status.PROPOSED).sum()),
            "best_f2_round": float(round_scores.max()) if len(round_scores) else None,
            "best_f2": best_so_far,
            "prospective_mae": float(np.mean(np.abs(err["measured_pct"] - err["predicted_pct"]))) if len(err) else None,
            "coverage_90": float(err["inside_90"].mean()) if len(err) else None,
            "model_version": next((v for v in group["model_version"] if v), None),
            **_proposed_by(group),
        })
    best = None
    if len(scores):
        fid = scores.idxmax()
        row = forms.set_index("formulation_id").loc[fid]
        best = {"formulation_id": fid, "f2": float(scores[fid]), "round": int(row["round"]), "parameters": recipe_of(row["parameters_json"])}
    failures = failure_reasons(ledger)
    events = ledger.read("events")
    latest_reason = events.assign(_s=events["formulation_id"].map(status)).query("status == _s").sort_values("time").groupby("formulation_id")["reason"].last()
    stored = events[events["status"] == Status.MEASURED].sort_values("time").groupby("formulation_id")[["measured_objective", "measured_f2"]].last()
    per_formulation = [
        {"formulation_id": f.formulation_id, "round": int(f.round), "status": f.status, "reason": latest_reason.get(f.formulation_id, "") or "",
         "measured_objective": _or_none(stored["measured_objective"].get(f.formulation_id)),
         "measured_f2": _or_none(stored["measured_f2"].get(f.formulation_id, scores.get(f.formulation_id))),
         "predicted_objective": _or_none(f.predicted_objective)}
        for f in forms.sort_values(["round", "formulation_id"]).itertuples()
    ]
    from nanoloop.loop.store.importing import imported_summary

    return {
        "campaign": campaign,
        "store": ledger.location,
        "imported": imported_summary(forms, scores),
        "target": {"times_hours": list(target.times_hours), "release_pct": list(target.release_pct)},
        "rounds": rounds,
        "best": best,
        "awaiting_approval": forms.loc[forms["status"] == Status.PROPOSED, "formulation_id"].tolist(),
        "failures": {
            "by_reason": {str(k): int(v) for k, v in failures["reason"].value_counts().items()},
            "formulations": failures.to_dict("records"),
        },
        "formulations": per_formulation,
    }


def _proposed_by(group: pd.DataFrame) -> dict:
    """Which recommender proposed a round, and how the ``[prior]`` trained its model (from the stored provenance)."""
    made = group[~group["origin"].str.startswith("edit-of:")]
    try:
        params = json.loads(made["acquisition_params_json"].iloc[0]) if len(made) else {}
    except (TypeError, ValueError):
        params = {}
    params = params if isinstance(params, dict) else {}
    prior = params.get("prior") if isinstance(params.get("prior"), dict) else {}
    return {"recommender": params.get("recommender"), "prior_use": prior.get("use"), "prior_formulations": prior.get("prior_formulations")}


def _or_none(value) -> float | None:
    """A float, or None for a missing value (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return None if np.isnan(value) else value
