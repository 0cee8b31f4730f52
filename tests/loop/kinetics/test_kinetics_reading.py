"""Reading the files labs have: messy digitized curves, wide DDSolver-style sheets, Excel,
semicolons and decimal commas; each change said per curve."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nanoloop.loop.errors import InputError
from nanoloop.loop.kinetics import read_curves

DATA = Path(__file__).parents[2] / "data"


def _file(tmp_path, text, name="curves.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_messy_long_file_is_tidied_and_each_change_is_said():
    data = read_curves(DATA / "kinetics_messy.csv")
    curves = {c.curve_id: c for c in data.curves}
    assert list(curves) == ["unsorted", "repeated", "negative", "gaps"]
    assert data.skipped == {"single": "curve 'single' in kinetics_messy.csv has a single point; "
                                      "a release curve needs at least 2"}
    unsorted = curves["unsorted"]
    np.testing.assert_allclose(unsorted.times_hours, [0, 1, 2, 4, 8, 12, 24, 48])
    np.testing.assert_allclose(unsorted.release_pct, [0, 12.1, 20.4, 33.0, 52.8, 64.9, 81.0, 92.3])
    assert unsorted.notes == ("times sorted: 4 h came before 2 h (2 step(s) back)",)
    repeated = curves["repeated"]
    # 0 h: (0.2 + -0.2)/2 = 0; 4 h: (30.9 + 32.7)/2 = 31.8
    np.testing.assert_allclose(repeated.times_hours, [0, 1, 2, 4, 8, 24, 48])
    np.testing.assert_allclose(repeated.release_pct[[0, 3]], [0.0, 31.8])
    assert repeated.notes == ("repeated times averaged: 0 h (2 values), 4 h (2 values)",)
    negative = curves["negative"]
    assert negative.release_pct[0] == -0.6  # kept as measured
    assert negative.flags == ("2 point(s) below 0 % kept as measured (lowest -0.6 % at 0 h)",)
    assert curves["gaps"].notes == ("1 point(s) dropped: time or release is missing or not a number on line 30",)
    assert data.format_note == ("comma-separated; long layout, curves by 'formulation'; "
                                "time in h (the header 'time' names no unit; --time-unit to change)")


def test_strict_refuses_the_messy_file():
    with pytest.raises(InputError, match="curve 'single' in kinetics_messy.csv has a single point"):
        read_curves(DATA / "kinetics_messy.csv", strict=True)


def test_replicate_column_keeps_repeated_times_as_replicates(tmp_path):
    text = "vessel,time,release\n" + "".join(f"{v},{t},{10 * t + v}\n" for t in (4, 1, 2) for v in (1, 2, 3))
    (curve,) = read_curves(_file(tmp_path, text)).curves
    assert curve.n_replicates == 3
    np.testing.assert_allclose(curve.times_hours, [1, 2, 4])
    np.testing.assert_allclose(curve.release_pct, [12, 22, 42])
    np.testing.assert_allclose(curve.replicate_sd_pct, [1, 1, 1])


def test_a_vessel_with_a_missing_value_is_left_out_and_said(tmp_path):
    text = "time,A_1,A_2,A_3\n1,10,11,12\n2,20,,22\n4,40,41,42\n"
    (curve,) = read_curves(_file(tmp_path, text)).curves
    assert curve.n_replicates == 2
    np.testing.assert_allclose(curve.release_pct, [11, 21, 41])
    assert curve.notes == (
        "replicate 'A_2': 1 point(s) dropped: time or release is missing or not a number on line 3, column 'A_2'",
        "replicate 'A_2' left out: replicate 'A_2' is sampled at 1, 4 h but replicate 'A_1' at 1, 2, 4 h")
    with pytest.raises(InputError, match="missing or not a number on line 3, column 'A_2'"):
        read_curves(_file(tmp_path, text), strict=True)


def test_wide_ddsolver_sheet_is_detected_with_vessels():
    data = read_curves(DATA / "kinetics_wide.csv")
    assert data.format_note == ("comma-separated; wide layout: 2 curve(s) from 12 release column(s), 2 with vessels; "
                                "time in h from the header 'Time (h)'")
    a, b = data.curves
    assert (a.curve_id, a.n_replicates, b.curve_id, b.n_replicates) == ("A", 6, "B", 6)
    np.testing.assert_allclose(a.times_hours, [0, 0.5, 1, 2, 4, 8, 12, 24, 48, 72, 96])
    # 0.5 h: mean of 2.7, 3.5, 3.9, 3.7, 4.5, 4.2 = 22.5/6 = 3.75
    assert a.release_pct[1] == pytest.approx(3.75)


@pytest.mark.parametrize("header, layout, expected", [
    ("time,A,B", "auto", {"A": 0, "B": 0}),
    ("time,F1,F2", "auto", {"F1": 0, "F2": 0}),                 # no separator: separate formulations
    ("time,1,2", "auto", {"curves": 2}),                         # numbered columns: vessels of one curve
    ("time,Vessel 1,Vessel 2", "auto", {"curves": 2}),
    ("time,A_1,A_2,B", "auto", {"A": 2, "B": 0}),
    ("time,A rep 1,A rep 2", "auto", {"A": 2}),
    ("time,A.1,A.2,B vessel 1,B vessel 2", "auto", {"A": 2, "B": 2}),
    ("time,A_1,A_2", "wide", {"A_1": 0, "A_2": 0}),               # --layout wide: every column a curve
    ("time,A,B", "vessels", {"curves": 2}),                      # --layout vessels: all one curve
])
def test_wide_columns_are_grouped_into_curves_and_vessels(tmp_path, header, layout, expected):
    n = header.count(",")
    rows = "".join(f"{t}," + ",".join(str(10 * t + i) for i in range(n)) + "\n" for t in (1, 2, 4))
    data = read_curves(_file(tmp_path, header + "\n" + rows), layout=layout)
    assert {c.curve_id: c.n_replicates for c in data.curves} == expected


@pytest.mark.parametrize("spread", ["sd", "release_sd", "Release (SD)", "release SEM"])
def test_a_long_file_with_an_sd_column_stays_long_and_says_so(tmp_path, spread):
    data = read_curves(_file(tmp_path, f"time,release,{spread}\n1,10,1\n2,20,2\n4,35,2\n"))
    assert [c.curve_id for c in data.curves] == ["curves"]
    np.testing.assert_allclose(data.curves[0].release_pct, [10, 20, 35])
    assert data.format_note.startswith(f"comma-separated; long layout, one curve, column(s) not used: {spread};")


@pytest.mark.parametrize("header, given, hours, said", [
    ("Time (min)", "auto", [0.5, 1.0], "time in min from the header 'Time (min)', converted to h"),
    ("time_hours", "auto", [30, 60], "time in h from the header 'time_hours'"),
    ("Time [days]", "auto", [720, 1440], "time in d from the header 'Time [days]', converted to h"),
    ("t", "auto", [30, 60], "time in h (the header 't' names no unit; --time-unit to change)"),
    ("t", "min", [0.5, 1.0], "time in min, converted to h"),
    ("Time (min)", "min", [0.5, 1.0], "time in min, converted to h"),
])
def test_time_unit_is_read_from_the_header_and_said(tmp_path, header, given, hours, said):
    data = read_curves(_file(tmp_path, f"{header},release\n30,10\n60,25\n"), time_unit=given)
    np.testing.assert_allclose(data.curves[0].times_hours, hours)
    assert data.format_note.endswith(said)


def test_a_time_unit_that_contradicts_the_header_is_refused(tmp_path):
    with pytest.raises(InputError, match=r"the time column 'Time \(min\)' is in min but --time-unit h was given"):
        read_curves(_file(tmp_path, "Time (min),release\n30,10\n60,25\n"), time_unit="h")


def test_excel_wide_sheet_reads_like_the_csv(tmp_path):
    frame = pd.read_csv(DATA / "kinetics_wide.csv")
    book = tmp_path / "run.xlsx"
    with pd.ExcelWriter(book, engine="openpyxl") as writer:
        pd.DataFrame({"notes": ["other sheet"]}).to_excel(writer, sheet_name="info", index=False)
        frame.to_excel(writer, sheet_name="dissolution", index=False)
    with pytest.raises(InputError, match=r"no sheet 'nope' \(sheets: info, dissolution\)"):
        read_curves(book, sheet="nope")
    data = read_curves(book, sheet="dissolution")
    csv = read_curves(DATA / "kinetics_wide.csv")
    assert data.format_note.startswith("Excel sheet 'dissolution'; wide layout: 2 curve(s)")
    for excel_curve, csv_curve in zip(data.curves, csv.curves):
        np.testing.assert_allclose(excel_curve.replicates_pct, csv_curve.replicates_pct)


def test_semicolons_and_decimal_commas_are_read_and_said(tmp_path):
    data = read_curves(_file(tmp_path, "Zeit;Freisetzung\n1;5,09\n2;10,5\n4;20,1\n8;35,2\n"
                             .replace("Zeit", "time").replace("Freisetzung", "release")))
    np.testing.assert_allclose(data.curves[0].release_pct, [5.09, 10.5, 20.1, 35.2])
    assert data.format_note.startswith("semicolon-separated, decimal commas")


def test_tab_separated_with_decimal_commas(tmp_path):
    data = read_curves(_file(tmp_path, "time\trelease\n0,5\t5,5\n1\t10,25\n"))
    np.testing.assert_allclose(data.curves[0].times_hours, [0.5, 1])
    np.testing.assert_allclose(data.curves[0].release_pct, [5.5, 10.25])


_SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "liposome-release" / "yanes2024_release_curves.csv"


@pytest.mark.skipif(not _SHARED.is_file(), reason="the public liposome set is not beside the repository (../shared)")
def test_the_public_liposome_set_reads_as_it_is():
    data = read_curves(_SHARED)
    assert len(data.curves) == 209 and data.skipped == {}
    notes = [note for curve in data.curves for note in curve.notes]
    assert sum(note.startswith("times sorted") for note in notes) == 11
    assert sum(note.startswith("repeated times averaged") for note in notes) == 3
