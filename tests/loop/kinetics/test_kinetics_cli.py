"""`nanoloop kinetics fit|compare` through `flows.cli.main`: output, files and exit codes."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nanoloop.flows import cli_kinetics
from nanoloop.flows.cli import main
from nanoloop.loop.kinetics import LAWS

DATA = Path(__file__).parents[2] / "data"

TIMES = [1, 2, 4, 8, 24, 48, 72, 120, 168, 336]


def _write(path, rows, header="curve,replicate,time,release"):
    path.write_text(header + "\n" + "".join(",".join(map(str, row)) + "\n" for row in rows))
    return path


def _curve_rows(curve_id, tau, plateau, replicates=3, seed=0):
    rng = np.random.default_rng(seed)
    return [(curve_id, rep, t, round(plateau * (1 - np.exp(-t / tau)) * rng.normal(1, 0.03), 3))
            for rep in range(1, replicates + 1) for t in TIMES]


@pytest.fixture
def two_curves(tmp_path):
    return _write(tmp_path / "curves.csv", _curve_rows("fast", 20, 90) + _curve_rows("slow", 150, 70, seed=1))


def test_fit_prints_a_ranked_table_per_curve_and_writes_a_png(two_curves, tmp_path, capsys):
    png = tmp_path / "fits.png"
    assert main(["kinetics", "fit", str(two_curves), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "release read as percent" in out
    assert "curve fast" in out and "curve slow" in out
    assert "First-order (Fmax)" in out and "AICc" in out
    assert "best model:" in out and "mechanism (sphere): Korsmeyer-Peppas" in out
    assert out.count(f"5 of {len(LAWS)} laws shown") == 2  # --top 5 by default
    assert "weighted by 1/SD²" in out  # 3 replicates per curve
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fit_json_has_every_model_and_the_best(two_curves, capsys):
    assert main(["kinetics", "fit", str(two_curves), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["release_scale"] == "percent"
    fast = report["curves"][0]
    assert fast["curve_id"] == "fast" and fast["n_replicates"] == 3
    assert fast["best_model"] == fast["models"][0]["model"]
    assert len(fast["models"]) == len(LAWS) == 24  # all laws, whatever --top says
    assert fast["weighted"] is True and fast["notes"] == [] and fast["flags"] == []
    assert fast["mechanism"]["geometry"] == "sphere" and "n" in fast["mechanism"]
    assert report["counts"] == {"curves": 2, "fitted": 2, "skipped": 0, "changed_on_reading": 0,
                                "flagged_values": 0, "flagged_best_fits": 0}
    first = fast["models"][0]
    assert isinstance(first["flags"], list)
    assert set(first["params"]) == set(first["std_errors"]) == set(first["units"])
    assert {"r2", "r2_adjusted", "rmse", "aic", "aicc", "bic", "msc"} <= set(first)


def test_fit_time_unit_days(tmp_path, capsys):
    csv = _write(tmp_path / "d.csv", [(t, v) for t, v in [(0.5, 20), (1, 35), (2, 60), (4, 80), (7, 90)]],
                 header="time,release")
    assert main(["kinetics", "fit", str(csv), "--time-unit", "d", "--json"]) == 0
    assert "12-168 h" not in capsys.readouterr().out  # JSON, no table title
    assert main(["kinetics", "fit", str(csv), "--time-unit", "d"]) == 0
    assert "12-168 h" in capsys.readouterr().out


def test_compare_reports_f1_f2_bootstrap_and_validity(tmp_path, capsys):
    ref = _write(tmp_path / "ref.csv", _curve_rows("ref", 20, 90, replicates=12))
    test = _write(tmp_path / "test.csv", _curve_rows("test", 24, 88, replicates=12, seed=5))
    assert main(["kinetics", "compare", str(ref), str(test), "--bootstrap", "200", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert 50 < report["f2"] < 100 and report["f1"] < 15
    assert report["bootstrap"]["n_bootstrap"] == 200
    assert report["bootstrap"]["f2_lower"] <= report["f2"] <= report["bootstrap"]["f2_upper"]
    assert report["valid"] is True and report["similar"] is True and report["reasons"] == []
    assert report["units"] == {"reference": 12, "test": 12}
    assert main(["kinetics", "compare", str(ref), str(test)]) == 0
    out = capsys.readouterr().out
    assert "f2 = " in out and "verdict: valid f2 comparison: similar" in out and "fails:" not in out


def test_compare_says_why_it_is_not_valid(tmp_path, capsys):
    ref = _write(tmp_path / "ref.csv", [(1, 88), (2, 95), (4, 99)], header="time,release")
    test = _write(tmp_path / "test.csv", [(1, 90), (2, 96), (4, 99)], header="time,release")
    assert main(["kinetics", "compare", str(ref), str(test)]) == 0
    out = capsys.readouterr().out
    assert "fails: only 1 time points usable, at least 3 are needed" in out
    assert "verdict: not a valid regulatory f2 comparison: 3 condition(s) fail; no similarity conclusion" in out
    assert "verdict: valid" not in out


def test_compare_vessels_of_a_wide_file_with_the_bca_fallback(capsys):
    args = ["kinetics", "compare", str(DATA / "kinetics_wide.csv"), "--ref-curve", "A", "--test-curve", "B"]
    assert main(args + ["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["units"] == {"reference": 6, "test": 6}
    assert "reference 'A' has 6 units; at least 12 are required for a regulatory f2" in report["reasons"]
    assert report["valid"] is False and report["similar"] is None
    boot = report["bootstrap"]
    assert boot["method"] == "BCa" and boot["n_bootstrap"] == 2000
    assert boot["f2_lower"] <= report["f2"] <= boot["f2_upper"]
    assert report["verdict"].startswith(f"not a valid regulatory f2 comparison: {len(report['reasons'])} condition(s)")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "reference 'A' (kinetics_wide.csv): 6 unit(s)" in out and "90% BCa interval" in out


def test_compare_asks_which_curve_of_a_file(capsys):
    assert main(["kinetics", "compare", str(DATA / "kinetics_wide.csv")]) == 2
    assert "holds 2 curves (A, B); choose one with --ref-curve NAME" in capsys.readouterr().err
    assert main(["kinetics", "compare", str(DATA / "kinetics_wide.csv"), "--ref-curve", "C"]) == 2
    assert "no curve 'C' (curves: A, B)" in capsys.readouterr().err


@pytest.mark.parametrize("rows, args, code, message", [
    ([("A", 1, 1, 10), ("A", 1, 4, 20), ("A", 1, 2, 30)], [], 0, "read: replicate '1': times sorted"),
    ([("A", 1, 1, 10), ("A", 1, 2, "nan"), ("A", 1, 4, 30)], [], 0, "read: replicate '1': 1 point(s) dropped"),
    ([("A", 1, 1, 10), ("A", 1, 2, "nan"), ("A", 1, 4, 30)], ["--strict"], 2,
     "curve 'A' in bad.csv replicate '1': time or release is missing or not a number on line 3"),
    ([("A", 1, 1, 10)], [], 2, "curve 'A' in bad.csv replicate '1' has a single point"),
    ([("A", 1, -2, 10), ("A", 1, 2, 30)], [], 2, "negative time -2 h"),
])
def test_fit_bad_input_is_tidied_or_refused(tmp_path, capsys, rows, args, code, message):
    bad = _write(tmp_path / "bad.csv", rows + [("A", 1, 8, 40), ("A", 1, 16, 60)] * (code == 0))
    assert main(["kinetics", "fit", str(bad), *args]) == code
    if code == 0:
        assert message in capsys.readouterr().out
        return
    err = capsys.readouterr().err
    assert err.startswith("nanoloop: error: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_compare_mismatched_times_exits_2(tmp_path, capsys):
    ref = _write(tmp_path / "ref.csv", [(1, 10), (2, 20), (4, 40)], header="time,release")
    test = _write(tmp_path / "test.csv", [(1, 10), (2, 20), (6, 40)], header="time,release")
    assert main(["kinetics", "compare", str(ref), str(test)]) == 2
    err = capsys.readouterr().err
    assert "curves 'ref' and 'test' are not sampled at the same times" in err


def test_compare_bootstrap_without_replicates_exits_2(tmp_path, capsys):
    ref = _write(tmp_path / "ref.csv", [(1, 10), (2, 20), (4, 40)], header="time,release")
    assert main(["kinetics", "compare", str(ref), str(ref), "--bootstrap", "100"]) == 2
    assert "bootstrap f2 needs replicate units" in capsys.readouterr().err


def test_compare_two_curves_of_one_file(two_curves, capsys):
    assert main(["kinetics", "compare", str(two_curves), "--ref-curve", "fast", "--test-curve", "slow", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["reference"], report["test"]) == ("fast", "slow")


def test_plot_into_a_missing_folder_exits_2(two_curves, tmp_path, capsys):
    assert main(["kinetics", "fit", str(two_curves), "--plot", str(tmp_path / "nope" / "f.png")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_messy_file_fits_with_a_warning_count_and_strict_refuses(capsys):
    assert main(["kinetics", "fit", str(DATA / "kinetics_messy.csv"), "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["counts"]["fitted"] == 4 and report["counts"]["skipped"] == 1
    assert report["skipped_curves"] == [{"curve_id": "single", "reason": "curve 'single' in kinetics_messy.csv has a "
                                         "single point; a release curve needs at least 2"}]
    notes = {c["curve_id"]: c["notes"] + c["flags"] for c in report["curves"]}
    assert notes["unsorted"] == ["times sorted: 4 h came before 2 h (2 step(s) back)"]
    assert notes["repeated"] == ["repeated times averaged: 0 h (2 values), 4 h (2 values)"]
    assert notes["negative"] == ["2 point(s) below 0 % kept as measured (lowest -0.6 % at 0 h)"]
    assert captured.err.strip().splitlines()[-1] == ("nanoloop: warning: 1 curve(s) skipped (reasons above; "
                                                     "--strict refuses the file)")
    assert main(["kinetics", "fit", str(DATA / "kinetics_messy.csv"), "--strict"]) == 2
    err = capsys.readouterr().err
    assert err == "nanoloop: error: curve 'single' in kinetics_messy.csv has a single point; a release curve needs at least 2\n"


def test_geometry_changes_the_mechanism_reading(tmp_path, capsys):
    csv = _write(tmp_path / "kp.csv", [(t, round(5 * t**0.47, 6)) for t in (0.5, 1, 2, 4, 8, 16, 24)],
                 header="time,release")
    readings = {}
    for geometry in ("slab", "cylinder", "sphere"):
        assert main(["kinetics", "fit", str(csv), "--geometry", geometry, "--json"]) == 0
        readings[geometry] = json.loads(capsys.readouterr().out)["curves"][0]["mechanism"]["mechanism"]
    # n = 0.47: slab Fickian (≤ 0.5); cylinder (0.45) and sphere (0.43) anomalous
    assert readings == {"slab": "Fickian diffusion", "cylinder": "anomalous (non-Fickian) transport",
                        "sphere": "anomalous (non-Fickian) transport"}
    assert main(["kinetics", "fit", str(csv), "--geometry", "slab"]) == 0
    assert "mechanism (slab): Korsmeyer-Peppas n = 0.470: Fickian diffusion" in capsys.readouterr().out


def test_fit_reads_excel(tmp_path, capsys):
    book = tmp_path / "run.xlsx"
    pd.read_csv(DATA / "kinetics_wide.csv").to_excel(book, index=False)
    assert main(["kinetics", "fit", str(book), "--json", "--top", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"].startswith("Excel sheet 'Sheet1'; wide layout")
    assert [(c["curve_id"], c["n_replicates"]) for c in report["curves"]] == [("A", 6), ("B", 6)]


def test_unweighted_turns_the_replicate_weights_off(two_curves, capsys):
    assert main(["kinetics", "fit", str(two_curves), "--json", "--unweighted"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert all(not c["weighted"] and not any(m["weighted"] for m in c["models"]) for c in report["curves"])


def test_top_limits_the_table(two_curves, capsys):
    assert main(["kinetics", "fit", str(two_curves), "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count(f"2 of {len(LAWS)} laws shown") == 2
    assert "│ 3 │" not in out


def test_long_fits_show_progress_and_the_expected_time(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli_kinetics, "PROGRESS_FROM_CURVES", 3)
    assert main(["kinetics", "fit", str(DATA / "kinetics_messy.csv"), "--json"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"fitting 4 curves x {len(LAWS)} laws"
    assert err[1].startswith("fitted 4 of 4 curves in ") and err[1].endswith(" s")


def test_progress_lines_give_the_time_left(capsys, monkeypatch):
    monkeypatch.setattr(cli_kinetics.sys.stderr, "isatty", lambda: False, raising=False)
    progress = cli_kinetics._Progress(1000, 24)
    for _ in range(10):
        progress.step()
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "fitting 1000 curves x 24 laws"
    assert err[1].startswith("fitted 10 of 1000 curves in ") and err[1].endswith(" left")


def test_readme_wide_example(capsys):
    """The commands and lines shown in the README's kinetics section."""
    assert main(["kinetics", "fit", str(DATA / "kinetics_wide.csv"), "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "wide layout: 2 curve(s) from 12 release column(s), 2 with vessels" in out
    assert "curve A: 11 points, 0-96 h, mean of 6 replicates, weighted by 1/SD²" in out
    assert "best model: Weibull (Fmax)" in out
    assert "│ 1 │ Weibull (Fmax)     │ Fmax = 87.56 ± 0.16 %      │ 1.0000 │  1.0000 │ 0.148 │ -9.77 │ 10.18 │" in out
    assert ("mechanism (sphere): Korsmeyer-Peppas n = 0.796: anomalous (non-Fickian) transport "
            "(no burst term needed)") in out
    assert main(["kinetics", "compare", str(DATA / "kinetics_wide.csv"), "--ref-curve", "A", "--test-curve", "B"]) == 0
    out = capsys.readouterr().out
    assert "f1 = 22.50   f2 = 49.87 (mean profiles)" in out
    assert "fails: reference 'A' has 6 units; at least 12 are required for a regulatory f2" in out
    assert "verdict: not a valid regulatory f2 comparison: 3 condition(s) fail; bootstrap f2 90% BCa interval" in out
