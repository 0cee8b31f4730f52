"""Bad approval answers are refused whole, before anything is resumed or written; a rejected batch never blocks the campaign."""

from __future__ import annotations

import pytest

from hostile_helpers import config_text, run_cli
from nanoloop.adapters.registry import build_instruments
from nanoloop.flows.cli import main
from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.config import load_config
from nanoloop.loop.store.ledger import Ledger


@pytest.fixture
def proposed(tmp_path):
    config = tmp_path / "campaign.toml"
    config.write_text(config_text("approvals", batch=3))
    campaign = Campaign(load_config(config), Ledger(tmp_path / "store"), build_instruments)
    return config, tmp_path / "store", campaign, campaign.propose(0)


EDITS = {
    # name: (arguments after `approve STORE`, given the waiting ids; words in the error)
    "edit-outside-space": (lambda ids: ["--edit", f"{ids[0]}:particle_size_nm=900"], ["particle_size_nm=900 is outside"]),
    "edit-unknown-variable": (lambda ids: ["--edit", f"{ids[0]}:colour=5"], ["unknown variable"]),
    "edit-not-a-number": (lambda ids: ["--edit", f"{ids[0]}:particle_size_nm=big"], ["not a number"]),
    "edit-unknown-id": (lambda ids: ["--edit", "F0000000000:particle_size_nm=150"], ["not awaiting approval"]),
    "reject-and-edit-one-id": (lambda ids: ["--reject", ids[0], "--edit", f"{ids[0]}:particle_size_nm=150"], ["both rejected and edited"]),
    "edit-without-value": (lambda ids: ["--edit", f"{ids[0]}:particle_size_nm"], ["ID:VARIABLE=VALUE"]),
}


@pytest.mark.parametrize("case", sorted(EDITS))
def test_bad_approval_changes_nothing(case, proposed, capsys):
    _, store, campaign, ids = proposed
    before = campaign.ledger.read("events")
    args, words = EDITS[case]
    assert main(["approve", str(store), *args(ids)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(w in err for w in words), err
    assert len(campaign.ledger.read("events")) == len(before)
    assert sorted(campaign.awaiting_approval(0)) == sorted(ids)


def test_approval_records_who_approved(proposed, capsys):
    _, store, campaign, ids = proposed
    assert main(["approve", str(store), "--by", "dr-lee"]) == 0
    events = campaign.ledger.read("events").query("status == 'approved'")
    assert set(events["reason"]) == {"approved by dr-lee"} and len(events) == 3


@pytest.mark.slow
def test_rejecting_the_whole_batch_does_not_block_the_campaign(proposed, prefect_server):
    config, store, campaign, ids = proposed
    assert main(["approve", str(store), "--reject", *ids, "--reason", "none"]) == 0
    result = run_cli("run", config, store, "--rounds", "2", "--auto-approve", timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    forms = Campaign.open(str(store)).formulations()
    assert set(forms.loc[forms["round"] == 0, "status"]) == {"rejected"}
    assert (forms["round"] == 1).sum() == 3 and set(forms.loc[forms["round"] == 1, "status"]) <= {"measured", "failed"}
    assert "new space-filling design" in result.stdout + result.stderr
