"""Evidence-chosen decisions of the early rounds: how a prior is used, which model proposes."""

import json

import numpy as np
import pytest

from nanoloop.loop.design.cold_start import FlatCurves, choose_prior_use, replay_errors

TIMES = np.array([24.0, 168.0, 672.0])


def _release(x: np.ndarray, slower: float = 1.0) -> np.ndarray:
    """Release (%) at TIMES: faster with column 0, slower with column 1."""
    rate = np.exp(2.0 * x[:, 0] - 1.5 * x[:, 1]) / (100.0 * slower)
    return 100.0 * (1.0 - np.exp(-rate[:, None] * TIMES[None, :]))


def _data(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=(n, 3))


def test_a_prior_from_the_same_system_is_used():
    own, prior = _data(10, 0), _data(40, 1)
    use, mae, reason = choose_prior_use(own, _release(own), prior, _release(prior), seed=0)
    assert use in ("joint", "fine-tune")
    assert mae[use] < mae["none"]
    assert "cross-validation on 10 measured formulations" in reason


def test_an_unrelated_prior_is_not_used():
    own, prior = _data(12, 0), _data(40, 1)
    unrelated = 100.0 - _release(prior[:, ::-1])  # the opposite dependence on the variables
    use, mae, _ = choose_prior_use(own, _release(own), prior, unrelated, seed=0)
    assert mae["joint"] > mae["none"]
    assert use in ("none", "fine-tune")  # a GP on the residuals can still undo a wrong mean


def test_with_too_few_formulations_the_prior_is_used_as_it_is():
    own, prior = _data(2, 0), _data(20, 1)
    use, mae, reason = choose_prior_use(own, _release(own), prior, _release(prior))
    assert use == "joint" and mae == {} and "fewer than 4" in reason


class Exact:
    def predict_curves(self, features, times_hours):
        return _release(np.asarray(features, float))[None] / 100.0


def test_replay_scores_both_proposers_on_the_same_rounds():
    before, after = _data(8, 0), _data(8, 1)
    rounds = [{"before": (before, _release(before)), "after": (after, _release(after)), "ensemble": Exact()},
              {"before": (before, _release(before)), "after": (after, _release(after)), "ensemble": None}]  # no model: skipped
    errors = replay_errors(rounds, TIMES)
    assert errors["ensemble"] == pytest.approx(0.0, abs=1e-6) and errors["curve-gp"] > 0.1
    assert replay_errors(rounds[1:], TIMES) == {}


def test_flat_curves_make_the_residual_gp_a_plain_gp():
    assert FlatCurves(4).predict_curves(np.zeros((3, 2)), TIMES).shape == (4, 3, 3)


# -- in a campaign --------------------------------------------------------------------------
def _campaign(store, *, prior=None, rounds=2, seed=3, **acquisition):
    from nanoloop.adapters.simulated import SimulatedDissolution, SimulatedSynthesis
    from nanoloop.loop.campaign.campaign import Campaign
    from nanoloop.loop.config import default_config, parse_config
    from nanoloop.loop.store.ledger import Ledger

    data = default_config().model_dump(mode="json")
    data.update(name=f"cold-{seed}", seed=seed, rounds=rounds)
    data["surrogate"].update(epochs=30, members=3)
    data["acquisition"].update(pool_size=256, refine_starts=2, refine_steps=2, gp_restarts=0, **acquisition)
    if prior is not None:
        data["prior"] = prior
    return Campaign(parse_config(data), Ledger(store),
                    {"synthesis": SimulatedSynthesis(seed=seed), "dissolution": SimulatedDissolution(seed=seed)})


@pytest.fixture
def gp_restarts_used(monkeypatch):
    """The optimiser restarts of every GP fitted with the optimiser (the residual and curve GPs, the prior's cross-validation)."""
    from nanoloop.loop.design import cold_start
    from nanoloop.loop.models import gp, residual_gp

    used = []

    def spy(X, y, seed, kernel=None, restarts=1):
        if kernel is None:
            used.append(restarts)
        return gp.fit_standardised_gp(X, y, seed, kernel, restarts)

    monkeypatch.setattr(residual_gp, "fit_standardised_gp", spy)
    monkeypatch.setattr(cold_start, "fit_standardised_gp", spy)
    return used


def _provenance(campaign, round_):
    frame = campaign.ledger.read("formulations")
    return json.loads(frame.loc[frame["round"] == round_, "acquisition_params_json"].iloc[0])


@pytest.fixture(scope="module")
def earlier_store(tmp_path_factory):
    """An earlier campaign's ledger: 16 Sobol formulations measured on the simulated lab."""
    from nanoloop.loop.design.recommenders import SobolStart

    store = tmp_path_factory.mktemp("earlier") / "store"
    _campaign(store, seed=11).run_round(0, recommender=SobolStart(size=16))
    return store


def test_a_prior_store_makes_round_0_model_driven(tmp_path, earlier_store, gp_restarts_used):
    campaign = _campaign(tmp_path / "store", prior={"stores": [str(earlier_store)]})
    ids = campaign.run_round(0)
    provenance = _provenance(campaign, 0)
    assert provenance["recommender"] == "ensemble-acquisition"
    assert provenance["prior"]["use"] == "joint" and provenance["prior"]["prior_formulations"] >= 10
    assert "prior ones (joint)" in provenance["chosen_because"]
    for recipe in campaign.ledger.read("formulations")["parameters_json"]:
        campaign.space.validate(json.loads(recipe))  # inside the space
    assert len(ids) == campaign.config.batch_size
    # the earlier store is only read
    from nanoloop.loop.store.ledger import Ledger
    assert not Ledger(earlier_store, create=False).read("formulations")["campaign"].eq(campaign.config.name).any()
    # round 1: this campaign's own formulations decide how the prior is used, figures stored
    campaign.run_round(1)
    prior = _provenance(campaign, 1)["prior"]
    assert prior["use"] in ("none", "joint", "fine-tune")
    assert set(prior["held_out_mae_pct"]) == {"none", "joint", "fine-tune"}
    models = campaign.ledger.read("models")
    assert json.loads(models.sort_values("round")["metrics_json"].iloc[-1])["prior"]["use"] == prior["use"]
    # `nanoloop status` says which was used, round by round
    from rich.console import Console

    from nanoloop.flows.progress import rounds_table
    from nanoloop.loop.campaign.evaluation import campaign_status

    status = campaign_status(campaign.ledger, campaign.config.target, campaign.config.name)
    assert [r["prior_use"] for r in status["rounds"]] == ["joint", prior["use"]]
    console = Console(width=80, record=True)  # a terminal's width: every column stays readable
    console.print(rounds_table(status))
    text = console.export_text()
    words = " ".join(text.split())
    assert f"1 ensemble, prior {prior['use']} ({prior['prior_formulations']})" in words and "a [prior] trained" in words
    assert "round" in text and "…" not in text
    assert gp_restarts_used and set(gp_restarts_used) == {0}  # the config's [acquisition] gp_restarts, everywhere


def test_a_prior_lacking_a_variable_needs_a_fill_value(tmp_path, earlier_store):
    from nanoloop.loop.errors import InputError
    from nanoloop.loop.store.ledger import Ledger

    # an earlier store whose records do not name the medium pH (it was one method's condition there)
    source, copy = Ledger(earlier_store, create=False), Ledger(tmp_path / "earlier")
    forms = source.read("formulations")
    copy.append("formulations", forms.assign(parameters_json=[json.dumps({k: v for k, v in json.loads(p).items() if k != "medium_ph"})
                                                              for p in forms["parameters_json"]]))
    copy.append("curves", source.read("curves"))
    campaign = _campaign(tmp_path / "a", prior={"stores": [str(tmp_path / "earlier")]})
    with pytest.raises(InputError, match=r"has no values of variable 'medium_ph'.*fill"):
        campaign.propose(0)
    assert campaign.ledger.read("formulations").empty  # nothing written
    campaign = _campaign(tmp_path / "b", prior={"stores": [str(tmp_path / "earlier")], "fill": {"medium_ph": 7.4}})
    campaign.propose(0)
    assert any("medium_ph missing, filled with 7.4" in n for n in campaign.models.prior.notes)


def test_the_curve_gp_proposes_when_configured(tmp_path):
    campaign = _campaign(tmp_path / "store", cold_start="curve-gp")
    campaign.run_round(0)
    ids = campaign.propose(1)
    provenance = _provenance(campaign, 1)
    assert provenance["recommender"] == "curve-gp-acquisition" and provenance["curve_gp_on"] >= 2
    frame = campaign.ledger.read("formulations").set_index("formulation_id").loc[ids]
    assert frame["predicted_release_pct"].map(len).eq(len(campaign.config.target.times_hours)).all()
    assert frame["predicted_objective"].notna().all()


def test_the_cold_start_choice_is_recorded_each_round(tmp_path, gp_restarts_used):
    campaign = _campaign(tmp_path / "store", cold_start="auto")
    for round_ in range(3):
        campaign.run_round(round_)
    first, second = _provenance(campaign, 1), _provenance(campaign, 2)
    assert "no model-made round" in first["chosen_because"]
    errors = second["cold_start"]["prospective_mae_pct"]
    assert set(errors) == {"curve-gp", "ensemble"} and second["cold_start"]["replayed_rounds"] == 1
    better = min(errors, key=errors.get)
    assert second["recommender"] == ("curve-gp-acquisition" if better == "curve-gp" else "ensemble-acquisition")
    assert gp_restarts_used and set(gp_restarts_used) == {0}  # the config's [acquisition] gp_restarts, everywhere


def test_a_prior_file_is_read_as_import_reads_it(tmp_path):
    from importlib import resources

    from nanoloop.loop.errors import InputError

    examples = resources.files("nanoloop.loop").joinpath("examples")
    sheet, mapping = str(examples / "earlier_formulations.csv"), str(examples / "earlier_formulations_map.toml")
    campaign = _campaign(tmp_path / "store", prior={"files": [sheet], "map_file": mapping})
    campaign.propose(0)
    provenance = _provenance(campaign, 0)
    assert provenance["recommender"] == "ensemble-acquisition" and provenance["prior"]["prior_formulations"] == 24
    assert campaign.ledger.read("curves").empty  # the prior is not this campaign's data
    # a bad row stops the campaign with the file, row and column named; nothing is proposed
    bad = tmp_path / "bad.csv"
    lines = open(sheet, encoding="utf-8").read().splitlines()
    header = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    cells = lines[header + 1].split(",")
    cells[-1] = "180"
    lines[header + 1] = ",".join(cells)
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    campaign = _campaign(tmp_path / "other", prior={"files": [str(bad)], "map_file": mapping})
    with pytest.raises(InputError, match=r"prior file: .*bad\.csv.*column"):
        campaign.propose(0)
    assert campaign.ledger.read("formulations").empty


def test_the_readme_prior_example_is_a_valid_config_relative_to_its_file(tmp_path):
    import re
    import tomllib
    from pathlib import Path

    from nanoloop.loop.config import example_config_text, load_config

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    block = re.search(r"<!-- example: prior -->\n```toml\n(.*?)```", readme, re.S)
    assert block, "README lost its [prior] example"
    folder = tmp_path / "campaigns" / "new"
    folder.mkdir(parents=True)
    (folder / "campaign.toml").write_text(example_config_text() + "\n" + block.group(1))
    config = load_config(folder / "campaign.toml")
    assert config.prior.stores == [str((tmp_path / "campaigns" / "earlier-campaign-ledger").resolve())]
    assert config.prior.fill == {"medium_ph": 7.4} and config.prior.use == "auto"
    assert tomllib.loads(block.group(1))["prior"]["use"] == "auto"


def test_a_missing_prior_store_is_one_clear_error(tmp_path):
    from nanoloop.loop.errors import InputError

    campaign = _campaign(tmp_path / "store", prior={"stores": [str(tmp_path / "nowhere")]})
    with pytest.raises(InputError, match="prior store .*nowhere.* does not exist"):
        campaign.propose(0)


def test_by_default_the_ensemble_proposes_and_says_so(tmp_path):
    campaign = _campaign(tmp_path / "store")
    campaign.run_round(0)
    campaign.propose(1)
    provenance = _provenance(campaign, 1)
    assert provenance["recommender"] == "ensemble-acquisition"
    assert "set by [acquisition] cold_start = 'ensemble'" in provenance["chosen_because"]


def test_a_prior_set_not_to_be_used_leaves_round_0_to_the_sobol_design(tmp_path, earlier_store):
    campaign = _campaign(tmp_path / "store", prior={"stores": [str(earlier_store)], "use": "none"})
    campaign.propose(0)
    assert _provenance(campaign, 0)["recommender"] == "sobol-start"
