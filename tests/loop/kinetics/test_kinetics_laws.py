"""Release laws: every law recovers known parameters from a noisy synthetic curve, and the
equations behave as their closed forms say."""

import numpy as np
import pytest

from nanoloop.loop.kinetics import LAWS, LAWS_BY_NAME, fit_law, fit_laws, get_law, mechanism_reading, release_mechanism
from nanoloop.loop.kinetics import equations as eq

TIMES = np.array([0, 0.5, 1, 2, 4, 8, 12, 24, 48, 72, 96, 168, 240, 336, 504, 672.0])

# law -> (true parameters, sampling times); chosen so the curve is informative for the law.
TRUTH = {
    "zero_order": ((0.12,), TIMES),
    "zero_order_burst": ((10.0, 0.1), TIMES),
    "first_order": ((0.01,), TIMES),
    "first_order_plateau": ((75.0, 0.02), TIMES),
    "first_order_burst": ((20.0, 0.008), TIMES),
    "higuchi": ((3.5,), TIMES),
    "higuchi_burst": ((12.0, 3.0), TIMES),
    "korsmeyer_peppas": ((5.0, 0.45), TIMES),
    "korsmeyer_peppas_burst": ((8.0, 3.0, 0.5), TIMES),
    "hixson_crowell": ((0.0015,), TIMES),
    "hopfenberg": ((0.0012, 2.0), TIMES),
    "baker_lonsdale": ((0.0005,), TIMES),
    "peppas_sahlin": ((6.0, -0.08, 0.45), TIMES),
    "weibull": ((80.0, 0.7), TIMES),
    "weibull_lag": ((60.0, 1.3, 5.0), TIMES),
    "weibull_plateau": ((80.0, 40.0, 0.9), TIMES),
    "gompertz": ((20.0, 1.8), TIMES),
    "gompertz_plateau": ((85.0, 10.0, 1.5), TIMES),
    "logistic": ((-4.0, 2.2), TIMES),
    "logistic_plateau": ((70.0, -5.0, 2.5), TIMES),
    "fickian_sphere": ((0.0005,), TIMES),
    "makoid_banakar": ((6.0, 0.5, 0.002), TIMES),
    "probit": ((-2.0, 1.5), TIMES),
    "quadratic": ((-1e-6, 0.0015), TIMES),
}


def test_every_law_has_a_recovery_case():
    assert set(TRUTH) == set(LAWS_BY_NAME)


@pytest.mark.parametrize("name", sorted(TRUTH))
def test_recovers_known_parameters_from_noisy_curve(name):
    law = get_law(name)
    truth, times = TRUTH[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    release = law(times, *truth) + rng.normal(0.0, 0.5, times.size)
    fit = fit_law(law, times, release)
    for param, true_value in zip(law.parameters, truth):
        fitted = fit.params[param.name]
        assert fitted == pytest.approx(true_value, rel=0.1, abs=1.0 if param.unit == "%" else 1e-6), param.name
        se = fit.std_errors[param.name]
        assert se is not None and se >= 0
    assert fit.r2 > 0.99


@pytest.mark.parametrize("law", LAWS, ids=lambda law: law.name)
def test_law_is_a_complete_value_object(law):
    assert law.function.__doc__ and "in h" in law.function.__doc__  # equation and units documented
    assert law.lower_bounds.shape == law.upper_bounds.shape == (len(law.param_names),)
    assert np.all(law.lower_bounds < law.upper_bounds)
    with pytest.raises(AttributeError):
        law.name = "renamed"  # frozen


@pytest.mark.parametrize("law", LAWS, ids=lambda law: law.name)
@pytest.mark.parametrize("release", [
    np.linspace(0, 90, TIMES.size),                 # steady
    np.full(TIMES.size, 0.0),                       # nothing released
    np.minimum(100 * TIMES / 4, 102.0),             # fast, a little above 100 %
])
def test_initial_guess_is_finite_and_evaluates(law, release):
    guess = np.asarray(law.initial_guess(TIMES, release), dtype=float)
    assert guess.shape == (len(law.param_names),) and np.all(np.isfinite(guess))
    with np.errstate(all="ignore"):
        values = law(TIMES, *np.clip(guess, law.lower_bounds, law.upper_bounds))
    assert np.all(np.isfinite(values))


@pytest.mark.parametrize("law", LAWS, ids=lambda law: law.name)
def test_laws_broadcast_over_parameter_sets(law):
    params = np.array([TRUTH[law.name][0], TRUTH[law.name][0]]) * np.array([[1.0], [0.9]])
    stacked = law(TIMES, *(params[:, j, None] for j in range(params.shape[1])))
    assert stacked.shape == (2, TIMES.size)
    np.testing.assert_allclose(stacked[1], law(TIMES, *params[1]))


def test_baker_lonsdale_closed_form_solves_its_implicit_equation():
    k = 0.001
    f = eq.baker_lonsdale(TIMES, k) / 100
    lhs = 1.5 * (1 - (1 - f) ** (2 / 3)) - f
    np.testing.assert_allclose(lhs, np.minimum(k * TIMES, 0.5), atol=1e-12)
    assert eq.baker_lonsdale(np.array([600.0]), k)[0] == pytest.approx(100.0)  # complete at t = 0.5/k


def test_fickian_sphere_matches_the_full_series_and_crank_half_time():
    tau = np.array([1e-4, 0.01, 0.0499, 0.0501, 0.0999, 0.3, 1.0])
    n = np.arange(1, 20001)[:, None]
    series = 100 * (1 - 6 / np.pi**2 * np.sum(np.exp(-(n**2) * np.pi**2 * tau) / n**2, axis=0))
    np.testing.assert_allclose(eq.fickian_sphere(tau, 1.0), series, rtol=0, atol=1e-7)
    # Crank: half of the drug leaves a sphere at D·t/r² ≈ 0.0305
    assert eq.fickian_sphere(np.array([0.0305]), 1.0)[0] == pytest.approx(50.0, abs=0.1)


def test_gompertz_and_logistic_start_at_zero():
    for law in ("gompertz", "logistic", "gompertz_plateau", "logistic_plateau", "weibull_lag"):
        assert LAWS_BY_NAME[law](np.array([0.0]), *TRUTH[law][0])[0] == pytest.approx(0.0, abs=1e-12)


def test_logistic_half_release_time():
    # log10 t50 = -alpha/beta = 4/2 -> t50 = 100 h
    assert eq.logistic(np.array([100.0]), -4.0, 2.0)[0] == pytest.approx(50.0)


def test_unknown_law_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="first_order"):
        get_law("first-order")


@pytest.mark.parametrize("n, geometry, expected", [
    (0.30, "sphere", "Fickian diffusion"),
    (0.43, "sphere", "Fickian diffusion"),
    (0.60, "sphere", "anomalous (non-Fickian) transport"),
    (0.85, "sphere", "case II transport"),
    (1.10, "sphere", "case II transport"),
    (0.48, "slab", "Fickian diffusion"),
    (0.88, "cylinder", "anomalous (non-Fickian) transport"),
])
def test_release_mechanism_reads_the_exponent(n, geometry, expected):
    assert release_mechanism(n, geometry) == expected


def test_release_mechanism_rejects_unknown_geometry():
    with pytest.raises(ValueError, match="sphere"):
        release_mechanism(0.5, "cube")


def test_new_ddsolver_laws_match_their_closed_forms():
    t = np.array([0.0, 1.0, 10.0, 100.0])
    # Makoid-Banakar 6·t^0.5·e^(-0.002 t): at 100 h 6·10·e^(-0.2) = 60·0.818731 = 49.124
    assert eq.makoid_banakar(t, 6.0, 0.5, 0.002)[3] == pytest.approx(49.1238, abs=1e-3)
    # probit 100·Φ(-2 + 1.5·log10 t): at 10 h Φ(-0.5) = 0.308538
    assert eq.probit(t, -2.0, 1.5)[2] == pytest.approx(30.8538, abs=1e-3)
    assert eq.probit(t, -2.0, 1.5)[0] == pytest.approx(0.0)
    # quadratic 100·(k1 t² + k2 t): at 100 h 100·(-1e-6·1e4 + 0.0015·100) = 100·(-0.01 + 0.15) = 14
    assert eq.quadratic(t, -1e-6, 0.0015)[3] == pytest.approx(14.0)


@pytest.mark.parametrize("n, expected", [
    # Ritger-Peppas limits: slab 0.5/1.0, cylinder 0.45/0.89, sphere 0.43/0.85
    (0.44, {"slab": "Fickian diffusion", "cylinder": "Fickian diffusion",
            "sphere": "anomalous (non-Fickian) transport"}),
    (0.87, {"slab": "anomalous (non-Fickian) transport", "cylinder": "anomalous (non-Fickian) transport",
            "sphere": "case II transport"}),
    (0.95, {"slab": "anomalous (non-Fickian) transport", "cylinder": "case II transport",
            "sphere": "case II transport"}),
])
def test_mechanism_follows_the_geometry(n, expected):
    times = np.array([0.5, 1, 2, 4, 8, 16, 24])
    fit = fit_laws(times, 5.0 * times**n, ["korsmeyer_peppas", "korsmeyer_peppas_burst", "zero_order"])
    for geometry, mechanism in expected.items():
        reading = mechanism_reading(fit, geometry)
        assert reading["n"] == pytest.approx(n, abs=1e-3)
        assert reading["mechanism"] == mechanism, geometry


def test_mechanism_is_read_from_the_burst_variant_when_the_burst_wins():
    times = np.array([0.25, 0.5, 1, 2, 4, 8, 12, 24, 36, 48])
    release = 25.0 + 2.0 * times**0.79 + np.random.default_rng(3).normal(0, 0.3, times.size)
    fit = fit_laws(times, release)
    plain = fit.get("korsmeyer_peppas").params["n"]
    reading = mechanism_reading(fit, "sphere")
    assert plain < 0.43  # without the burst term the exponent reads as Fickian
    assert reading["model"] == "korsmeyer_peppas_burst"
    assert reading["n"] == pytest.approx(0.79, abs=0.08)
    assert reading["mechanism"] == "anomalous (non-Fickian) transport"
    assert "burst" in reading["why"]


def test_peppas_sahlin_reading_compares_the_terms():
    from nanoloop.loop.kinetics.mechanism import peppas_sahlin_reading

    # k2·t^m/k1 at 4 h = 2·4^0.5/8 = 0.5: diffusion dominates
    reading = peppas_sahlin_reading(8.0, 2.0, 0.5, "slab", at_hours=4.0)
    assert reading["ratio"] == pytest.approx(0.5) and "diffusion dominates" in reading["reading"]
    assert reading["fickian_limit"] == 0.5
    assert "relaxation dominates" in peppas_sahlin_reading(1.0, 2.0, 0.5, at_hours=4.0)["reading"]
