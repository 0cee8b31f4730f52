"""Benchmark: closed-loop campaigns on the simulated lab, ours against three baselines (and, with --prior, warm starts).

    python bench/bench_campaign.py [--targets all] [--seeds 10] [--rounds 15] [--batch 8]
        [--strategies random,gp_ei,curve_gp,ours] [--prior] [--workers 1] [--plot bench_campaign.png]
        [--timing-n 500] [--json] [--check-targets]

Every strategy runs on the same targets and seeds, round by round (batch 8 by
default), against the simulated lab (synthesis with failures, then a noisy
dissolution test in 3 vessels). A failed synthesis counts as an experiment
spent. All strategies without a prior start from the same 8-point Sobol design
(the campaign's round 0) and draw their pools from the same Sobol seeds.

- the baselines (``random``, ``gp_ei``, ``curve_gp``): bench/campaign_baselines.py;
- ``ours``: :class:`nanoloop.loop.campaign.campaign.Campaign` driven in-process (propose, approve,
  dispatch, collect) with the simulated instruments and the shipped defaults
  (only the target, seed, batch and the 4096-candidate pool are set): while few
  formulations are measured, the proposing model (the ensemble with residual GPs,
  or a plain curve GP) is the one with the lower prospective error on the rounds
  measured so far; EI on the sampled f2 with the spread calibrated on the
  campaign's own prospective errors, Sobol pool + local refinement, Kriging
  believer and local penalization;
- ``--prior`` adds ``ours_prior`` and ``curve_gp_prior``: the same, each given an
  earlier 40-formulation campaign on another drug (bench/campaign_prior.py).

Prints, per strategy: experiments until the best measured f2 reaches 65 and 75
(median and IQR over runs; a run that never reaches it is censored and counted
as "> budget", not dropped), the median best f2 after 16, 24, 40 and 120
experiments, the acceleration factor (random's median experiments to f2 65 /
ours) and paired counts per (target, seed) against every other strategy
(bench/campaign_stats.py). Then the time of one proposal (train, score 100,000
candidates, refine, choose 8) with ``--timing-n`` measured formulations.
``--check-targets`` verifies, on the noise-free ground truth, that each target
is reachable (differential evolution on ``true_release_pct``) and how often
random formulations come close; the ground truth is used for nothing else.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from multiprocessing import get_context  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from campaign_baselines import run_curve_gp, run_gp_ei, run_random  # noqa: E402
from campaign_prior import run_curve_gp_prior, run_ours_prior  # noqa: E402
from campaign_lab import POOL_SIZE, TARGETS, bench_config, design_space, run_campaign, target_profile  # noqa: E402
from campaign_stats import THRESHOLDS, best_so_far, print_tables, summarise  # noqa: E402
from nanoloop.loop.design.objective import f2_to_target  # noqa: E402

STRATEGIES = ("random", "gp_ei", "curve_gp", "ours", "ours_network", "curve_gp_prior", "ours_prior")
DEFAULT_STRATEGIES = STRATEGIES[:4]  # --prior adds the last two; ours_network on request


def run_ours(target_name: str, seed: int, rounds: int, batch: int) -> list[float]:
    """The campaign's own loop, in-process: propose, approve, dispatch, collect; f2 per experiment in order."""
    return run_campaign(bench_config(target_name, seed, rounds, batch), seed, rounds)


def run_ours_network(target_name: str, seed: int, rounds: int, batch: int) -> list[float]:
    """``ours`` with the network alone as the surrogate (``[surrogate] model = "ensemble"``, the default before the blend)."""
    config = bench_config(target_name, seed, rounds, batch)
    config = config.model_copy(update={"surrogate": config.surrogate.model_copy(update={"model": "ensemble"})})
    return run_campaign(config, seed, rounds)


RUNNERS = {"random": run_random, "gp_ei": run_gp_ei, "curve_gp": run_curve_gp, "ours": run_ours, "ours_network": run_ours_network,
           "curve_gp_prior": run_curve_gp_prior, "ours_prior": run_ours_prior}


def _job(args):
    strategy, target_name, seed, rounds, batch = args
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    started = time.perf_counter()
    f2s = RUNNERS[strategy](target_name, seed, rounds, batch)
    return strategy, target_name, seed, f2s, time.perf_counter() - started



def print_saved(paths: list[str], rounds: int) -> int:
    """The tables of runs saved by ``--json-out`` (same batch; every run cut to ``rounds`` rounds or its own length)."""
    results, batch, targets = {}, None, []
    for path in paths:
        saved = json.loads(Path(path).read_text())
        batch = batch or saved["settings"]["batch"]
        if saved["settings"]["batch"] != batch:
            raise SystemExit(f"{path}: batch {saved['settings']['batch']}, not {batch} as in the other files")
        for run in saved["runs"]:
            results[(run["strategy"], run["target"], run["seed"])] = [-np.inf if v is None else v for v in run["f2"]]
            targets += [run["target"]] if run["target"] not in targets else []
    rounds = min([rounds] + [len(f) // batch for f in results.values()])
    results = {k: f[: rounds * batch] for k, f in results.items()}
    strategies = [s for s in STRATEGIES if any(k[0] == s for k in results)]
    print_tables(summarise(results, strategies, targets, batch, rounds), strategies, targets, batch, rounds)
    return 0


def plot(results: dict, strategies, targets, batch: int, rounds: int, path: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = list(targets) + ["all targets"]
    columns = min(3, len(panels))
    rows_ = -(-len(panels) // columns)
    figure = Figure(figsize=(4.6 * columns, 3.4 * rows_), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows_, columns, squeeze=False).ravel()
    x = np.arange(1, batch * rounds + 1)
    for ax, panel in zip(axes, panels):
        for s in strategies:
            runs = [best_so_far(f) for k, f in results.items() if k[0] == s and (panel == "all targets" or k[1] == panel)]
            if not runs:
                continue
            curves = np.array([np.where(np.isfinite(r), r, 0.0) for r in runs])
            q25, q50, q75 = np.percentile(curves, [25, 50, 75], axis=0)
            ax.plot(x, q50, label=s)
            ax.fill_between(x, q25, q75, alpha=0.15)
        for threshold in THRESHOLDS:
            ax.axhline(threshold, color="grey", lw=0.7, ls=":")
        ax.set_title(panel)
        ax.set_xlabel("experiments")
        ax.set_ylabel("best measured f2 (median, IQR)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    figure.savefig(path, dpi=110)


# -- one proposal at scale -----------------------------------------------------------------
def time_proposal(n_measured: int, pool_size: int = 100_000, seed: int = 12345, model: str | None = None, n_imported: int = 0) -> dict:
    """Seconds for one Campaign.propose (train + score ``pool_size`` candidates + refine + choose 8).

    ``model`` is the ``[surrogate] model`` ("blend", the shipped default when None, or "ensemble").

    The ledger is first filled with about ``n_measured`` measured Sobol formulations
    (stored as round 0 and run through the simulated lab), then ``n_imported`` more
    from a lab sheet of the simulated lab (bench/make_example_history.py) through
    ``nanoloop import``'s path.
    """
    from nanoloop.adapters.simulated import SimulatedDissolution, SimulatedSynthesis
    from nanoloop.loop.campaign.campaign import Campaign
    from nanoloop.loop.store.ledger import Ledger
    from nanoloop.loop.design.recommenders import SobolStart

    config = bench_config("two_phase", seed, 2, 8)
    config = config.model_copy(update={"name": "bench-timing", "acquisition": config.acquisition.model_copy(update={"pool_size": pool_size}),
                                       "surrogate": config.surrogate.model_copy(update={"model": model or config.surrogate.model})})
    with tempfile.TemporaryDirectory(prefix="nanoloop-timing-") as store:
        campaign = Campaign(config, Ledger(store), {"synthesis": SimulatedSynthesis(seed=seed), "dissolution": SimulatedDissolution(seed=seed)})
        campaign.run_round(0, recommender=SobolStart(size=int(n_measured * 1.15) + 8))  # a large round 0, made as one batch
        measured = int((campaign.formulations()["status"] == "measured").sum())
        if n_imported:
            _import_sheet(campaign, Path(store) / "earlier.csv", n_imported)
        started = time.perf_counter()
        ids = campaign.propose(1)
        seconds = time.perf_counter() - started
        model = campaign.ledger.read("models").iloc[-1]
    return {"measured_formulations": measured, "imported_formulations": n_imported, "pool_size": pool_size, "proposal_s": seconds,
            "train_s": float(model["train_seconds"]), "batch": len(ids)}


def _import_sheet(campaign, path: Path, n: int) -> None:
    """Import ``n`` earlier formulations of the simulated lab into the campaign, as ``nanoloop import`` does."""
    from make_example_history import EXAMPLES, write_sheet
    from nanoloop.loop.store.experiments import read_experiments, read_mapping
    from nanoloop.loop.store.importing import import_experiments

    write_sheet(path, n, seed=4242)
    found = read_experiments(path, campaign.space, read_mapping(EXAMPLES / "earlier_formulations_map.toml"), campaign=campaign.config.name)
    import_experiments(campaign, found)


def time_scoring(n: int = 100_000, seed: int = 0) -> dict:
    """Seconds to score n Sobol candidates (objective per ensemble member) with a small fitted ensemble."""
    from nanoloop.loop.design.objective import Objective
    from nanoloop.loop.models.base import curve_rows
    from nanoloop.loop.models.ensemble import ReleaseEnsemble

    space = design_space()
    target = target_profile("two_phase")
    frame = space.sample(64, seed=seed)
    times = np.array([1, 4, 8, 24, 48, 72, 120, 168, 240, 336, 504, 672.0])
    y = np.random.default_rng(seed).uniform(0, 1, (64, 1)) * (1 - np.exp(-times / 100.0))[None, :]
    model = ReleaseEnsemble(epochs=20, random_state=seed).fit(curve_rows(space.encode(frame), times), y.reshape(-1), np.repeat(np.arange(64), len(times)))
    started = time.perf_counter()
    pool = space.sample(n, seed=seed + 1)
    encoded = space.encode(pool)
    sampled = time.perf_counter() - started
    started = time.perf_counter()
    Objective(target).samples(model, encoded)
    return {"candidates": n, "sobol_and_encode_s": sampled, "score_s": time.perf_counter() - started}


# -- the targets, on the ground truth ---------------------------------------------------------
def check_targets(targets, n_random: int = 32768, seed: int = 11) -> dict:
    """Best noise-free f2 reachable (differential evolution per polymer) and random hit rates."""
    from scipy.optimize import LinearConstraint, differential_evolution

    from nanoloop.adapters.simulated.physics import true_release_pct
    from nanoloop.adapters.simulated.recipe import POLYMERS, RANGES, Recipe

    space = design_space()
    frame = space.sample(n_random, seed=seed)
    grid = sorted({t for name in targets for t in TARGETS[name][0]})
    truth = np.array([true_release_pct(Recipe.from_mapping(r, "truth"), np.array(grid, float)) for r in frame.to_dict("records")])
    names = list(RANGES)
    bounds = [RANGES[n][:2] for n in names]
    a = np.zeros((1, len(names)))
    a[0, names.index("peg_fraction")] = a[0, names.index("ph_responsive_fraction")] = 1.0
    out = {}
    for name in targets:
        times, pct, _ = TARGETS[name]
        target = target_profile(name)
        s = f2_to_target(truth[:, [grid.index(t) for t in times]], target)
        best = -np.inf
        for polymer in POLYMERS:
            def loss(x, polymer=polymer):
                return -float(f2_to_target(true_release_pct(Recipe(polymer=polymer, **dict(zip(names, x))), np.array(times, float)), target))
            result = differential_evolution(loss, bounds, constraints=LinearConstraint(a, -np.inf, 0.4), seed=seed, maxiter=60, popsize=12, polish=False)
            best = max(best, -result.fun)
        p65, p75 = float(np.mean(s >= 65)), float(np.mean(s >= 75))
        out[name] = {"best_true_f2": float(best), "random_share_f2_65": p65, "random_share_f2_75": p75,
                     "p_random_120_reaches_65": 1 - (1 - p65) ** 120}
        print(f"{name:12s} best reachable f2 {best:5.1f}; random formulations with f2 >= 65: {100 * p65:.2f} %, >= 75: {100 * p75:.2f} %; "
              f"chance that 120 random experiments reach 65: {100 * out[name]['p_random_120_reaches_65']:.0f} %", flush=True)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="all", help=f"comma-separated subset of {','.join(TARGETS)} (default all)")
    parser.add_argument("--seeds", type=int, default=10, help="seeds per target (default 10)")
    parser.add_argument("--first-seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--rounds", type=int, default=15, help="rounds per run, round 0 included (default 15)")
    parser.add_argument("--batch", type=int, default=8, help="formulations per round (default 8)")
    parser.add_argument("--strategies", default=",".join(DEFAULT_STRATEGIES), help=f"comma-separated subset of {','.join(STRATEGIES)}")
    parser.add_argument("--prior", action="store_true", help="also run curve_gp_prior and ours_prior: each campaign starts with an "
                        "earlier 40-formulation campaign on another drug as its [prior] (bench/campaign_prior.py)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--plot", default="bench_campaign.png", help="PNG of best f2 vs experiments ('' for none)")
    parser.add_argument("--timing-n", type=int, default=500, help="measured formulations for the proposal timing (0: skip)")
    parser.add_argument("--timing-imported", type=int, default=500, help="imported formulations added for the proposal timing")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--json-out", default="", metavar="PATH", help="also write that JSON object (with every run) to PATH")
    parser.add_argument("--check-targets", action="store_true", help="verify the targets on the ground truth and exit")
    parser.add_argument("--from-json", nargs="+", default=None, metavar="PATH",
                        help="print the tables of runs saved by earlier --json-out files (e.g. strategies run separately; a later file replaces the same strategy, target and seed) and exit")
    args = parser.parse_args(argv)
    if args.from_json:
        return print_saved(args.from_json, args.rounds)

    targets = list(TARGETS) if args.targets == "all" else [t.strip() for t in args.targets.split(",") if t.strip()]
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    strategies += [s for s in ("curve_gp_prior", "ours_prior") if args.prior and s not in strategies]
    bad = [t for t in targets if t not in TARGETS] + [s for s in strategies if s not in STRATEGIES]
    if bad or args.seeds < 1 or args.rounds < 2 or args.batch < 1:
        parser.error(f"unknown targets/strategies {bad}" if bad else "need --seeds >= 1, --rounds >= 2, --batch >= 1")
    warnings.filterwarnings("ignore")
    if args.check_targets:
        report = check_targets(targets)
        if args.json:
            print(json.dumps(report, indent=1))
        return 0

    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    jobs = [(s, t, seed, args.rounds, args.batch) for t in targets for seed in seeds for s in strategies]
    results, seconds = {}, {s: 0.0 for s in strategies}
    started = time.perf_counter()
    log = sys.stderr
    if args.workers > 1:
        with get_context("spawn").Pool(args.workers) as pool:
            outcomes = pool.imap_unordered(_job, jobs)
            for i, (s, t, seed, f2s, secs) in enumerate(outcomes, 1):
                results[(s, t, seed)], seconds[s] = f2s, seconds[s] + secs
                print(f"[{i}/{len(jobs)}] {s} {t} seed {seed}: best f2 {max(f2s):.1f} ({secs:.0f} s)", file=log, flush=True)
    else:
        for i, job in enumerate(jobs, 1):
            s, t, seed, f2s, secs = _job(job)
            results[(s, t, seed)], seconds[s] = f2s, seconds[s] + secs
            print(f"[{i}/{len(jobs)}] {s} {t} seed {seed}: best f2 {max(f2s):.1f} ({secs:.0f} s)", file=log, flush=True)
    summary = summarise(results, strategies, targets, args.batch, args.rounds)
    summary["seconds_per_run"] = {s: seconds[s] / (len(targets) * len(seeds)) for s in strategies}
    summary["settings"] = {"targets": targets, "seeds": seeds, "rounds": args.rounds, "batch": args.batch, "pool_size": POOL_SIZE,
                           "wall_s": time.perf_counter() - started}
    if args.plot:
        plot(results, strategies, targets, args.batch, args.rounds, args.plot)
        summary["plot"] = args.plot
    if args.timing_n > 0:
        summary["scoring"] = time_scoring()
        summary["proposal"] = time_proposal(args.timing_n, n_imported=args.timing_imported)
    summary["runs"] = [{"strategy": s, "target": t, "seed": seed, "f2": [None if not np.isfinite(v) else v for v in f]} for (s, t, seed), f in results.items()]
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=1))
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    print_tables(summary, strategies, targets, args.batch, args.rounds)
    print("\nmean seconds per run: " + ", ".join(f"{s} {v:.0f}" for s, v in summary["seconds_per_run"].items()))
    if args.plot:
        print(f"plot: {args.plot}")
    if args.timing_n > 0:
        sc, pr = summary["scoring"], summary["proposal"]
        print(f"scoring {sc['candidates']} candidates (objective per member): {sc['score_s']:.2f} s (+ {sc['sobol_and_encode_s']:.2f} s Sobol sample and encoding)")
        print(f"one proposal with {pr['measured_formulations']} measured and {pr['imported_formulations']} imported formulations (train {pr['train_s']:.1f} s, pool {pr['pool_size']}, "
              f"refine, choose {pr['batch']}): {pr['proposal_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
