"""Model-independent measures against hand-computed values."""

import pytest

from nanoloop.loop.kinetics import (
    burst_release,
    dissolution_efficiency,
    mean_dissolution_time,
    release_at,
    time_to_release,
)

TIMES = [1, 2, 4, 8]
RELEASE = [10, 30, 60, 90]


def test_t50_and_t80_by_linear_interpolation():
    # t50 between (2 h, 30 %) and (4 h, 60 %): 2 + (50 − 30)·2/30 = 3.3333 h
    assert time_to_release(TIMES, RELEASE, 50) == pytest.approx(2 + 20 * 2 / 30)
    # t80 between (4 h, 60 %) and (8 h, 90 %): 4 + (80 − 60)·4/30 = 6.6667 h
    assert time_to_release(TIMES, RELEASE, 80) == pytest.approx(4 + 20 * 4 / 30)


def test_t_x_is_none_when_never_reached_and_interpolates_from_the_origin():
    assert time_to_release(TIMES, RELEASE, 95) is None
    # first point (1 h, 60 %) already past 50 %: from (0 h, 0 %), 1·50/60 = 0.8333 h
    assert time_to_release([1, 2], [60, 70], 50) == pytest.approx(50 / 60)
    assert time_to_release([0, 2], [55, 70], 50) == 0.0  # a burst at t = 0


def test_burst_at_24_hours():
    # between (12 h, 20 %) and (48 h, 44 %): 20 + (24 − 12)/36·24 = 28 %
    assert burst_release([1, 12, 48], [5, 20, 44]) == pytest.approx(28.0)
    assert burst_release([1, 12], [5, 20]) is None  # not sampled to 24 h
    assert release_at([1, 12, 48], [5, 20, 44], 0.5) == pytest.approx(2.5)  # from the origin


def test_mean_dissolution_time_by_hand():
    # with (0, 0): increments 20 (mid 0.5 h), 30 (mid 1.5 h), 30 (mid 3 h)
    # MDT = (20·0.5 + 30·1.5 + 30·3)/80 = (10 + 45 + 90)/80 = 1.8125 h
    assert mean_dissolution_time([1, 2, 4], [20, 50, 80]) == pytest.approx(1.8125)
    assert mean_dissolution_time([1, 2, 4], [0, 0, 0]) is None


def test_dissolution_efficiency_by_hand():
    # trapezoids from (0, 0): 0–1 h: 10, 1–2 h: 35, 2–4 h: 130 -> 175 %·h
    # DE = 175/(100 %·4 h) = 43.75 %
    assert dissolution_efficiency([1, 2, 4], [20, 50, 80]) == pytest.approx(43.75)
    # to 3 h: 10 + 35 + (50 + 65)/2·1 = 102.5 %·h over 300 %·h = 34.167 %
    assert dissolution_efficiency([1, 2, 4], [20, 50, 80], until_hours=3) == pytest.approx(102.5 / 3)
    assert dissolution_efficiency([1, 2, 4], [20, 50, 80], until_hours=5) is None
