"""A small campaign ledger for the dashboard tests, made without Prefect: two measured rounds of 4
and a third batch awaiting approval (about 25 s on two cores, so it is made once per session)."""

from __future__ import annotations

import pytest

from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.config import default_config
from nanoloop.loop.store.ledger import Ledger
from nanoloop.adapters.registry import build_instruments


def small_config():
    config = default_config()
    return config.model_copy(update={
        "name": "dash", "batch_size": 4,
        "surrogate": config.surrogate.model_copy(update={"members": 3, "epochs": 60, "hidden": 32}),
        "acquisition": config.acquisition.model_copy(update={"pool_size": 256}),
    })


@pytest.fixture(scope="session")
def campaign_store(tmp_path_factory):
    """(path, config) of the small campaign's ledger. Read it only: copy it (shutil.copytree) to change it."""
    store = tmp_path_factory.mktemp("dashboard") / "ledger"
    config = small_config()
    campaign = Campaign(config, Ledger(store), build_instruments)
    for r in range(2):
        campaign.run_round(r)
    campaign.propose(2)  # leaves a batch awaiting approval
    return store, config
