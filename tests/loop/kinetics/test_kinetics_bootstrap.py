"""BCa bootstrap interval of f2: the bias correction and acceleration by hand, and a cross-check."""

import numpy as np
import pytest
from scipy import stats

from nanoloop.loop.kinetics import bootstrap_f2, f2
from nanoloop.loop.kinetics.bootstrap import acceleration, bca_interval, bias_correction


def test_bias_correction_is_the_normal_quantile_of_the_share_below():
    # 4 of the 9 replicates lie below 5: z0 = Φ⁻¹(4/9) = -0.139710
    assert bias_correction(5.0, np.arange(1, 10)) == pytest.approx(-0.139710, abs=1e-6)
    # none below: the share is kept at 1/(2B) = 1/18 so z0 stays finite: Φ⁻¹(0.055556) = -1.593219
    assert bias_correction(0.0, np.arange(1, 10)) == pytest.approx(-1.593219, abs=1e-6)


def test_acceleration_by_hand_for_one_and_two_groups():
    # one group, jackknife values 1, 2, 3, 6: mean 3, deviations 2, 1, 0, -3
    # a = Σd³/(6·(Σd²)^1.5) = (8 + 1 + 0 - 27)/(6·14^1.5) = -18/314.299 = -0.057270
    assert acceleration([[1, 2, 3, 6]]) == pytest.approx(-0.057270, abs=1e-6)
    # two groups: U = (n - 1)·(mean - value); group 1 [1, 2, 3, 6] -> U 6, 3, 0, -9 (n = 4)
    # group 2 [4, 4, 7] -> mean 5, U = 2·(1, 1, -2) = 2, 2, -4 (n = 3)
    # Σ U³/n³ = (216 + 27 - 729)/64 + (8 + 8 - 64)/27 = -7.59375 - 1.777778 = -9.371528
    # Σ U²/n² = (36 + 9 + 81)/16 + (4 + 4 + 16)/9 = 7.875 + 2.666667 = 10.541667
    # a = -9.371528/(6·10.541667^1.5) = -9.371528/(6·34.22672) = -0.045635
    assert acceleration([[1, 2, 3, 6], [4, 4, 7]]) == pytest.approx(-0.045635, abs=1e-6)


def test_bca_without_bias_or_skew_is_the_percentile_interval():
    replicates = np.linspace(40, 60, 1001)  # 500 below 50, 500 above: z0 = Φ⁻¹(0.4995) ≈ 0
    lower, upper, z0, a = bca_interval(50.0, replicates, [[1, 1, 1]], confidence=0.90)
    assert a == 0.0 and z0 == pytest.approx(0.0, abs=2e-3)
    np.testing.assert_allclose([lower, upper], np.percentile(replicates, [5, 95]), atol=0.01)


def test_bca_levels_follow_the_formula():
    replicates = np.arange(1000.0)
    estimate = 400.0  # 400 of 1000 below: z0 = Φ⁻¹(0.4) = -0.253347
    jackknife = [[1, 2, 3, 6]]  # a = -0.057270 (above)
    lower, upper, z0, a = bca_interval(estimate, replicates, jackknife, confidence=0.90)
    # z = Φ⁻¹(0.05) = -1.644854
    # α_lo = Φ(z0 + (z0 + z)/(1 - a(z0 + z))) = Φ(-0.253347 + (-1.898201)/(1 - 0.108712)) = Φ(-2.383171) = 0.008582
    # α_hi = Φ(z0 + (z0 - z)/(1 - a(z0 - z))) = Φ(-0.253347 + 1.391507/(1 + 0.079691)) = Φ(1.035432) = 0.849767
    assert lower == pytest.approx(np.percentile(replicates, 0.8582), abs=0.05)
    assert upper == pytest.approx(np.percentile(replicates, 84.9767), abs=0.05)


def _units(mean, cv_pct, n, seed):
    rng = np.random.default_rng(seed)
    return np.asarray(mean) * (1 + rng.standard_normal((n, len(mean))) * cv_pct / 100)


def test_f2_acceleration_is_the_jackknife_over_the_units_of_both_products():
    reference = _units([20, 40, 60, 80], 8, 5, 1)
    test = _units([16, 35, 55, 76], 8, 4, 2)
    boot = bootstrap_f2(reference, test, n_bootstrap=200, seed=0)
    # leave each unit out in turn, by explicit loops
    ref_out = [f2(np.delete(reference, i, axis=0).mean(0), test.mean(0)) for i in range(5)]
    test_out = [f2(reference.mean(0), np.delete(test, i, axis=0).mean(0)) for i in range(4)]
    assert boot.acceleration == pytest.approx(acceleration([ref_out, test_out]), rel=1e-9)
    assert boot.f2 == pytest.approx(float(f2(reference.mean(0), test.mean(0))))


def test_f2_bca_interval_agrees_with_scipy():
    reference = _units([20, 40, 60, 80], 10, 12, 3)
    test = _units([15, 33, 52, 75], 10, 12, 4)
    ours = bootstrap_f2(reference, test, n_bootstrap=4000, seed=5)

    def statistic(ref_units, test_units, axis):  # scipy resamples the unit indices
        ref_mean = reference[ref_units.astype(int)].mean(axis=-2)
        test_mean = test[test_units.astype(int)].mean(axis=-2)
        return f2(ref_mean, test_mean)

    indices = (np.arange(12.0), np.arange(12.0))
    theirs = stats.bootstrap(indices, statistic, n_resamples=4000, confidence_level=0.90,
                             method="BCa", vectorized=True, rng=np.random.default_rng(6)).confidence_interval
    assert ours.lower == pytest.approx(theirs.low, abs=0.4)
    assert ours.upper == pytest.approx(theirs.high, abs=0.4)
