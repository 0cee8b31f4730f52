"""`nanoloop kinetics fit|compare` through `flows.cli.main`: output, files and exit codes."""

import json

import numpy as np
import pytest

from nanoloop.flows.cli import main

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
    assert "best model:" in out and "Korsmeyer-Peppas n =" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fit_json_has_every_model_and_the_best(two_curves, capsys):
    assert main(["kinetics", "fit", str(two_curves), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["release_scale"] == "percent"
    fast = report["curves"][0]
    assert fast["curve_id"] == "fast" and fast["n_replicates"] == 3
    assert fast["best_model"] == fast["models"][0]["model"]
    assert len(fast["models"]) == 21
    first = fast["models"][0]
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
    assert report["valid"] is True and report["similar"] is True
    assert main(["kinetics", "compare", str(ref), str(test)]) == 0
    out = capsys.readouterr().out
    assert "f2 = " in out and "valid comparison: yes" in out


def test_compare_says_why_it_is_not_valid(tmp_path, capsys):
    ref = _write(tmp_path / "ref.csv", [(1, 88), (2, 95), (4, 99)], header="time,release")
    test = _write(tmp_path / "test.csv", [(1, 90), (2, 96), (4, 99)], header="time,release")
    assert main(["kinetics", "compare", str(ref), str(test)]) == 0
    out = capsys.readouterr().out
    assert "valid comparison: no" in out and "at least 3 are needed" in out


@pytest.mark.parametrize("rows, message", [
    ([("A", 1, 1, 10), ("A", 1, 4, 20), ("A", 1, 2, 30)], "curve 'A' replicate '1' in bad.csv: times must increase"),
    ([("A", 1, 1, 10), ("A", 1, 2, "nan"), ("A", 1, 4, 30)], "curve 'A' in bad.csv: release is missing or not a number"),
    ([("A", 1, 1, 10)], "curve 'A' replicate '1' in bad.csv has a single point"),
    ([("A", 1, -2, 10), ("A", 1, 2, 30)], "negative time -2 h"),
])
def test_fit_bad_input_exits_2_with_the_curve_and_problem(tmp_path, capsys, rows, message):
    bad = _write(tmp_path / "bad.csv", rows)
    assert main(["kinetics", "fit", str(bad)]) == 2
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


def test_compare_needs_one_curve_per_file(two_curves, capsys):
    assert main(["kinetics", "compare", str(two_curves), str(two_curves)]) == 2
    assert "holds 2 curves (fast, slow)" in capsys.readouterr().err


def test_plot_into_a_missing_folder_exits_2(two_curves, tmp_path, capsys):
    assert main(["kinetics", "fit", str(two_curves), "--plot", str(tmp_path / "nope" / "f.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
