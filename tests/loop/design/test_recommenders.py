import json

import numpy as np
import pytest

from nanoloop.loop.design.acquisition import AcquisitionSettings, choose_batch, search
from nanoloop.loop.design.candidates import SearchSettings
from nanoloop.loop.config import AcquisitionConfig, TargetProfile, default_config
from nanoloop.loop.errors import InputError
from nanoloop.loop.design.objective import Objective
from nanoloop.loop.campaign.proposing import proposal_rows
from nanoloop.loop.design.recommenders import Proposal, SobolStart
from nanoloop.loop.design.strategies import STRATEGIES, STRATEGY_NAMES, Strategy

TARGET = TargetProfile(times_hours=[24, 72, 168, 336, 672], release_pct=[20, 40, 65, 80, 95])


class SizeModel:
    """Two members: release speed set by particle size (encoded column 7)."""

    def predict_curves(self, features, times_hours):
        x = np.asarray(features)[:, 7]
        t = np.asarray(times_hours, float)
        return np.stack([1 - np.exp(-(t[None, :] / (10 ** (1.0 + 2.5 * x)[:, None] * k))) for k in (0.9, 1.1)])


def _campaign(tmp_path, **config_changes):
    from nanoloop.adapters.simulated import SimulatedDissolution, SimulatedSynthesis
    from nanoloop.loop.campaign.campaign import Campaign
    from nanoloop.loop.config import parse_config
    from nanoloop.loop.store.ledger import Ledger

    data = default_config().model_dump(mode="json")
    data["surrogate"].update(epochs=30, members=3)
    data["acquisition"].update(pool_size=256, refine_starts=2, refine_steps=2, gp_restarts=0)
    data.update(config_changes)
    return Campaign(parse_config(data), Ledger(tmp_path / "store"),
                    {"synthesis": SimulatedSynthesis(seed=3), "dissolution": SimulatedDissolution(seed=3)})


def test_the_config_accepts_exactly_the_strategy_table():
    assert AcquisitionConfig.model_fields["strategy"].annotation.__args__ == STRATEGY_NAMES == tuple(STRATEGIES)


def test_a_new_strategy_is_one_table_entry(monkeypatch):
    """A strategy preferring small particles: the picker and the refinement use it with no other change."""
    small = Strategy(lambda scored, incumbent, settings, member: -scored.mean, params=())
    monkeypatch.setitem(STRATEGIES, "slowest", small)
    space = default_config().design_space()
    found = search(SizeModel(), Objective(TARGET), space, 4, 0.0, AcquisitionSettings("slowest"),
                   SearchSettings(pool_size=128, refine_starts=4, refine_steps=3, seed=2))
    assert found.batch.params["strategy"] == "slowest" and (found.candidates.origin == "refined").any()
    # f2 is lowest far from the target: the picks are the pool's worst
    assert found.batch.objective_mean.max() <= np.median(found.samples.mean)
    pool = np.random.default_rng(0).uniform(size=(50, 8))
    assert len(choose_batch(SizeModel(), TARGET, pool, 3, 0.0, AcquisitionSettings("slowest")).indices) == 3


def test_search_settings_reject_nonsense():
    with pytest.raises(InputError, match="pool_size >= 1"):
        SearchSettings(pool_size=0)


def test_proposal_rows_carry_predictions_and_provenance():
    recipes = ({"a": 1.0}, {"a": 2.0})
    proposal = Proposal(recipes, "acquisition", "ei", {"strategy": "ei"}, "M001-x", np.array([1.0, 24.0]),
                        np.array([[10.0, 50.0], [20.0, 60.0]]), np.ones((2, 2)), np.array([70.0, 60.0]), np.array([3.0, 4.0]),
                        np.array([1.5, 0.5])).with_params(recommender="test")
    rows = proposal_rows(proposal, "c", 2, 7, None)
    assert [json.loads(r["parameters_json"]) for r in rows] == list(recipes)
    assert rows[1]["predicted_release_pct"] == [20.0, 60.0] and rows[1]["predicted_objective"] == 60.0
    assert rows[0]["acquisition_value"] == 1.5 and rows[0]["model_version"] == "M001-x" and rows[0]["round"] == 2
    assert json.loads(rows[0]["acquisition_params_json"]) == {"strategy": "ei", "recommender": "test"}
    assert rows[0]["formulation_id"] != rows[1]["formulation_id"]
    plain = proposal_rows(Proposal(recipes, "initial-design", "sobol"), "c", 0, 7, None)
    assert plain[0]["predicted_times_hours"] is None and np.isnan(plain[0]["predicted_objective"])


def test_campaign_records_which_recommender_proposed_and_why(tmp_path):
    campaign = _campaign(tmp_path)
    campaign.run_round(0)
    campaign.propose(1)
    forms = campaign.formulations()
    first = json.loads(forms.loc[forms["round"] == 0, "acquisition_params_json"].iloc[0])
    later = json.loads(forms.loc[forms["round"] == 1, "acquisition_params_json"].iloc[0])
    assert first["recommender"] == "sobol-start" and "no trained surrogate" in first["chosen_because"]
    assert later["recommender"] == "ensemble-acquisition" and "trained on 8 measured formulations" in later["chosen_because"]
    assert later["strategy"] == "ei" and forms.loc[forms["round"] == 1, "model_version"].str.startswith("M001-").all()


def test_a_given_recommender_replaces_the_choice_and_never_repeats(tmp_path):
    campaign = _campaign(tmp_path)
    big = campaign.propose(0, recommender=SobolStart(size=20))
    assert len(big) == 20 == len(set(big))
    again = campaign.propose(1, recommender=SobolStart(size=20))  # round 1's Sobol seed differs, taken ones are skipped
    assert not set(again) & set(big) and len(again) == 20
    params = json.loads(campaign.formulations()["acquisition_params_json"].iloc[0])
    assert params["recommender"] == "sobol-start" and params["chosen_because"] == "given by the caller"


def test_the_acquisition_recommender_without_a_model_is_an_input_error(tmp_path):
    from nanoloop.loop.design.ensemble_recommender import EnsembleAcquisition

    campaign = _campaign(tmp_path)
    with pytest.raises(InputError, match="needs a trained surrogate"):
        campaign.propose(0, recommender=EnsembleAcquisition())
    assert campaign.formulations().empty  # nothing written
