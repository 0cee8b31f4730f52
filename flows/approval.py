"""Approval of a proposed batch by a person: a Prefect pause with a form, or the terminal.

The round flow pauses with :class:`BatchApproval` as its input form; the Prefect
UI shows the batch as a table above the form. ``nanoloop approve STORE`` resumes
the paused run through Prefect's API. Where the pause is recorded is the ledger
(``blobs/approval/round-N.json``): the paused run's id, so the terminal and the
dashboard find it; a pause that timed out leaves the batch awaiting approval,
and an approval given then goes straight into the ledger.
"""

from __future__ import annotations

import json
from typing import Any

from prefect.input import RunInput

from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.errors import InputError
from nanoloop.loop.store.status import Status


class BatchApproval(RunInput):
    """The approval form: approve all, reject some (with a reason), or edit a formulation's values."""

    reject: list[str] = []
    reason: str = ""
    edits: dict[str, dict[str, Any]] = {}
    approved_by: str = ""


def batch_markdown(campaign: Campaign, round_: int, problem: str = "") -> str:
    """The batch as markdown for the approval form: per formulation, a heading line and a two-column table.

    The Prefect UI shows the form in a narrow dialog (about 450 px, whatever the
    window's width), so each formulation gets its own table of one row per
    variable (units in the names): nothing is cut off. The heading line gives the
    predicted objective with its 90 % interval, the f2 interval from the calibrated
    predictive distribution and the distance to the measured data (stored with the
    proposal), why it was chosen and, where failures are known, the predicted failure risk.
    """
    from nanoloop.loop.campaign.review import batch_review

    review = batch_review(campaign, round_)
    rows = [r for r in review["formulations"] if r["status"] == Status.PROPOSED]
    stored = campaign.formulations().set_index("formulation_id")
    name = review["objective"]
    lines = [f"### Round {round_}: {len(rows)} formulations await approval", "", f"Objective: {review['objective_description']}.", ""]
    for i, r in enumerate(rows, 1):
        p = r["predicted"]
        if p["objective"] is None:
            bits = [r["acquisition"]["why"]]  # the initial design: no model, no prediction
        else:
            bits = [f"predicted {name} **{p['objective']:.1f}** (90 %: {p['objective_low_90']:.0f} to {p['objective_high_90']:.0f})",
                    f"chosen to {r['acquisition']['reason']}"]
        notes = _proposal_notes(stored.loc[r["formulation_id"]]) if r["formulation_id"] in stored.index else {}
        if "f2_lower_90" in notes:
            bits.append(f"calibrated f2 90 %: {notes['f2_lower_90']:.0f} to {notes['f2_upper_90']:.0f}")
        if "distance_to_data" in notes:
            bits.append(f"distance to data {notes['distance_to_data']:.2f}" + (" ⚠ outside the measured data" if notes.get("outside_measured_data") else ""))
        if r["failure_risk"] is not None:
            bits.append(f"failure risk {r['failure_risk']:.0%}" + (" ⚠" if r["warnings"] else ""))
        lines += [f"**#{i} `{r['formulation_id']}`**: " + ", ".join(bits), "", "| variable | value |", "|---|---|"]
        lines += [f"| {k} | {v if isinstance(v, str) else format(v, '.3g')} |" for k, v in r["recipe"].items()]
        lines.append("")
    lines += ["Submit as is to approve all; list ids under `reject` (with a `reason`) or give `edits` as {id: {variable: value}}. "
              "`nanoloop batch STORE` shows the predicted release at each target time and the nearest measured formulation."]
    if problem:
        lines = [f"**The last answer was not applied: {problem}**", ""] + lines
    return "\n".join(lines)


def _proposal_notes(form) -> dict:
    """The per-proposal notes stored with the acquisition parameters (f2 interval, distance to data); {} if none."""
    try:
        notes = json.loads(form.get("acquisition_params_json") or "{}")
    except (TypeError, ValueError):
        return {}
    return notes if isinstance(notes, dict) else {}


def pause_record_name(round_: int) -> str:
    return f"approval/round-{round_}.json"


def record_pause(campaign: Campaign, round_: int, flow_run_id: str) -> None:
    campaign.ledger.write_blob(pause_record_name(round_), json.dumps({"round": round_, "flow_run_id": flow_run_id}).encode())


def apply_approval(campaign: Campaign, round_: int, answer: dict) -> list[str]:
    """Apply an approval answer to the ledger (validated); returns the approved ids."""
    reason = answer.get("reason") or "rejected by reviewer"
    return campaign.approve(round_, rejected={fid: reason for fid in answer.get("reject", [])}, edits=answer.get("edits") or {},
                            by=answer.get("approved_by") or "")


def approve_from_terminal(campaign: Campaign, reject: list[str], reason: str, edits: dict | None = None, by: str = "") -> str:
    """Approve the batch awaiting approval: resume its paused flow run, or write to the ledger.

    The answer is validated against the ledger and the design space before
    anything is resumed or written (a bad id or edit raises InputError).
    ``by`` names who approved (kept on the approval events). Returns what was
    done, for the user.
    """
    round_ = campaign.current_round()
    waiting = campaign.awaiting_approval(round_)
    if not waiting:
        raise InputError(f"campaign {campaign.config.name}: no batch awaits approval")
    reason_text = reason or "rejected by reviewer"
    campaign.check_approval(round_, {fid: reason_text for fid in reject}, edits or {})
    answer = {"reject": list(reject), "reason": reason, "edits": edits or {}, "approved_by": by}
    record = campaign.ledger.read_blob(pause_record_name(round_))
    if record is not None:
        from uuid import UUID

        from prefect.exceptions import FlowPauseTimeout, NotPausedError, ObjectNotFound
        from prefect.flow_runs import resume_flow_run

        flow_run_id = json.loads(record)["flow_run_id"]
        try:
            resume_flow_run(UUID(flow_run_id), run_input=answer)
            return f"resumed paused flow run {flow_run_id} for round {round_}"
        except (NotPausedError, FlowPauseTimeout, ObjectNotFound, RuntimeError):
            pass  # the pause timed out or its server is gone: the ledger takes the answer
    approved = apply_approval(campaign, round_, answer)
    return f"approved {len(approved)} formulations of round {round_} in the ledger; the next run dispatches them"
