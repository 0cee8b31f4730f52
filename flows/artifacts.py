"""Round artifacts in the Prefect UI: the batch (predicted against measured), a summary, progress."""

from __future__ import annotations

import re

import numpy as np
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, create_table_artifact

from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.store.measurements import measured_mean_curves, measured_objective


def artifact_key(campaign: str, what: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{campaign}-{what}".lower()).strip("-")


def batch_rows(campaign: Campaign, round_: int) -> list[dict]:
    """One row per formulation of the round: status and its reason, predicted objective, measured f2, release at 24 h."""
    from nanoloop.loop.design.objective import Objective

    name = Objective.from_config(campaign.config).name
    frame = campaign.formulations()
    frame = frame[frame["round"] == round_]
    reasons = campaign.ledger.read("events").sort_values("time").groupby("formulation_id")["reason"].last()
    scores = measured_objective(campaign.ledger, campaign.config.target)
    means = measured_mean_curves(campaign.ledger)
    rows = []
    for form in frame.itertuples():
        curve = means.get(form.formulation_id)
        predicted_24h = None
        if form.predicted_times_hours is not None:
            predicted_24h = round(float(np.interp(24.0, form.predicted_times_hours, form.predicted_release_pct)), 1)
        rows.append({
            "formulation": form.formulation_id,
            "status": form.status,
            "reason": reasons.get(form.formulation_id, "") or "",
            f"predicted {name}": None if np.isnan(form.predicted_objective) else round(float(form.predicted_objective), 1),
            "measured f2": round(float(scores[form.formulation_id]), 1) if form.formulation_id in scores else None,
            "predicted % at 24 h": predicted_24h,
            "measured % at 24 h": round(float(np.interp(24.0, curve.index, curve.to_numpy())), 1) if curve is not None else None,
        })
    return rows


def publish_round_artifacts(campaign: Campaign, status: dict, round_: int) -> None:
    """Table, markdown summary and progress artifacts for a finished round."""
    name = campaign.config.name
    create_table_artifact(batch_rows(campaign, round_), key=artifact_key(name, f"round-{round_}-batch"), description=f"Round {round_}: predicted against measured")
    summary = next((r for r in status["rounds"] if r["round"] == round_), {})

    def fmt(value, spec):
        return "-" if value is None else format(value, spec)

    best = status.get("best") or {}
    lines = [
        f"# {name}: round {round_}",
        "",
        f"- measured {summary.get('measured', 0)}, failed {summary.get('failed', 0)} of {summary.get('proposed', 0)} proposed",
        f"- prospective error of the model's predictions: MAE {fmt(summary.get('prospective_mae'), '.1f')} % released",
        f"- 90 % interval coverage: {fmt(summary.get('coverage_90'), '.0%')}",
        f"- best f2 to the target so far: {fmt(summary.get('best_f2'), '.1f')}" + (f" ({best['formulation_id']})" if best else ""),
    ]
    create_markdown_artifact("\n".join(lines), key=artifact_key(name, "round-summary"), description=f"Round {round_} summary")
    finished = sum(1 for r in status["rounds"] if r["awaiting_approval"] == 0 and r["in_flight"] == 0)
    create_progress_artifact(100.0 * min(finished / campaign.config.rounds, 1.0), key=artifact_key(name, "progress"), description="rounds finished / planned")
