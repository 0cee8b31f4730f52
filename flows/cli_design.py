"""`nanoloop design`: inverse design, the best formulations for a target release profile.

    nanoloop design [STORE] --target TARGET.csv [--config CONFIG] [--n 5] [--pool-size 32768] [--json] [--plot OUT.png]

The target CSV has a time column (hours) and a release column (% or fraction).
With STORE the campaign's latest trained model is used (or, when the store
has measurements but no model yet, one is trained in memory, writing nothing);
the design space, goals and constraints come from ``--config`` when given, else
from the campaign. Without a store there is no data to learn from: the command
says so.
"""

from __future__ import annotations

import json
import sys

from nanoloop.flows.cli_args import add_old_spelling, add_optional_store, positive_int
from nanoloop.loop.errors import InputError


def register(subparsers) -> None:
    """Add the `design` command to an argparse subparsers object."""
    p = subparsers.add_parser(
        "design", help="inverse design: the best formulations for a target release profile",
        description="Propose the formulations whose predicted release curve is closest to a target profile "
                    "(f2 by default), with the predicted curve, its 90 % interval and the release law it follows.")
    add_optional_store(p, "none, and inverse design then has no data to learn from (it says so)", "nanoloop design STORE --target TARGET.csv",
                       help="the ledger of a campaign with measured formulations, whose latest model is used")
    p.add_argument("--target", required=True, metavar="TARGET.csv", help="target profile: columns time (h) and release (%% or fraction)")
    p.add_argument("--config", default=None, metavar="CONFIG", help="campaign TOML: design space, goals and constraints (default: the store's)")
    p.add_argument("--n", type=positive_int, default=5, help="formulations to propose (default 5)")
    pool = p.add_argument("--pool-size", type=positive_int, default=32768, metavar="N",
                          help="Sobol candidates searched before local refinement (default 32768)")
    add_old_spelling(p, "--pool", pool)
    p.add_argument("--seed", type=int, default=0, help="seed of the search (default 0)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--plot", default=None, metavar="OUT.png", help="write a PNG of the target and the predicted curves")
    p.set_defaults(handler=run_design)


def read_target(path):
    """The target profile in a CSV file (one curve; a point at t = 0 is dropped)."""
    from pydantic import ValidationError

    from nanoloop.loop.config import TargetProfile
    from nanoloop.loop.kinetics import read_curves

    curves = read_curves(path)
    if len(curves.curves) != 1:
        raise InputError(f"{path}: holds {len(curves.curves)} curves; give one target profile")
    curve = curves.curves[0]
    keep = curve.times_hours > 0
    try:
        return TargetProfile(times_hours=curve.times_hours[keep].tolist(), release_pct=curve.release_pct[keep].tolist())
    except ValidationError as err:
        first = err.errors()[0]
        raise InputError(f"{path}: not a usable target profile: {first['msg'].removeprefix('Value error, ')}") from None


def _model_and_config(args, target):
    """(curve model, config with the target, where the model came from, campaign or None)."""
    from nanoloop.loop.config import load_config

    config = load_config(args.config) if args.config else None
    if args.store is None:
        what = "--config gives the design space and constraints, but no measurements" if config else "there is no campaign to learn from"
        raise InputError(f"inverse design needs a release model trained on measured curves, and {what}: "
                         "give STORE, the ledger of a campaign with measured formulations (`nanoloop design STORE --target ...`)")
    from pathlib import Path

    from nanoloop.loop.campaign.campaign import Campaign
    from nanoloop.loop.store.ledger import check_location

    check_location(args.store)
    if "://" not in args.store and not Path(args.store).exists():
        raise InputError(f"store {args.store!r} does not exist")
    campaign = Campaign.open(args.store)
    config = (config or campaign.config).model_copy(update={"target": target})
    trained = campaign.models.latest()
    if trained is not None:
        model, source = trained.model, f"model {trained.version} of {args.store} ({trained.n_formulations} formulations)"
    else:
        X, y, groups, n = campaign.models.training_data()
        if n == 0:
            raise InputError(f"store {args.store!r} has no trained model and no measured release curves yet: "
                             "run the campaign until round 0 is measured")
        from nanoloop.loop.models.build import build_release_model

        model = build_release_model(config.surrogate, config.seed).fit(X, y, groups=groups)
        source = f"a model trained now (not stored) on the {n} measured formulations of {args.store}"
    space = config.design_space()
    if model.n_features_in_ - 1 != len(space.feature_names):
        raise InputError(f"the model of {args.store!r} was trained on {model.n_features_in_ - 1} features but the design space "
                         f"has {len(space.feature_names)}: use the campaign's own config")
    return model, config, source, campaign


def run_design(args) -> int:
    from dataclasses import replace

    from nanoloop.loop.design.inverse import DESIGN_SEARCH, inverse_design
    from nanoloop.loop.design.objective import Objective
    from nanoloop.loop.design.ensemble_recommender import characterization_model

    target = read_target(args.target)
    model, config, source, campaign = _model_and_config(args, target)
    objective = Objective.from_config(config)
    space = config.design_space()
    property_model = None
    if objective.characterization_constraints:
        names = [c.name for c in objective.characterization_constraints]
        ledger = campaign.ledger
        property_model = characterization_model(space, ledger.read("formulations"), ledger.read("characterization"), names, seed=args.seed)
        if property_model is None:
            raise InputError(f"constraints on {', '.join(names)} need a characterization model, and {args.store!r} has "
                             "fewer than 3 characterized formulations")
    from nanoloop.loop.design.calibration import prospective_widening

    measured = campaign.measured()
    curves = measured.by_id  # the campaign's prospective errors widen the f2 interval
    measured_f2 = Objective(campaign.config.target).measured(curves)["f2"] if curves else {}
    widening, _ = prospective_widening(campaign.formulations(), measured_f2)
    designs = inverse_design(model, space, objective, args.n, replace(DESIGN_SEARCH, pool_size=args.pool_size, seed=args.seed),
                             property_model=property_model, measured_encoded=measured.encoded, f2_widening=widening)
    if args.plot:
        plot_designs(target, designs, args.plot)
    if args.json:
        print(json.dumps({"target": {"times_hours": list(target.times_hours), "release_pct": list(target.release_pct)},
                          "objective": objective.describe(), "model": source, "designs": [d.to_dict() for d in designs],
                          "plot": args.plot}, indent=1))
        return 0
    _print(designs, target, objective, source, args.plot)
    return 0


def _print(designs, target, objective, source, plot_path) -> None:
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 140, markup=False, highlight=False)
    console.print(f"target: {', '.join(f'{r:g} % at {t:g} h' for t, r in zip(target.times_hours, target.release_pct))}")
    console.print(f"objective: {objective.describe()}; {source}")
    table = Table(title="best formulations (predicted)", title_justify="left", min_width=72)
    for header in ("#", "formulation", "f2 (90 % interval)", "P(feasible)", "release law", "t50 h", "burst 24 h %", "distance to data"):
        table.add_column(header, justify="left" if header in ("formulation", "release law") else "right")
    for d in designs:
        recipe = "\n".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in d.formulation.items())
        k = d.kinetics
        table.add_row(str(d.rank), recipe, f"{d.f2_mean:.1f} [{d.f2_lower:.0f}-{d.f2_upper:.0f}]", f"{d.probability_feasible:.2f}",
                      k.get("best_model") or "–", _num(k.get("t50_hours")), _num(k.get("burst_24h_pct")),
                      f"{d.distance_to_data:.2f}" + ("\noutside the measured data" if d.outside_measured_data else ""))
    console.print(table)
    flagged = [f"#{d.rank}" for d in designs if d.outside_measured_data]
    if flagged:
        from nanoloop.loop.design.domain import OUTSIDE_DISTANCE

        console.print(f"warning: {', '.join(flagged)}: outside the measured data (nearest measured formulation farther than "
                      f"{OUTSIDE_DISTANCE:g} in the unit encoding): treat the prediction as a guess")
    curves = Table(title="predicted release, % (90 % interval)", title_justify="left", min_width=48)
    curves.add_column("time h", justify="right")
    curves.add_column("target", justify="right")
    for d in designs:
        curves.add_column(f"#{d.rank}", justify="right")
    times = designs[0].times_hours if designs else []
    for j, t in enumerate(times):
        hit = np.flatnonzero(np.isclose(target.times_hours, t))
        row = [f"{t:g}", f"{target.release_pct[hit[0]]:g}" if len(hit) else ""]
        row += [f"{d.release_pct[j]:.0f} ({d.lower_pct[j]:.0f}-{d.upper_pct[j]:.0f})" for d in designs]
        curves.add_row(*row)
    console.print(curves)
    if plot_path:
        console.print(f"plot: {plot_path}")


def _num(value) -> str:
    return "–" if value is None else f"{value:.3g}"


def plot_designs(target, designs, path) -> None:
    """PNG: target points and each design's predicted curve with its 90 % band."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    from nanoloop.loop.kinetics.measures import time_scale

    scale, unit = time_scale(max([float(max(target.times_hours))] + [float(max(d.times_hours)) for d in designs]))
    for d in designs:
        t = np.asarray(d.times_hours, float) / scale
        line, = ax.plot(t, d.release_pct, marker=".", label=f"#{d.rank}: f2 {d.f2_mean:.0f} [{d.f2_lower:.0f}-{d.f2_upper:.0f}] ({d.kinetics.get('best_model') or '?'})")
        ax.fill_between(t, d.lower_pct, d.upper_pct, color=line.get_color(), alpha=0.12)
    ax.plot(np.asarray(target.times_hours, float) / scale, target.release_pct, "ks", label="target", zorder=5)
    ax.set_xlabel(f"time ({unit})")
    ax.set_ylabel("cumulative release (%)")
    ax.set_ylim(0, 105)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    try:
        figure.savefig(path, dpi=120)
    except OSError as err:
        raise InputError(f"cannot write the plot to {path}: {err.strerror}") from None
