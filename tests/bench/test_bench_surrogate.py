"""The surrogate benchmark on tiny synthetic data shaped like the Bannigan table (never reads the shared data folder)."""

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

_PATH = Path(__file__).resolve().parents[2] / "bench" / "bench_surrogate.py"
_spec = importlib.util.spec_from_file_location("bench_surrogate", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

TINY = {"n_members": 2, "epochs": 25, "hidden": 8}
COLUMNS = ["LA/GA", "Polymer_MW", "CL Ratio", "Drug_Tm", "Drug_Pka", "Initial D/M ratio", "DLC", "SA-V", "SE",
           "Drug_Mw", "Drug_TPSA", "Drug_NHA", "Drug_LogP"]


def synthetic(n_groups=10, curves_per_group=3, seed=0) -> pd.DataFrame:
    """Long-format curves: release speed set by Polymer_MW; few-shot columns read off the curve itself."""
    rng = np.random.default_rng(seed)
    days = np.array([0, 0.25, 0.5, 1, 3, 7, 14, 28])
    rows, index = [], 0
    for g in range(n_groups):
        drug = rng.uniform(0, 1, 5)
        for _ in range(curves_per_group):
            index += 1
            values = dict(zip(COLUMNS, np.concatenate([[1.0], [10 ** rng.uniform(4, 5)], rng.uniform(0, 1, 5), [10 ** rng.uniform(0, 3)], drug])))
            tau = values["Polymer_MW"] / 4000
            curve = lambda t: 1 - np.exp(-t / tau)  # noqa: E731
            for t in days:
                rows.append({"Experimental_index": index, "DP_Group": f"G{g}", **values, "Time": t,
                             "T=0.25": curve(0.25), "T=0.5": curve(0.5), "T=1.0": curve(1.0), "Release": curve(t) + rng.normal(0, 0.01)})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def frame():
    return synthetic()


def test_parse_seeds():
    assert bench.parse_seeds("0-9") == list(range(10))
    assert bench.parse_seeds("0,3,5") == [0, 3, 5]
    assert bench.parse_seeds("5,0-2,2") == [0, 1, 2, 5]
    for bad in ("", "a", "3-1", "1,,x"):
        with pytest.raises(argparse.ArgumentTypeError):
            bench.parse_seeds(bad)


def test_features_and_splits(frame):
    few, zero = bench.feature_columns(frame, "few-shot"), bench.feature_columns(frame, "zero-shot")
    assert set(few) - set(zero) == {"T=0.25", "T=0.5", "T=1.0"}
    assert not {"Time", "Release", "DP_Group", "Experimental_index"} & set(few)
    X = bench.features(frame, zero)
    assert X[:, zero.index("Polymer_MW")].max() <= 5.0  # log10 applied
    train, test = bench.outer_split(frame, 0)
    assert not set(frame.iloc[train]["DP_Group"]) & set(frame.iloc[test]["DP_Group"])
    fit, val = bench.inner_split(frame, train, 0)
    assert set(fit) | set(val) == set(train) and not set(frame.iloc[val]["DP_Group"]) & set(frame.iloc[fit]["DP_Group"])
    rows = bench.ensemble_rows(frame.iloc[:8], zero)
    np.testing.assert_allclose(rows[:, -1], frame["Time"].iloc[:8] * 24)  # days -> hours
    w = bench.row_weights(frame, "group")
    assert np.isclose(w.mean(), 1.0) and np.allclose(pd.Series(w).groupby(frame["DP_Group"].to_numpy()).sum(), len(frame) / 10)


def test_run_benchmark_reports_every_model_and_setting(frame, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "bench_surrogate", bench)  # worker processes find the script by name, as when it runs
    results = bench.run_benchmark(frame, [0, 1], ensemble_params=TINY)
    assert set(results) == {f"{m}/{s}" for m in bench.MODELS for s in bench.SETTINGS}
    for key, entry in results.items():
        assert len(entry["per_seed"]) == 2 and 0 <= entry["mae_mean"] < 1 and entry["seconds_mean"] > 0
        assert ("coverage_90_mean" in entry) == (not key.startswith("hgb"))
    assert results["hgb/few-shot"]["mae_mean"] < 0.2
    table = bench.format_table(results, "title")
    assert "hybrid" in table and "zero-shot" in table and "cov90" in table
    inner = bench.run_benchmark(frame, [0], models=["hgb"], settings=["zero-shot"], evaluate="inner")
    assert set(inner) == {"hgb/zero-shot"}
    assert "choice" in results["blend/few-shot"]["per_seed"][0]  # the blend says what its validation chose
    parallel = bench.run_benchmark(frame, [0, 1], models=["hgb"], settings=["zero-shot"], jobs=2)  # seeds in 2 processes
    assert [r["mae"] for r in parallel["hgb/zero-shot"]["per_seed"]] == [r["mae"] for r in results["hgb/zero-shot"]["per_seed"]]


def test_transfer_study(frame):
    results = bench.run_transfer(frame, [0], shots=(1, 2), ensemble_params=TINY)
    assert set(results) == {f"{name}/k={k}" for name in ("pretrained", "fine-tuned", "scratch") for k in (1, 2)}
    assert "fine-tuned" in bench.format_transfer(results, "t")


def test_main_json(tmp_path, capsys):
    path = tmp_path / "release.csv"
    synthetic(n_groups=6, curves_per_group=2).to_csv(path, index=False, encoding="utf-8-sig")  # with a byte-order mark, like the real file
    args = ["--data", str(path), "--seeds", "0", "--json", "--param", "n_members=2", "--param", "epochs=10", "--param", "hidden=8"]
    assert bench.main(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {f"{m}/{s}" for m in bench.MODELS for s in bench.SETTINGS}
    assert bench.main(["--data", str(path), "--seeds", "0", "--models", "hgb", "--settings", "zero-shot"]) == 0
    assert "hgb" in capsys.readouterr().out


def test_full_fit_timing(frame, capsys):
    timing = bench.full_fit(frame, ensemble_params=TINY)
    assert set(timing) == {"hybrid", "freeform"} and all(t["seconds"] > 0 and t["rows"] == len(frame) for t in timing.values())


def test_the_data_is_found_next_to_the_repository_or_asked_for(tmp_path, monkeypatch, capsys):
    repo = tmp_path / "worktrees" / "repo"
    repo.mkdir(parents=True)
    monkeypatch.setattr(bench, "ROOT", repo)
    assert bench.default_data() is None
    with pytest.raises(SystemExit) as err:  # no data anywhere: a one-line usage error, exit 2
        bench.main([])
    assert err.value.code == 2 and "is not found from the repository root" in capsys.readouterr().err
    data = tmp_path / bench.DATA_FILE  # two levels above the repository, as for a git worktree
    data.parent.mkdir(parents=True)
    data.write_text("x")
    assert bench.default_data() == data
