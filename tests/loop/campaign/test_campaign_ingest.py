"""Ingesting a batch of dissolution results: one write per table, the kinetic summary of the replicates' mean."""

import numpy as np
import pytest

from nanoloop.adapters.simulated import SimulatedDissolution, SimulatedSynthesis
from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.config import default_config
from nanoloop.loop.store.measurements import measured_mean_curves
from nanoloop.loop.kinetics import summarize_curve
from nanoloop.loop.store.ledger import Ledger


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    config = default_config().model_copy(update={"batch_size": 24})
    campaign = Campaign(config, Ledger(tmp_path_factory.mktemp("store")),
                        {"synthesis": SimulatedSynthesis(seed=5), "dissolution": SimulatedDissolution(seed=5)})
    campaign.propose(0)
    campaign.approve(0)
    campaign.dispatch_synthesis(0)
    campaign.collect_synthesis(0)
    dissolving = campaign.dispatch_dissolution(0)
    result = campaign.collect_dissolution(0)
    return campaign, dissolving, result


def test_a_batch_is_written_as_one_part_per_table(ingested):
    campaign, dissolving, result = ingested
    assert len(result["measured"]) >= 15 and sorted(result["measured"] + result["failed"]) == sorted(dissolving)
    for table in ("curves", "kinetics"):
        assert len(campaign.ledger.part_paths(table)) == 1, table
    statuses = campaign.formulations().set_index("formulation_id")["status"]
    assert (statuses[result["measured"]] == "measured").all()


def test_kinetics_summarise_the_mean_of_the_replicates(ingested):
    campaign, _, result = ingested
    kinetics = campaign.ledger.read("kinetics").set_index("formulation_id")
    assert sorted(kinetics.index) == sorted(result["measured"])
    means = measured_mean_curves(campaign.ledger)
    for fid in result["measured"][:3]:
        expected = summarize_curve(means[fid].index.to_numpy(float), means[fid].to_numpy(float))
        assert kinetics.loc[fid, "best_model"] == expected["best_model"]
        for key in ("r2", "t50_hours", "t80_hours", "burst_24h_pct", "mdt_hours"):
            value = np.nan if expected[key] is None else expected[key]
            assert kinetics.loc[fid, key] == pytest.approx(value, nan_ok=True), key


def test_collecting_again_adds_nothing(ingested):
    campaign, _, _ = ingested
    before = {t: len(campaign.ledger.read(t)) for t in ("curves", "kinetics", "events")}
    assert campaign.collect_dissolution(0, wait_s=0.1) == {"measured": [], "failed": []}
    assert {t: len(campaign.ledger.read(t)) for t in before} == before
