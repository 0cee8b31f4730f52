"""``nanoloop explain`` and ``nanoloop predict``: ask a campaign's surrogate.

- ``nanoloop explain STORE [--round N] [--compute] [--json]`` prints the stored
  explanations of a round's model (default: the latest round explained):
  permutation importance and integrated-gradient attributions at the target's
  times, per design variable, in percentage points of release; then the signed
  effects (Shapley values, sorted by size: "+" more of the variable speeds
  release at that time, "-" slows it). ``--pd VARIABLE [--time-hours T]``
  prints the partial dependence of release at T on that variable with its
  band. ``--compute`` computes (and stores) what is missing.
- ``nanoloop predict STORE FORMULATIONS.csv [--times-hours H ...] [--json] [--plot OUT.png]``
  predicts release curves with 90 % intervals, from the campaign's latest
  model, for formulations typed into a CSV with one column per design
  variable (and an optional ``label`` column).

Bad input raises :class:`nanoloop.loop.errors.InputError` (one line, exit code 2).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from nanoloop.flows.cli_args import add_old_spelling, add_store
from nanoloop.loop.errors import InputError

LABEL_COLUMNS = ("label", "name", "id")


def register(subparsers) -> None:
    """Add the ``explain`` and ``predict`` commands to the main CLI's subparsers."""
    p = subparsers.add_parser("explain", help="which formulation variables drive the surrogate's predictions (per round)")
    add_store(p)
    p.add_argument("--round", type=int, default=None, help="round whose model to explain (default: the latest explained)")
    p.add_argument("--compute", action="store_true", help="compute and store the explanations if they are missing")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--pd", default=None, metavar="VARIABLE", help="print the partial dependence of release on this continuous variable")
    p.add_argument("--time-hours", type=float, default=None, metavar="T", help="with --pd: the time (default: the stored time nearest 24 h)")
    p.set_defaults(handler=cmd_explain)

    p = subparsers.add_parser("predict", help="predicted release curves with 90%% intervals for formulations in a CSV")
    add_store(p)
    p.add_argument("formulations", help="CSV with one column per design variable (optional 'label' column)")
    times = p.add_argument("--times-hours", type=float, nargs="+", default=None, metavar="H",
                           help="times in hours (default: the target profile's times)")
    add_old_spelling(p, "--times", times)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--plot", default=None, metavar="OUT.png", help="also draw the curves with their intervals to this image")
    p.set_defaults(handler=cmd_predict)


def _open(store: str):
    from nanoloop.loop.campaign.campaign import Campaign
    from nanoloop.loop.store.ledger import check_location

    check_location(store)
    return Campaign.open(store)


# -- explain -------------------------------------------------------------------
def cmd_explain(args) -> int:
    import pandas as pd

    from nanoloop.loop.explain.importance import explain_round, explanations_json, read_explanations

    campaign = _open(args.store)
    if args.round is not None and args.round < 0:
        raise InputError(f"--round must be 0 or more, got {args.round}")
    if args.compute:
        round_ = args.round
        if round_ is None:
            models = campaign.ledger.read("models")
            if models.empty:
                raise InputError(f"store {args.store!r} holds no trained surrogate yet")
            round_ = int(models["round"].max())
        explain_round(campaign, round_)
    try:
        round_, wide = read_explanations(campaign.ledger, args.round)
    except InputError as err:
        raise InputError(f"{err}; run `nanoloop explain {args.store} --compute`") from None
    if args.time_hours is not None and args.pd is None:
        raise InputError("--time-hours goes with --pd VARIABLE")
    if args.pd is not None:
        return _print_partial_dependence(args, campaign, wide.attrs["model_version"])
    from nanoloop.loop.design.space import fixed_label, fixed_text

    fixed = campaign.space.fixed
    attrs = dict(wide.attrs)
    wide = wide.loc[[f for f in wide.index if f not in fixed] + [f for f in wide.index if f in fixed]]  # fixed variables last
    wide.attrs.update(attrs)
    if args.json:
        print(explanations_json(round_, wide, fixed=fixed))
        return 0
    from rich.table import Table

    from nanoloop.flows.progress import console

    table = Table(title=f"round {round_}, model {wide.attrs.get('model_version')}: what drives the predicted release (percentage points)",
                  caption="perm.: rise of the model's MAE when the variable is shuffled; @t: mean |integrated-gradient attribution| of the release predicted at time t, from the average formulation")
    table.add_column("variable", no_wrap=True)
    for method in wide.columns:
        table.add_column(_method_title(method), justify="right")
    for feature, row in wide.iterrows():
        table.add_row(fixed_label(feature, fixed), *("-" if pd.isna(v) else f"{v:.2f}" for v in row))
    console.print(table)
    if fixed:
        console.print(f"(fixed): held for this campaign at {fixed_text(fixed)}; not a driver of this campaign's choices "
                      "(the model learns its effect only from data where it varied)")
    signed = wide.attrs["signed"]
    if signed.empty:
        console.print(f"No signed effects stored for round {round_} (explained before they existed); "
                      f"run `nanoloop explain {args.store} --round {round_} --compute` to add them.", soft_wrap=True)
        return 0
    console.print(_signed_table(signed, round_, fixed))
    return 0


def _signed_table(signed, round_: int, fixed: dict):
    """Variables sorted by size (largest mean |Shapley value| over the times), one column per time in time order."""
    from rich.table import Table

    from nanoloop.loop.explain.importance import signed_table

    text = signed_table(signed, fixed)
    table = Table(title=f"round {round_}: direction of each variable's effect on the predicted release (Shapley values)",
                  caption="+ more of the variable speeds release at that time, - slows it; the number is its mean |Shapley value| "
                          "(percentage points, from the average measured formulation); no sign: categorical, or a change under 0.1. "
                          "min->max: change of release from the variable's min to its max; categorical: mean value per category.")
    table.add_column("variable", no_wrap=True)
    for column in text.columns[1:-1]:
        table.add_column(column, justify="right")
    table.add_column(text.columns[-1], justify="left")
    for row in text.itertuples(index=False):
        table.add_row(*row)
    return table


def _print_partial_dependence(args, campaign, model_version: str) -> int:
    from nanoloop.loop.explain.effects import PD_BAND
    from nanoloop.loop.explain.importance import read_partial_dependence

    try:
        time_hours, curve = read_partial_dependence(campaign.ledger, model_version, args.pd, args.time_hours)
    except InputError as err:
        if "explained before" in str(err):
            raise InputError(f"{err}; run `nanoloop explain {args.store} --compute`") from None
        raise
    if args.json:
        print(json.dumps({"model_version": model_version, "variable": args.pd, "time_hours": time_hours, "band": PD_BAND,
                          "unit": "percentage points of release", "points": curve.to_dict(orient="records")}))
        return 0
    from rich.table import Table

    from nanoloop.flows.progress import console

    table = Table(title=f"partial dependence of release at {time_hours:g} h on {args.pd} (model {model_version})",
                  caption=f"release averaged over the measured formulations with {args.pd} set to each value; band: {PD_BAND}")
    for name in (args.pd, "release %", "band low %", "band high %"):
        table.add_column(name, justify="right")
    for row in curve.itertuples():
        table.add_row(f"{row.value:.4g}", f"{row.release_pct:.1f}", f"{row.low_pct:.1f}", f"{row.high_pct:.1f}")
    console.print(table)
    return 0


def _method_title(method: str) -> str:
    if method.startswith("permutation"):
        return "perm."
    if "@" in method:
        return f"@{method.split('@', 1)[1]}"
    return method


# -- predict -------------------------------------------------------------------
def read_formulations(path: str, space):
    """Validated formulations from a CSV (a DataFrame, one column per design variable), and a label per row.

    Errors name the file, the data row (1-based; the line is one more, after the
    header) and the column.
    """
    import pandas as pd

    file = Path(path)
    if not file.is_file():
        raise InputError(f"{path}: no such file")
    try:
        raw = pd.read_csv(file, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not a readable CSV: {str(err).splitlines()[0]}") from None
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [n for n in space.names if n not in raw.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}; the design variables are {space.names}")
    label_col = next((c for c in raw.columns if c.lower() in LABEL_COLUMNS), None)
    unknown = [c for c in raw.columns if c not in space.names and c != label_col]
    if unknown:
        raise InputError(f"{path}: unknown column(s) {unknown}; expected the design variables {space.names} and optionally a 'label' column")
    if raw.empty:
        raise InputError(f"{path}: no formulations (only a header)")
    rows, labels = [], []
    for i, record in enumerate(raw.to_dict("records"), start=1):
        where = f"{path}: row {i} (line {i + 1})"
        values = {}
        for name in space.names:
            text = str(record[name]).strip()
            if not text:
                raise InputError(f"{where}, column {name!r}: empty")
            values[name] = text
        try:
            validated = space.validate(values, check_fixed=False)  # a what-if question may vary a fixed variable
        except InputError as err:
            raise InputError(f"{where}: {str(err).removeprefix('formulation: ')}") from None
        for name, value in validated.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise InputError(f"{where}, column {name!r}: {value} is not a finite number")
        rows.append(validated)
        labels.append(str(record[label_col]).strip() if label_col and str(record[label_col]).strip() else f"row {i}")
    return pd.DataFrame(rows, columns=space.names), labels


def _default_times(campaign):
    """The target profile's times (hours): where the scientist compares curves."""
    import numpy as np

    return np.unique(np.asarray(campaign.config.target.times_hours, float))


def predict_formulations(campaign, frame, times_hours) -> dict:
    """Predicted release (%) with 90 % intervals from the campaign's latest model.

    Returns a JSON-ready dict: model_version, times_hours, and per formulation
    release_pct, std_pct, lower_90_pct, upper_90_pct (lists over times), the f2 to the
    campaign's target with its 90 % interval (from the same calibrated predictive
    distribution as the bands), and the distance to the nearest measured formulation
    with the out-of-domain flag (:mod:`nanoloop.loop.design.domain`).
    """
    import numpy as np

    from nanoloop.loop.design.domain import OUTSIDE_DISTANCE, distance_to_data, is_outside
    from nanoloop.loop.design.objective import Objective
    from nanoloop.loop.models.base import Z90, curve_rows
    from nanoloop.loop.models.predictive import PredictiveCurves, interval_90

    trained = campaign.models.latest()
    if trained is None:
        raise InputError(f"store {campaign.ledger.location!r} holds no trained surrogate yet: run a round with measurements first")
    times = np.asarray(times_hours, float)
    if times.ndim != 1 or len(times) == 0 or not np.all(np.isfinite(times)) or np.any(times < 0):
        raise InputError(f"--times-hours must be finite hours >= 0, got {times_hours}")
    times = np.unique(times)
    features = campaign.space.encode(frame)
    mean, std = trained.model.predict(curve_rows(features, times), return_std=True)
    mean, std = mean.reshape(len(frame), -1), std.reshape(len(frame), -1)
    lower, upper = np.clip(mean - Z90 * std, 0, 1), np.clip(mean + Z90 * std, 0, 1)
    f2 = Objective(campaign.config.target).samples(PredictiveCurves(trained.model), features)
    f2_lower, f2_upper = interval_90(f2.values)
    distance = distance_to_data(features, campaign.measured().encoded)
    outside = is_outside(distance)
    return {
        "model_version": trained.version, "n_training_formulations": trained.n_formulations, "times_hours": times.tolist(),
        "unit": "percent released", "interval": "90 % (mean +/- 1.645 std, clipped to [0, 100])",
        "outside_threshold": OUTSIDE_DISTANCE,
        "formulations": [
            {"parameters": frame.iloc[i].to_dict(), "release_pct": (100 * mean[i]).round(3).tolist(), "std_pct": (100 * std[i]).round(3).tolist(),
             "lower_90_pct": (100 * lower[i]).round(3).tolist(), "upper_90_pct": (100 * upper[i]).round(3).tolist(),
             "f2": round(float(f2.mean[i]), 2), "f2_lower_90": round(float(f2_lower[i]), 2), "f2_upper_90": round(float(f2_upper[i]), 2),
             "distance_to_data": round(float(distance[i]), 4), "outside_measured_data": bool(outside[i])}
            for i in range(len(frame))
        ],
    }


def cmd_predict(args) -> int:
    import numpy as np

    campaign = _open(args.store)
    frame, labels = read_formulations(args.formulations, campaign.space)
    times = _default_times(campaign) if args.times_hours is None else args.times_hours
    if args.plot is not None:
        out = Path(args.plot)
        if out.suffix.lower() not in (".png", ".pdf", ".svg"):
            raise InputError(f"--plot {args.plot}: use a .png, .pdf or .svg file name")
        if not out.parent.exists():
            raise InputError(f"--plot {args.plot}: folder {out.parent} does not exist")
    result = predict_formulations(campaign, frame, times)
    for entry, label in zip(result["formulations"], labels):
        entry["label"] = label
    if args.plot is not None:
        dense = predict_formulations(campaign, frame, np.linspace(0.0, max(result["times_hours"]), 121))
        _plot(dense, result, labels, args.plot)
    if args.json:
        print(json.dumps(result))
        return 0
    from rich.table import Table

    from nanoloop.flows.progress import console

    table = Table(title=f"predicted release, % (mean [90 % interval]), model {result['model_version']}")
    table.add_column("formulation", no_wrap=True)
    for t in result["times_hours"]:
        table.add_column(f"{t:g} h", justify="right")
    table.add_column("f2 to target [90 %]", justify="right")
    table.add_column("distance to data", justify="right")
    for entry in result["formulations"]:
        cells = [f"{m:.1f} [{lo:.0f}-{hi:.0f}]" for m, lo, hi in zip(entry["release_pct"], entry["lower_90_pct"], entry["upper_90_pct"])]
        cells.append(f"{entry['f2']:.1f} [{entry['f2_lower_90']:.0f}-{entry['f2_upper_90']:.0f}]")
        cells.append(f"{entry['distance_to_data']:.2f}" + (" outside the measured data" if entry["outside_measured_data"] else ""))
        table.add_row(entry["label"], *cells)
    console.print(table)
    flagged = [e["label"] for e in result["formulations"] if e["outside_measured_data"]]
    if flagged:
        console.print(f"warning: {', '.join(flagged)}: outside the measured data (nearest measured formulation farther than "
                      f"{result['outside_threshold']:g} in the unit encoding): the prediction extrapolates")
    if args.plot is not None:
        console.print(f"wrote {args.plot}")
    return 0


def _plot(dense: dict, points: dict, labels: list[str], path: str) -> None:
    """Mean curves with 90 % bands on a fine time grid; markers at the requested times."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from nanoloop.loop.kinetics.measures import time_scale

    fig, ax = plt.subplots(figsize=(7, 4.5))
    scale, unit = time_scale(float(max(dense["times_hours"])))
    dense_t, points_t = np.asarray(dense["times_hours"], float) / scale, np.asarray(points["times_hours"], float) / scale
    for curve, at, label in zip(dense["formulations"], points["formulations"], labels):
        line, = ax.plot(dense_t, curve["release_pct"], label=label)
        ax.fill_between(dense_t, curve["lower_90_pct"], curve["upper_90_pct"], color=line.get_color(), alpha=0.15)
        ax.plot(points_t, at["release_pct"], "o", ms=4, color=line.get_color())
    ax.set_xlabel(f"time ({unit})")
    ax.set_ylabel("cumulative release (%)")
    ax.set_ylim(0, 100)
    ax.set_xlim(0, None)
    ax.set_title(f"predicted release with 90 % intervals (model {points['model_version']})", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
