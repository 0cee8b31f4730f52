"""Signed explanations: captum Shapley values per design variable and time, partial dependence with its band,
their ledger rows, and ``nanoloop explain`` (sorted, signed, --pd, old stores)."""

import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.explain.effects import direction, partial_dependence, shapley_values, summarize_effects
from nanoloop.loop.errors import InputError
from nanoloop.loop.explain.importance import explain_round, read_explanations, read_partial_dependence, variable_columns
from test_explain import _run

TIMES = np.array([24.0, 168.0, 672.0])


class HandMade:
    """Two 'members' with a known law: x0 slows release (longer time scale), x1 adds a burst, category A is faster."""

    def predict_curves(self, features, times_hours):
        x = np.asarray(features, float)
        t = np.asarray(times_hours, float)
        out = []
        for scale in (1.0, 1.3):
            tau = scale * (40 + 400 * x[:, 0] + 100 * x[:, 3])  # columns 2, 3: kind=A, kind=B
            burst = 0.3 * x[:, 1]
            out.append(burst[:, None] + (1 - burst[:, None]) * (1 - np.exp(-t[None] / tau[:, None])))
        return np.stack(out)


def _hand_made_features(n=30, seed=0):
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 2, n)
    return np.column_stack([rng.random(n), rng.random(n), kind == 0, kind == 1]).astype(float)


def test_shapley_signs_and_additivity_on_a_known_law():
    x = _hand_made_features()
    variables = variable_columns(["mw", "loading", "kind=A", "kind=B"])
    values = shapley_values(HandMade(), x, variables, TIMES, n_samples=10)
    assert values.shape == (30, 3, 3)
    model = HandMade()
    gap = 100 * (model.predict_curves(x, TIMES).mean(0) - model.predict_curves(x.mean(0, keepdims=True), TIMES).mean(0))
    np.testing.assert_allclose(values.sum(axis=1), gap, atol=1e-6)  # Shapley values add up to the change from the baseline
    rows = summarize_effects(values, x, variables, TIMES, {"kind": ["A", "B"]}).set_index(["feature", "time_hours"])
    for t in TIMES:
        assert rows.loc[("mw", t), "effect_pct"] < -1  # more mw: slower release at every time
        assert rows.loc[("loading", t), "effect_pct"] > 1  # more loading: faster
        assert np.isnan(rows.loc[("kind", t), "effect_pct"])
        assert rows.loc[("kind", t), "effect_detail"].startswith("A +")  # category A releases faster than average
    assert rows.loc[("mw", 168.0), "importance"] > rows.loc[("loading", 168.0), "importance"]
    assert [direction(e) for e in (0.05, -0.05, 0.2, -0.2, np.nan)] == ["", "", "+", "-", ""]  # no sign under 0.1 pct points


def test_partial_dependence_is_monotone_within_its_band():
    pd_ = partial_dependence(HandMade(), _hand_made_features(), 0, TIMES)
    assert pd_["release_pct"].shape == (12, 3)
    assert np.all(np.diff(pd_["release_pct"], axis=0) < 0)  # more mw, less released at every time
    assert np.all(pd_["low_pct"] <= pd_["release_pct"] + 1e-9) and np.all(pd_["release_pct"] <= pd_["high_pct"] + 1e-9)
    assert np.all(pd_["high_pct"][1:] - pd_["low_pct"][1:] > 0.1)  # the two members differ: a real band


def test_explain_round_stores_signed_effects_and_partial_dependence(store):
    campaign = Campaign.open(store)
    frame = explain_round(campaign, 1)
    signed = frame[frame["method"].str.startswith("shapley_pct@")].set_index(["feature", "time_hours"])
    times = campaign.config.target.times_hours
    assert len(signed) == len(campaign.space.names) * len(times)
    for t in times:
        assert signed.loc[("polymer_mw_kda", t), "effect_pct"] < 0  # ground truth: longer time scale
        assert signed.loc[("drug_loading_pct", t), "effect_pct"] > 0  # ground truth: bigger burst
    version = frame["model_version"].iloc[0]
    for t in times:
        at, curve = read_partial_dependence(campaign.ledger, version, "polymer_mw_kda", t)
        assert at == t and len(curve) == 12
        assert curve["value"].iloc[0] == pytest.approx(campaign.space.by_name["polymer_mw_kda"].low)
        release = curve["release_pct"].to_numpy()
        assert np.all(np.diff(release) < 0)
        assert np.all((curve["low_pct"] <= release + 1e-9) & (release <= curve["high_pct"] + 1e-9))
    stored = len(campaign.ledger.read("partial_dependence"))
    explain_round(campaign, 1)  # idempotent
    assert len(campaign.ledger.read("partial_dependence")) == stored


def test_explain_command_prints_signed_effects_sorted_and_in_time_order(store, capsys):
    explain_round(Campaign.open(store), 1)
    capsys.readouterr()
    assert _run(["explain", store, "--json"]) == 0
    signed = json.loads(capsys.readouterr().out)["signed_effects"]
    order = list(dict.fromkeys(r["feature"] for r in signed))
    size = {f: max(r["size_pct"] for r in signed if r["feature"] == f) for f in order}
    assert order[0] == "polymer_mw_kda" and [size[f] for f in order] == sorted(size.values(), reverse=True)
    for f in order:
        times = [r["time_hours"] for r in signed if r["feature"] == f]
        assert times == sorted(times)
    assert {r["direction"] for r in signed if r["feature"] == "polymer_mw_kda"} == {"-"}
    assert {r["direction"] for r in signed if r["feature"] == "drug_loading_pct"} == {"+"}
    assert _run(["explain", store]) == 0
    text = capsys.readouterr().out
    signed_part = text[text.index("direction of each variable"):]
    header = signed_part.splitlines()
    assert signed_part.index("@24h") < signed_part.index("@72h") < signed_part.index("@168h") < signed_part.index("@672h")
    mw_line = next(line for line in header if line.startswith("│ polymer_mw_kda"))
    assert mw_line.split("│")[2].strip().startswith("-")
    assert signed_part.index("polymer_mw_kda") < signed_part.index("drug_loading_pct") < signed_part.index("peg_fraction")


def test_explain_command_partial_dependence(store, capsys):
    explain_round(Campaign.open(store), 1)
    capsys.readouterr()
    assert _run(["explain", store, "--pd", "drug_loading_pct", "--time-hours", "168", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["time_hours"] == 168 and "members" in out["band"] and len(out["points"]) == 12
    release = [p["release_pct"] for p in out["points"]]
    assert release[-1] > release[0]  # more loading, more released
    assert _run(["explain", store, "--pd", "drug_loading_pct"]) == 0
    assert "release at 24 h on drug_loading_pct" in capsys.readouterr().out  # default: the time nearest 24 h
    with pytest.raises(InputError, match="no partial dependence for 'polymer'; continuous variables: drug_loading_pct"):
        _run(["explain", store, "--pd", "polymer"])
    with pytest.raises(InputError, match="no partial dependence at that time"):
        _run(["explain", store, "--pd", "drug_loading_pct", "--time-hours", "5"])
    with pytest.raises(InputError, match="--time-hours goes with --pd"):
        _run(["explain", store, "--time-hours", "24"])


def test_old_store_without_signed_effects(store, tmp_path, capsys):
    """A store explained before signed effects: its parts lack the new columns and it has no partial_dependence table."""
    old = str(tmp_path / "old")
    shutil.copytree(store, old)
    campaign = Campaign.open(old)
    explain_round(campaign, 1)
    shutil.rmtree(f"{campaign.ledger.root}/partial_dependence")
    for path in campaign.ledger.part_paths("explanations"):
        table = pq.read_table(path)
        keep = np.array([not m.startswith("shapley") for m in table.column("method").to_pylist()])
        pq.write_table(table.filter(keep).drop_columns(["time_hours", "effect_pct", "effect_detail"]), path)
    _, wide = read_explanations(Campaign.open(old).ledger)
    assert wide.attrs["signed"].empty and "permutation_mae_pct" in wide.columns
    capsys.readouterr()
    assert _run(["explain", old]) == 0
    assert f"No signed effects stored for round 1 (explained before they existed); run `nanoloop explain {old} --round 1 --compute`" in capsys.readouterr().out
    with pytest.raises(InputError, match=r"explained before it existed\); run `nanoloop explain .* --compute`"):
        _run(["explain", old, "--pd", "polymer_mw_kda"])
    assert _run(["explain", old, "--compute", "--json"]) == 0
    signed = json.loads(capsys.readouterr().out)["signed_effects"]
    assert {r["direction"] for r in signed if r["feature"] == "polymer_mw_kda"} == {"-"}
    assert _run(["explain", old, "--pd", "polymer_mw_kda"]) == 0
