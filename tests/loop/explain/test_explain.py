"""Explanations: permutation importance, integrated gradients, the per-round ledger rows, and the
``explain`` / ``predict`` commands (called through their own parser, not the main CLI)."""

import argparse
import json

import numpy as np
import pytest

from nanoloop.flows import cli_surrogate
from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.errors import InputError
from nanoloop.loop.explain.importance import (
    PERMUTATION,
    explain_round,
    ig_method,
    integrated_gradients,
    permutation_importance,
    read_explanations,
    variable_columns,
)
from nanoloop.loop.explain.effects import shapley_method
from nanoloop.loop.design.domain import distance_to_data
from nanoloop.loop.models.base import curve_rows
from nanoloop.loop.models.ensemble import ReleaseEnsemble

TIMES = np.array([6, 24, 72, 168, 336, 672.0])


def test_explain_round_stores_rows_and_finds_the_drivers(store):
    campaign = Campaign.open(store)
    frame = explain_round(campaign, 1)
    assert list(frame.columns) == ["model_version", "round", "feature", "importance", "method", "time_hours", "effect_pct", "effect_detail"]
    methods = set(frame["method"])
    times = campaign.config.target.times_hours
    assert methods == {PERMUTATION} | {ig_method(t) for t in times} | {shapley_method(t) for t in times}
    perm = frame[frame["method"] == PERMUTATION].set_index("feature")["importance"]
    assert set(perm.index) == set(campaign.space.names)  # one row per design variable, one-hot columns merged
    assert perm.idxmax() == "polymer_mw_kda"
    assert perm["polymer_mw_kda"] > 3 * perm["medium_ph"]
    stored = campaign.ledger.read("explanations")
    assert len(stored) == len(frame)
    again = explain_round(campaign, 1)  # idempotent: read back, nothing appended
    assert len(campaign.ledger.read("explanations")) == len(frame)
    assert set(again["method"]) == methods


def test_explain_round_without_a_model(store):
    with pytest.raises(InputError, match="no surrogate was trained in round 5"):
        explain_round(Campaign.open(store), 5)


def test_integrated_gradients_complete():
    rng = np.random.default_rng(0)
    features = rng.uniform(0, 1, (30, 3))
    curves = 1 - np.exp(-TIMES / (10 + 500 * features[:, :1]))
    model = ReleaseEnsemble(n_members=2, epochs=80, hidden=16, random_state=0).fit(curve_rows(features, TIMES), curves.reshape(-1))
    attributions = integrated_gradients(model, features[:5], [24.0, 168.0], steps=64)
    assert attributions.shape == (5, 3, 2)
    full = model.predict_curves(features[:5], [24.0, 168.0]).mean(0)
    base = model.predict_curves(model.x_mean_[None, :], [24.0, 168.0]).mean(0)
    np.testing.assert_allclose(attributions.sum(axis=1), full - base, atol=2e-3)


def test_permutation_importance_shuffles_whole_variables():
    class OnlyFirst:  # a "model" that depends on column 0 only
        def predict(self, X):
            return X[:, 0] * 0.01

    X = np.column_stack([np.repeat(np.arange(10.0), 3), np.repeat(np.arange(10.0) % 3, 3), np.tile([1.0, 2, 3], 10)])
    y = X[:, 0] * 0.01
    groups = np.repeat(np.arange(10), 3)
    result = permutation_importance(OnlyFirst(), X, y, groups, {"a": [0], "b": [1]}, n_repeats=3)
    assert result["a"] > 0 and result["b"] == 0
    assert variable_columns(["polymer=PLA", "polymer=PCL", "mw"]) == {"polymer": [0, 1], "mw": [2]}


def _parser():
    parser = argparse.ArgumentParser(prog="nanoloop")
    cli_surrogate.register(parser.add_subparsers(dest="command", required=True))
    return parser


def _run(argv) -> int:
    args = _parser().parse_args(argv)
    return args.handler(args)


def test_explain_command(store, capsys):
    explain_round(Campaign.open(store), 1)
    assert _run(["explain", store, "--round", "1"]) == 0
    out = capsys.readouterr().out
    assert "polymer_mw_kda" in out and "perm." in out and "@168h" in out
    assert _run(["explain", store, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["round"] == 1 and data["features"][0]["feature"] == "polymer_mw_kda"
    with pytest.raises(InputError, match="no explanations stored for round 0"):
        _run(["explain", store, "--round", "0"])
    round_, wide = read_explanations(Campaign.open(store).ledger)
    assert round_ == 1 and wide.columns[0] == PERMUTATION


def _csv(tmp_path, text):
    path = tmp_path / "forms.csv"
    path.write_text(text)
    return str(path)


HEADER = "label,polymer,polymer_mw_kda,drug_logp,drug_loading_pct,particle_size_nm,peg_fraction,ph_responsive_fraction,medium_ph\n"


def test_predict_command(store, tmp_path, capsys):
    csv = _csv(tmp_path, HEADER + "slow,PLA,110,2,5,200,0.1,0.1,7.4\nfast,PLGA 50:50,12,2,5,200,0.1,0.1,7.4\n")
    plot = tmp_path / "curves.png"
    assert _run(["predict", store, csv, "--times-hours", "24", "168", "672", "--json", "--plot", str(plot)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["times_hours"] == [24.0, 168.0, 672.0]
    slow, fast = data["formulations"]
    assert slow["label"] == "slow" and fast["label"] == "fast"
    assert fast["release_pct"][1] > slow["release_pct"][1]  # low molecular weight releases faster
    for entry in (slow, fast):
        assert np.all(np.diff(entry["release_pct"]) >= -1e-6)
        assert all(lo <= m <= hi for lo, m, hi in zip(entry["lower_90_pct"], entry["release_pct"], entry["upper_90_pct"]))
    assert plot.stat().st_size > 1000
    assert _run(["predict", store, csv]) == 0
    assert "slow" in capsys.readouterr().out


def test_predict_reports_f2_interval_and_distance_to_the_data(store, tmp_path, capsys):
    campaign = Campaign.open(store)
    measured = campaign.space.recipes(campaign.formulations().iloc[:1]).iloc[0]
    space = campaign.space
    # the valid formulation farthest from the 24 measured ones, among 2,000 random ones
    pool = space.sample(2000, seed=3)
    corner = pool.iloc[int(np.argmax(distance_to_data(space.encode(pool), campaign.measured().encoded)))]
    lines = [",".join(["label", *space.names]), ",".join(["measured", *[str(measured[n]) for n in space.names]]),
             ",".join(["corner", *[str(corner[n]) for n in space.names]])]
    csv = _csv(tmp_path, "\n".join(lines) + "\n")
    assert _run(["predict", store, csv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    near, far = data["formulations"]
    assert near["distance_to_data"] == pytest.approx(0.0, abs=1e-3) and near["outside_measured_data"] is False
    assert far["distance_to_data"] > data["outside_threshold"] and far["outside_measured_data"] is True
    for entry in (near, far):
        assert entry["f2_lower_90"] <= entry["f2"] <= entry["f2_upper_90"]
    assert far["f2_upper_90"] - far["f2_lower_90"] > 1.0  # an interval, not a point
    assert _run(["predict", store, csv]) == 0
    text = capsys.readouterr().out
    assert "warning: corner: outside the measured data" in " ".join(text.split())


@pytest.mark.parametrize(("text", "message"), [
    (HEADER + "a,PLA,500,2,5,200,0.1,0.1,7.4\n", r"row 1 \(line 2\): polymer_mw_kda=500 is outside"),
    (HEADER + "a,PLA,50,2,5,200,0.1,0.1,7.4\nb,PLA,50,2,,200,0.1,0.1,7.4\n", r"row 2 \(line 3\), column 'drug_loading_pct': empty"),
    (HEADER + "a,Teflon,50,2,5,200,0.1,0.1,7.4\n", r"row 1 \(line 2\): polymer='Teflon' is not one of"),
    (HEADER + "a,PLA,lots,2,5,200,0.1,0.1,7.4\n", r"polymer_mw_kda='lots' is not a number"),
    (HEADER + "a,PLA,50,2,5,200,0.3,0.3,7.4\n", r"row 1 \(line 2\): constraint"),
    ("polymer,polymer_mw_kda\nPLA,50\n", r"missing column\(s\) \['drug_logp'"),
    (HEADER.strip() + ",colour\na,PLA,50,2,5,200,0.1,0.1,7.4,red\n", r"unknown column\(s\) \['colour'\]"),
    (HEADER, "no formulations"),
])
def test_predict_rejects_bad_rows(store, tmp_path, text, message):
    with pytest.raises(InputError, match=message):
        _run(["predict", store, _csv(tmp_path, text)])


def test_predict_bad_times_and_missing_store(store, tmp_path):
    csv = _csv(tmp_path, HEADER + "a,PLA,50,2,5,200,0.1,0.1,7.4\n")
    with pytest.raises(InputError, match="--times-hours"):
        _run(["predict", store, csv, "--times-hours", "-5"])
    with pytest.raises(InputError):
        _run(["predict", str(tmp_path / "nowhere"), csv])
    with pytest.raises(InputError, match="no such file"):
        _run(["predict", store, str(tmp_path / "missing.csv")])
