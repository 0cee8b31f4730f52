"""Recipes and settings the simulated-lab tests share."""

RECIPE = dict(
    polymer="PLGA 50:50",
    polymer_mw_kda=30,
    drug_logp=2.0,
    drug_loading_pct=10,
    particle_size_nm=200,
    peg_fraction=0.1,
    ph_responsive_fraction=0.0,
    medium_ph=7.4,
)
# dissolution without replicate, assay or outlier noise
QUIET = dict(replicate_cv=0.0, assay_cv=0.0, assay_sd_pct=0.0, outlier_probability=0.0)
