"""Is the f2 interval a reviewer sees honest? Coverage over a campaign's prospective record.

Runs the campaign's own loop (shipped defaults: the blended surrogate and the residual GPs; ``--model ensemble``
for the network alone) on the simulated lab for the benchmark's target profiles
(bench_campaign.py), then, for every formulation the model proposed and the lab
measured, checks whether the measured f2 to the target lies inside the 90 %
f2 interval stored with the proposal *before* it was made (from the calibrated
predictive distribution: members, noise, residual GP; nanoloop.loop.models.predictive).
Failed syntheses have no f2 and are left out.

Run: ``nice .venv/bin/python bench/bench_calibration.py [--targets fast_burst,zero_order] [--seeds 0] [--rounds 6] [--model ensemble]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from campaign_lab import TARGETS, bench_config  # noqa: E402


def prospective_record(target_name: str, seed: int, rounds: int, batch: int, model: str | None = None) -> list[dict]:
    """Run one campaign; per model-made, measured formulation: the stored f2 interval and the measured f2.

    ``model`` is the ``[surrogate] model`` (None: the shipped default, the blend).
    """
    from nanoloop.adapters.simulated import SimulatedDissolution, SimulatedSynthesis
    from nanoloop.loop.campaign.campaign import Campaign
    from nanoloop.loop.store.measurements import measured_objective
    from nanoloop.loop.store.ledger import Ledger

    config = bench_config(target_name, seed, rounds, batch)
    config = config.model_copy(update={"surrogate": config.surrogate.model_copy(update={"model": model or config.surrogate.model})})
    with tempfile.TemporaryDirectory(prefix="nanoloop-calibration-") as store:
        campaign = Campaign(config, Ledger(store), {"synthesis": SimulatedSynthesis(seed=seed), "dissolution": SimulatedDissolution(seed=seed)})
        for round_ in range(rounds):
            campaign.run_round(round_)
        measured = measured_objective(campaign.ledger, config.target)
        forms = campaign.formulations()
    rows = []
    for form in forms[forms["origin"] == "acquisition"].itertuples():
        notes = json.loads(form.acquisition_params_json or "{}")
        if form.formulation_id not in measured.index or "f2_lower_90" not in notes:
            continue
        f2 = float(measured[form.formulation_id])
        rows.append({"target": target_name, "seed": seed, "round": int(form.round), "measured_f2": f2, "predicted_f2": notes["f2"],
                     "lower": notes["f2_lower_90"], "upper": notes["f2_upper_90"], "inside": bool(notes["f2_lower_90"] <= f2 <= notes["f2_upper_90"]),
                     "outside_measured_data": bool(notes.get("outside_measured_data"))})
    return rows


def summarize(rows: list[dict]) -> dict:
    inside = np.array([r["inside"] for r in rows], dtype=float)
    width = np.array([r["upper"] - r["lower"] for r in rows], dtype=float)
    error = np.array([abs(r["measured_f2"] - r["predicted_f2"]) for r in rows], dtype=float)
    return {"formulations": len(rows), "coverage_90": float(inside.mean()) if len(rows) else float("nan"),
            "median_width": float(np.median(width)) if len(rows) else float("nan"),
            "mean_abs_error": float(error.mean()) if len(rows) else float("nan")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default="fast_burst,zero_order,sigmoid_lag", help=f"comma list of {sorted(TARGETS)}")
    parser.add_argument("--seeds", default="0", help="comma list of seeds")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=1, help="campaigns run in this many processes")
    parser.add_argument("--model", choices=["ensemble", "blend"], default=None, help="[surrogate] model of the campaigns (default: the shipped one, the blend)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    for t in targets:
        if t not in TARGETS:
            parser.error(f"unknown target {t!r}; choose from {sorted(TARGETS)}")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    started = time.perf_counter()
    runs = [(t, s) for t in targets for s in seeds]
    if args.jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            parts = list(pool.map(prospective_record, [t for t, _ in runs], [s for _, s in runs], [args.rounds] * len(runs), [args.batch] * len(runs), [args.model] * len(runs)))
    else:
        parts = [prospective_record(t, s, args.rounds, args.batch, args.model) for t, s in runs]
    rows = [r for part in parts for r in part]
    overall = summarize(rows)
    if args.json:
        print(json.dumps({"overall": overall, "rows": rows}))
        return 0
    print(f"f2 interval on the prospective record: {len(targets)} target(s) x {len(seeds)} seed(s), {args.rounds} rounds of {args.batch}, "
          f"{time.perf_counter() - started:.0f} s; an interval is widened by the campaign's own prospective errors once 4 are measured")
    print(f"{'target':12s} {'n':>4s} {'cov90':>6s} {'width':>6s} {'|err|':>6s}")
    for t in targets:
        part = summarize([r for r in rows if r["target"] == t])
        print(f"{t:12s} {part['formulations']:4d} {part['coverage_90']:6.3f} {part['median_width']:6.1f} {part['mean_abs_error']:6.1f}")
    print(f"{'all':12s} {overall['formulations']:4d} {overall['coverage_90']:6.3f} {overall['median_width']:6.1f} {overall['mean_abs_error']:6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
