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

from nanoloop.loop.campaign import Campaign
from nanoloop.loop.errors import InputError


class BatchApproval(RunInput):
    """The approval form: approve all, reject some (with a reason), or edit a formulation's values."""

    reject: list[str] = []
    reason: str = ""
    edits: dict[str, dict[str, Any]] = {}


def batch_markdown(campaign: Campaign, round_: int, problem: str = "") -> str:
    """The batch as a markdown table, for the approval form and the round artifact."""
    frame = campaign.formulations()
    frame = frame[(frame["round"] == round_) & (frame["status"] == "proposed")]
    params = campaign.parameters(frame)
    head = "| id | " + " | ".join(params.columns) + " | predicted f2 [90 %] | distance to data |"
    lines = [f"### Round {round_}: {len(frame)} formulations await approval", "", head, "|" + "---|" * (len(params.columns) + 3)]
    for (fid, form), (_, p) in zip(frame.set_index("formulation_id").iterrows(), params.iterrows()):
        cells = [f"{v:.3g}" if isinstance(v, float) else str(v) for v in p]
        extra = _proposal_notes(form)
        if "f2_lower_90" in extra:
            f2 = f"{extra['f2']:.1f} [{extra['f2_lower_90']:.0f}-{extra['f2_upper_90']:.0f}]"
        else:
            f2 = "-" if form["predicted_objective"] != form["predicted_objective"] else f"{form['predicted_objective']:.1f}"
        where = "-" if "distance_to_data" not in extra else f"{extra['distance_to_data']:.2f}" + (" outside the measured data" if extra.get("outside_measured_data") else "")
        lines.append(f"| {fid} | " + " | ".join(cells) + f" | {f2} | {where} |")
    lines += ["", "Submit as is to approve all; list ids under `reject` (with a `reason`) or give `edits` as {id: {variable: value}}."]
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
    return campaign.approve(round_, rejected={fid: reason for fid in answer.get("reject", [])}, edits=answer.get("edits") or {})


def approve_from_terminal(campaign: Campaign, reject: list[str], reason: str, edits: dict | None = None) -> str:
    """Approve the batch awaiting approval: resume its paused flow run, or write to the ledger.

    Returns what was done, for the user.
    """
    round_ = campaign.current_round()
    waiting = campaign.awaiting_approval(round_)
    if not waiting:
        raise InputError(f"campaign {campaign.config.name}: no batch awaits approval")
    unknown = set(reject) - set(waiting)
    if unknown:
        raise InputError(f"round {round_}: {sorted(unknown)} are not awaiting approval")
    answer = {"reject": list(reject), "reason": reason, "edits": edits or {}}
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
