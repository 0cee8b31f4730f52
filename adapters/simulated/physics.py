"""Ground-truth physics of the simulated lab (hidden from the surrogate).

Release model (cumulative fraction of the loaded drug, 0..1, times in hours)::

    F(t) = b(t) + (1 - b(t)) * [1 - (1 - F_diff(t)) * (1 - F_ero(t))]
    b(t) = burst * (1 - exp(-t / BURST_TIME_H))

* ``burst``: drug on or near the particle surface, dissolving within ~2 h.
  It rises with the surface-to-volume ratio (1 / size) times the actual
  loading, more for hydrophilic drugs (they sit near the water interface);
  a PEG corona lowers it a little. It saturates at ``BURST_MAX``.
* ``F_diff``: Fickian diffusion out of a sphere of radius ``r`` (Crank 1975,
  eq. 6.20): ``1 - 6/pi^2 * sum_n exp(-D n^2 pi^2 t / r^2) / n^2``, with
  ``r`` = half the *measured* diameter and an effective diffusivity ``D``
  (cm^2/s) set by the polymer (glassy/crystalline ones slower), molecular
  weight (higher: slower), the drug's logP (hydrophobic drug partitions into
  the polymer: slower), PEG (hydrated domains: faster), loading (drug-rich
  channels: faster) and swelling of the pH-responsive excipient in acid.
  D grows as chain scission lowers the MW (``diffusion_clock``), which
  steepens release as the matrix degrades.
* ``F_ero``: polymer erosion, a Hopfenberg sphere ``1 - (1 - k_e s)^3`` on a
  lagged clock ``s(t)``: bulk hydrolysis first cuts chains (first order in
  MW, rate ``k_h``) and mass is only lost once MW falls to ``MW_SOLUBLE_KDA``,
  so the lag is ``ln(MW0 / MW_SOLUBLE_KDA) / k_h`` (smoothed by a softplus).
  ``k_h`` depends on the polymer (PLGA 50:50 > 75:25 > PLA >> PCL), is
  acid catalysed, sped up by the pH-responsive excipient below pH ~6.5,
  and follows Arrhenius around 37 C.

Every term is monotone in t, so F is monotone and lies in [0, 1].

How the constants were chosen: orders of magnitude from the PLGA/PLA/PCL
literature (drug diffusivities in glassy polyesters ~1e-15..1e-19 cm^2/s;
PLGA 50:50 loses half its MW in about a week at 37 C, 75:25 in weeks, PLA in
months, PCL in years; hydrolysis activation energy ~80 kJ/mol), then the
diffusivity offsets were shifted as one block until a uniform sample of the
design space gave roughly: 6 % fast (>= 90 % by 48 h), 14 % slow (< 40 % at
672 h), 9 % near zero-order, 10 % sigmoidal with a lag, the rest first-order-like.
The profile 20/40/65/80/95 % at 24/72/168/336/672 h is reachable to about
3.5 % points RMSE (f2 ~ 72) only in a corner (large particles, low loading,
PEG-rich, hydrophilic drug, high-MW PLGA 75:25 or PLA).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nanoloop.loop.lab.instruments import Characterization
from nanoloop.adapters.simulated.recipe import Recipe

GAS_CONSTANT_J_MOL_K = 8.314
BODY_TEMPERATURE_K = 310.15

# --- diffusion --------------------------------------------------------------
#: log10 of the drug diffusivity (cm^2/s) in each polymer at 37 C, MW 30 kDa, logP 2.
LOG10_DIFFUSIVITY_CM2_S = {"PLGA 50:50": -17.1, "PLGA 75:25": -17.4, "PLA": -18.0, "PCL": -17.7}
MW_EXPONENT = 0.6  # D ~ MW0^-0.6 across fresh batches (entanglement, free volume)
DEGRADATION_EXPONENT = 1.0  # D(t) ~ MW(t)^-1 as chains are cut (water-filled pores open)
LOGP_DECADES = 0.45  # decades of D lost per logP unit (partitioning into the polymer)
PEG_DECADES = 1.5  # decades of D gained per unit PEG fraction (hydration)
LOADING_DECADES = 0.02  # decades of D gained per % loading above 10 % (percolation)
SWELLING_DECADES = 3.0  # decades per unit pH-responsive fraction, fully switched on
DIFFUSION_ACTIVATION_J_MOL = 50_000.0

# --- erosion ----------------------------------------------------------------
#: first-order chain-scission rate (1/h) at 37 C, pH 7.4.
HYDROLYSIS_RATE_PER_H = {"PLGA 50:50": 4.0e-3, "PLGA 75:25": 1.6e-3, "PLA": 5.0e-4, "PCL": 4.0e-5}
MW_SOLUBLE_KDA = 7.0  # chains below this dissolve: mass loss starts
EROSION_PER_SCISSION = 1.0  # Hopfenberg rate k_e = EROSION_PER_SCISSION * k_h
ACID_CATALYSIS_PER_PH = 0.5  # k_h *= 1 + ACID_CATALYSIS_PER_PH * (7.4 - pH)
EXCIPIENT_SWITCH_PH = 6.5  # the pH-responsive excipient switches on below this
EXCIPIENT_SWITCH_WIDTH_PH = 0.15
EXCIPIENT_EROSION_GAIN = 10.0  # k_h *= 1 + gain * fraction * switch
HYDROLYSIS_ACTIVATION_J_MOL = 80_000.0

# --- burst ------------------------------------------------------------------
BURST_MAX = 0.7
BURST_SCALE = 0.05  # per % loading at 100 nm diameter
BURST_HYDROPHILIC_GAIN = 0.3  # per logP unit below 2
BURST_PEG_REDUCTION = 0.8  # burst *= 1 - 0.8 * peg_fraction
BURST_TIME_H = 0.5


@dataclass(frozen=True)
class ReleaseParameters:
    """Mechanistic parameters of one batch in one medium.

    Attributes:
        burst: fraction released at once (0..BURST_MAX).
        diffusivity_cm2_s: effective drug diffusivity in the fresh particle (t = 0).
        radius_nm: particle radius (half the measured diameter).
        hydrolysis_rate_per_h: chain-scission rate k_h.
        erosion_lag_h: time until mass loss starts.
        erosion_rate_per_h: Hopfenberg rate k_e after the lag.
    """

    burst: float
    diffusivity_cm2_s: float
    radius_nm: float
    hydrolysis_rate_per_h: float
    erosion_lag_h: float
    erosion_rate_per_h: float

    @property
    def diffusion_rate_per_h(self) -> float:
        """D / r^2 at t = 0, in 1/h (1 cm^2 = 1e14 nm^2)."""
        return self.diffusivity_cm2_s * 1e14 * 3600.0 / self.radius_nm**2


def _arrhenius(activation_j_mol: float, temperature_c: float) -> float:
    temperature_k = temperature_c + 273.15
    return math.exp(-activation_j_mol / GAS_CONSTANT_J_MOL_K * (1.0 / temperature_k - 1.0 / BODY_TEMPERATURE_K))


def excipient_switch(medium_ph: float) -> float:
    """How far the pH-responsive excipient is switched on (0 at pH 7.4, ~1 below pH 6)."""
    return 1.0 / (1.0 + math.exp((medium_ph - EXCIPIENT_SWITCH_PH) / EXCIPIENT_SWITCH_WIDTH_PH))


def release_parameters(
    recipe: Recipe, size_nm: float, loading_pct: float, temperature_c: float = 37.0
) -> ReleaseParameters:
    """Mechanistic parameters for a batch of measured size and actual loading.

    Args:
        recipe: the formulation and release medium.
        size_nm: measured mean diameter, nm.
        loading_pct: actual drug loading, % w/w.
        temperature_c: release medium temperature, degrees C.
    """
    switch = excipient_switch(recipe.medium_ph)
    log10_d = (
        LOG10_DIFFUSIVITY_CM2_S[recipe.polymer]
        - MW_EXPONENT * math.log10(recipe.polymer_mw_kda / 30.0)
        - LOGP_DECADES * (recipe.drug_logp - 2.0)
        + PEG_DECADES * recipe.peg_fraction
        + LOADING_DECADES * (loading_pct - 10.0)
        + SWELLING_DECADES * recipe.ph_responsive_fraction * switch
    )
    diffusivity = 10.0**log10_d * _arrhenius(DIFFUSION_ACTIVATION_J_MOL, temperature_c)

    k_h = (
        HYDROLYSIS_RATE_PER_H[recipe.polymer]
        * (1.0 + ACID_CATALYSIS_PER_PH * (7.4 - recipe.medium_ph))
        * (1.0 + EXCIPIENT_EROSION_GAIN * recipe.ph_responsive_fraction * switch)
        * _arrhenius(HYDROLYSIS_ACTIVATION_J_MOL, temperature_c)
    )
    lag = max(math.log(recipe.polymer_mw_kda / MW_SOLUBLE_KDA), 0.0) / k_h

    exposure = BURST_SCALE * loading_pct * (100.0 / size_nm)
    exposure *= 1.0 + BURST_HYDROPHILIC_GAIN * max(2.0 - recipe.drug_logp, 0.0)
    exposure *= 1.0 - BURST_PEG_REDUCTION * recipe.peg_fraction
    burst = BURST_MAX * (1.0 - math.exp(-exposure))
    return ReleaseParameters(
        burst=burst,
        diffusivity_cm2_s=diffusivity,
        radius_nm=size_nm / 2.0,
        hydrolysis_rate_per_h=k_h,
        erosion_lag_h=lag,
        erosion_rate_per_h=EROSION_PER_SCISSION * k_h,
    )


def sphere_diffusion_fraction(tau: np.ndarray) -> np.ndarray:
    """Crank's fraction released from a sphere at dimensionless time tau = D t / r^2.

    Uses the short-time expansion ``6 sqrt(tau / pi) - 3 tau`` below tau = 1e-3
    (error < 1e-12 there) and 100 terms of the exponential series above.
    """
    tau = np.clip(np.asarray(tau, dtype=float), 0.0, None)
    n = np.arange(1, 101, dtype=float)[:, None]
    series = 1.0 - (6.0 / np.pi**2) * np.sum(np.exp(-(n**2) * np.pi**2 * tau[None, :]) / n**2, axis=0)
    short = 6.0 * np.sqrt(tau / np.pi) - 3.0 * tau
    return np.clip(np.where(tau < 1e-3, short, series), 0.0, 1.0)


def erosion_fraction(times_h: np.ndarray, lag_h: float, rate_per_h: float) -> np.ndarray:
    """Hopfenberg sphere ``1 - (1 - k_e s)^3`` on the softplus-lagged clock s(t), s(0) = 0."""
    t = np.asarray(times_h, dtype=float)
    width = max(12.0, 0.15 * lag_h)

    def softplus(x: np.ndarray) -> np.ndarray:
        return width * np.logaddexp(0.0, (x - lag_h) / width)

    lagged = np.clip(softplus(t) - softplus(np.zeros(1)), 0.0, None)
    return 1.0 - (1.0 - np.clip(rate_per_h * lagged, 0.0, 1.0)) ** 3


def diffusion_clock(params: ReleaseParameters, times_h: np.ndarray) -> np.ndarray:
    """Dimensionless time tau(t) = integral of D(t') dt' / r^2 as the matrix degrades.

    Chain scission lowers MW as ``MW0 exp(-k_h t)`` down to ``MW_SOLUBLE_KDA``
    (reached at the erosion lag), and D grows as ``MW^-DEGRADATION_EXPONENT``,
    so ``D(t) = D0 exp(DEGRADATION_EXPONENT k_h t)`` until the lag and constant after it.
    Substituting tau for t keeps Crank's solution exact for a uniform D(t).
    """
    t = np.asarray(times_h, dtype=float)
    rate0 = params.diffusion_rate_per_h
    growth = DEGRADATION_EXPONENT * params.hydrolysis_rate_per_h
    lag = params.erosion_lag_h
    before = np.minimum(t, lag)
    tau = rate0 * np.expm1(growth * before) / growth
    return tau + rate0 * math.exp(growth * lag) * np.clip(t - lag, 0.0, None)


def release_fraction(params: ReleaseParameters, times_h) -> np.ndarray:
    """Cumulative fraction released (0..1) at each time in hours; shape of ``times_h``."""
    t = np.clip(np.asarray(times_h, dtype=float), 0.0, None)
    f_diff = sphere_diffusion_fraction(diffusion_clock(params, t.ravel())).reshape(t.shape)
    f_ero = erosion_fraction(t.ravel(), params.erosion_lag_h, params.erosion_rate_per_h).reshape(t.shape)
    burst = params.burst * (1.0 - np.exp(-t / BURST_TIME_H))
    matrix = 1.0 - (1.0 - f_diff) * (1.0 - f_ero)
    return np.clip(burst + (1.0 - burst) * matrix, 0.0, 1.0)


# --- the synthesis: what comes out of the reactor ----------------------------
ZETA_POLYMER_MV = {"PLGA 50:50": -30.0, "PLGA 75:25": -28.0, "PLA": -24.0, "PCL": -18.0}
ZETA_PEG_SHIELDED_MV = -5.0
ZETA_EXCIPIENT_MV_PER_FRACTION = 90.0  # cationic excipient (amino groups)


def encapsulation_efficiency(recipe: Recipe) -> float:
    """Fraction of the fed drug that ends up in particles (0..1), before noise.

    Falls with loading and with lower logP (drug escapes to the water phase),
    rises with size (less surface per volume).
    """
    z = (
        1.0
        + 0.8 * (recipe.drug_logp - 1.0)
        - 0.08 * (recipe.drug_loading_pct - 10.0)
        + 0.6 * math.log(recipe.particle_size_nm / 150.0)
    )
    return 1.0 / (1.0 + math.exp(-z))


def actual_loading_pct(nominal_pct: float, efficiency: float) -> float:
    """Drug in particles / (drug in particles + polymer), % w/w."""
    drug = nominal_pct / 100.0 * efficiency
    return 100.0 * drug / (drug + (1.0 - nominal_pct / 100.0))


def expected_characterization(recipe: Recipe) -> Characterization:
    """The noise-free batch (means of what :func:`characterize` draws)."""
    efficiency = encapsulation_efficiency(recipe)
    return Characterization(
        size_nm=recipe.particle_size_nm * (1.0 + 0.01 * recipe.drug_loading_pct) * (1.0 + 0.3 * recipe.peg_fraction),
        pdi=_pdi(recipe),
        zeta_mv=_zeta(recipe),
        encapsulation_efficiency_pct=100.0 * efficiency,
        actual_drug_loading_pct=actual_loading_pct(recipe.drug_loading_pct, efficiency),
    )


def characterize(recipe: Recipe, rng: np.random.Generator) -> Characterization:
    """One made and measured batch: size (DLS), PDI, zeta, EE and actual loading, with noise."""
    mean = expected_characterization(recipe)
    size = mean.size_nm * math.exp(rng.normal(0.0, 0.08))
    pdi = min(max(mean.pdi * math.exp(rng.normal(0.0, 0.15)), 0.02), 0.7)
    zeta = mean.zeta_mv + rng.normal(0.0, 1.5)
    efficiency = min(max(mean.encapsulation_efficiency_pct / 100.0 + rng.normal(0.0, 0.02), 0.005), 0.995)
    return Characterization(
        size_nm=round(size, 1),
        pdi=round(pdi, 3),
        zeta_mv=round(zeta, 1),
        encapsulation_efficiency_pct=round(100.0 * efficiency, 1),
        actual_drug_loading_pct=round(actual_loading_pct(recipe.drug_loading_pct, efficiency), 2),
    )


def _pdi(recipe: Recipe) -> float:
    small = max(0.0, (150.0 - recipe.particle_size_nm) / 70.0)
    return 0.08 + 0.004 * recipe.drug_loading_pct + 0.08 * small + 0.1 * _process_stress(recipe)


def _zeta(recipe: Recipe) -> float:
    base = ZETA_POLYMER_MV[recipe.polymer]
    shielded = ZETA_PEG_SHIELDED_MV + (base - ZETA_PEG_SHIELDED_MV) * math.exp(-recipe.peg_fraction / 0.1)
    return shielded + ZETA_EXCIPIENT_MV_PER_FRACTION * recipe.ph_responsive_fraction * math.exp(-recipe.peg_fraction / 0.2)


# --- synthesis failures -------------------------------------------------------
BASE_FAILURE_PROBABILITY = 0.02


def _stress_terms(recipe: Recipe) -> dict[str, float]:
    small_and_loaded = max(0.0, recipe.drug_loading_pct - 12.0) / 18.0 * max(0.0, 200.0 - recipe.particle_size_nm) / 120.0
    hydrophilic_and_loaded = max(0.0, 1.0 - recipe.drug_logp) / 2.0 * max(0.0, recipe.drug_loading_pct - 10.0) / 20.0
    return {
        "aggregation during nanoprecipitation: drug loading too high for so small a particle": small_and_loaded,
        "drug crystallised outside the particles: hydrophilic drug at high loading": hydrophilic_and_loaded,
    }


def _process_stress(recipe: Recipe) -> float:
    return sum(_stress_terms(recipe).values())


def synthesis_failure(recipe: Recipe) -> tuple[float, str]:
    """Probability (0..1) that a batch fails, and the likeliest reason in words."""
    terms = _stress_terms(recipe)
    stress = sum(terms.values())
    probability = BASE_FAILURE_PROBABILITY + (1.0 - BASE_FAILURE_PROBABILITY) * (1.0 - math.exp(-2.5 * stress**2))
    reason, worst = max(terms.items(), key=lambda kv: kv[1])
    if worst < 0.1:
        reason = "batch failed quality control (emulsion broke, no particles recovered)"
    return probability, reason


def true_release_pct(recipe: Recipe, times_h, temperature_c: float = 37.0) -> np.ndarray:
    """Noise-free release (%) of the expected batch, for benchmarks and plots."""
    mean = expected_characterization(recipe)
    params = release_parameters(recipe, mean.size_nm, mean.actual_drug_loading_pct, temperature_c)
    return 100.0 * release_fraction(params, times_h)
