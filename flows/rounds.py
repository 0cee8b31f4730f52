"""Prefect flows: one round of the closed loop, and a campaign of rounds.

Tasks are thin wrappers over :class:`nanoloop.loop.campaign.campaign.Campaign` steps; the ledger
holds the state, so a flow that dies can simply be run again: each run reads
the ledger and does only what is missing. A campaign's lock makes a second run
that starts meanwhile stop at once instead of racing the first.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import get_run_context
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run

from nanoloop.loop.lab.instruments import TransientInstrumentError
from nanoloop.adapters.registry import build_instruments
from nanoloop.flows.approval import BatchApproval, apply_approval, batch_markdown, record_pause
from nanoloop.flows.artifacts import publish_round_artifacts
from nanoloop.flows.parallel import dask_task_runner, fit_members_in_tasks
from nanoloop.flows.progress import say
from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.store.status import IN_FLIGHT  # noqa: F401 (read by a pandas query as @IN_FLIGHT)
from nanoloop.loop.errors import InputError
from nanoloop.loop.config import load_config
from nanoloop.loop.campaign.evaluation import campaign_status, failure_reasons
from nanoloop.loop.explain.effects import SHAPLEY
from nanoloop.loop.explain.importance import PERMUTATION, explain_round, signed_effects
from nanoloop.loop.store.ledger import Ledger, LedgerBusy


def _retry_transient(task_, task_run, state) -> bool:
    """Retry a lab task only for transient instrument errors (disconnects, timeouts)."""
    try:
        state.result()
    except TransientInstrumentError:
        return True
    except Exception:
        return False
    return False


_LAB = dict(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[1, 2, 4], retry_condition_fn=_retry_transient)


@task(name="propose", cache_policy=NO_CACHE)
def propose(campaign: Campaign, round_: int, fit_members=None) -> list[str]:
    ids = campaign.propose(round_, fit_members)
    model = campaign.formulations().query("round == @round_")["model_version"].iloc[0]
    say(f"round {round_}: proposed {len(ids)} formulations" + (f" with model {model}" if model else " (space-filling Sobol design)"))
    return ids


@task(name="explain", cache_policy=NO_CACHE)
def explain(campaign: Campaign, round_: int) -> None:
    frame = explain_round(campaign, round_)
    top = frame[frame["method"] == PERMUTATION].sort_values("importance", ascending=False)["feature"].head(3).tolist()
    say(f"round {round_}: release is driven most by {', '.join(top)} (permutation importance)")
    signed = signed_effects(frame[frame["method"].str.startswith(SHAPLEY)])
    signed = signed[signed["direction"] != ""]
    if not signed.empty:
        last = signed["time_hours"].max()
        words = [f"more {r.feature} {'speeds' if r.direction == '+' else 'slows'} release" for r in signed[signed["time_hours"] == last].head(2).itertuples()]
        say(f"round {round_}: at {last:g} h, {'; '.join(words)} (Shapley values)")


@task(name="approve", cache_policy=NO_CACHE)
def approve(campaign: Campaign, round_: int, answer: dict | None = None) -> list[str]:
    approved = apply_approval(campaign, round_, answer or {"approved_by": "auto-approve"})
    how = "approved" if answer is not None else "auto-approved"
    rejected = len((answer or {}).get("reject", []))
    say(f"round {round_}: {how} {len(approved)}" + (f", rejected {rejected}" if rejected else ""))
    return approved


@task(name="synthesize", **_LAB)
def synthesize(campaign: Campaign, round_: int) -> dict:
    sent = campaign.dispatch_synthesis(round_)
    outcome = campaign.collect_synthesis(round_)
    if sent or outcome["synthesized"] or outcome["failed"]:
        say(f"round {round_}: synthesized {len(outcome['synthesized'])}, failed {len(outcome['failed'])}" + _why_failed(campaign, outcome["failed"]))
    return outcome


def _why_failed(campaign: Campaign, ids: list[str]) -> str:
    """``: <count> <reason>; ...`` for the failed ids (empty when none)."""
    if not ids:
        return ""
    reasons = failure_reasons(campaign.ledger)
    counts = reasons[reasons["formulation_id"].isin(ids)]["reason"].value_counts()
    return ": " + "; ".join(f"{n} {reason}" for reason, n in counts.items())


@task(name="dissolution", **_LAB)
def dissolution(campaign: Campaign, round_: int) -> dict:
    campaign.dispatch_dissolution(round_)
    outcome = campaign.collect_dissolution(round_)
    if outcome["measured"] or outcome["failed"]:
        failed = f", failed {len(outcome['failed'])}{_why_failed(campaign, outcome['failed'])}" if outcome["failed"] else ""
        say(f"round {round_}: measured {len(outcome['measured'])} release curves{failed}")
    return outcome


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate(campaign: Campaign, round_: int) -> dict:
    status = campaign_status(campaign.ledger, campaign.config.target, campaign.config.name)
    summary = next((r for r in status["rounds"] if r["round"] == round_), {})
    mae, best = summary.get("prospective_mae"), summary.get("best_f2")
    say(
        f"round {round_}: best f2 so far {best:.1f}" if best is not None else f"round {round_}: nothing measured yet",
        f"; prospective MAE {mae:.1f} %" if mae is not None else "",
    )
    publish_round_artifacts(campaign, status, round_)
    return summary


def wait_for_approval(campaign: Campaign, round_: int, timeout_s: int) -> dict | None:
    """Pause the flow run with the approval form until a person answers; None if the pause timed out.

    An answer that does not apply (an unknown id, an edit outside the design
    space) is shown on the form again with the reason.
    """
    problem = ""
    for attempt in range(20):
        record_pause(campaign, round_, str(get_run_context().flow_run.id))
        form = BatchApproval.with_initial_data(description=batch_markdown(campaign, round_, problem))
        say(f"round {round_}: waiting for approval (nanoloop approve {campaign.ledger.location}, or the Prefect UI)")
        try:
            answer = pause_flow_run(wait_for_input=form, timeout=timeout_s, poll_interval=2, key=f"approval-{round_}-{attempt}")
        except FlowPauseTimeout:
            return None
        answer = {"reject": list(answer.reject), "reason": answer.reason, "edits": dict(answer.edits), "approved_by": answer.approved_by}
        if not campaign.awaiting_approval(round_):
            return answer  # already approved in the ledger meanwhile
        try:
            approve(campaign, round_, answer)
            return answer
        except InputError as err:
            problem = str(err)
            get_run_logger().warning("approval not applied: %s", problem)
    raise InputError(f"round {round_}: too many invalid approval answers")


@flow(name="nanoloop-round", log_prints=False)
def round_flow(
    store: str, auto_approve: bool = False, approval_timeout_s: int = 3600, config_path: str | None = None,
    parallel_members: bool = False, max_rounds: int | None = None,
) -> dict:
    """Advance the campaign in ``store`` by one round: propose, approve, make, measure, evaluate.

    Without ``auto_approve`` the run pauses for a person's approval; if the
    pause times out the batch stays awaiting approval in the ledger. With
    ``config_path`` the campaign is created in ``store`` on the first run
    (a scheduled deployment needs nothing else). With ``parallel_members``
    each ensemble member trains as its own task on the flow's task runner
    (see :mod:`nanoloop.flows.parallel`). With ``max_rounds`` a campaign that already
    has that many rounds is left as it is (another run may have finished the
    round this one was started for).
    """
    if config_path:
        campaign = Campaign(load_config(config_path), Ledger(store), build_instruments)
    else:
        campaign = Campaign.open(store, build_instruments)
    try:
        with campaign.ledger.lock():
            for path in campaign.ledger.remove_temporaries():
                say(f"removed {path}, left by a crashed write")
            round_ = campaign.current_round()
            if max_rounds is not None and round_ >= max_rounds:
                say(f"campaign {campaign.config.name} already has {max_rounds} rounds")
                return {"done": True}
            if parallel_members:  # in the flow body, so member tasks go to the flow's task runner
                propose.fn(campaign, round_, fit_members_in_tasks)
            else:
                propose(campaign, round_)
            if _has_model(campaign, round_):
                explain(campaign, round_)
            elif round_ > 0:
                say(f"round {round_}: nothing measured yet (earlier batches were rejected or failed), so a new space-filling design")
            if campaign.awaiting_approval(round_):
                if auto_approve:
                    approve(campaign, round_)
                elif wait_for_approval(campaign, round_, approval_timeout_s) is None:
                    say(f"round {round_}: approval timed out; the batch stays awaiting approval")
                    return {"round": round_, "awaiting_approval": len(campaign.awaiting_approval(round_))}
            synthesize(campaign, round_)
            dissolution(campaign, round_)
            return evaluate(campaign, round_)
    except LedgerBusy as busy:
        say(f"{busy}; this run stops without doing anything")
        return {"busy": True}


def _has_model(campaign: Campaign, round_: int) -> bool:
    """Whether the round's proposals came from a trained surrogate (none when nothing was measured before)."""
    frame = campaign.formulations()
    return bool((frame.loc[frame["round"] == round_, "model_version"] != "").any())


def _progress(campaign: Campaign) -> tuple[int, int]:
    """What a pass can change: the number of events and the current round."""
    return len(campaign.ledger.read("events")), campaign.current_round()


@flow(name="nanoloop-campaign", log_prints=False)
def campaign_flow(store: str, rounds: int, auto_approve: bool = False, approval_timeout_s: int = 3600, dask_address: str | None = None, dask: bool = False) -> list[dict]:
    """Run rounds until the campaign in ``store`` has ``rounds`` finished rounds (or a batch waits for approval).

    With ``dask`` each round runs on a prefect-dask task runner: a local cluster,
    or the cluster at ``dask_address``; the members of ``model = "ensemble"`` train in parallel there.
    """
    campaign = Campaign.open(store)
    summaries = []
    while campaign.current_round() < rounds:
        stop = campaign.failure_budget_exceeded()
        if stop:
            say(stop)
            summaries.append({"stopped": stop})
            break
        before = _progress(campaign)
        one_round = round_flow.with_options(task_runner=dask_task_runner(dask_address)) if dask else round_flow
        summary = one_round(store, auto_approve=auto_approve, approval_timeout_s=approval_timeout_s, parallel_members=dask, max_rounds=rounds)
        summaries.append(summary)
        if summary.get("busy") or summary.get("done") or summary.get("awaiting_approval"):
            break
        if _progress(campaign) == before:  # results neither came nor failed: never loop on a lab that says nothing
            round_ = before[1]
            waiting = campaign.formulations().query("round == @round_ and status in @IN_FLIGHT")
            stop = (f"round {round_}: no result came in {campaign.config.instruments.collect_wait_s:g} s for the "
                    f"{len(waiting)} formulations in the lab; they stay in flight: run again later to collect them, "
                    "or check the instruments")
            say(stop)
            summaries.append({"stopped": stop})
            break
    return summaries
