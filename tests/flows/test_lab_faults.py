"""What a campaign does with each fault of the simulated lab, and that nothing measured is lost."""

import numpy as np
import pandas as pd
import pytest

from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.config import default_config
from nanoloop.loop.store.ledger import Ledger
from nanoloop.adapters.registry import build_instruments

BATCH = 8


def config_with(name: str, synthesis_faults=None, dissolution_faults=None, timeout_s: float = 30.0):
    config = default_config()
    instruments = config.instruments.model_copy(update={
        "timeout_s": timeout_s,
        "synthesis": config.instruments.synthesis.model_copy(update={"options": {"faults": synthesis_faults or {}}}),
        "dissolution": config.instruments.dissolution.model_copy(update={"options": {"faults": dissolution_faults or {}}}),
    })
    return config.model_copy(update={"name": name, "batch_size": BATCH, "instruments": instruments})


def curves_of(campaign: Campaign) -> pd.DataFrame:
    curves = campaign.ledger.read("curves")[["formulation_id", "replicate", "time_hours", "release_pct"]]
    return curves.sort_values(["formulation_id", "replicate", "time_hours"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    campaign = Campaign(config_with("faults"), Ledger(tmp_path_factory.mktemp("clean")), build_instruments)
    campaign.run_round(0)
    return campaign


def faulty(tmp_path, **faults) -> Campaign:
    campaign = Campaign(config_with("faults", **faults), Ledger(tmp_path), build_instruments)
    campaign.run_round(0)
    return campaign


def assert_settled_with_reasons(campaign: Campaign) -> pd.Series:
    states = campaign.states()
    assert len(states) == BATCH and set(states) <= {"measured", "failed"}
    failed = campaign.ledger.read("events").query("status == 'failed'")
    assert (failed["reason"].str.len() > 10).all()
    return states


def test_duplicate_delivery_stores_each_result_once(tmp_path, clean):
    campaign = faulty(tmp_path, synthesis_faults={"duplicate": 1.0}, dissolution_faults={"duplicate": 1.0})
    pd.testing.assert_frame_equal(curves_of(campaign), curves_of(clean))
    assert len(campaign.ledger.read("characterization")) == len(clean.ledger.read("characterization"))


def test_nan_readings_are_dropped_and_the_rest_kept(tmp_path, clean):
    campaign = faulty(tmp_path, dissolution_faults={"nan_reading": 0.2})
    assert_settled_with_reasons(campaign)
    curves = curves_of(campaign)
    assert np.isfinite(curves["release_pct"]).all()
    assert 0.5 * len(curves_of(clean)) < len(curves) < len(curves_of(clean))


def test_partial_curves_are_kept(tmp_path, clean):
    campaign = faulty(tmp_path, dissolution_faults={"partial_curve": 1.0})
    states = assert_settled_with_reasons(campaign)
    assert (states == "measured").sum() == (clean.states() == "measured").sum()
    assert len(curves_of(campaign)) < len(curves_of(clean))


def test_readings_above_100_pct_drop_the_replicate_with_a_note(tmp_path):
    campaign = faulty(tmp_path, dissolution_faults={"over_100": 1.0})
    assert_settled_with_reasons(campaign)
    curves = curves_of(campaign)
    assert curves["release_pct"].max() <= 110
    notes = campaign.ledger.read("events").query("status == 'measured'")["reason"]
    assert notes.str.contains("above 110").any()


def test_garbage_results_fail_with_the_problem_named(tmp_path):
    campaign = faulty(tmp_path, synthesis_faults={"garbage": 1.0})
    states = assert_settled_with_reasons(campaign)
    assert (states == "failed").all()
    reasons = campaign.ledger.read("events").query("status == 'failed'")["reason"]
    assert reasons.str.startswith("synthesis:").all()
    assert campaign.ledger.read("curves").empty


def test_strong_drift_makes_late_readings_implausible(tmp_path):
    campaign = faulty(tmp_path, dissolution_faults={"drift_pct_per_day": 5.0})
    states = assert_settled_with_reasons(campaign)
    assert (states == "failed").any()
    assert campaign.ledger.read("events").query("status == 'failed'")["reason"].str.contains("above 110").any()


def test_drift_is_measured_as_it_comes(tmp_path, clean):
    campaign = faulty(tmp_path, dissolution_faults={"drift_pct_per_day": 0.3})
    assert (campaign.states() == "measured").sum() == (clean.states() == "measured").sum()
    both = curves_of(campaign).merge(curves_of(clean), on=["formulation_id", "replicate", "time_hours"], suffixes=("_drift", "_clean"))
    late = both[both["time_hours"] >= 336]
    ratio = late["release_pct_drift"] / late["release_pct_clean"]
    assert len(late) > 50 and ratio.median() == pytest.approx(1 + 0.3 / 100 * 504 / 24, abs=0.03)


@pytest.mark.slow  # the Prefect flow, on the session's server
def test_failure_budget_stops_the_campaign(tmp_path, prefect_server):
    from nanoloop.flows.rounds import campaign_flow

    config = config_with("budget", synthesis_faults={"synthesis_failure_multiplier": 50.0})
    Campaign(config.model_copy(update={"max_failed_pct": 40.0}), Ledger(tmp_path), build_instruments)
    summaries = campaign_flow(str(tmp_path), rounds=3, auto_approve=True)
    assert "stopped" in summaries[-1] and "max_failed_pct" in summaries[-1]["stopped"]
    assert Campaign.open(str(tmp_path)).formulations()["round"].max() == 0  # no round burnt after the budget ran out


@pytest.mark.slow
@pytest.mark.parametrize("fault", [{"disconnect": 0.3}, {"hang": 0.2}])
def test_transient_faults_are_retried_and_change_nothing(fault, tmp_path, prefect_server, clean):
    from nanoloop.flows.rounds import round_flow

    Campaign(config_with("faults", synthesis_faults=fault, dissolution_faults=fault, timeout_s=0.3), Ledger(tmp_path), build_instruments)
    round_flow(str(tmp_path), auto_approve=True)
    campaign = Campaign.open(str(tmp_path))
    assert set(campaign.states()) <= {"measured", "failed"}
    pd.testing.assert_frame_equal(curves_of(campaign), curves_of(clean))
