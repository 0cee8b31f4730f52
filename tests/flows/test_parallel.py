"""Scale-out: a round whose ensemble members train as separate tasks on a local Dask cluster."""

import numpy as np
import pytest

from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.store.ledger import Ledger
from nanoloop.loop.models.base import curve_rows
from nanoloop.loop.models.ensemble import ReleaseEnsemble
from nanoloop.adapters.registry import build_instruments
from test_campaign_flow import small_config  # noqa: E402

pytestmark = pytest.mark.slow


def test_members_fitted_apart_combine_into_one_ensemble():
    rng = np.random.default_rng(0)
    X = curve_rows(rng.uniform(size=(12, 3)), [1.0, 10.0, 100.0])
    y = np.tile([0.1, 0.4, 0.8], 12)
    parts = [ReleaseEnsemble(n_members=1, epochs=20, random_state=s).fit(X, y) for s in (1, 2, 3)]
    combined = ReleaseEnsemble.from_members(parts)
    assert combined.n_members == 3
    members = combined.predict_members(X)
    for k, part in enumerate(parts):
        np.testing.assert_allclose(members[k], part.predict_members(X)[0], rtol=1e-6)
    other = ReleaseEnsemble(n_members=1, epochs=5).fit(X * 2, y)
    with pytest.raises(ValueError, match="different data"):
        ReleaseEnsemble.from_members([parts[0], other])


def test_campaign_rounds_on_a_local_dask_cluster(tmp_path, prefect_server):
    from nanoloop.flows.rounds import campaign_flow

    store = str(tmp_path / "store")
    config = small_config("dask")  # Dask trains the members of the network-alone model; the blend trains on threads
    config = config.model_copy(update={"surrogate": config.surrogate.model_copy(update={"model": "ensemble"})})
    Campaign(config, Ledger(store), build_instruments)
    campaign_flow(store, rounds=2, auto_approve=True, dask=True)
    campaign = Campaign.open(store)
    assert set(campaign.formulations()["status"]) <= {"measured", "failed"}
    models = campaign.ledger.read("models")
    assert len(models) == 1 and models["members"].iloc[0] == 3
    assert '"training": "per-member"' in models["metrics_json"].iloc[0]
    assert campaign.models.latest().model.n_members == 3


def test_run_with_dask_says_where_the_blend_trains(tmp_path, capsys, monkeypatch):
    import nanoloop.flows.rounds as rounds
    from nanoloop.flows.cli import main

    monkeypatch.setattr(rounds, "campaign_flow", lambda *args, **kwargs: [])  # the note comes before any round
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    assert main(["init", str(tmp_path / "c")]) == 0
    config = next((tmp_path / "c").glob("*.toml"))
    assert main(["run", str(config), str(tmp_path / "store"), "--auto-approve", "--dask"]) == 0
    said = " ".join((capsys.readouterr().out).split())  # the console wraps long lines
    assert 'note: --dask trains the members of model = "ensemble" on the cluster; the blend' in said
