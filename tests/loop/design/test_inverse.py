import argparse
import json
from dataclasses import replace

import numpy as np
import pytest

from nanoloop.loop.config import TargetProfile, default_config
from nanoloop.loop.errors import InputError
from nanoloop.loop.design.inverse import DESIGN_SEARCH, inverse_design
from nanoloop.loop.design.objective import Goal, Objective, PropertyConstraint

SPACE = default_config().design_space()


def _search(**changes):
    """The inverse-design defaults with a smaller search."""
    return replace(DESIGN_SEARCH, **changes)

from size_model import SizeModel  # noqa: E402  (tests/loop/design/size_model.py)


def _target_for(size_unit: float, pla: bool = False) -> TargetProfile:
    times = np.array([4.0, 24.0, 72.0, 168.0, 336.0])
    tau = 10 ** (0.5 + 2.5 * size_unit) * (2 if pla else 1)
    return TargetProfile(times_hours=times.tolist(), release_pct=(100 * (1 - np.exp(-times / tau))).round(1).tolist())


def test_inverse_design_recovers_the_formulation_behind_a_profile():
    target = _target_for(0.6)
    designs = inverse_design(SizeModel(), SPACE, Objective(target), n=3, search=_search(pool_size=1024, refine_starts=8, refine_steps=10))
    assert [d.rank for d in designs] == [1, 2, 3]
    best = designs[0]
    assert best.f2_mean > 85 and best.f2_mean >= designs[-1].f2_mean - 1e-9
    # either non-PLA at size_unit 0.6, or PLA at the size giving the same time constant
    unit = (best.formulation["particle_size_nm"] - 80) / 420
    tau = 10 ** (0.5 + 2.5 * unit) * (2 if best.formulation["polymer"] == "PLA" else 1)
    assert tau == pytest.approx(10 ** (0.5 + 2.5 * 0.6), rel=0.15)
    assert np.all(best.lower_pct <= best.release_pct + 1e-9) and np.all(best.release_pct <= best.upper_pct + 1e-9)
    assert isinstance(best.kinetics["best_model"], str)
    SPACE.validate(best.formulation)
    payload = json.dumps([d.to_dict() for d in designs])
    assert "predicted_curve" in payload and "lower_90_pct" in payload


def test_designs_are_distinct():
    designs = inverse_design(SizeModel(), SPACE, Objective(_target_for(0.4)), n=4, search=_search(pool_size=512, refine_starts=4, refine_steps=4))
    recipes = {json.dumps(d.formulation, sort_keys=True) for d in designs}
    assert len(recipes) == 4


def test_constraints_and_goals_shape_the_designs():
    target = _target_for(0.2)  # fast release: wants small particles ...
    burst_cap = Objective(target, (Goal("rmse"),), (PropertyConstraint("burst_pct", max=40.0, at_hours=4.0),))
    free = inverse_design(SizeModel(), SPACE, Objective(target, (Goal("rmse"),)), n=1, search=_search(pool_size=512, refine_starts=4, refine_steps=6))[0]
    capped = inverse_design(SizeModel(), SPACE, burst_cap, n=1, search=_search(pool_size=512, refine_starts=4, refine_steps=6))[0]
    assert capped.objective_mean <= 0 and free.objective_mean <= 0  # minus the RMSE
    at4 = lambda d: np.interp(4.0, d.times_hours, d.release_pct)  # noqa: E731
    assert at4(capped) <= 40.0 + 2.0 and capped.probability_feasible > 0.5
    assert free.objective_mean >= capped.objective_mean - 1e-6


# -- the `nanoloop design` command -------------------------------------------------------------
def _parser():
    from nanoloop.flows import cli_design

    parser = argparse.ArgumentParser(prog="nanoloop")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_design.register(sub)
    return parser


def _run(argv):
    args = _parser().parse_args(argv)
    return args.handler(args)


def _write_target(path, rows):
    path.write_text("time_hours,release_pct\n" + "".join(f"{t},{r}\n" for t, r in rows))
    return path


def test_design_without_a_store_says_what_is_missing(tmp_path):
    target = _write_target(tmp_path / "t.csv", [(24, 20), (72, 40), (168, 65), (336, 80)])
    with pytest.raises(InputError, match="needs a release model trained on measured curves.*give STORE"):
        _run(["design", "--target", str(target)])
    with pytest.raises(InputError, match="does not exist"):
        _run(["design", str(tmp_path / "nowhere"), "--target", str(target)])


def test_design_rejects_a_bad_target(tmp_path):
    bad = _write_target(tmp_path / "bad.csv", [(24, 20), (72, 10), (168, 65)])
    with pytest.raises(InputError, match="bad.csv: not a usable target profile: release_pct must not decrease"):
        _run(["design", str(tmp_path), "--target", str(bad)])
    short = _write_target(tmp_path / "short.csv", [(0, 0), (24, 20), (72, 30)])
    with pytest.raises(InputError, match="short.csv: not a usable target profile"):
        _run(["design", str(tmp_path), "--target", str(short)])


@pytest.fixture(scope="module")
def measured_store(tmp_path_factory):
    """A campaign store with round 0 measured (8 formulations) and no trained model yet."""
    from nanoloop.adapters.simulated import SimulatedDissolution, SimulatedSynthesis
    from nanoloop.loop.campaign.campaign import Campaign
    from nanoloop.loop.store.ledger import Ledger

    base = default_config()
    config = base.model_copy(update={"surrogate": base.surrogate.model_copy(update={"epochs": 40, "members": 3})})
    store = tmp_path_factory.mktemp("design-store")
    campaign = Campaign(config, Ledger(store), {"synthesis": SimulatedSynthesis(seed=1), "dissolution": SimulatedDissolution(seed=1)})
    campaign.run_round(0)
    return store


def test_design_from_a_store_prints_json_and_a_plot(measured_store, tmp_path, capsys):
    from nanoloop.loop.store.ledger import Ledger

    target = _write_target(tmp_path / "t.csv", [(0, 0), (24, 20), (72, 40), (168, 65), (336, 80), (672, 95)])
    png = tmp_path / "designs.png"
    code = _run(["design", str(measured_store), "--target", str(target), "--n", "2", "--pool-size", "512", "--json", "--plot", str(png)])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["designs"]) == 2 and out["target"]["times_hours"] == [24, 72, 168, 336, 672]
    assert "trained now (not stored)" in out["model"]
    first = out["designs"][0]
    assert {"formulation", "f2_mean", "f2_std", "predicted_curve", "kinetics", "distance_to_data", "outside_measured_data"} <= set(first)
    assert first["f2_lower_90"] <= first["f2_mean"] <= first["f2_upper_90"]
    assert first["kinetics"]["best_model"]
    assert png.stat().st_size > 1000
    assert Ledger(measured_store, create=False).read("models").empty  # nothing written to the campaign


def test_design_tables(measured_store, tmp_path, capsys):
    target = _write_target(tmp_path / "t.csv", [(24, 20), (72, 40), (168, 65), (336, 80), (672, 95)])
    assert _run(["design", str(measured_store), "--target", str(target), "--n", "1", "--pool-size", "256"]) == 0
    text = capsys.readouterr().out
    assert "best formulations (predicted)" in text and "release law" in text and "90 % interval" in text
    assert "distance to data" in text
