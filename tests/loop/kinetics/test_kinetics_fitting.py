"""Fitting and ranking: DDSolver statistics by hand, AICc ranking, robustness on awkward
curves, and the ledger's one-call summary."""

import json
import math
import time

import numpy as np
import pytest

from nanoloop.loop.errors import InputError
from nanoloop.loop.kinetics import LAWS, fit_law, fit_laws, fit_statistics, get_law, summarize_curve

TIMES = np.array([1, 2, 4, 8, 24, 48, 72, 120, 168, 336, 504, 672.0])


def test_fit_statistics_match_hand_computation():
    # residuals observed − predicted: −2, 2, 0, −1  -> SSE = 4 + 4 + 0 + 1 = 9
    # mean 25 -> SST = 225 + 25 + 25 + 225 = 500; n = 4, p = 1
    stats = fit_statistics([10, 20, 30, 40], [12, 18, 30, 41], n_params=1)
    assert stats["sse"] == pytest.approx(9.0)
    assert stats["r2"] == pytest.approx(1 - 9 / 500)  # 0.982
    assert stats["r2_adjusted"] == pytest.approx(1 - 3 / 3 * (9 / 500))  # (n−1)/(n−p) = 1
    assert stats["rmse"] == pytest.approx(math.sqrt(9 / 3))  # 1.732
    assert stats["aic"] == pytest.approx(4 * math.log(9) + 2)  # 10.7889
    assert stats["aicc"] == pytest.approx(4 * math.log(9) + 2 + 2 * 1 * 2 / (4 - 1 - 1))  # 12.7889
    assert stats["bic"] == pytest.approx(4 * math.log(9) + math.log(4))  # 10.1752
    assert stats["msc"] == pytest.approx(math.log(500 / 9) - 2 / 4)  # 3.5174


def test_undefined_statistics_are_none():
    stats = fit_statistics([5, 5, 5], [5, 5, 5], n_params=2)
    assert stats["r2"] is None and stats["msc"] is None  # SST = 0
    assert stats["aicc"] is None  # n − p − 1 = 0


def test_zero_order_standard_error_by_hand():
    # k = Σ t·F / Σ t² = (2.1 + 7.8 + 18.6 + 31.2) / 30 = 1.99
    # residuals 0.11, −0.08, 0.23, −0.16 -> SSE = 0.097, s² = 0.097/3
    # SE(k) = √(s²/Σt²) = √(0.032333/30) = 0.032830
    fit = fit_law("zero_order", [1, 2, 3, 4], [2.1, 3.9, 6.2, 7.8])
    assert fit.params["k0"] == pytest.approx(1.99, rel=1e-6)
    assert fit.sse == pytest.approx(0.097, rel=1e-5)
    assert fit.std_errors["k0"] == pytest.approx(0.032830, rel=1e-3)


def test_ranking_by_aicc_puts_the_generating_law_first():
    rng = np.random.default_rng(7)
    release = get_law("weibull_plateau")(TIMES, 70.0, 60.0, 2.0) + rng.normal(0, 0.3, TIMES.size)
    result = fit_laws(TIMES, release)
    assert result.best.law.name == "weibull_plateau"
    whole = [f for f in result.fits if f.fitted_on_all_points]
    partial = [f for f in result.fits if not f.fitted_on_all_points]
    assert result.fits == tuple(whole + partial)  # partial (≤ 60 %) fits come last
    aicc = [f.aicc for f in whole]
    assert aicc == sorted(aicc)
    assert {f.law.name for f in partial} == {"korsmeyer_peppas", "korsmeyer_peppas_burst"}
    assert all(f.n_points < TIMES.size for f in partial)


def test_korsmeyer_peppas_uses_points_up_to_60_percent():
    release = np.array([5, 8, 12, 18, 30, 45, 55, 68, 75, 85, 90, 92.0])
    fit = fit_law("korsmeyer_peppas", TIMES, release)
    assert fit.n_points == 7 and not fit.fitted_on_all_points  # up to 55 % at 72 h


def test_burst_curve_skips_korsmeyer_peppas_with_the_reason():
    release = np.array([65, 70, 74, 78, 85, 90, 93, 95, 96, 97, 97, 97.0])
    result = fit_laws(TIMES, release)
    assert "korsmeyer_peppas" in result.skipped
    assert "60 %" in result.skipped["korsmeyer_peppas"]
    assert result.best is not None


@pytest.mark.parametrize("times, release", [
    ([1, 4, 24], [20, 45, 80]),                                          # three points
    ([0, 1, 2, 4, 8, 24, 48], [0, 40, 70, 92, 100, 100, 100]),           # t = 0 and a plateau
    ([1, 2, 4, 8, 24, 48, 72], [30, 55, 80, 98, 101.5, 102.8, 101.9]),   # a little above 100 %
    ([1, 2, 4, 8], [0, 0, 0, 0]),                                        # nothing released
    ([0.5, 48], [3, 60]),                                                # two points
])
def test_fit_laws_is_robust_on_awkward_curves(times, release):
    result = fit_laws(times, release)
    assert result.best is not None
    for fit in result.fits:
        assert all(np.isfinite(v) for v in fit.params.values())
        assert np.all(np.isfinite(fit.predict(times)))
        json.dumps(fit.to_dict(), allow_nan=False)
    assert len(result.fits) + len(result.skipped) == len(LAWS)


def test_plateau_above_100_percent_is_fitted():
    times = np.array([1, 2, 4, 8, 24, 48, 72.0])
    release = np.array([30, 55, 80, 98, 101.5, 102.8, 101.9])
    fit = fit_law("first_order_plateau", times, release)
    assert fit.params["Fmax"] == pytest.approx(102, abs=1.5)


def test_three_parameter_laws_need_four_points():
    result = fit_laws([1, 4, 24], [20, 45, 80])
    assert "weibull_plateau" in result.skipped and "4 points" in result.skipped["weibull_plateau"]
    with pytest.raises(ValueError, match="4 points"):
        fit_law("weibull_plateau", [1, 4, 24], [20, 45, 80])


def test_fit_laws_validates_the_curve():
    with pytest.raises(InputError, match="curve 'X9'.*increase"):
        fit_laws([1, 3, 2], [10, 20, 30], curve_id="X9")


def test_fit_laws_accepts_law_names():
    result = fit_laws(TIMES, 100 * (1 - np.exp(-0.01 * TIMES)), laws=["first_order", "higuchi"])
    assert [f.law.name for f in result.fits] == ["first_order", "higuchi"]
    assert result.get("first_order").params["k1"] == pytest.approx(0.01)
    assert result.get("weibull") is None


def test_summarize_curve_is_json_ready_with_none_for_undefined():
    release = 60 * (1 - np.exp(-TIMES / 100))  # plateau at 60 %: t80 never reached
    summary = summarize_curve(TIMES, release)
    assert set(summary) == {"best_model", "best_params", "best_aicc", "r2", "t50_hours", "t80_hours",
                            "burst_24h_pct", "mdt_hours", "de_pct"}
    assert summary["best_model"] == "first_order_plateau"
    assert summary["best_params"]["Fmax"] == pytest.approx(60, rel=1e-3)
    assert summary["t80_hours"] is None
    # linear interpolation between F(168 h) = 60(1 − e^−1.68) = 48.818 and F(336 h) = 57.916:
    # t50 = 168 + (50 − 48.818)/(57.916 − 48.818)·168 = 189.83 h
    assert summary["t50_hours"] == pytest.approx(189.83, abs=0.01)
    assert summary["burst_24h_pct"] == pytest.approx(60 * (1 - math.exp(-0.24)), rel=1e-9)
    json.dumps(summary, allow_nan=False)


def test_summarize_curve_is_quick_and_never_raises_on_short_curves():
    rng = np.random.default_rng(3)
    for _ in range(3):
        release = np.clip(95 * (1 - np.exp(-TIMES / rng.uniform(5, 500))) + rng.normal(0, 2, TIMES.size), 0, None)
        start = time.process_time()
        summary = summarize_curve(TIMES, release)
        assert time.process_time() - start < 0.5
        assert summary["best_model"] is not None
    short = summarize_curve([1.0, 8.0], [5.0, 12.0])  # sampling stops before 24 h
    assert short["burst_24h_pct"] is None and short["t50_hours"] is None


def test_summarize_curve_rejects_invalid_curves():
    with pytest.raises(InputError, match="single point"):
        summarize_curve([1.0], [5.0])


@pytest.mark.parametrize("law_name, params, errors, expected", [
    # Fmax 149 is within 1 % of its upper bound 150 (|149 - 150| = 1 <= 1.5); SE 46 < 149
    ("first_order_plateau", [149.0, 0.01], [46.0, 0.001], ["Fmax at its upper bound 150"]),
    # k1: SE 0.02 exceeds the estimate 0.01
    ("first_order_plateau", [100.0, 0.01], [5.0, 0.02], ["k1: standard error 0.02 exceeds the estimate 0.01"]),
    # Hopfenberg n = 10 ± 44: at its upper bound 10, and SE above the estimate
    ("hopfenberg", [0.001, 10.0], [0.0001, 44.0],
     ["n at its upper bound 10", "n: standard error 44 exceeds the estimate 10"]),
    # F0 = 0 is at its lower bound 0; 98.4 is 1.6 % below the upper bound 100: not flagged
    ("zero_order_burst", [0.0, 0.1], [0.5, 0.01], ["F0 at its lower bound 0", "F0: standard error 0.5 exceeds the estimate 0"]),
    ("zero_order_burst", [98.4, 0.1], [0.5, 0.01], []),
])
def test_fit_flags_parameters_at_bounds_and_large_errors(law_name, params, errors, expected):
    from nanoloop.loop.kinetics.fitting import _fit_flags

    assert list(_fit_flags(get_law(law_name), np.array(params), np.array(errors))) == expected


def test_a_still_rising_curve_pushes_fmax_to_its_bound_and_is_flagged():
    times = np.array([1, 2, 4, 8, 16, 24, 48.0])
    fit = fit_law("first_order_plateau", times, 1.0 * times)  # straight line to 48 %
    assert fit.params["Fmax"] == pytest.approx(150.0)
    assert "Fmax at its upper bound 150" in fit.flags
    assert "Fmax at its upper bound 150" in fit.to_dict()["flags"]


def test_weights_by_replicate_sd_discount_a_noisy_point():
    times = np.array([1, 2, 4, 8, 12, 24, 48.0])
    truth = 100 * (1 - np.exp(-0.05 * times))
    observed = truth.copy()
    observed[4] += 15.0  # one badly measured time point ...
    sd = np.full(times.size, 1.0)
    sd[4] = 20.0  # ... whose replicates disagree
    weighted = fit_law("first_order", times, observed, sd_pct=sd)
    unweighted = fit_law("first_order", times, observed)
    assert weighted.weighted and not unweighted.weighted
    assert abs(weighted.params["k1"] - 0.05) < 0.2 * abs(unweighted.params["k1"] - 0.05)
    assert weighted.params["k1"] == pytest.approx(0.05, rel=0.02)


def test_weights_floor_the_sd_and_average_to_one():
    from nanoloop.loop.kinetics.fitting import weights_from_sd

    # SDs 0, 1, 2 -> floored 1, 1, 2 -> 1/SD² = 1, 1, 0.25 -> scaled by 3/2.25
    np.testing.assert_allclose(weights_from_sd([0.0, 1.0, 2.0]), [4 / 3, 4 / 3, 1 / 3])


def test_weighted_fit_statistics_match_hand_computation():
    # weights 2, 0, 1, 1: SSE = 2·4 + 0·4 + 0 + 1·1 = 9
    # weighted mean (20 + 0 + 30 + 40)/4 = 22.5; SST = 2·12.5² + 0 + 7.5² + 17.5² = 312.5 + 56.25 + 306.25 = 675
    stats = fit_statistics([10, 20, 30, 40], [12, 18, 30, 41], n_params=1, weights=[2, 0, 1, 1])
    assert stats["sse"] == pytest.approx(9.0)
    assert stats["r2"] == pytest.approx(1 - 9 / 675)
