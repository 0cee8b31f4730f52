"""The ground-truth physics: bounded, monotone, and each mechanism pulls the right way."""

import math
from dataclasses import replace

import numpy as np
import pytest

from nanoloop.loop.lab.instruments import PermanentInstrumentError
from nanoloop.adapters.simulated import physics
from nanoloop.adapters.simulated.recipe import POLYMERS, Recipe

TIMES_H = np.array([0.0, 0.5, 1, 4, 8, 24, 48, 72, 120, 168, 240, 336, 504, 672, 1500, 5000])
TARGET_TIMES_H = [24, 72, 168, 336, 672]
TARGET_PCT = np.array([20, 40, 65, 80, 95])

from lab_recipes import RECIPE as BASE  # noqa: E402
EXAMPLES = {
    "fast": dict(BASE, polymer_mw_kda=15, drug_logp=0.5, drug_loading_pct=8, particle_size_nm=150,
                 peg_fraction=0.1, ph_responsive_fraction=0.25, medium_ph=5.5),
    "zero_order": dict(BASE, polymer="PLGA 75:25", polymer_mw_kda=25, drug_logp=2.7, drug_loading_pct=3,
                       particle_size_nm=430, peg_fraction=0.25, ph_responsive_fraction=0.05, medium_ph=7.1),
    "sigmoid": dict(BASE, polymer_mw_kda=40, drug_logp=4.5, drug_loading_pct=5, particle_size_nm=400,
                    peg_fraction=0.0),
    "slow": dict(BASE, polymer="PCL", polymer_mw_kda=100, drug_logp=3.0, particle_size_nm=300, peg_fraction=0.0),
    "target": dict(BASE, polymer="PLGA 75:25", polymer_mw_kda=120, drug_logp=-0.65, drug_loading_pct=1,
                   particle_size_nm=500, peg_fraction=0.3),
}


def recipe(**changes) -> Recipe:
    return Recipe.from_mapping(dict(BASE, **changes), "test")


def random_recipes(n: int, seed: int = 0) -> list[Recipe]:
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        peg, phr = rng.uniform(0, 0.3, size=2)
        if peg + phr > 0.4:
            continue
        out.append(Recipe.from_mapping(dict(
            polymer=POLYMERS[rng.integers(4)], polymer_mw_kda=rng.uniform(10, 120), drug_logp=rng.uniform(-1, 5),
            drug_loading_pct=rng.uniform(1, 30), particle_size_nm=rng.uniform(80, 500), peg_fraction=peg,
            ph_responsive_fraction=phr, medium_ph=rng.uniform(5, 7.4)), "test"))
    return out


def params(r: Recipe, size_nm=None, loading_pct=None, temperature_c=37.0) -> physics.ReleaseParameters:
    mean = physics.expected_characterization(r)
    return physics.release_parameters(
        r, size_nm or mean.size_nm, loading_pct or mean.actual_drug_loading_pct, temperature_c
    )


def test_release_is_bounded_monotone_and_starts_at_zero():
    for r in random_recipes(300):
        f = physics.release_fraction(params(r), TIMES_H)
        assert f[0] == 0.0
        assert np.all((f >= 0) & (f <= 1))
        assert np.all(np.diff(f) >= -1e-12), r


def test_crank_series_is_continuous_at_the_short_time_switch_and_tends_to_one():
    tau = np.array([1e-3 * (1 - 1e-9), 1e-3 * (1 + 1e-9)])
    lo, hi = physics.sphere_diffusion_fraction(tau)
    assert hi == pytest.approx(lo, abs=1e-8)
    assert physics.sphere_diffusion_fraction(np.array([2.0]))[0] == pytest.approx(1.0, abs=1e-8)
    # Crank: half the drug is out of a sphere at D t / r^2 ~ 0.0305
    assert physics.sphere_diffusion_fraction(np.array([0.0305]))[0] == pytest.approx(0.5, abs=0.005)


def test_acid_speeds_plga_erosion_and_the_excipient_only_below_ph_6_5():
    neutral, acid = params(recipe(medium_ph=7.4)), params(recipe(medium_ph=5.0))
    assert acid.hydrolysis_rate_per_h > 1.5 * neutral.hydrolysis_rate_per_h
    assert acid.erosion_lag_h < neutral.erosion_lag_h
    t = np.array([300.0, 500.0])
    assert np.all(physics.erosion_fraction(t, acid.erosion_lag_h, acid.erosion_rate_per_h)
                  > physics.erosion_fraction(t, neutral.erosion_lag_h, neutral.erosion_rate_per_h))
    with_excipient = lambda ph: params(recipe(ph_responsive_fraction=0.25, medium_ph=ph)).hydrolysis_rate_per_h
    without = lambda ph: params(recipe(ph_responsive_fraction=0.0, medium_ph=ph)).hydrolysis_rate_per_h
    assert with_excipient(5.5) > 2 * without(5.5)
    assert with_excipient(7.4) == pytest.approx(without(7.4), rel=0.02)


def test_polymer_order_of_erosion_and_molecular_weight():
    rates = [params(recipe(polymer=p)).hydrolysis_rate_per_h for p in POLYMERS]
    assert rates == sorted(rates, reverse=True)  # PLGA 50:50 > 75:25 > PLA > PCL
    assert params(recipe(polymer_mw_kda=100)).erosion_lag_h > params(recipe(polymer_mw_kda=20)).erosion_lag_h
    assert params(recipe(polymer_mw_kda=100)).diffusivity_cm2_s < params(recipe(polymer_mw_kda=20)).diffusivity_cm2_s


def test_bigger_particles_diffuse_out_slower():
    r = recipe()
    small, big = params(r, size_nm=100), params(r, size_nm=400)
    assert big.diffusion_rate_per_h == pytest.approx(small.diffusion_rate_per_h / 16)
    t = TIMES_H[1:]
    f_small = physics.sphere_diffusion_fraction(physics.diffusion_clock(small, t))
    f_big = physics.sphere_diffusion_fraction(physics.diffusion_clock(big, t))
    assert np.all(f_big < f_small)


def test_hydrophobic_drug_diffuses_slower_and_peg_speeds_diffusion():
    assert params(recipe(drug_logp=4)).diffusivity_cm2_s < params(recipe(drug_logp=0)).diffusivity_cm2_s
    assert params(recipe(peg_fraction=0.3)).diffusivity_cm2_s > params(recipe(peg_fraction=0.0)).diffusivity_cm2_s


def test_burst_rises_with_loading_and_smallness_and_falls_a_little_with_peg():
    r = recipe()
    assert params(r, 200, 20).burst > params(r, 200, 5).burst
    assert params(r, 100, 10).burst > params(r, 400, 10).burst
    plain, pegylated = params(recipe(peg_fraction=0.0), 200, 10), params(recipe(peg_fraction=0.3), 200, 10)
    assert 0.6 * plain.burst < pegylated.burst < plain.burst


def test_warmer_medium_releases_faster():
    r = recipe()
    cold = physics.release_fraction(params(r, temperature_c=25.0), [24, 336])
    warm = physics.release_fraction(params(r, temperature_c=45.0), [24, 336])
    assert np.all(warm > cold)


def test_the_space_gives_varied_curves():
    f = {name: physics.true_release_pct(Recipe.from_mapping(r, "t"), [24, 48, 120, 240, 336, 504, 672])
         for name, r in EXAMPLES.items()}
    assert f["fast"][1] >= 90  # 90 % within two days
    assert f["slow"][-1] < 40  # < 40 % at 28 days
    zero = f["zero_order"]
    slopes = np.diff(zero) / np.diff([24, 48, 120, 240, 336, 504, 672])
    assert zero[0] < 15 and 50 < zero[-1] < 90 and slopes.max() < 3 * slopes.min()
    sig = f["sigmoid"]
    early_slope, late_slope = (sig[2] - sig[0]) / 96, (sig[5] - sig[4]) / 168
    assert late_slope > 4 * early_slope and sig[-1] > 90  # accelerates after a lag


def test_the_target_profile_is_reachable_in_a_corner():
    got = physics.true_release_pct(Recipe.from_mapping(EXAMPLES["target"], "t"), TARGET_TIMES_H)
    rmse = math.sqrt(np.mean((got - TARGET_PCT) ** 2))
    assert rmse < 4.0
    f2 = 50 * math.log10(100 / math.sqrt(1 + np.mean((got - TARGET_PCT) ** 2)))
    assert f2 > 65
    # ... but not from the middle of the space
    typical = physics.true_release_pct(recipe(), TARGET_TIMES_H)
    assert math.sqrt(np.mean((typical - TARGET_PCT) ** 2)) > 10


def test_characterization_trends():
    zeta = lambda **c: physics.expected_characterization(recipe(**c)).zeta_mv
    assert -35 <= zeta(peg_fraction=0.0) <= -25
    assert zeta(peg_fraction=0.3) > -8
    assert zeta(peg_fraction=0.0, ph_responsive_fraction=0.3) > -5
    ee = lambda **c: physics.expected_characterization(recipe(**c)).encapsulation_efficiency_pct
    assert ee(drug_loading_pct=25) < ee(drug_loading_pct=5)
    assert ee(drug_logp=-0.5) < ee(drug_logp=4)
    assert ee(particle_size_nm=450) > ee(particle_size_nm=100)
    mean = physics.expected_characterization(recipe(drug_loading_pct=20))
    assert mean.actual_drug_loading_pct < 20
    assert mean.size_nm > physics.expected_characterization(recipe(drug_loading_pct=2)).size_nm


def test_characterize_noise_is_modest():
    r = recipe()
    rng = np.random.default_rng(0)
    sizes = [physics.characterize(r, rng).size_nm for _ in range(200)]
    mean = physics.expected_characterization(r).size_nm
    assert abs(np.median(sizes) / mean - 1) < 0.05
    assert 0.04 < np.std(np.log(sizes)) < 0.12


def test_failure_probability_rises_outside_the_process_window():
    inside, _ = physics.synthesis_failure(recipe())
    small_loaded, why = physics.synthesis_failure(recipe(drug_loading_pct=30, particle_size_nm=80))
    hydrophilic, why2 = physics.synthesis_failure(recipe(drug_loading_pct=30, drug_logp=-1, particle_size_nm=400))
    assert inside < 0.05
    assert small_loaded > 0.8 and "aggregation" in why
    assert hydrophilic > 0.3 and "hydrophilic" in why2


@pytest.mark.parametrize(
    "change, name",
    [
        ({"polymer": "PEG"}, "polymer"),
        ({"polymer_mw_kda": 500}, "polymer_mw_kda"),
        ({"drug_logp": float("nan")}, "drug_logp"),
        ({"particle_size_nm": "big"}, "particle_size_nm"),
        ({"peg_fraction": 0.3, "ph_responsive_fraction": 0.2}, "peg_fraction"),
    ],
)
def test_bad_recipes_name_the_key(change, name):
    with pytest.raises(PermanentInstrumentError, match=name):
        Recipe.from_mapping(dict(BASE, **change), "lab")


def test_missing_key_is_named_and_extra_keys_are_ignored():
    missing = dict(BASE)
    del missing["medium_ph"]
    with pytest.raises(PermanentInstrumentError, match="medium_ph"):
        Recipe.from_mapping(missing, "lab")
    assert Recipe.from_mapping(dict(BASE, operator="ana"), "lab") == Recipe.from_mapping(BASE, "lab")


def test_release_parameters_are_a_frozen_value():
    p = params(recipe())
    with pytest.raises(Exception):
        p.burst = 0.5  # type: ignore[misc]
    assert replace(p, burst=0.0).burst == 0.0
