import numpy as np
import pytest

from nanoloop.loop.design.acquisition import AcquisitionSettings, ObjectiveModel, choose_batch
from nanoloop.loop.config import TargetProfile
from nanoloop.loop.design.modal_compat import BayesianOptimizer

TARGET = TargetProfile(times_hours=[24, 72, 168, 336, 672], release_pct=[20, 40, 65, 80, 95])


class TwoMemberModel:
    """Curves set by the first feature: member curves agree near x0 = 0.5 and split apart elsewhere."""

    def predict_curves(self, features, times_hours):
        x = np.asarray(features)[:, 0]
        t = np.asarray(times_hours)
        centre = np.array(TARGET.release_pct) / 100
        a = np.clip(centre + (x[:, None] - 0.5), 0, 1)
        b = np.clip(centre + 2 * (x[:, None] - 0.5), 0, 1)
        return np.stack([a, b])[:, :, : len(t)]


def test_modal_teach_works_with_current_sklearn():
    from sklearn.gaussian_process import GaussianProcessRegressor

    rng = np.random.default_rng(0)
    X = rng.uniform(size=(5, 2))
    optimizer = BayesianOptimizer(estimator=GaussianProcessRegressor(optimizer=None), X_training=X, y_training=X.sum(1))
    optimizer.teach(np.array([[0.9, 0.9]]), np.array([1.8]))  # fails without loop.modal_compat
    assert optimizer.y_max == pytest.approx(1.8)


def test_objective_model_reports_mean_and_spread():
    pool = np.linspace(0, 1, 11)[:, None]
    mean, std = ObjectiveModel(TwoMemberModel(), TARGET).predict(pool, return_std=True)
    assert np.argmax(mean) == 5 and mean[5] == pytest.approx(100.0)
    assert std[5] < 1e-6 < std[0]


@pytest.mark.parametrize("strategy", ["ei", "ucb", "pi", "max_std", "thompson", "random"])
def test_every_strategy_returns_distinct_picks(strategy):
    pool = np.random.default_rng(1).uniform(size=(300, 3))
    batch = choose_batch(TwoMemberModel(), TARGET, pool, 8, incumbent=40.0, settings=AcquisitionSettings(strategy=strategy))
    assert len(batch.indices) == len(set(batch.indices.tolist())) == 8
    assert batch.objective_mean.shape == (8,)


def test_ei_picks_the_best_and_spreads_the_batch():
    pool = np.random.default_rng(2).uniform(size=(400, 3))
    diverse = choose_batch(TwoMemberModel(), TARGET, pool, 6, 40.0, AcquisitionSettings("ei"), diversity_length=0.3)
    top_k = choose_batch(TwoMemberModel(), TARGET, pool, 6, 40.0, AcquisitionSettings("ei"), diversity_length=0.0)
    best = np.argmin(np.abs(pool[:, 0] - 0.5))
    assert diverse.indices[0] == top_k.indices[0] == best

    def spread(idx):
        picked = pool[idx]
        return np.mean([np.linalg.norm(a - b) for i, a in enumerate(picked) for b in picked[i + 1 :]])

    assert spread(diverse.indices) > 1.5 * spread(top_k.indices)


def test_unknown_strategy():
    with pytest.raises(ValueError, match="unknown acquisition strategy"):
        AcquisitionSettings("magic")


# -- batches, pending formulations, constraints, the full search ------------------------------
from nanoloop.loop.design.acquisition import diverse_picks, search  # noqa: E402
from nanoloop.loop.design.candidates import SearchSettings, taken_checker  # noqa: E402
from nanoloop.loop.config import default_config  # noqa: E402
from nanoloop.loop.design.objective import Objective, PropertyConstraint  # noqa: E402


def test_pending_formulations_push_the_batch_away():
    pool = np.random.default_rng(3).uniform(size=(400, 3))
    best = int(np.argmin(np.abs(pool[:, 0] - 0.5) + np.abs(pool[:, 1] - 0.5)))
    free = choose_batch(TwoMemberModel(), TARGET, pool, 4, 40.0, AcquisitionSettings("ei"), diversity_length=0.2)
    blocked = choose_batch(TwoMemberModel(), TARGET, pool, 4, 40.0, AcquisitionSettings("ei"), diversity_length=0.2,
                           pending_encoded=pool[[best]])
    d_free = np.linalg.norm(pool[free.indices] - pool[best], axis=1).min()
    d_blocked = np.linalg.norm(pool[blocked.indices] - pool[best], axis=1).min()
    assert d_blocked > d_free
    assert blocked.params["pending"] == 1


def test_excluded_candidates_are_never_picked():
    pool = np.random.default_rng(4).uniform(size=(200, 3))
    first = choose_batch(TwoMemberModel(), TARGET, pool, 8, 40.0, AcquisitionSettings("ei"))
    exclude = np.zeros(len(pool), dtype=bool)
    exclude[first.indices] = True
    for strategy in ("ei", "ucb", "thompson", "max_std", "random"):
        again = choose_batch(TwoMemberModel(), TARGET, pool, 8, 40.0, AcquisitionSettings(strategy), exclude=exclude)
        assert not set(again.indices.tolist()) & set(first.indices.tolist())


def test_believer_spreads_ei_picks_without_any_penalty():
    pool = np.random.default_rng(5).uniform(size=(400, 3))
    plain = choose_batch(TwoMemberModel(), TARGET, pool, 6, 40.0, AcquisitionSettings("ei", believer=False), diversity_length=0.0)
    believer = choose_batch(TwoMemberModel(), TARGET, pool, 6, 40.0, AcquisitionSettings("ei", believer=True), diversity_length=0.0)
    assert plain.indices[0] == believer.indices[0]
    # after the first pick is "measured" at its predicted f2 (about 100), later picks must beat it
    assert plain.acquisition_value[1] > 10 * believer.acquisition_value[1]
    assert believer.params["believer"] and not plain.params["believer"]


def test_burst_constraint_steers_the_batch():
    pool = np.random.default_rng(6).uniform(size=(300, 3))
    # member curves are the target shifted by (x0 - 0.5) and 2 (x0 - 0.5): at 24 h, release 20 + 100 (x0 - 0.5) .. %
    objective = Objective(TARGET, constraints=(PropertyConstraint("burst_pct", max=15.0),))
    batch = choose_batch(TwoMemberModel(), TARGET, pool, 5, 40.0, AcquisitionSettings("ei"), objective=objective)
    free = choose_batch(TwoMemberModel(), TARGET, pool, 5, 40.0, AcquisitionSettings("ei"))
    p_free = objective.samples(TwoMemberModel(), pool[free.indices]).probability_feasible
    assert batch.probability_feasible[0] > 0.5 and pool[batch.indices[0], 0] < 0.5
    assert batch.probability_feasible.mean() > p_free.mean() + 0.2
    assert batch.params["constraints"] == ["release at 24 h (%) <= 15"]


def test_diverse_picks_is_top_k_without_length():
    u = np.array([5.0, 4.0, 3.0, 2.0])
    enc = np.zeros((4, 2))
    assert diverse_picks(u, enc, 3, 0.0)[0] == [0, 1, 2]


class SpaceModel:
    """Curves on the demo space: release speed set by particle size (encoded column 7), two members."""

    def predict_curves(self, features, times_hours):
        x = np.asarray(features)[:, 7]
        t = np.asarray(times_hours, float)
        tau = 10 ** (1.0 + 2.5 * x)
        curves = [1 - np.exp(-(t[None, :] / (tau[:, None] * k))) for k in (0.9, 1.1)]
        return np.stack(curves)


def test_search_refines_and_never_repeats_a_taken_formulation():
    space = default_config().design_space()
    objective = Objective(TARGET)
    settings = AcquisitionSettings("ei")
    candidates = SearchSettings(pool_size=256, refine_starts=8, refine_steps=5, seed=1, pool_seed=4)
    first = search(SpaceModel(), objective, space, 8, 0.0, settings, candidates)
    assert len(first.batch.indices) == 8 and (first.candidates.origin == "refined").sum() == 8
    picked = first.candidates.frame.iloc[first.batch.indices]
    from nanoloop.loop.design.candidates import formulation_ids

    taken = set(formulation_ids(space, "c", picked))
    second = search(SpaceModel(), objective, space, 8, 0.0, settings, candidates, is_taken=taken_checker(space, "c", taken))
    again = set(formulation_ids(space, "c", second.candidates.frame.iloc[second.batch.indices]))
    assert len(again) == 8 and not again & taken
    assert set(first.timings_s) == {"pool_s", "score_pool_s", "refine_s", "choose_s"}


def test_spread_scale_makes_ucb_explore():
    pool = np.random.default_rng(7).uniform(size=(300, 3))
    tight = choose_batch(TwoMemberModel(), TARGET, pool, 1, 40.0, AcquisitionSettings("ucb", beta=1.0))
    wide = choose_batch(TwoMemberModel(), TARGET, pool, 1, 40.0, AcquisitionSettings("ucb", beta=1.0, spread_scale=20.0))
    assert abs(pool[wide.indices[0], 0] - 0.5) > abs(pool[tight.indices[0], 0] - 0.5)
    assert wide.params["spread_scale"] == 20.0
    assert wide.objective_std[0] < 20  # the batch reports the members' own spread
    with pytest.raises(ValueError, match="spread_scale"):
        AcquisitionSettings("ei", spread_scale=0.0)


def test_residual_gp_pulls_the_ensemble_onto_the_measurements():
    from nanoloop.loop.models.residual_gp import ResidualCorrected

    rng = np.random.default_rng(8)
    X = rng.uniform(size=(30, 3))
    times = np.array(TARGET.times_hours, float)
    truth = 100 * TwoMemberModel().predict_curves(X, times).mean(axis=0) - 8.0  # the ensemble is 8 % points too high
    corrected = ResidualCorrected(TwoMemberModel(), times, draws=3, seed=0).fit(X, truth)
    curves = corrected.predict_curves(X, times)
    assert curves.shape == (2 * 3, 30, len(times))
    bias_before = np.mean(100 * TwoMemberModel().predict_curves(X, times).mean(axis=0) - truth)
    bias_after = np.mean(100 * curves.mean(axis=0) - truth)
    assert bias_before == pytest.approx(8.0, abs=1.0) and abs(bias_after) < 2.0
    with pytest.raises(ValueError, match="not among the corrected times"):
        corrected.predict_curves(X, [5.0])
    batch = choose_batch(corrected, TARGET, rng.uniform(size=(100, 3)), 4, 40.0, AcquisitionSettings("ei"))
    assert len(set(batch.indices.tolist())) == 4


def test_campaign_proposes_with_constraints_residual_gp_and_calibrated_spread(tmp_path):
    import json as _json

    from nanoloop.adapters.simulated import SimulatedDissolution, SimulatedSynthesis
    from nanoloop.loop.campaign.campaign import Campaign
    from nanoloop.loop.config import parse_config
    from nanoloop.loop.store.ledger import Ledger

    data = default_config().model_dump(mode="json")
    data["surrogate"].update(epochs=30, members=3)
    data["acquisition"].update(pool_size=256, refine_starts=4, refine_steps=3, gp_restarts=0)
    data["objective"] = {"constraints": [{"property": "size_nm", "min": 80, "max": 200},
                                         {"property": "encapsulation_efficiency_pct", "min": 60},
                                         {"property": "burst_pct", "max": 25}]}
    campaign = Campaign(parse_config(data), Ledger(tmp_path / "store"),
                        {"synthesis": SimulatedSynthesis(seed=2), "dissolution": SimulatedDissolution(seed=2)})
    for round_ in range(3):
        ids = campaign.run_round(round_)
    forms = campaign.formulations()
    assert forms["formulation_id"].is_unique and len(ids) == 8
    params = _json.loads(forms.loc[forms["round"] == 2, "acquisition_params_json"].iloc[0])
    assert params["constraints"] == ["80 <= size_nm <= 200", "encapsulation_efficiency_pct >= 60", "release at 24 h (%) <= 25"]
    assert params["residual_gp_on"] >= 4 and params["spread_calibrated_on"] >= 1 and params["spread_scale"] >= 1.0
    assert np.isfinite(campaign.incumbent())


def test_residual_gp_is_fitted_on_a_capped_subset():
    import pandas as pd

    from nanoloop.loop.design.ensemble_recommender import corrected_by_measurements
    from nanoloop.loop.design.measured import Measured

    space = default_config().design_space()
    frame = space.sample(40, seed=3)
    times = np.array(TARGET.times_hours, float)
    curves = tuple(pd.Series(np.linspace(10 + i, 60 + i, len(times)), index=times) for i in range(40))
    measured = Measured(tuple(f"F{i}" for i in range(40)), np.zeros(40, int), space.encode(frame), curves)
    model, n = corrected_by_measurements(SpaceModel(), Objective(TARGET), measured, max_formulations=12)
    assert n == 12 and len(model.gps_) == len(times)
    assert corrected_by_measurements(SpaceModel(), Objective(TARGET), measured.where(np.arange(40) < 3))[1] == 0


class WigglyModel:
    """An ensemble that has learnt nothing: curves that swing with a feature the release does not depend on."""

    def predict_curves(self, features, times_hours):
        x = np.asarray(features)[:, 2]
        swing = 30 * np.sin(40 * x)[:, None] * np.ones(len(times_hours))
        centre = np.array(TARGET.release_pct, float)[: len(times_hours)]
        return np.clip(np.stack([centre + swing, centre + 0.8 * swing]) / 100, 0, 1)


def test_residual_gp_keeps_the_ensemble_only_where_it_explains_the_data():
    from nanoloop.loop.models.residual_gp import ResidualCorrected

    rng = np.random.default_rng(9)
    X = rng.uniform(size=(30, 3))
    times = np.array(TARGET.times_hours, float)
    informative = 100 * TwoMemberModel().predict_curves(X, times).mean(axis=0) - 8.0
    kept = ResidualCorrected(TwoMemberModel(), times, draws=2, seed=0).fit(X, informative)
    assert all(kept.uses_ensemble_)

    smooth = np.array(TARGET.release_pct, float)[None, :] + 20 * (X[:, :1] - 0.5)  # depends on x0 only
    replaced = ResidualCorrected(WigglyModel(), times, draws=2, seed=0).fit(X, smooth)
    assert not any(replaced.uses_ensemble_)
    X_new = rng.uniform(size=(50, 3))
    truth_new = np.array(TARGET.release_pct, float)[None, :] + 20 * (X_new[:, :1] - 0.5)
    error_plain = np.abs(100 * replaced.predict_curves(X_new, times).mean(axis=0) - truth_new).mean()
    forced = ResidualCorrected(WigglyModel(), times, draws=2, seed=0, select_mean=False).fit(X, smooth)
    error_forced = np.abs(100 * forced.predict_curves(X_new, times).mean(axis=0) - truth_new).mean()
    assert error_plain < 2.0 < error_forced
