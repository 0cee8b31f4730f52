"""``nanoloop batch`` (review before approving), ``nanoloop export`` and the failure reasons of ``status``.

They read the session's small campaign (tests/conftest.py: two measured rounds of 4, failed
syntheses among them, a third batch awaiting approval), or a copy of it.
"""

import json
import os
import shutil

import pandas as pd
import pytest

import nanoloop
from nanoloop.adapters.registry import build_instruments
from nanoloop.flows.cli import main
from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.store.ledger import Ledger


def _files(store):
    return sorted(str(p.relative_to(store)) for p in store.rglob("*") if p.is_file() and p.name != ".lock")


@pytest.fixture
def store(campaign_store):
    """The session's small campaign (tests/conftest.py); read only."""
    return campaign_store[0]


@pytest.fixture
def copy(store, tmp_path):
    target = tmp_path / "ledger"
    shutil.copytree(store, target)
    return target


def _review(capsys, *args) -> dict:
    assert main(["batch", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_batch_shows_what_a_reviewer_decides_on(store, capsys):
    review = _review(capsys, store)
    campaign = Campaign.open(str(store))
    waiting = campaign.awaiting_approval(2)
    assert review["round"] == 2 and [r["formulation_id"] for r in review["formulations"]] == waiting
    measured = set(campaign.formulations().query("status == 'measured'")["formulation_id"])
    failed = campaign.formulations().query("status == 'failed'")
    assert len(failed) >= 1 and review["failure_model"] == {"made": len(measured) + len(failed), "failed_in_synthesis": len(failed)}
    for row in review["formulations"]:
        assert list(row["recipe"]) == campaign.space.names
        assert campaign.space.validate(row["recipe"]) == row["recipe"]
        p = row["predicted"]
        assert p["objective_low_90"] < p["objective"] < p["objective_high_90"]
        assert [x["time_hours"] for x in row["predicted_release"]] == campaign.config.target.times_hours
        assert all(0 <= x["release_pct"] <= 110 and x["sd_pct"] > 0 for x in row["predicted_release"])
        assert row["acquisition"]["reason"] in ("exploit", "explore") and row["acquisition"]["why"]
        assert row["nearest_measured"]["formulation_id"] in measured
        assert 0 < row["failure_risk"] < 1
    assert main(["batch", str(store)]) == 0
    text = capsys.readouterr().out
    assert "why chosen:" in text and "nearest measured:" in text and "predicted failure risk:" in text and "90 % interval" in text


def test_approval_form_shows_the_calibrated_f2_interval_and_distance_to_data(store):
    from nanoloop.flows.approval import batch_markdown

    campaign = Campaign.open(str(store))
    text = batch_markdown(campaign, 2)
    assert text.count("calibrated f2 90 %:") == len(campaign.awaiting_approval(2)) and "distance to data" in text


def test_batch_of_a_finished_round_shows_its_statuses(store, capsys):
    review = _review(capsys, store, "--round", 1)
    statuses = {r["status"] for r in review["formulations"]}
    assert statuses <= {"measured", "failed"} and "failed" in statuses


def test_an_edit_is_previewed_repredicted_and_stored_with_its_own_prediction(copy, capsys):
    campaign = Campaign.open(str(copy))
    fid = campaign.awaiting_approval(2)[0]
    before = _files(copy)
    review = _review(capsys, copy, "--edit", f"{fid}:particle_size_nm=420", "--edit", f"{fid}:peg_fraction=0.01")
    assert _files(copy) == before  # a preview changes nothing
    original, preview = review["formulations"][0], review["formulations"][-1]
    assert preview["edited_from"] == fid and preview["recipe"]["particle_size_nm"] == 420 and preview["recipe"]["peg_fraction"] == 0.01
    assert preview["predicted"]["objective"] != pytest.approx(original["predicted"]["objective"], abs=1e-6)
    assert preview["predicted_release"][0]["release_pct"] != pytest.approx(original["predicted_release"][0]["release_pct"], abs=1e-6)
    # approving the edit stores the edit's prediction, the one the preview showed
    campaign.approve(2, edits={fid: {"particle_size_nm": 420, "peg_fraction": 0.01}})
    frame = campaign.formulations()
    stored = frame[frame["origin"] == f"edit-of:{fid}"].iloc[0]
    assert stored["predicted_objective"] == pytest.approx(preview["predicted"]["objective"])
    assert stored["predicted_release_pct"][0] != pytest.approx(original["predicted_release"][0]["release_pct"], abs=1e-6)
    # the original's f2 interval and distance to the data are not carried onto the edit
    kept = json.loads(stored["acquisition_params_json"])
    assert kept["repredicted_on_edit"] and not {"f2_lower_90", "distance_to_data"} & set(kept)
    assert "f2_lower_90" in json.loads(frame.set_index("formulation_id").loc[fid, "acquisition_params_json"])


def test_a_bad_edit_is_one_line_and_exit_2(store, capsys):
    fid = Campaign.open(str(store)).awaiting_approval(2)[0]
    for edit, message in ((f"{fid}:particle_size_nm=900", "particle_size_nm=900 is outside [80, 500]"),
                          (f"{fid}:colour=1", "unknown variable(s) ['colour']"),
                          ("Fnope:particle_size_nm=100", "not a formulation of round 2"),
                          ("no-colon", "expected ID:VARIABLE=VALUE")):
        assert main(["batch", str(store), "--edit", edit]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
    assert main(["batch", str(store), "--round", "9"]) == 2
    assert "round 9 has no formulations" in capsys.readouterr().err


def test_an_edit_onto_a_recipe_that_failed_warns(store, capsys):
    campaign = Campaign.open(str(store))
    failed = campaign.formulations().query("status == 'failed'").iloc[0]
    recipe = json.loads(failed["parameters_json"])
    fid = campaign.awaiting_approval(2)[0]
    edits = [f"{fid}:{k}={v}" for k, v in recipe.items()]
    review = _review(capsys, store, *[x for e in edits for x in ("--edit", e)])
    preview = review["formulations"][-1]
    assert preview["failure_risk"] >= review["high_risk"]
    assert any("high predicted failure risk" in w for w in preview["warnings"])
    assert main(["batch", str(store), *[x for e in edits for x in ("--edit", e)]]) == 0
    assert "warning" in capsys.readouterr().out


def test_status_counts_failures_by_reason_and_stores_measured_objective(store, capsys):
    assert main(["status", str(store), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    failed = [f for f in status["formulations"] if f["status"] == "failed"]
    assert sum(status["failures"]["by_reason"].values()) == len(failed) == sum(r["failed"] for r in status["rounds"])
    assert all(f["reason"].startswith(("synthesis:", "dissolution:")) for f in failed)
    measured = [f for f in status["formulations"] if f["status"] == "measured"]
    assert measured and all(f["measured_objective"] is not None and f["measured_f2"] is not None for f in measured)
    assert max(f["measured_f2"] for f in measured) == pytest.approx(status["best"]["f2"])
    events = Ledger(store).read("events").query("status == 'measured'")
    assert events["measured_objective"].notna().all()  # stored with the status, not only computed for display
    assert main(["status", str(store)]) == 0
    text = capsys.readouterr().out
    assert "by reason" in text and failed[0]["reason"].split(":")[1].strip()[:30] in " ".join(text.split())


def test_export_to_excel_reads_back_with_pandas(store, tmp_path, capsys):
    out = tmp_path / "out" / "campaign.xlsx"
    assert main(["export", str(store), "--out", str(out)]) == 0
    sheets = pd.read_excel(out, sheet_name=None)
    assert set(sheets) == {"formulations", "curves", "columns"}
    forms, curves, columns = sheets["formulations"], sheets["curves"], sheets["columns"]
    campaign = Campaign.open(str(store))
    assert len(forms) == len(campaign.formulations()) and forms["formulation_id"].is_unique
    assert set(campaign.space.names) <= set(forms.columns)
    assert {"status", "status_reason", "actual_drug_loading_pct", "size_nm", "best_law", "param1_name", "param1_value", "param1_unit",
            "t50_hours", "burst_24h_pct", "mdt_hours", "predicted_objective", "measured_objective", "measured_f2", "model_version",
            "apparatus", "volume_ml", "temperature_c"} <= set(forms.columns)
    assert not any(c.endswith(("_x", "_y", "_json")) for c in forms.columns)
    failed = forms[forms["status"] == "failed"]
    assert len(failed) and failed["status_reason"].str.startswith("synthesis:").all()
    measured = forms[forms["status"] == "measured"]
    assert measured["measured_objective"].notna().all() and measured["param1_unit"].notna().all()
    assert forms.loc[forms["round"] > 0, "model_version"].str.startswith("M").all()
    assert len(curves) == len(Ledger(store).read("curves")) and set(curves["formulation_id"]) == set(measured["formulation_id"])
    assert (curves["time_days"] - curves["time_hours"] / 24).abs().max() < 1e-9
    documented = columns[columns["table"] == "formulations"]
    assert list(documented["column"]) == list(forms.columns)
    assert documented.set_index("column").loc["t50_hours", "unit"] == "h"
    # the Python API gives the same table
    api = nanoloop.formulations(str(store))
    assert list(api.columns) == list(forms.columns) and len(api) == len(forms)
    assert len(nanoloop.curves(str(store))) == len(curves)


def test_export_to_csv_and_parquet_writes_curves_beside(store, tmp_path, capsys):
    assert main(["export", str(store), "--out", str(tmp_path / "c.csv")]) == 0
    assert {p.name for p in tmp_path.iterdir()} == {"c.csv", "c-curves.csv", "c-columns.csv"}
    assert len(pd.read_csv(tmp_path / "c.csv")) == len(nanoloop.formulations(str(store)))
    assert main(["export", str(store), "--out", str(tmp_path / "p" / "c.parquet")]) == 0
    assert len(pd.read_parquet(tmp_path / "p" / "c-curves.parquet")) == len(nanoloop.curves(str(store)))


def test_export_with_a_bad_name_writes_nothing(store, tmp_path, capsys):
    capsys.readouterr()
    assert main(["export", str(store), "--out", str(tmp_path / "c.txt")]) == 2
    err = capsys.readouterr().err.strip()
    assert "must end in .csv, .xlsx, .parquet" in err and len(err.splitlines()) == 1
    assert os.listdir(tmp_path) == []
    assert main(["export", str(tmp_path / "missing")]) == 2


def test_a_run_says_what_it_waits_for_before_prefect_starts(tmp_path, capsys, monkeypatch):
    """The words only: no flow runs and no server starts (a real temporary server: tests/hostile/test_hostile_processes.py)."""
    import nanoloop.flows.lifecycle as lifecycle
    import nanoloop.flows.rounds as rounds

    monkeypatch.setattr(rounds, "campaign_flow", lambda *a, **k: [])
    monkeypatch.setattr(lifecycle, "start_temporary_server", lambda *a, **k: "http://127.0.0.1:4998/api")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert main(["demo", str(tmp_path / "d"), "--rounds", "1"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "starting a temporary local Prefect server for this run (10-20 s" in out
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4999/api")
    assert main(["demo", str(tmp_path / "e"), "--rounds", "1"]) == 0
    assert "connecting to the Prefect server at http://127.0.0.1:4999/api" in capsys.readouterr().out


def test_the_server_tells_its_ui_to_call_the_api_on_its_port():
    from nanoloop.flows.cli_server import server_ui_settings

    settings = server_ui_settings(4311, {"PREFECT_API_URL": "http://127.0.0.1:4200/api"})
    assert settings["PREFECT_UI_API_URL"] == settings["PREFECT_API_URL"] == "http://127.0.0.1:4311/api"
    assert settings["PREFECT_SERVER_API_PORT"] == "4311"
    assert "PREFECT_UI_API_URL" not in server_ui_settings(4311, {"PREFECT_UI_API_URL": "https://lab.example/api"})  # a proxy setting is kept


def test_the_demo_config_has_a_dissolution_method_and_a_bad_one_is_one_line(tmp_path, capsys):
    from nanoloop.loop.config import default_config

    method = default_config().dissolution_method
    assert (method.apparatus, method.volume_ml, method.temperature_c) == ("sample-and-separate", 50.0, 37.0)
    from nanoloop.loop.config import example_config_text

    config = tmp_path / "campaign.toml"
    config.write_text(example_config_text().replace('apparatus = "sample-and-separate"', 'apparatus = "USP 9"'))
    assert main(["run", str(config), str(tmp_path / "s"), "--auto-approve"]) == 2
    err = capsys.readouterr().err.strip()
    assert "dissolution_method.apparatus" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_curves_carry_the_dissolution_method(store):
    curves = nanoloop.curves(str(store))
    assert set(curves["apparatus"]) == {"sample-and-separate"} and set(curves["temperature_c"]) == {37.0}
    assert set(curves["volume_ml"]) == {50.0}


def test_the_simulated_dissolution_tester_follows_the_method():
    from nanoloop.loop.config import default_config

    config = default_config()
    method = config.dissolution_method.model_copy(update={"temperature_c": 32.0, "sampling_times_hours": [2.0, 24.0, 96.0, 336.0]})
    described = build_instruments(config.model_copy(update={"dissolution_method": method}))["dissolution"].describe()
    assert described["temperature_c"] == 32.0 and list(described["sampling_times_hours"]) == [2.0, 24.0, 96.0, 336.0]


def test_the_demo_progress_line_says_why_formulations_failed(store):
    from nanoloop.flows.rounds import _why_failed

    campaign = Campaign.open(str(store))
    failed = campaign.formulations().query("status == 'failed'")["formulation_id"].tolist()
    line = _why_failed(campaign, failed)
    reasons = Ledger(store).read("events").query("status == 'failed'")["reason"]
    assert line.startswith(": ") and all(reason in line for reason in reasons)
    assert _why_failed(campaign, []) == ""


def test_the_blend_option_trains_stores_and_loads_a_blended_model(copy):
    from nanoloop.loop.models.blend import BlendedRelease
    from nanoloop.loop.campaign.training import ModelStore

    campaign = Campaign.open(str(copy))
    config = campaign.config.model_copy(update={"surrogate": campaign.config.surrogate.model_copy(update={"model": "blend"})})
    models = ModelStore(campaign.ledger, config)
    trained = models.train(3, fit_members=lambda *a: pytest.fail("the blend trains in this process"))
    assert isinstance(trained.model, BlendedRelease) and isinstance(models.load(trained.version), BlendedRelease)
    metrics = json.loads(campaign.ledger.read("models").set_index("model_version").loc[trained.version, "metrics_json"])
    assert metrics["model"] == "blend" and metrics["training"] == "batched"
    assert trained.version not in set(campaign.ledger.read("models")["model_version"].iloc[:-1])  # not the network's version
