"""End to end: a small 2-round campaign through Prefect against the session's server."""

import json

import pandas as pd
import pytest

from nanoloop.flows.cli import main
from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.config import default_config
from nanoloop.loop.store.ledger import Ledger
from nanoloop.adapters.registry import build_instruments

pytestmark = pytest.mark.slow  # Prefect flows against the session's server


def small_config(name="e2e"):
    config = default_config()
    return config.model_copy(update={
        "name": name, "batch_size": 4, "rounds": 2,
        "surrogate": config.surrogate.model_copy(update={"members": 3, "epochs": 80, "hidden": 32}),
        "acquisition": config.acquisition.model_copy(update={"pool_size": 256, "refine_starts": 2, "refine_steps": 2, "gp_restarts": 0}),
    })


@pytest.fixture(scope="module")
def finished_store(tmp_path_factory, prefect_server):
    from nanoloop.flows.rounds import campaign_flow

    store = str(tmp_path_factory.mktemp("e2e") / "ledger")
    Campaign(small_config(), Ledger(store), build_instruments)
    campaign_flow(store, rounds=2, auto_approve=True)
    return store


def test_two_rounds_proposed_measured_and_stored(finished_store):
    campaign = Campaign.open(finished_store)
    forms = campaign.formulations()
    assert sorted(forms["round"].value_counts().to_dict().items()) == [(0, 4), (1, 4)]
    assert set(forms["status"]) <= {"measured", "failed"}
    assert (forms["status"] == "measured").sum() >= 4
    curves = pd.read_parquet(f"{finished_store}/curves")
    assert set(curves["formulation_id"]) == set(forms.loc[forms["status"] == "measured", "formulation_id"])
    per_curve = curves.groupby("formulation_id").agg(replicates=("replicate", "nunique"), times=("time_hours", "nunique"))
    assert (per_curve["times"] == 12).all() and per_curve["replicates"].between(1, 3).all()
    # a replicate with an implausible reading (e.g. an outlier above 110 %) is dropped, and the reason kept
    events = campaign.ledger.read("events").query("status == 'measured'").set_index("formulation_id")
    for fid in per_curve.index[per_curve["replicates"] < 3]:
        assert "dropped replicate" in events.loc[fid, "reason"]
    assert curves["release_pct"].median() > 0
    kinetics = campaign.ledger.read("kinetics")
    assert set(kinetics["formulation_id"]) == set(curves["formulation_id"])
    assert kinetics["best_model"].str.len().min() > 0
    failed = campaign.ledger.read("events").query("status == 'failed'")
    assert (failed["reason"].str.len() > 0).all()


def test_model_proposals_carry_prediction_and_provenance(finished_store):
    campaign = Campaign.open(finished_store)
    forms = campaign.formulations()
    initial, acquired = forms[forms["round"] == 0], forms[forms["round"] == 1]
    assert (initial["origin"] == "initial-design").all() and (initial["model_version"] == "").all()
    row = acquired.iloc[0]
    assert row["model_version"].startswith("M001-") and row["acquisition"] == "ei"
    notes = json.loads(row["acquisition_params_json"])
    assert notes["strategy"] == "ei"
    # the reviewer's f2 interval and the distance to the measured data are stored with each proposal
    assert notes["f2_lower_90"] <= notes["f2"] <= notes["f2_upper_90"] and notes["f2_widening"] >= 1.0
    assert notes["distance_to_data"] >= 0 and notes["outside_measured_data"] == (notes["distance_to_data"] > 0.25)
    from nanoloop.flows.approval import _proposal_notes

    assert _proposal_notes(row)["f2_upper_90"] == notes["f2_upper_90"]  # what the approval form shows
    assert len(row["predicted_release_pct"]) == len(row["predicted_times_hours"]) == len(row["predicted_std_pct"]) > 5
    assert all(b >= a - 1e-9 for a, b in zip(row["predicted_release_pct"], row["predicted_release_pct"][1:]))
    assert row["seed"] == campaign.config.seed and row["nanoloop_version"]
    model = campaign.models.load(row["model_version"])
    assert model.n_members == 3 and type(model).__name__ == "BlendedRelease"  # the campaign's default model
    assert json.loads(campaign.ledger.read("models")["metrics_json"].iloc[0])["model"] == "blend"
    models = campaign.ledger.read("models")
    assert models["n_formulations"].iloc[0] == (initial["status"] == "measured").sum()


def test_round_explanations_are_stored(finished_store, capsys):
    explanations = Campaign.open(finished_store).ledger.read("explanations")
    assert set(explanations["round"]) == {1}
    assert explanations["method"].str.startswith("shapley_pct@").any()  # the flow stores the signed effects
    assert set(Campaign.open(finished_store).ledger.read("partial_dependence")["round"]) == {1}
    assert main(["explain", finished_store]) == 0
    out = capsys.readouterr().out
    assert "polymer" in out and "direction of each variable" in out


def test_status_json_reports_prospective_error(finished_store, capsys):
    assert main(["status", finished_store, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["campaign"] == "e2e"
    rounds = {r["round"]: r for r in status["rounds"]}
    assert set(rounds) == {0, 1}
    for r in rounds.values():
        assert {"round", "proposed", "measured", "failed", "best_f2", "prospective_mae"} <= set(r)
        assert r["proposed"] == 4 and r["measured"] + r["failed"] == 4
    assert rounds[0]["prospective_mae"] is None  # round 0 had no model
    assert 0 < rounds[1]["prospective_mae"] < 50
    assert rounds[1]["best_f2"] >= rounds[0]["best_f2"]
    best = status["best"]
    assert best["f2"] == max(r["best_f2"] for r in status["rounds"])
    assert set(best["parameters"]) == set(default_config().space)


def test_rerun_changes_nothing(finished_store):
    from nanoloop.flows.rounds import campaign_flow

    before = {t: len(Ledger(finished_store).read(t)) for t in ("formulations", "events", "curves")}
    campaign_flow(finished_store, rounds=2, auto_approve=True)
    after = {t: len(Ledger(finished_store).read(t)) for t in ("formulations", "events", "curves")}
    assert before == after


def test_round_artifacts_are_published(finished_store):
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_="e2e-%")))
    by_key = {}
    for artifact in artifacts:
        by_key.setdefault(artifact.key, []).append(artifact)
    assert {"e2e-round-0-batch", "e2e-round-1-batch", "e2e-round-summary", "e2e-progress"} <= set(by_key)
    table = json.loads(by_key["e2e-round-1-batch"][0].data)
    assert len(table) == 4 and {"predicted f2", "measured f2", "status"} <= set(table[0])
    summaries = " ".join(a.data for a in by_key["e2e-round-summary"])
    assert "prospective error" in summaries and "90 % interval coverage" in summaries
    assert max(float(a.data) for a in by_key["e2e-progress"]) == 100.0
