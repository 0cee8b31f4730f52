"""A campaign on the warm-start example (drug_logp and medium_ph fixed), in this process without Prefect.

Two measured rounds of 4 and a third batch awaiting approval are made once for
the module, on a shrunk surrogate and pool (as tests/flows/test_cli_review.py).
"""

import json
import shutil
import tomllib

import pytest

from nanoloop.adapters.registry import build_instruments
from nanoloop.flows.cli import main
from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.config import example_config_text, parse_config
from nanoloop.loop.errors import InputError
from nanoloop.loop.store.ledger import Ledger

FIXED = {"drug_logp": 2.1, "medium_ph": 7.4}


def _small(data: dict, name: str) -> dict:
    data["name"], data["batch_size"] = name, 4
    data["surrogate"].update(epochs=30, members=3, hidden=16)
    data["acquisition"].update(pool_size=256, refine_starts=2, refine_steps=2, gp_restarts=0)
    return data


def _files(store):
    return sorted((str(p.relative_to(store)), p.stat().st_size) for p in store.rglob("*") if p.is_file() and p.name != ".lock")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    config = parse_config(_small(tomllib.loads(example_config_text("warm-start")), "warm"))
    path = tmp_path_factory.mktemp("warm") / "ledger"
    campaign = Campaign(config, Ledger(path), build_instruments)
    for r in range(2):
        campaign.run_round(r)
    campaign.propose(2)
    return path


@pytest.fixture
def copy(store, tmp_path):
    target = tmp_path / "ledger"
    shutil.copytree(store, target)
    return target


def test_every_proposal_carries_the_fixed_values(store):
    forms = Campaign.open(str(store)).formulations()
    recipes = [json.loads(p) for p in forms["parameters_json"]]
    assert len(recipes) == 12 and sorted(forms["round"].unique()) == [0, 1, 2]
    assert all(r["drug_logp"] == 2.1 and r["medium_ph"] == 7.4 for r in recipes)
    assert set(forms.loc[forms["round"] > 0, "origin"]) == {"acquisition"}  # the model-driven rounds too
    assert len({r["particle_size_nm"] for r in recipes}) == 12  # the designed variables vary


def test_an_edit_of_a_fixed_variable_is_refused_and_nothing_is_written(copy, capsys):
    fid = Campaign.open(str(copy)).awaiting_approval(2)[0]
    before = _files(copy)
    assert main(["approve", str(copy), "--edit", f"{fid}:drug_logp=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "drug_logp is fixed at 2.1 for this campaign, got 3" in err and fid in err
    assert _files(copy) == before
    assert main(["batch", str(copy), "--edit", f"{fid}:medium_ph=6"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "medium_ph cannot be edited, fixed for this campaign (drug_logp = 2.1, medium_ph = 7.4)" in err
    assert main(["approve", str(copy), "--edit", f"{fid}:particle_size_nm=200"]) == 0  # a designed variable still can be
    edited = Campaign.open(str(copy)).formulations()
    assert json.loads(edited[edited["origin"] == f"edit-of:{fid}"]["parameters_json"].iloc[0])["drug_logp"] == 2.1


def test_review_and_approval_form_show_fixed_variables_as_fixed(store, capsys):
    from nanoloop.dashboard.approval_view import review_table
    from nanoloop.loop.campaign.review import batch_review

    review = batch_review(Campaign.open(str(store)), 2)
    assert review["fixed"] == FIXED
    table = str(review_table(review))
    assert "drug_logp (fixed)" in table and "medium_ph (fixed)" in table and "particle_size_nm (fixed)" not in table
    assert main(["batch", str(store)]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps at the terminal width
    assert "fixed for this campaign (not designed, not editable): drug_logp = 2.1, medium_ph = 7.4" in out


def test_explain_says_fixed_and_predict_may_ask_about_other_values(copy, capsys, tmp_path):
    assert main(["explain", str(copy), "--compute"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "drug_logp (fixed)" in out and "medium_ph (fixed)" in out and "not a driver of this campaign's choices" in out
    assert main(["explain", str(copy), "--json"]) == 0
    explained = json.loads(capsys.readouterr().out)
    features = explained["features"]
    assert {f["feature"] for f in features if f["fixed"]} == set(FIXED)
    assert [f["fixed"] for f in features][-2:] == [True, True]  # listed after the designed variables
    from nanoloop.dashboard import data, figures, insights

    snap = data.load_snapshot(copy)
    bars = {y for trace in figures.importance_figure(snap, explained["round"]).data for y in trace.y}
    assert {"drug_logp (fixed)", "medium_ph (fixed)", "particle_size_nm"} <= bars
    axes = [d.label for d in insights.coverage_figure(snap).data[0].dimensions]
    assert "drug_logp (fixed)" in axes and "polymer" in axes
    recipe = json.loads(Campaign.open(str(copy)).formulations()["parameters_json"].iloc[0])
    rows = [{**recipe, "drug_logp": 4.0}, recipe]
    (tmp_path / "whatif.csv").write_text(",".join(recipe) + "\n" + "\n".join(",".join(str(r[k]) for k in recipe) for r in rows) + "\n")
    assert main(["predict", str(copy), str(tmp_path / "whatif.csv"), "--json"]) == 0
    assert "drug_logp" in capsys.readouterr().out


def test_changing_a_fixed_value_needs_amend_and_the_model_keeps_the_varied_data(tmp_path, capsys):
    data = _small(tomllib.loads(example_config_text()), "amend-fixed")
    store = tmp_path / "ledger"
    campaign = Campaign(parse_config(data), Ledger(store), build_instruments)
    campaign.run_round(0)  # drug_logp varies in round 0
    before = (store / "blobs" / "campaign.json").read_text()
    data["space"]["drug_logp"]["value"] = 2.1
    with pytest.raises(InputError, match="different space.*--amend"):
        Campaign(parse_config(data), Ledger(store))
    (tmp_path / "fixed.toml").write_text(example_config_text().replace('name = "demo-sustained-release"', 'name = "amend-fixed"')
                                         .replace("min = -1.0\nmax = 5.0", "min = -1.0\nmax = 5.0\nvalue = 2.1"))
    assert main(["run", str(tmp_path / "fixed.toml"), str(store), "--auto-approve"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--amend" in err
    assert (store / "blobs" / "campaign.json").read_text() == before
    amended = Campaign(parse_config(data), Ledger(store), build_instruments, amend=True)
    events = Ledger(store).read("events")
    assert "config-amended" in set(events["status"])
    ids = amended.propose(1)
    forms = amended.formulations().set_index("formulation_id")
    assert len(ids) == 4 and all(json.loads(forms.loc[i, "parameters_json"])["drug_logp"] == 2.1 for i in ids)
    assert len({json.loads(p)["drug_logp"] for p in forms.loc[forms["round"] == 0, "parameters_json"]}) == 4  # trained on varied data
    data["space"]["drug_logp"]["value"] = 3.0  # a new fixed value is a change of the space again
    with pytest.raises(InputError, match="different space.*--amend"):
        Campaign(parse_config(data), Ledger(store))


def test_inverse_design_from_the_command_line_keeps_the_fixed_values(store, tmp_path, capsys):
    target = tmp_path / "target.csv"
    target.write_text("time_hours,release_pct\n24,20\n72,40\n168,65\n336,80\n672,95\n")
    assert main(["design", str(store), "--target", str(target), "--n", "3", "--pool-size", "512", "--json"]) == 0
    designs = json.loads(capsys.readouterr().out)["designs"]
    assert len(designs) == 3 and all(d["formulation"]["drug_logp"] == 2.1 and d["formulation"]["medium_ph"] == 7.4 for d in designs)
