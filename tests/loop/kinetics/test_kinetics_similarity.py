"""f1/f2: worked examples, properties (hypothesis), the regulatory conditions and the bootstrap."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nanoloop.loop.errors import InputError
from nanoloop.loop.kinetics import ReleaseCurve, bootstrap_f2, compare_curves, f1, f2

REFERENCE = [20, 40, 60, 80]
TEST = [18, 36, 55, 77]


def test_f1_f2_worked_example():
    # differences 2, 4, 5, 3
    # f1 = 100·(2 + 4 + 5 + 3)/(20 + 40 + 60 + 80) = 100·14/200 = 7.0
    assert f1(REFERENCE, TEST) == pytest.approx(7.0)
    # mean square difference (4 + 16 + 25 + 9)/4 = 13.5
    # f2 = 50·log10(100/√(1 + 13.5)) = 50·log10(100/3.80789) = 50·1.419314 = 70.966
    assert f2(REFERENCE, TEST) == pytest.approx(70.966, abs=1e-3)


def test_f1_f2_broadcast_over_leading_axes():
    tests = np.array([REFERENCE, TEST, [0, 0, 0, 0]])
    np.testing.assert_allclose(f2(REFERENCE, tests), [100.0, f2(REFERENCE, TEST), f2(REFERENCE, [0, 0, 0, 0])])
    assert f1(REFERENCE, tests).shape == (3,)
    assert f1(REFERENCE, tests)[2] == pytest.approx(100.0)


profiles = st.lists(st.floats(0, 100, allow_nan=False), min_size=3, max_size=12)


@given(profiles)
def test_identical_curves_give_f2_100_and_f1_0(reference):
    assert f2(reference, reference) == pytest.approx(100.0)
    if sum(reference) > 0:
        assert f1(reference, reference) == pytest.approx(0.0)


@settings(max_examples=50)
@given(profiles, st.floats(0, 50), st.floats(0.01, 50))
def test_f2_falls_as_curves_move_apart(reference, shift, extra):
    reference = np.array(reference)
    direction = np.where(np.arange(reference.size) % 2, 1.0, -1.0)  # any fixed non-zero direction
    near = f2(reference, reference + shift * direction)
    far = f2(reference, reference + (shift + extra) * direction)
    assert far < near


@given(profiles, profiles)
def test_f2_is_symmetric(a, b):
    n = min(len(a), len(b))
    assert f2(a[:n], b[:n]) == pytest.approx(f2(b[:n], a[:n]))


TIMES = [0, 1, 2, 4, 8, 12]


def test_compare_drops_t0_and_points_after_one_passes_85_percent():
    reference = ReleaseCurve("R", TIMES, [0, 30, 60, 87, 95, 98])
    test = ReleaseCurve("T", TIMES, [0, 25, 55, 80, 94, 97])
    result = compare_curves(reference, test)
    # used: 1, 2, 4 h (4 h is the first point with a curve above 85 %); differences 5, 5, 7
    assert list(result.times_hours) == [1, 2, 4]
    # f1 = 100·17/(30 + 60 + 87) = 9.6045; f2 = 50·log10(100/√(1 + 99/3)) = 50·log10(100/5.830952) = 50·1.234260 = 61.713
    assert result.f1 == pytest.approx(1700 / 177)
    assert result.f2 == pytest.approx(61.713, abs=1e-3)
    assert any("dropped" in note for note in result.notes)
    assert any("t = 0 excluded" in note for note in result.notes)
    # mean profiles without units are not a regulatory comparison
    assert not result.valid and result.similar is None
    assert any("no replicate units" in reason and "at least 12" in reason for reason in result.reasons)
    assert result.verdict.startswith("not a valid regulatory f2 comparison: 2 condition(s) fail")


def test_compare_is_invalid_with_fewer_than_three_points():
    reference = ReleaseCurve("R", [0, 1, 2, 4], [0, 86, 95, 99])
    test = ReleaseCurve("T", [0, 1, 2, 4], [0, 90, 96, 99])
    result = compare_curves(reference, test)
    assert not result.valid and result.similar is None
    assert "at least 3" in result.reasons[0]


@pytest.mark.parametrize("n_units, cv, shift", [(12, 4, 3), (12, 4, 20), (6, 4, 3), (12, 15, 3), (1, 0, 3)])
def test_the_verdict_never_contradicts_the_reasons(n_units, cv, shift):
    times, mean = [1, 2, 4, 8], [20, 40, 60, 80]
    units = (lambda m, seed: _replicates(m, [cv] * 4, n=n_units, seed=seed)) if n_units > 1 else (lambda m, seed: [m])
    reference = ReleaseCurve.from_replicates("R", times, units(mean, 0))
    test = ReleaseCurve.from_replicates("T", times, units(np.array(mean) - shift, 1))
    result = compare_curves(reference, test, n_bootstrap=200 if n_units > 1 else 0)
    assert result.valid == (not result.reasons)
    assert result.verdict.startswith("valid f2") == (not result.reasons)
    if result.reasons:
        assert f"{len(result.reasons)} condition(s) fail" in result.verdict and result.similar is None
    assert result.to_dict()["verdict"] == result.verdict


def _replicates(mean, cv_pct, n=12, seed=0):
    """Units around `mean` with exactly the given CV at each time."""
    noise = np.random.default_rng(seed).standard_normal((n, len(mean)))
    noise = (noise - noise.mean(0)) / noise.std(0, ddof=1)
    return np.asarray(mean) * (1 + noise * np.asarray(cv_pct) / 100)


def test_twelve_units_with_low_cv_are_a_valid_comparison():
    times, mean = [0.25, 1, 2, 4], [20, 40, 60, 80]
    reference = ReleaseCurve.from_replicates("R", times, _replicates(mean, [5, 4, 4, 4]))
    test = ReleaseCurve.from_replicates("T", times, _replicates(np.array(mean) - 3, [5, 4, 4, 4], seed=1))
    result = compare_curves(reference, test)
    assert result.valid and result.similar and result.reasons == ()
    assert result.bootstrap is None  # nothing fails: no fallback drawn
    assert result.verdict.startswith("valid f2 comparison: similar")


def test_eleven_units_are_not_enough():
    times, mean = [0.25, 1, 2, 4], [20, 40, 60, 80]
    reference = ReleaseCurve.from_replicates("R", times, _replicates(mean, [5, 4, 4, 4]))
    test = ReleaseCurve.from_replicates("T", times, _replicates(mean, [5, 4, 4, 4], n=11, seed=1))
    result = compare_curves(reference, test)
    assert result.reasons == ("test 'T' has 11 units; at least 12 are required for a regulatory f2",)
    assert not result.valid and result.similar is None
    # the fallback: a BCa bootstrap interval, and the verdict is built from it and the reasons
    assert result.bootstrap is not None and result.bootstrap.n_bootstrap == 2000
    assert result.verdict.startswith("not a valid regulatory f2 comparison: 1 condition(s) fail; bootstrap f2 90% BCa")


def test_cv_limits_20_percent_early_and_10_percent_later():
    times, mean = [0.25, 1, 2, 4], [20, 40, 60, 80]
    ok = ReleaseCurve.from_replicates("R", times, _replicates(mean, [15, 8, 8, 8]))
    assert compare_curves(ok, ok).valid  # 15 % at the first point is within 20 %
    late = ReleaseCurve.from_replicates("T", times, _replicates(mean, [15, 15, 8, 8], seed=1))
    result = compare_curves(ok, late)
    assert not result.valid
    assert "test 'T'" in result.reasons[0] and "1 h" in result.reasons[0] and "limit 10 %" in result.reasons[0]
    assert "BCa interval" in result.verdict


def test_points_up_to_10_minutes_count_as_early():
    times, mean = [0.05, 0.15, 1, 2], [20, 40, 60, 80]
    curve = ReleaseCurve.from_replicates("R", times, _replicates(mean, [18, 18, 5, 5]))
    assert compare_curves(curve, curve).valid  # 0.15 h = 9 min is early (12 units each)


def test_compare_rejects_different_time_points():
    with pytest.raises(InputError, match="not sampled at the same times"):
        compare_curves(ReleaseCurve("R", [1, 2, 4], [10, 20, 30]), ReleaseCurve("T", [1, 2, 6], [10, 20, 30]))


def test_bootstrap_needs_replicates():
    curve = ReleaseCurve("R", [1, 2, 4], [10, 20, 30])
    with pytest.raises(InputError, match="replicate"):
        compare_curves(curve, curve, n_bootstrap=100)


def test_bootstrap_interval_brackets_f2_and_is_reproducible():
    times, mean = [1, 2, 4, 8], [20, 40, 60, 80]
    reference = _replicates(mean, [8, 5, 5, 5], seed=2)
    test = _replicates(np.array(mean) - 4, [8, 5, 5, 5], seed=3)
    first = bootstrap_f2(reference, test, n_bootstrap=500, seed=11)
    assert first.lower <= first.f2 <= first.upper
    assert first == bootstrap_f2(reference, test, n_bootstrap=500, seed=11)
    result = compare_curves(ReleaseCurve.from_replicates("R", times, reference),
                            ReleaseCurve.from_replicates("T", times, test), n_bootstrap=500, seed=11)
    boot = result.bootstrap
    assert (boot.f2, boot.lower, boot.upper) == pytest.approx((first.f2, first.lower, first.upper))
    assert result.to_dict()["bootstrap"]["similar"] == (first.lower >= 50)
