"""Storing earlier experiments in a campaign (nanoloop.loop.store.importing): rows, idempotence, the next designed round."""

import json
import os

import numpy as np
import pytest

from nanoloop.adapters.simulated import SimulatedDissolution, SimulatedSynthesis
from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.config import load_config, parse_config
from nanoloop.loop.errors import InputError
from nanoloop.loop.campaign.evaluation import campaign_status
from nanoloop.loop.store.experiments import read_experiments, read_mapping
from nanoloop.loop.store.importing import import_experiments
from nanoloop.loop.store.ledger import Ledger
from nanoloop.loop.store.measurements import measured_scores

EXAMPLES = os.path.join(os.path.dirname(__import__("nanoloop.loop", fromlist=["x"]).__file__), "examples")
RECIPE = {"polymer": "PLGA 50:50", "polymer_mw_kda": 40, "drug_logp": 2.0, "drug_loading_pct": 10, "particle_size_nm": 200,
          "peg_fraction": 0.1, "ph_responsive_fraction": 0.1, "medium_ph": 7.4}


def _campaign(tmp_path, name="store", **space_changes):
    """The demo campaign with a fast surrogate and search (the settings tests use), on the simulated lab."""
    data = load_config(os.path.join(EXAMPLES, "demo.toml")).model_dump(mode="json")
    data["surrogate"].update(epochs=30, members=3)
    data["acquisition"].update(pool_size=256, refine_starts=2, refine_steps=2, gp_restarts=0)
    data["space"].update(space_changes)
    return Campaign(parse_config(data), Ledger(tmp_path / name),
                    {"synthesis": SimulatedSynthesis(seed=3), "dissolution": SimulatedDissolution(seed=3)})


def _sheet(path, recipes, release=((5, 30, 60, 85),)):
    lines = [",".join([*RECIPE, "Size measured (nm)", "1 h", "24 h", "7 d", "28 d"])]
    for recipe in recipes:
        for curve in release:
            lines.append(",".join([*(str(v) for v in {**RECIPE, **recipe}.values()), "180", *map(str, curve)]))
    path.write_text("\n".join(lines) + "\n")
    return path


def _read(campaign, path, **kw):
    return read_experiments(path, campaign.space, {"Size measured (nm)": "size_nm"}, campaign=campaign.config.name, **kw)


def _files(root):
    return {os.path.join(d, f): open(os.path.join(d, f), "rb").read() for d, _, names in os.walk(root) for f in names}


def test_imported_rows_are_measured_formulations_of_round_minus_1(tmp_path):
    campaign = _campaign(tmp_path)
    sheet = _sheet(tmp_path / "old.csv", [{}, {"polymer": "PLA"}], release=((5, 30, 60, 85), (7, 32, 62, 87)))
    ex = _read(campaign, sheet)
    report = import_experiments(campaign, ex)
    assert len(report.new) == 2 and not report.already
    forms = campaign.formulations().set_index("formulation_id")
    assert set(forms["round"]) == {-1} and set(forms["origin"]) == {"imported"} and set(forms["acquisition"]) == {"import"}
    assert set(forms["model_version"]) == {""} and set(forms["status"]) == {"measured"}
    params = json.loads(forms.loc[report.new[0], "acquisition_params_json"])
    assert params == {"source_file": "old.csv", "source_sha256": ex.sha256, "source_rows": ["line 2", "line 3"], "outside_space": []}
    curves = campaign.ledger.read("curves")
    assert len(curves) == 16 and set(curves["instrument"]) == {"import"} and set(curves["raw_checksum"]) == {ex.sha256}
    events = campaign.ledger.read("events").set_index("formulation_id")
    rows = curves[curves["formulation_id"] == report.new[0]].to_dict("records")
    objective, f2 = measured_scores(campaign.ledger, campaign.config, rows)[report.new[0]]  # the scoring of lab curves
    assert events.loc[report.new[0], "measured_f2"] == pytest.approx(f2) and events.loc[report.new[0], "round"] == -1
    assert campaign.ledger.read("characterization").set_index("formulation_id").loc[report.new[0], "size_nm"] == 180.0
    assert len(campaign.ledger.read("kinetics")) == 2
    assert campaign.current_round() == 0  # imports are not a designed round


def test_the_same_file_twice_writes_nothing(tmp_path):
    campaign = _campaign(tmp_path)
    sheet = _sheet(tmp_path / "old.csv", [{}, {"polymer": "PLA"}])
    import_experiments(campaign, _read(campaign, sheet))
    before = _files(tmp_path / "store")
    again = import_experiments(campaign, _read(campaign, sheet))
    assert again.new == [] and len(again.already) == 2
    assert again.summary_line().startswith("imported old.csv: 0 new, 2 already imported")
    assert _files(tmp_path / "store") == before


def test_a_recipe_already_in_the_campaign_is_skipped_with_a_note(tmp_path):
    campaign = _campaign(tmp_path)
    designed = campaign.propose(0)
    recipe = json.loads(campaign.formulations().set_index("formulation_id").loc[designed[0], "parameters_json"])
    sheet = _sheet(tmp_path / "old.csv", [recipe, {}])
    report = import_experiments(campaign, _read(campaign, sheet))
    assert report.skipped == {designed[0]: "the same recipe is already in the campaign (round 0, origin initial-design)"}
    forms = campaign.formulations()
    assert (forms["formulation_id"] == designed[0]).sum() == 1 and len(report.new) == 1
    other = _sheet(tmp_path / "other.csv", [{}], release=((6, 31, 61, 86),))  # the same recipe from another file
    assert "file old.csv" in import_experiments(campaign, _read(campaign, other)).skipped[report.new[0]]


def test_bad_rows_refuse_the_file_unless_skipped(tmp_path):
    campaign = _campaign(tmp_path)
    sheet = _sheet(tmp_path / "bad.csv", [{}, {"polymer": "Chitosan"}])
    with pytest.raises(InputError, match=r"bad.csv line 3, column 'polymer': unknown polymer 'Chitosan'.*--skip-bad"):
        import_experiments(campaign, _read(campaign, sheet))
    assert campaign.formulations().empty
    report = import_experiments(campaign, _read(campaign, sheet), skip_bad=True)
    assert len(report.new) == 1 and [b.row for b in report.bad_rows] == ["line 3"]


def test_outside_the_space_trains_but_is_never_proposed(tmp_path):
    campaign = _campaign(tmp_path, polymer_mw_kda={"min": 10, "max": 60})
    recipes = [{"polymer_mw_kda": 90, "polymer": p} for p in ("PLA", "PCL")] + [{"polymer": "PLGA 75:25"}]
    report = import_experiments(campaign, _read(campaign, _sheet(tmp_path / "old.csv", recipes)))
    assert len(report.outside_space) == 2
    assert all(r == ["polymer_mw_kda = 90 is outside [10, 60]"] for r in report.outside_space.values())
    stored = campaign.formulations().set_index("formulation_id")
    assert json.loads(stored.loc[next(iter(report.outside_space)), "acquisition_params_json"])["outside_space"]
    proposed = campaign.propose(0)
    forms = campaign.formulations().set_index("formulation_id")
    assert forms.loc[proposed, "model_version"].str.startswith("M000-").all()  # trained on the imported curves
    assert campaign.ledger.read("models")["n_formulations"].tolist() == [3]
    for fid in proposed:
        assert campaign.space.outside_reasons(json.loads(forms.loc[fid, "parameters_json"])) == []
    assert not set(proposed) & set(report.new)


def test_status_shows_imports_apart_from_the_designed_rounds(tmp_path):
    campaign = _campaign(tmp_path)
    import_experiments(campaign, _read(campaign, _sheet(tmp_path / "old.csv", [{}, {"polymer": "PLA"}])))
    status = campaign_status(campaign.ledger, campaign.config.target, campaign.config.name)
    assert status["rounds"] == []
    assert status["imported"]["formulations"] == 2 and status["imported"]["files"][0]["file"] == "old.csv"
    campaign.propose(0)
    status = campaign_status(campaign.ledger, campaign.config.target, campaign.config.name)
    assert [r["round"] for r in status["rounds"]] == [0] and status["rounds"][0]["proposed"] == 8


@pytest.mark.slow
def test_the_shipped_example_starts_a_campaign_whose_round_0_is_model_driven(tmp_path):
    """The example sheet, imported into a fresh demo campaign; one designed round in-process on the simulated lab."""
    campaign = _campaign(tmp_path)
    mapping = read_mapping(os.path.join(EXAMPLES, "earlier_formulations_map.toml"))
    ex = read_experiments(os.path.join(EXAMPLES, "earlier_formulations.csv"), campaign.space, mapping, campaign=campaign.config.name)
    assert len(ex.recipes) == 24 and not ex.bad_rows
    assert len(import_experiments(campaign, ex).new) == 24
    campaign.run_round(0)
    forms = campaign.formulations()
    round0 = forms[forms["round"] == 0]
    assert len(round0) == 8 and (round0["origin"] == "acquisition").all()
    params = json.loads(round0["acquisition_params_json"].iloc[0])
    assert params["recommender"] == "ensemble-acquisition" and "24 imported" in params["chosen_because"]
    assert "no Sobol start" in params["chosen_because"]
    models = campaign.ledger.read("models")
    assert models.loc[models["round"] == 0, "n_formulations"].tolist() == [24]
    assert (round0["status"] == "measured").sum() >= 4 and campaign.current_round() == 1
    status = campaign_status(campaign.ledger, campaign.config.target, campaign.config.name)
    assert status["rounds"][0]["model_version"].startswith("M000-") and status["imported"]["formulations"] == 24
    assert np.isfinite(status["rounds"][0]["best_f2_round"])
    from nanoloop.loop.campaign.evaluation import prospective_errors
    from nanoloop.loop.campaign.review import batch_review

    assert set(prospective_errors(campaign.ledger)["round"]) == {0}  # scored on model-made proposals only

    review = batch_review(campaign)  # the designed round, never the imported formulations
    assert review["round"] == 0 and len(review["formulations"]) == 8
