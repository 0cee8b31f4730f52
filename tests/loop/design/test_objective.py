import numpy as np
import pandas as pd
import pytest

from nanoloop.loop.config import TargetProfile, default_config, parse_config
from nanoloop.loop.errors import InputError
from nanoloop.loop.design.objective import Goal, Objective, PropertyConstraint, f2_to_target, rmse_to_target
from nanoloop.loop.models.property_model import PropertyModel

TARGET = TargetProfile(times_hours=[24, 72, 168, 336, 672], release_pct=[20, 40, 65, 80, 95])


class ShiftedMembers:
    """Member m predicts the target shifted by offsets[m] % points at every time (fractions)."""

    def __init__(self, offsets):
        self.offsets = np.asarray(offsets, float)

    def predict_curves(self, features, times_hours):
        times = np.asarray(times_hours, float)
        base = np.interp(times, TARGET.times_hours, TARGET.release_pct)  # at 24 h: 20 %
        shift = np.asarray(features)[:, 0][None, :, None] * 10 + self.offsets[:, None, None]
        return np.clip((base[None, None, :] + shift) / 100, 0, 1)


def test_rmse_weights_and_f2_agree_on_a_perfect_match():
    curve = np.array(TARGET.release_pct, float)
    assert rmse_to_target(curve, TARGET) == pytest.approx(0.0)
    assert f2_to_target(curve, TARGET) == pytest.approx(100.0)
    off = curve + np.array([10, 0, 0, 0, 0])
    assert rmse_to_target(off, TARGET) == pytest.approx(np.sqrt(100 / 5))
    assert rmse_to_target(off, TARGET, [1, 0, 0, 0, 0]) == pytest.approx(10.0)  # all weight on the 24 h point


def test_single_goals_and_desirability():
    curves = np.array([TARGET.release_pct, np.array(TARGET.release_pct) + 6.0])
    assert Objective(TARGET).name == "f2"
    np.testing.assert_allclose(Objective(TARGET).score(curves), f2_to_target(curves, TARGET))
    rmse = Objective(TARGET, (Goal("rmse"),))
    assert rmse.name == "-rmse_pct"
    np.testing.assert_allclose(rmse.score(curves), [0.0, -6.0])
    both = Objective(TARGET, (Goal("f2", worst=50, best=100), Goal("rmse", worst=12, best=0)))
    d = both.score(curves)
    assert both.name == "desirability_pct" and d[0] == pytest.approx(100.0)
    f2_d = (f2_to_target(curves[1], TARGET) - 50) / 50
    assert d[1] == pytest.approx(100 * np.sqrt(f2_d * 0.5))  # geometric mean of the two desirabilities


def test_objective_is_computed_per_member_not_on_the_mean_curve():
    model = ShiftedMembers([-4.0, 4.0])
    samples = Objective(TARGET).samples(model, np.zeros((1, 2)))
    assert samples.values.shape == (2, 1)
    mean_curve_f2 = 100.0  # the mean of the two member curves is the target itself
    assert samples.mean[0] == pytest.approx(f2_to_target(np.array(TARGET.release_pct) + 4.0, TARGET))
    assert samples.mean[0] < mean_curve_f2 - 20 and samples.std[0] == pytest.approx(0.0, abs=1e-9)


def test_burst_constraint_is_a_probability_over_members():
    objective = Objective(TARGET, constraints=(PropertyConstraint("burst_pct", max=25.0),))
    assert 24.0 in objective.curve_times_hours
    model = ShiftedMembers([0.0, 10.0])  # at 24 h: 20 % and 30 %
    samples = objective.samples(model, np.zeros((1, 2)))
    assert samples.probability_feasible[0] == pytest.approx(0.5, abs=0.02)
    low = objective.samples(ShiftedMembers([-5.0, -4.0]), np.zeros((1, 2)))
    assert low.probability_feasible[0] > 0.98


def test_characterization_constraint_needs_a_model():
    objective = Objective(TARGET, constraints=(PropertyConstraint("size_nm", 80, 200),))
    with pytest.raises(InputError, match="characterization model"):
        objective.samples(ShiftedMembers([0.0]), np.zeros((1, 2)))


def test_property_model_learns_size_and_gives_feasibility():
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(80, 3)).astype(np.float32)
    size = 80 * np.exp(2.0 * X[:, 0]) * np.exp(rng.normal(0, 0.03, 80))  # 80 .. 590 nm
    table = pd.DataFrame({"size_nm": size})
    model = PropertyModel(("size_nm",), random_state=0).fit(X, table)
    probe = np.array([[0.2, 0.5, 0.5], [0.95, 0.5, 0.5]], np.float32)  # ~120 nm and ~540 nm
    predicted = model.predict_values(probe)["size_nm"]
    assert 95 < predicted[0] < 150 and predicted[1] > 400
    p = model.probability(probe, [PropertyConstraint("size_nm", 80, 200)])
    assert p[0] > 0.8 and p[1] < 0.1


def test_measured_objective_and_incumbent_skip_infeasible_batches():
    objective = Objective(TARGET, constraints=(PropertyConstraint("encapsulation_efficiency_pct", min=60),))
    t = np.array(TARGET.times_hours, float)
    curves = {"A": pd.Series(TARGET.release_pct, index=t), "B": pd.Series(np.array(TARGET.release_pct) + 10.0, index=t)}
    chars = pd.DataFrame({"formulation_id": ["A", "B"], "size_nm": [150, 150], "pdi": [0.1, 0.1], "zeta_mv": [-20, -20],
                          "encapsulation_efficiency_pct": [40.0, 75.0], "actual_drug_loading_pct": [5, 5]})
    measured = objective.measured(curves, chars)
    assert measured.loc["A", "objective"] == pytest.approx(100.0) and not measured.loc["A", "feasible"]
    assert measured.loc["B", "feasible"]
    assert objective.incumbent(measured) == pytest.approx(measured.loc["B", "objective"])
    assert Objective(TARGET).incumbent(Objective(TARGET).measured({})) == 0.0


def test_config_section_builds_the_objective():
    data = default_config().model_dump(mode="json")
    data["objective"] = {"goals": [{"kind": "f2"}, {"kind": "rmse", "weight": 0.5, "time_weights": [2, 1, 1, 1, 1]}],
                         "constraints": [{"property": "size_nm", "min": 80, "max": 200},
                                         {"property": "encapsulation_efficiency_pct", "min": 60},
                                         {"property": "burst_pct", "max": 25, "at_hours": 24}]}
    objective = Objective.from_config(parse_config(data))
    assert objective.name == "desirability_pct" and len(objective.constraints) == 3
    assert [c.name for c in objective.characterization_constraints] == ["size_nm", "encapsulation_efficiency_pct"]
    assert "80 <= size_nm <= 200" in objective.describe()
    assert Objective.from_config(default_config()).name == "f2"


@pytest.mark.parametrize("section, message", [
    ({"goals": [{"kind": "f3"}]}, "objective.goals.0.kind"),
    ({"goals": [{"kind": "f2", "time_weights": [1, 1, 1, 1, 1]}]}, "time_weights apply to the rmse goal only"),
    ({"constraints": [{"property": "size_nm"}]}, "give min, max or both"),
    ({"constraints": [{"property": "colour", "max": 3}]}, "objective.constraints.0.property"),
    ({"constraints": [{"property": "size_nm", "min": 300, "max": 200}]}, "min (300) must be below max (200)"),
    ({"goal": []}, "objective.goal: unknown key"),
])
def test_bad_objective_section_is_one_line(section, message):
    data = default_config().model_dump(mode="json")
    data["objective"] = section
    with pytest.raises(InputError) as err:
        parse_config(data, source="c.toml")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_time_weights_must_match_the_target():
    with pytest.raises(InputError, match="time_weights has 2 values but the target has 5 times"):
        Objective(TARGET, (Goal("rmse", time_weights=(1.0, 2.0)),))


def test_spread_scale_starts_at_the_prior_and_learns_from_prospective_errors():
    from nanoloop.loop.design.objective import spread_scale

    assert spread_scale([], [], [], prior=3.0) == (pytest.approx(3.0), 0)
    rng = np.random.default_rng(0)
    predicted = rng.uniform(30, 70, 400)
    std = rng.uniform(1, 5, 400)
    measured = predicted + 2.0 * std * rng.standard_normal(400)  # errors twice the stated spread
    scale, n = spread_scale(predicted, std, measured, prior=3.0)
    assert n == 400 and scale == pytest.approx(2.0, rel=0.15)
    few, n_few = spread_scale(predicted[:4], std[:4], measured[:4], prior=3.0)
    seen = np.median(np.abs(measured[:4] - predicted[:4]) / std[:4]) / 0.6745  # what the four proposals alone say
    assert n_few == 4 and abs(np.log(seen / 3.0)) > 0.2
    # four proposals against a prior worth eight: the log factor moves a third of the way from the prior to them
    assert np.log(few / 3.0) == pytest.approx(np.log(seen / 3.0) / 3, rel=1e-6)
    honest, _ = spread_scale(predicted, std, predicted + 0.1 * std * rng.standard_normal(400), prior=3.0)
    assert honest == pytest.approx(1.0, rel=0.2)  # never below 1: the spread is a floor
