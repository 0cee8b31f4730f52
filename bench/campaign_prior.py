"""The campaign benchmark's ``--prior`` mode: every campaign starts with an earlier campaign's ledger.

The earlier campaign is a related but different system: a 40-formulation
Sobol screen on the simulated lab with another drug (``drug_logp`` fixed at
0.5; its lab and design seeds differ from the campaign's). It is stored as a
ledger and reaches the campaign through ``[prior] stores``, the path a user
takes. ``ours_prior`` is the campaign with that prior; ``curve_gp_prior`` is
the curve-level GP baseline with the same prior formulations in its GPs, from
round 0 on, like ours.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from campaign_lab import bench_config, run_campaign
from nanoloop.loop.config import default_config, parse_config

EARLIER_FORMULATIONS = 40
EARLIER_DRUG_LOGP = 0.5


def earlier_campaign(store: Path, seed: int) -> Path:
    """Run the earlier screen into ``store`` (a ledger folder) and return it."""
    from nanoloop.adapters.simulated import SimulatedDissolution, SimulatedSynthesis
    from nanoloop.loop.campaign.campaign import Campaign
    from nanoloop.loop.store.ledger import Ledger
    from nanoloop.loop.design.recommenders import SobolStart

    data = default_config().model_dump(mode="json")
    data.update(name=f"earlier-drug-{seed}", seed=1000 + seed, rounds=1)
    data["space"]["drug_logp"]["value"] = EARLIER_DRUG_LOGP
    earlier_seed = 1000 + seed
    campaign = Campaign(parse_config(data), Ledger(store),
                        {"synthesis": SimulatedSynthesis(seed=earlier_seed), "dissolution": SimulatedDissolution(seed=earlier_seed)})
    campaign.propose(0, recommender=SobolStart(size=EARLIER_FORMULATIONS))
    for step in (campaign.approve, campaign.dispatch_synthesis, campaign.collect_synthesis, campaign.dispatch_dissolution, campaign.collect_dissolution):
        step(0)
    return store


def prior_config(target_name: str, seed: int, rounds: int, batch: int, store: Path):
    """The benchmark campaign's config with ``[prior] stores = [store]``."""
    config = bench_config(target_name, seed, rounds, batch)
    return config.model_copy(update={"prior": config.prior.model_copy(update={"stores": [str(store)]})})


def run_ours_prior(target_name: str, seed: int, rounds: int, batch: int) -> list[float]:
    """``ours`` with the earlier campaign as its prior."""
    with tempfile.TemporaryDirectory(prefix="nanoloop-earlier-") as folder:
        store = earlier_campaign(Path(folder) / "earlier", seed)
        return run_campaign(prior_config(target_name, seed, rounds, batch, store), seed, rounds)


def run_curve_gp_prior(target_name: str, seed: int, rounds: int, batch: int) -> list[float]:
    """``curve_gp`` with the earlier campaign's formulations in its GPs (read through the same ``[prior]`` path)."""
    from campaign_baselines import run_curve_gp
    from campaign_lab import target_profile
    from nanoloop.loop.store.prior import load_prior

    with tempfile.TemporaryDirectory(prefix="nanoloop-earlier-") as folder:
        store = earlier_campaign(Path(folder) / "earlier", seed)
        config = prior_config(target_name, seed, rounds, batch, store)
        prior = load_prior(config.prior, config.design_space())
        times = np.asarray(target_profile(target_name).times_hours, float)
        return run_curve_gp(target_name, seed, rounds, batch, prior=(prior.encoded, prior.at_times(times)))
