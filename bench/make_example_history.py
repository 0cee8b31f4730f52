"""Regenerate the example of a lab's earlier experiments that ships with nanoloop.

    .venv/bin/python bench/make_example_history.py

writes ``loop/examples/earlier_formulations.csv``: 24 formulations of the demo space
(``loop/examples/demo.toml``), two vessels each, as a wide sheet with the headers a lab
writes ("Polymer MW (kDa)", "Target size (nm)", "1 h", ..., "28 d"). Every number comes
from nanoloop's simulated lab (``nanoloop.adapters.simulated``: synthesis for size, PDI
and encapsulation, dissolution for the curves), never from real data. The recipes are a
Sobol sample of the demo space with another seed than the demo's own designs, rounded as
a lab would write them. ``loop/examples/earlier_formulations_map.toml`` maps the headers.
"""

from __future__ import annotations

import csv
from pathlib import Path

from nanoloop.adapters.simulated import SimulatedDissolution, SimulatedSynthesis
from nanoloop.loop.config import load_config
from nanoloop.loop.lab.instruments import WorkItem

EXAMPLES = Path(__file__).resolve().parents[1] / "loop" / "examples"
SEED = 2024
N_FORMULATIONS = 24
VESSELS = 2
#: the sampling times of the sheet, as the lab heads them
TIMES = {"1 h": 1, "8 h": 8, "1 d": 24, "3 d": 72, "7 d": 168, "14 d": 336, "21 d": 504, "28 d": 672}
HEADERS = {  # design variable -> the lab's header
    "polymer": "Polymer", "polymer_mw_kda": "Polymer MW (kDa)", "drug_logp": "Drug logP", "drug_loading_pct": "Drug loading (% w/w)",
    "particle_size_nm": "Target size (nm)", "peg_fraction": "PEG (w/w)", "ph_responsive_fraction": "pH-responsive excipient (w/w)",
    "medium_ph": "Medium pH",
}
ROUNDING = {"polymer_mw_kda": 0, "drug_logp": 1, "drug_loading_pct": 1, "particle_size_nm": 0, "peg_fraction": 2,
            "ph_responsive_fraction": 2, "medium_ph": 1}


def write_sheet(out: Path, n_formulations: int = N_FORMULATIONS, seed: int = SEED) -> int:
    """Write a wide sheet of ``n_formulations`` made and measured formulations to ``out``; returns the number of vessels."""
    space = load_config(EXAMPLES / "demo.toml").design_space()
    recipes = []
    for recipe in space.sample(4 * n_formulations, seed=seed).to_dict("records"):
        recipes.append({k: (round(float(v), ROUNDING[k]) if k in ROUNDING else v) for k, v in recipe.items()})
    tried = [WorkItem(key=f"EX{i + 1:02d}" if n_formulations < 100 else f"EX{i + 1:04d}", recipe=r) for i, r in enumerate(recipes)]
    synthesis = SimulatedSynthesis(seed=seed)
    synthesis.submit(tried)
    # a lab's sheet holds the batches that were made: those whose synthesis failed are not in it
    made = {r.key: r.characterization for r in synthesis.collect([i.key for i in tried]) if r.characterization is not None}
    items = [i for i in tried if i.key in made][:n_formulations]
    dissolution = SimulatedDissolution(seed=seed, sampling_times_hours=sorted(TIMES.values()), replicates=VESSELS,
                                       outlier_probability=0.0)
    dissolution.submit([WorkItem(key=i.key, recipe=i.recipe, context={"characterization": made[i.key].to_dict()}) for i in items])
    curves = {r.key: r.curves for r in dissolution.collect([i.key for i in items])}
    header = ["Batch", *HEADERS.values(), "Size measured (nm)", "PDI", "EE (%)", "Vessel", "Operator", *TIMES]
    rows = []
    for item in items:
        char = made[item.key]
        for vessel in curves[item.key]:
            rows.append([item.key, *(item.recipe[k] for k in HEADERS), round(char.size_nm, 1), round(char.pdi, 3),
                         round(char.encapsulation_efficiency_pct, 1), vessel.replicate, "simulated lab",
                         *(f"{v:.1f}" for v in vessel.release_pct)])
    with open(out, "w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    return len(rows)


def main() -> None:
    out = EXAMPLES / "earlier_formulations.csv"
    vessels = write_sheet(out)
    print(f"wrote {out}: {vessels // VESSELS} formulations, {vessels} vessels")


if __name__ == "__main__":
    main()
