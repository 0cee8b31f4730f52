"""Reading and validating release curves: scales, units, replicates and bad input."""

import numpy as np
import pytest

from nanoloop.loop.errors import InputError
from nanoloop.loop.kinetics import ReleaseCurve, read_curves, validate_curve


def _csv(tmp_path, text, name="curves.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_percent_curve_is_read_and_said(tmp_path):
    data = read_curves(_csv(tmp_path, "time,release\n1,10\n2,25\n4,48\n"))
    (curve,) = data.curves
    assert curve.curve_id == "curves" and data.release_scale == "percent"
    assert "percent" in data.note
    np.testing.assert_allclose(curve.release_pct, [10, 25, 48])


def test_fraction_is_detected_converted_and_said(tmp_path):
    data = read_curves(_csv(tmp_path, "Time (d),Fraction released\n1,0.1\n2,0.25\n4,0.98\n"), time_unit="d")
    assert data.release_scale == "fraction" and "fraction" in data.note
    np.testing.assert_allclose(data.curves[0].release_pct, [10, 25, 98])
    np.testing.assert_allclose(data.curves[0].times_hours, [24, 48, 96])


def test_release_scale_can_be_forced(tmp_path):
    data = read_curves(_csv(tmp_path, "time,release\n1,0.2\n2,0.5\n"), release_scale="percent")
    np.testing.assert_allclose(data.curves[0].release_pct, [0.2, 0.5])


def test_minutes_are_converted_to_hours(tmp_path):
    data = read_curves(_csv(tmp_path, "t,release\n30,10\n90,25\n"), time_unit="min")
    np.testing.assert_allclose(data.curves[0].times_hours, [0.5, 1.5])


def test_several_curves_with_replicates(tmp_path):
    text = "curve,replicate,time,release\n" + "".join(
        f"{cid},{rep},{t},{base * t + rep}\n"
        for cid, base in (("A", 10), ("B", 5)) for rep in (1, 2, 3) for t in (1, 2, 4))
    data = read_curves(_csv(tmp_path, text))
    assert [c.curve_id for c in data.curves] == ["A", "B"]
    a = data.curves[0]
    assert a.n_replicates == 3 and a.replicates_pct.shape == (3, 3)
    np.testing.assert_allclose(a.release_pct, [12, 22, 42])  # mean of +1, +2, +3


@pytest.mark.parametrize("text, message", [
    ("time,release\n-1,10\n4,20\n", r"curve 'curves' in curves.csv: negative time -1 h"),
    ("time,release\n1,10\n2,\n4,30\n",
     r"curve 'curves' in curves.csv: time or release is missing or not a number on line 3"),
    ("time,release\n1,10\n2,abc\n", r"missing or not a number on line 3"),
    ("curve,time,release\nA,1,10\nB,1,10\nB,2,20\n", r"curve 'A' in curves.csv has a single point"),
    ("time,comment\n1,a\n2,b\n", r"no release column with numbers \(columns: time, comment\)"),
    ("curve,replicate,time,release\nA,1,1,10\nA,1,2,20\nA,2,1,11\nA,2,3,21\n",
     r"curve 'A' in curves.csv: replicate '2' is sampled at 1, 3 h but replicate '1' at 1, 2 h"),
    ("time,release\n", r"no data rows"),
])
def test_bad_curve_files_are_named_with_strict(tmp_path, text, message):
    with pytest.raises(InputError, match=message):
        read_curves(_csv(tmp_path, text), strict=True)


def test_without_strict_an_unusable_curve_is_skipped_with_its_reason(tmp_path):
    data = read_curves(_csv(tmp_path, "curve,time,release\nA,1,10\nB,1,10\nB,2,20\nC,1,\nC,2,\n"))
    assert [c.curve_id for c in data.curves] == ["B"]
    assert data.skipped == {
        "A": "curve 'A' in curves.csv has a single point; a release curve needs at least 2",
        "C": "curve 'C' in curves.csv: time or release is missing or not a number on line 5, line 6 "
             "(no usable point)",
    }


def test_a_file_with_no_usable_curve_is_refused(tmp_path):
    with pytest.raises(InputError, match="has a single point"):
        read_curves(_csv(tmp_path, "time,release\n1,10\n"))


def test_missing_file_and_unknown_time_unit(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_curves(tmp_path / "absent.csv")
    with pytest.raises(InputError, match="time unit"):
        read_curves(_csv(tmp_path, "time,release\n1,2\n2,3\n"), time_unit="week")


@pytest.mark.parametrize("times, release, message", [
    ([1.0], [5.0], "curve 'P1' has a single point"),
    ([1, 2, float("nan")], [1, 2, 3], "curve 'P1': time is not a number at point 3 of 3"),
    ([1, 2, 3], [1, float("nan"), 3], "curve 'P1': release is not a number at point 2 of 3"),
    ([1, 2, 2], [1, 2, 3], "curve 'P1': times must increase, 2 h is followed by 2 h"),
    ([1, 2], [1, 2, 3], "curve 'P1': 2 times but 3 release values"),
])
def test_validate_curve_names_the_curve_and_problem(times, release, message):
    with pytest.raises(InputError) as caught:
        validate_curve(times, release, curve_id="P1")
    assert str(caught.value).startswith(message)


def test_release_curve_checks_replicate_shape():
    with pytest.raises(InputError, match="replicates must have shape"):
        ReleaseCurve("R", [1, 2, 4], [1, 2, 3], np.ones((3, 2)))
