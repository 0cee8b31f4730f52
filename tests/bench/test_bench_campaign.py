"""The campaign benchmark, tiny: statistics with censoring, and one short run of every strategy."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[2] / "bench" / "bench_campaign.py"
_spec = importlib.util.spec_from_file_location("bench_campaign", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)
import campaign_stats as stats  # noqa: E402  (bench/ is on the path once bench_campaign is loaded)


def test_experiments_to_counts_whole_rounds_and_failures():
    f2s = [40, -np.inf, 50, 30, 66, 20, 70, 80]  # batch 2: threshold 65 first reached in round 3
    assert stats.experiments_to(f2s, 65, 2) == 6
    assert stats.experiments_to(f2s, 90, 2) == np.inf
    assert stats.best_so_far(f2s)[-1] == 80


def test_censored_runs_count_as_beyond_the_budget():
    q = stats.censored_quantiles([8, 16, np.inf, np.inf, np.inf], budget=40)
    assert q["median"] is None and q["q25"] == 16 and q["censored"] == 3 and q["runs"] == 5
    q = stats.censored_quantiles([8, 16, 24, np.inf], budget=40)
    assert q["median"] == 20 and q["q75"] is None


def test_summary_gives_an_acceleration_lower_bound_when_random_is_censored():
    results = {("random", "slow", 0): [10.0] * 16, ("ours", "slow", 0): [10.0] * 7 + [70.0] * 9}
    s = stats.summarise(results, ["random", "ours"], ["slow"], batch=8, rounds=2)
    assert s["acceleration_65"]["lower_bound"] and s["acceleration_65"]["factor"] == pytest.approx(16 / 8)
    assert s["overall"]["ours"]["experiments_to_65"]["median"] == 8


def test_targets_are_valid_profiles():
    for name in bench.TARGETS:
        target = bench.target_profile(name)
        assert len(target.times_hours) >= 5


@pytest.mark.slow  # whole campaigns at the benchmark's (default) settings
def test_one_short_run_of_every_strategy(tmp_path, capsys):
    code = bench.main(["--targets", "fast_burst", "--seeds", "1", "--first-seed", "900", "--rounds", "2",
                       "--timing-n", "0", "--plot", str(tmp_path / "p.png"), "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["overall"]) == set(bench.DEFAULT_STRATEGIES)
    assert set(out["paired"]["ours"]) == {"random", "gp_ei", "curve_gp"}
    assert "median_best_f2_after_16" in out["overall"]["ours"]
    runs = {r["strategy"]: r["f2"] for r in out["runs"]}
    assert all(len(f) == 16 for f in runs.values())
    first = [np.nan if v is None else v for v in runs["random"][:8]]
    for s in ("ours", "gp_ei", "curve_gp"):  # the same round 0 for every strategy
        np.testing.assert_allclose([np.nan if v is None else v for v in runs[s][:8]], first, rtol=1e-9)
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_paired_counts_compare_the_same_target_and_seed():
    ours = {("ours", "slow", s): f for s, f in enumerate([[70.0] * 8 + [80.0] * 16, [10.0] * 24, [66.0] * 24])}
    base = {("curve_gp", "slow", s): f for s, f in enumerate([[10.0] * 8 + [70.0] * 16, [10.0] * 24, [90.0] * 24])}
    counts = stats.summarise({**ours, **base}, ["curve_gp", "ours"], ["slow"], batch=8, rounds=2)["paired"]["ours"]["curve_gp"]
    assert counts["experiments_to_65"] == {"fewer": 1, "equal": 2, "more": 0}  # seed 2: both reach 65 in round 1
    assert counts["pairs"] == 3
    json.dumps(stats.summarise({**ours, **base}, ["curve_gp", "ours"], ["slow"], batch=8, rounds=3))  # --json-out writes it


@pytest.mark.slow  # whole campaigns at the benchmark's (default) settings
def test_the_prior_mode_runs_both_warm_strategies(capsys):
    code = bench.main(["--targets", "slow", "--seeds", "1", "--first-seed", "901", "--rounds", "2", "--strategies", "ours",
                       "--prior", "--timing-n", "0", "--plot", "", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["overall"]) == {"ours", "curve_gp_prior", "ours_prior"}
    runs = {r["strategy"]: r["f2"] for r in out["runs"]}
    assert all(len(f) == 16 for f in runs.values())
    assert set(out["paired"]["ours_prior"]) == {"ours", "curve_gp_prior"}


def test_saved_runs_are_summarised_together(tmp_path, capsys):
    runs = lambda strategy, f2: {"settings": {"batch": 8}, "runs": [{"strategy": strategy, "target": "slow", "seed": 0, "f2": f2}]}  # noqa: E731
    (tmp_path / "a.json").write_text(json.dumps(runs("curve_gp", [10.0] * 8 + [70.0] * 8 + [80.0] * 8)))
    (tmp_path / "b.json").write_text(json.dumps(runs("ours", [None] * 8 + [90.0] * 16)))
    assert bench.main(["--from-json", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--rounds", "3"]) == 0
    out = capsys.readouterr().out
    assert "paired, ours vs curve_gp (1 runs): to f2>=65: fewer 0 / equal 1 / more 0; best f2 @24: higher 1" in out
