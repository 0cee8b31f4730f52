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
    """The batch as a markdown table, one row per variable and one column per formulation, for the approval form.

    Narrow enough for a 1400 px window with a batch of 8: the recipe (units in
    the variable names), the predicted objective with its 90 % interval, why
    each was chosen, and the predicted failure risk where failures are known.
    """
    from nanoloop.loop.review import batch_review

    review = batch_review(campaign, round_)
    rows = [r for r in review["formulations"] if r["status"] == "proposed"]
    name = review["objective"]
    lines = [f"### Round {round_}: {len(rows)} formulations await approval", "",
             f"Objective: {review['objective_description']}. Columns are the formulations (#1, #2, ...); reject or edit by id.", ""]
    lines += ["| | " + " | ".join(f"#{i + 1}" for i in range(len(rows))) + " |", "|---|" + "---|" * len(rows)]

    def row(label: str, cells) -> None:
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    row("**id**", [f"`{r['formulation_id']}`" for r in rows])
    for variable in (rows[0]["recipe"] if rows else {}):
        row(variable, [v if isinstance(v, str) else f"{v:.3g}" for v in (r["recipe"][variable] for r in rows)])
    row(f"**predicted {name}**", ["-" if r["predicted"]["objective"] is None else f"{r['predicted']['objective']:.1f}" for r in rows])
    row("90 % interval", ["-" if r["predicted"]["objective_low_90"] is None else f"{r['predicted']['objective_low_90']:.0f}–{r['predicted']['objective_high_90']:.0f}" for r in rows])
    row("chosen to", [r["acquisition"]["reason"] for r in rows])
    if review["failure_model"] is not None:
        row("failure risk", [f"{r['failure_risk']:.0%}" + (" ⚠" if r["warnings"] else "") for r in rows])
    lines += ["", "Submit as is to approve all; list ids under `reject` (with a `reason`) or give `edits` as {id: {variable: value}}. "
              "`nanoloop batch STORE` shows the predicted release at each target time and the nearest measured formulation."]
    if problem:
        lines = [f"**The last answer was not applied: {problem}**", ""] + lines
    return "\n".join(lines)


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
