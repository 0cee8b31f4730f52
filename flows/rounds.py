"""Prefect flows: one round of the closed loop, and a campaign of rounds.

Tasks are thin wrappers over :class:`loop.campaign.Campaign` steps; the ledger
holds the state, so a flow that dies can simply be run again.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from adapters.protocol import TransientInstrumentError
from loop.campaign import Campaign
from loop.evaluation import campaign_status
from flows.progress import say

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
def propose(campaign: Campaign, round_: int) -> list[str]:
    ids = campaign.propose(round_)
    model = campaign.formulations().query("round == @round_")["model_version"].iloc[0]
    say(f"round {round_}: proposed {len(ids)} formulations" + (f" with model {model}" if model else " (space-filling Sobol design)"))
    return ids


@task(name="approve", cache_policy=NO_CACHE)
def approve(campaign: Campaign, round_: int) -> list[str]:
    waiting = campaign.awaiting_approval(round_)
    approved = campaign.approve(round_) if waiting else []
    if approved:
        say(f"round {round_}: auto-approved {len(approved)}")
    return approved


@task(name="synthesize", **_LAB)
def synthesize(campaign: Campaign, round_: int) -> dict:
    sent = campaign.dispatch_synthesis(round_)
    outcome = campaign.collect_synthesis(round_)
    if sent or outcome["synthesized"] or outcome["failed"]:
        say(f"round {round_}: synthesized {len(outcome['synthesized'])}, failed {len(outcome['failed'])}")
    return outcome


@task(name="dissolution", **_LAB)
def dissolution(campaign: Campaign, round_: int) -> dict:
    campaign.dispatch_dissolution(round_)
    outcome = campaign.collect_dissolution(round_)
    if outcome["measured"] or outcome["failed"]:
        say(f"round {round_}: measured {len(outcome['measured'])} release curves")
    return outcome


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate(campaign: Campaign, round_: int) -> dict:
    status = campaign_status(campaign.ledger, campaign.config.target, campaign.config.name)
    summary = next((r for r in status["rounds"] if r["round"] == round_), {})
    mae = summary.get("prospective_mae")
    best = summary.get("best_f2")
    say(
        f"round {round_}: best f2 so far {best:.1f}" if best is not None else f"round {round_}: nothing measured yet",
        f"; prospective MAE {mae:.1f} %" if mae is not None else "",
    )
    return summary


@flow(name="nanoloop-round", log_prints=False)
def round_flow(store: str, auto_approve: bool = True) -> dict:
    """Advance the campaign in ``store`` through one round: propose, approve, make, measure, evaluate."""
    campaign = Campaign.open(store)
    round_ = campaign.current_round()
    propose(campaign, round_)
    if auto_approve:
        approve(campaign, round_)
    synthesize(campaign, round_)
    dissolution(campaign, round_)
    return evaluate(campaign, round_)


@flow(name="nanoloop-campaign", log_prints=False)
def campaign_flow(store: str, rounds: int, auto_approve: bool = True) -> list[dict]:
    """Run rounds until the campaign in ``store`` has ``rounds`` finished rounds."""
    campaign = Campaign.open(store)
    summaries = []
    while campaign.current_round() < rounds:
        summaries.append(round_flow(store, auto_approve=auto_approve))
    return summaries
