"""The campaign benchmark's simulated lab, targets, config and campaign runner (shared by bench_campaign, campaign_prior and bench_calibration).

The targets are the rounded noise-free curves of formulations of a
32768-point Sobol sample (seed 11), picked among shape classes that random
formulations rarely come near; ``bench_campaign.py --check-targets`` verifies
them on the ground truth. Chosen before any strategy was run.
"""

from __future__ import annotations

import tempfile

import numpy as np

from nanoloop.loop.config import TargetProfile, default_config
from nanoloop.loop.design.objective import measured_f2

TARGETS: dict[str, tuple[list[float], list[float], str]] = {
    "fast_burst": ([1, 4, 8, 24, 48], [45, 70, 84, 99, 100], "fast burst: 45 % in 1 h, complete in 2 days"),
    "zero_order": ([24, 72, 168, 336, 504, 672], [8, 12, 18, 28, 43, 65], "sustained, near zero-order over 4 weeks"),
    "sigmoid_lag": ([24, 72, 168, 240, 336, 504, 672], [8, 10, 15, 20, 31, 76, 100], "sigmoidal: erosion lag of ~2 weeks"),
    "two_phase": ([4, 24, 72, 168, 336, 672], [21, 24, 29, 36, 46, 82], "two-phase: 20 % burst, slow, then erosion"),
    "slow": ([24, 72, 168, 336, 672], [3, 6, 9, 14, 34], "slow: a third released in 4 weeks"),
}
POOL_SIZE = 4096


def target_profile(name: str) -> TargetProfile:
    times, pct, _ = TARGETS[name]
    return TargetProfile(times_hours=times, release_pct=pct)


# -- the simulated lab ---------------------------------------------------------------------
class Lab:
    """Synthesis then dissolution on the simulated instruments; results keyed by formulation id."""

    def __init__(self, seed: int):
        from nanoloop.adapters.simulated import SimulatedDissolution, SimulatedSynthesis

        self.synthesis = SimulatedSynthesis(seed=seed)
        self.dissolution = SimulatedDissolution(seed=seed)

    def measure(self, keys: list[str], recipes: list[dict]) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """(times hours, mean release %) per recipe, or None when synthesis failed."""
        from nanoloop.loop.lab.instruments import WorkItem

        self.synthesis.submit([WorkItem(key=k, recipe=r) for k, r in zip(keys, recipes)])
        made = {r.key: r for r in self.synthesis.collect(keys)}
        ok = [k for k in keys if made[k].state.value == "done"]
        items = [WorkItem(key=k, recipe=r, context={"characterization": made[k].characterization.to_dict()}) for k, r in zip(keys, recipes) if k in ok]
        if items:
            self.dissolution.submit(items)
        tested = {r.key: r for r in self.dissolution.collect(ok)} if ok else {}
        out = []
        for k in keys:
            result = tested.get(k)
            if result is None or result.state.value != "done" or not result.curves:
                out.append(None)
                continue
            times = np.asarray(result.curves[0].times_hours, float)
            mean = np.nanmean(np.array([c.release_pct for c in result.curves], float), axis=0)
            out.append((times, mean))
        return out


def f2_of(measurement, target: TargetProfile) -> float:
    return -np.inf if measurement is None else measured_f2(measurement[0], measurement[1], target)


def design_space():
    return default_config().design_space()


def run_name(target_name: str, seed: int) -> str:
    return f"bench-{target_name.replace('_', '-')}-{seed}"


def bench_config(target_name: str, seed: int, rounds: int, batch: int):
    """The campaign config of ``ours``: the shipped defaults with the benchmark's target, seed and batch."""
    base = default_config()
    target = target_profile(target_name)
    acquisition = base.acquisition.model_copy(update={"pool_size": POOL_SIZE})
    return base.model_copy(update={"name": run_name(target_name, seed), "seed": seed, "rounds": rounds, "batch_size": batch,
                                   "target": target, "acquisition": acquisition})


def run_campaign(config, seed: int, rounds: int) -> list[float]:
    """Run ``config`` on the simulated lab (seeded ``seed``) for ``rounds`` rounds; f2 per experiment in order."""
    from nanoloop.adapters.simulated import SimulatedDissolution, SimulatedSynthesis
    from nanoloop.loop.campaign.campaign import Campaign
    from nanoloop.loop.store.measurements import measured_objective
    from nanoloop.loop.store.ledger import Ledger

    with tempfile.TemporaryDirectory(prefix="nanoloop-bench-") as store:
        campaign = Campaign(config, Ledger(store), {"synthesis": SimulatedSynthesis(seed=seed), "dissolution": SimulatedDissolution(seed=seed)})
        order = []
        for round_ in range(rounds):
            order += campaign.run_round(round_)
        scores = measured_objective(campaign.ledger, config.target)
        return [float(scores.get(fid, -np.inf)) for fid in order]
