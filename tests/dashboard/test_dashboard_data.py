"""The dashboard's data layer and figures: what the views show, read from a real (small) campaign ledger."""

from __future__ import annotations

import ast
import dataclasses
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nanoloop.dashboard import actions, data, figures
from nanoloop.dashboard.app import LedgerView
from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.campaign.evaluation import campaign_status, prospective_errors
from nanoloop.loop.store.measurements import measured_objective
from nanoloop.loop.models.base import Z90
from nanoloop.loop.store.ledger import Ledger
from nanoloop.loop.store.schemas import SCHEMAS
from nanoloop.adapters.registry import build_instruments


@pytest.fixture(scope="module")
def snap(campaign_store):
    return data.load_snapshot(campaign_store[0])


@pytest.fixture(scope="module")
def status(campaign_store):
    store, config = campaign_store
    return campaign_status(Ledger(store, create=False), config.target, config.name)


def test_key_numbers_are_campaign_status(snap, status):
    k = data.key_numbers(snap)
    assert k["campaign"] == "dash"
    assert k["rounds"] == len(status["rounds"]) == 3
    assert k["rounds_measured"] == 2
    assert k["experiments"] == sum(r["measured"] for r in status["rounds"]) >= 6
    assert k["failed"] == sum(r["failed"] for r in status["rounds"])
    assert k["experiments"] + k["failed"] == 8
    assert k["best_f2"] == pytest.approx(status["best"]["f2"])
    assert k["best_id"] == status["best"]["formulation_id"]
    assert k["awaiting_approval"] == len(status["awaiting_approval"]) == 4
    assert data.rounds_table(snap)["round"].tolist() == [0, 1, 2]


def test_best_by_experiment_is_the_running_maximum_of_measured_f2(snap, campaign_store):
    store, config = campaign_store
    frame = data.best_by_experiment(snap)
    scores = measured_objective(Ledger(store, create=False), config.target)
    assert frame["experiment"].tolist() == list(range(1, len(scores) + 1))
    assert sorted(frame["formulation_id"]) == sorted(scores.index)
    assert np.allclose(frame.set_index("formulation_id")["f2"].loc[scores.index], scores.to_numpy())
    assert np.all(np.diff(frame["best_f2"]) >= 0)
    assert np.allclose(frame["best_f2"], np.maximum.accumulate(frame["f2"]))
    assert frame["best_f2"].iloc[-1] == pytest.approx(snap.status["best"]["f2"])
    assert frame["round"].tolist() == sorted(frame["round"])  # round 0 was measured before round 1


def test_model_quality_is_the_prospective_error_of_rounds_proposed_by_the_model(snap, status, campaign_store):
    quality = data.model_quality(snap)
    assert quality["round"].tolist() == [1]  # round 0 is the initial design, round 2 is not measured
    row = next(r for r in status["rounds"] if r["round"] == 1)
    assert quality["prospective_mae"].iloc[0] == pytest.approx(row["prospective_mae"])
    assert quality["coverage_90"].iloc[0] == pytest.approx(row["coverage_90"])
    errors = prospective_errors(Ledger(campaign_store[0], create=False))
    assert quality["points"].iloc[0] == len(errors[errors["round"] == 1])
    assert quality["formulations"].iloc[0] == row["measured"]


def test_predicted_band_is_mean_plus_minus_1645_sd(snap):
    fid = snap.formulations[snap.formulations["round"] == 1].index[0]
    band = data.predicted_curve(snap, fid)
    row = snap.formulations.loc[fid]
    mean, std = np.asarray(row["predicted_release_pct"]), np.asarray(row["predicted_std_pct"])
    assert np.allclose(band["times_hours"], row["predicted_times_hours"])
    assert np.allclose(band["low_pct"], np.clip(mean - Z90 * std, 0, 100))
    assert np.allclose(band["high_pct"], np.clip(mean + Z90 * std, 0, 100))
    assert np.all(band["low_pct"] <= band["mean_pct"]) and np.all(band["mean_pct"] <= band["high_pct"] + 1e-9)
    initial = snap.formulations[snap.formulations["round"] == 0].index[0]
    assert data.predicted_curve(snap, initial) is None  # the initial design has no model


def test_measured_curve_is_the_mean_over_replicates(snap):
    fid = snap.status["best"]["formulation_id"]
    curve = data.measured_curve(snap, fid)
    part = snap.curves[snap.curves["formulation_id"] == fid]
    expected = part.groupby("time_hours")["release_pct"].mean()
    assert np.allclose(curve["times_hours"], expected.index) and np.allclose(curve["release_pct"], expected)
    replicates = data.replicate_curves(snap, fid)
    assert len(replicates) == part["replicate"].nunique() >= 2
    assert np.allclose(np.mean([r["release_pct"] for r in replicates], axis=0), expected)


def test_round_batch(snap):
    measured = data.round_batch(snap, 1)
    assert len(measured) == 4
    assert all(i["predicted"] is not None for i in measured)
    assert all((i["measured"] is not None) == (i["measured_f2"] is not None) == (i["status"] == "measured") for i in measured)
    assert sum(i["status"] == "measured" for i in measured) == snap.status["rounds"][1]["measured"]
    waiting = data.round_batch(snap, 2)
    assert [i["status"] for i in waiting] == ["proposed"] * 4
    assert all(i["measured"] is None and i["predicted"] is not None and i["predicted_objective"] is not None for i in waiting)
    assert data.round_batch(snap, 9) == []


def test_formulation_detail(snap):
    fid = snap.status["best"]["formulation_id"]
    detail = data.formulation_detail(snap, fid)
    assert detail["status"] == "measured" and detail["round"] == snap.status["best"]["round"]
    assert detail["parameters"]["polymer"] == snap.status["best"]["parameters"]["polymer"]
    assert detail["measured_f2"] == pytest.approx(snap.status["best"]["f2"])
    assert detail["characterization"]["size_nm"] > 0
    kinetics = snap.kinetics.loc[fid]
    assert detail["kinetics"]["best_model"] == kinetics["best_model"]
    assert isinstance(detail["kinetics"]["params"], dict) and detail["kinetics"]["params"]
    assert set(detail["kinetics"]["units"]) == set(detail["kinetics"]["params"]) and all(detail["kinetics"]["units"].values())
    assert detail["dissolution_method"] == {"apparatus": "sample-and-separate", "medium": snap.config.dissolution_method.medium,
                                            "volume_ml": 50.0, "temperature_c": 37.0}
    assert detail["measured_objective"] == pytest.approx(detail["measured_f2"])
    assert [e["status"] for e in detail["events"]] == ["proposed", "approved", "dispatched", "synthesized", "dissolving", "measured"]
    pending = snap.status["awaiting_approval"][0]
    bare = data.formulation_detail(snap, pending)
    assert bare["characterization"] is None and bare["kinetics"] is None and bare["measured"] is None
    with pytest.raises(KeyError):
        data.formulation_detail(snap, "Fnothing")
    choices = data.formulation_choices(snap)
    assert len(choices) == len(snap.formulations) == 12 and choices[0]["value"] == fid  # best measured first


def test_pending_approvals_are_campaign_status_awaiting(snap, status):
    pending = data.pending_approvals(snap)
    assert pending["formulation_id"].tolist() == status["awaiting_approval"]
    assert set(pending["round"]) == {2}
    assert {"predicted f2", "predicted f2 sd", "polymer", "particle_size_nm"} <= set(pending.columns)  # named for the objective


def test_feature_importance_empty_and_stored(snap, campaign_store, tmp_path):
    bare = dataclasses.replace(snap, explanations=snap.explanations.iloc[0:0])
    assert data.feature_importance(bare).empty
    fig = figures.importance_figure(bare, 1)
    assert "No feature importance" in fig.layout.annotations[0].text
    store = tmp_path / "ledger"
    shutil.copytree(campaign_store[0], store)
    Ledger(store).append("explanations", [
        {"model_version": "M007-x", "round": 7, "feature": f, "importance": v, "method": "permutation"}
        for f, v in [("particle_size_nm", 0.2), ("polymer_mw_kda", 0.5), ("medium_ph", 0.1)]
    ])
    stored = data.load_snapshot(store)
    frame = data.feature_importance(stored, 7)
    assert frame["feature"].tolist() == ["polymer_mw_kda", "particle_size_nm", "medium_ph"]
    assert data.feature_importance(stored, 8).empty
    bars = figures.importance_figure(stored, 7)
    assert list(bars.data[0].x) == [0.1, 0.2, 0.5]


def test_figures_have_their_traces(snap):
    best = figures.best_f2_figure(snap)
    assert sum(len(t.x) for t in best.data if t.mode == "markers") == data.key_numbers(snap)["experiments"]
    assert [t.name for t in best.data][-1] == "best so far"
    quality = figures.model_quality_figure(snap)
    assert list(quality.data[0].x) == ["round 1"]
    batch = figures.round_batch_figure(snap, 1)
    names = [t.name for t in batch.data]
    assert names.count("measured (mean)") == snap.status["rounds"][1]["measured"]
    assert names.count("predicted 90 % band") == 4 and names.count("target") == 4
    one = figures.formulation_figure(snap, snap.status["best"]["formulation_id"])
    assert sum(1 for t in one.data if t.name.startswith("replicate")) >= 2


def test_missing_empty_and_foreign_stores_say_why(campaign_store, tmp_path):
    with pytest.raises(data.StoreUnavailable, match="does not exist"):
        data.load_snapshot(tmp_path / "nothing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(data.StoreUnavailable, match="is a file"):
        data.load_snapshot(tmp_path / "file")
    with pytest.raises(data.StoreUnavailable, match="holds no campaign"):
        data.load_snapshot(tmp_path)
    Campaign(campaign_store[1], Ledger(tmp_path / "new"), build_instruments)  # stores the config, nothing else
    with pytest.raises(data.StoreUnavailable, match="no formulations yet"):
        data.load_snapshot(tmp_path / "new")
    view = LedgerView(str(tmp_path / "nothing"))
    snapshot, problem = view.get()
    assert snapshot is None and "does not exist" in problem
    assert not (tmp_path / "nothing").exists()  # the dashboard never creates a store


def test_fingerprint_changes_only_when_the_ledger_does(campaign_store, tmp_path):
    store = tmp_path / "ledger"
    shutil.copytree(campaign_store[0], store)
    before = data.fingerprint(store)
    assert data.fingerprint(store) == before
    view = LedgerView(str(store))
    first, _ = view.get()
    assert view.get()[0] is first  # not reread while nothing changed
    Campaign(campaign_store[1], Ledger(store), build_instruments).approve(2)
    assert data.fingerprint(store) != before
    again, _ = view.get()
    assert again is not first and data.key_numbers(again)["awaiting_approval"] == 0
    assert data.fingerprint(tmp_path / "missing")[0] == "missing" and not (tmp_path / "missing").exists()


def _count_part_reads(monkeypatch) -> list[str]:
    """Record the path of every ledger part read from storage (by any Ledger)."""
    reads: list[str] = []
    original = Ledger.read_part

    def counting(self, path, table):
        reads.append(path)
        return original(self, path, table)

    monkeypatch.setattr(Ledger, "read_part", counting)
    return reads


def _all_parts(store) -> list[str]:
    ledger = Ledger(store, create=False)
    return sorted(path for table in SCHEMAS for path in ledger.part_paths(table))


def test_campaign_status_reads_each_part_once_and_sees_a_later_append(campaign_store, tmp_path, monkeypatch):
    store, config = tmp_path / "ledger", campaign_store[1]
    shutil.copytree(campaign_store[0], store)
    parts = _all_parts(store)
    reads = _count_part_reads(monkeypatch)
    ledger = Ledger(store, create=False)
    before = campaign_status(ledger, config.target, config.name)
    assert len(reads) == len(set(reads)) and set(reads) <= set(parts) and len(reads) >= 10  # three rounds, each part once
    Campaign(config, Ledger(store), build_instruments).approve(2)
    reads.clear()
    after = campaign_status(ledger, config.target, config.name)  # the same Ledger: reads only what was appended
    assert before["awaiting_approval"] and not after["awaiting_approval"]
    assert reads and not set(reads) & set(parts) and len(reads) == len(set(reads))


def test_a_snapshot_reads_each_part_once(campaign_store, tmp_path, monkeypatch):
    store = tmp_path / "ledger"
    shutil.copytree(campaign_store[0], store)
    reads = _count_part_reads(monkeypatch)
    data.load_snapshot(store)
    assert sorted(reads) == _all_parts(store)
    Campaign(campaign_store[1], Ledger(store), build_instruments).approve(2)
    reads.clear()
    assert data.key_numbers(data.load_snapshot(store))["awaiting_approval"] == 0
    assert sorted(reads) == _all_parts(store)


def test_approve_runs_the_command_line_and_shows_its_line(tmp_path):
    assert actions.approve_arguments("S") == ["approve", "S"]
    assert actions.approve_arguments("S", ["F1", "F2"], " too big ") == ["approve", "S", "--reject", "F1", "F2", "--reason", "too big"]
    echo = [sys.executable, "-c", "import sys; print('noise'); print('did', *sys.argv[1:])"]
    result = actions.approve("S", ["F1"], "", command=echo)
    assert result.ok and result.message == "did approve S --reject F1"
    fail = [sys.executable, "-c", "import sys; print('nanoloop: error: no batch awaits approval', file=sys.stderr); sys.exit(2)"]
    result = actions.approve("S", command=fail)
    assert not result.ok and result.returncode == 2 and result.message == "nanoloop: error: no batch awaits approval"
    result = actions.run_cli(["approve"], command=[str(tmp_path / "no-such-program")])
    assert not result.ok and "could not run" in result.message


def test_prefect_server_note(monkeypatch, tmp_path):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    monkeypatch.delenv("PREFECT_PROFILES_PATH", raising=False)
    reachable, note = actions.prefect_server()
    assert not reachable and "No Prefect server is configured" in note
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "profiles.toml").write_text(f'active = "lab"\n[profiles.lab]\nPREFECT_API_URL = "http://127.0.0.1:{port}/api"\n')
    assert actions.prefect_api_url() == f"http://127.0.0.1:{port}/api"
    reachable, note = actions.prefect_server()
    assert not reachable and f"No Prefect server is reachable at http://127.0.0.1:{port}/api" in note


def test_dashboard_imports_loop_but_never_prefect_or_flows():
    folder = Path(__file__).resolve().parents[2] / "dashboard"
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] in ("prefect", "flows") for n in names), f"{path.name} imports {names}"
    code = "import sys, dashboard.app, dashboard.report; print(sorted({m.split('.')[0] for m in sys.modules} & {'prefect', 'flows', 'torch'}))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"  # not even torch: the dashboard reads the ledger, it never loads a model


def test_failed_formulations_show_their_reason(snap):
    failed = snap.formulations[snap.formulations["status"] == "failed"].index
    assert len(failed) and set(snap.failures["formulation_id"]) == set(failed)
    items = {i["formulation_id"]: i for r in snap.rounds for i in data.round_batch(snap, r)}
    for fid in failed:
        reason = snap.failures.set_index("formulation_id").loc[fid, "reason"]
        assert items[fid]["reason"] == reason and reason.startswith("synthesis: ")
        assert data.formulation_detail(snap, fid)["reason"] == reason
        assert reason.split(": ", 1)[1][:20] in figures.formulation_figure(snap, fid).layout.title.text
    titles = " ".join(a.text for r in snap.rounds for a in figures.round_batch_figure(snap, r).layout.annotations)
    assert all(snap.failures.set_index("formulation_id").loc[fid, "reason"].split(": ", 1)[1].split()[0] in titles for fid in failed)


def test_time_axes_are_in_days_past_72_hours(snap):
    batch = figures.round_batch_figure(snap, 1)
    titles = [v["title"]["text"] for k, v in batch.layout.to_plotly_json().items() if k.startswith("xaxis") and "title" in v]
    assert titles == ["days"] * len(titles) and titles
    assert figures.formulation_figure(snap, snap.status["best"]["formulation_id"]).layout.xaxis.title.text == "days"
    target = [t for t in batch.data if t.name == "target"][0]
    assert list(target.x) == [t / 24 for t in snap.target.times_hours]  # the demo's target reaches 28 days
    assert figures.time_scale(48) == (1.0, "hours") and figures.time_scale(96) == (24.0, "days")


def test_insight_figures(snap):
    from nanoloop.dashboard import insights

    parity = insights.parity_figure(snap)
    points = [t for t in parity.data if t.name.startswith("round")]
    assert [t.name for t in points] == ["round 1"] and len(points[0].x) == len(snap.errors)
    assert list(points[0].error_y.array) == pytest.approx(list(Z90 * snap.errors["std_pct"]))
    learning = insights.learning_figure(snap)
    table = insights.learning_table(snap)
    assert list(table["trained_on"]) == [snap.status["rounds"][0]["measured"]]  # round 1's model learned from round 0's measurements
    assert list(learning.data[0].y) == pytest.approx(list(table["prospective_mae"]))
    coverage = insights.coverage_figure(snap).data[0]
    made = snap.formulations["status"].isin(["measured", "failed"]).sum()
    assert [d.label for d in coverage.dimensions] == list(snap.parameters.columns) + ["failed"]
    assert len(coverage.dimensions[0]["values"]) == made and sum(coverage.dimensions[-1]["values"]) == len(snap.failures)
    failures = insights.failures_figure(snap)
    assert sum(len(t.x) for t in failures.data if t.name.startswith("failed")) == len(snap.failures)
    chars = insights.characterization_figure(snap)
    assert len(chars.data) == 2 * len({int(snap.formulations.loc[f, "round"]) for f in snap.kinetics.index})


def test_the_pair_that_separates_failures():
    import pandas as pd

    from nanoloop.dashboard.insights import separating_pair
    from nanoloop.loop.config import default_config

    space = default_config().space
    rng = np.random.default_rng(0)
    made = pd.DataFrame({n: rng.uniform(space[n].min, space[n].max, 80) for n in space if space[n].categories is None})
    failed = (made["drug_loading_pct"] > 15) & (made["particle_size_nm"] < 300)
    made = made.assign(status=np.where(failed, "failed", "measured"), reason=np.where(failed, "aggregation", ""))
    assert set(separating_pair(made, list(made.columns[:-2]), space)) == {"drug_loading_pct", "particle_size_nm"}
