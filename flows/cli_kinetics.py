"""`nanoloop kinetics fit|compare`: release-law fitting and f1/f2 comparison of release curves."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nanoloop.loop.errors import InputError

_TIME_UNITS = ("h", "d", "min")
_RELEASE_SCALES = ("auto", "percent", "fraction")


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _curve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--time-unit", choices=_TIME_UNITS, default="h", help="unit of the time column (default: h)")
    parser.add_argument("--release-scale", choices=_RELEASE_SCALES, default="auto",
                        help="release as percent or fraction of the dose (default: detected)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def register(subparsers) -> None:
    """Add the `kinetics` command, with `fit` and `compare`, to an argparse subparsers object."""
    kinetics = subparsers.add_parser("kinetics", help="fit release laws to release curves; compare curves by f1/f2")
    commands = kinetics.add_subparsers(dest="kinetics_command", required=True, metavar="{fit,compare}")

    fit = commands.add_parser(
        "fit", help="fit every release law to each curve and rank them by AICc",
        description="Fit every release law (DDSolver's set) to each curve of a CSV file with columns "
                    "time, release and optionally curve and replicate; rank the laws by AICc.")
    fit.add_argument("curves", metavar="CURVES.csv")
    _curve_options(fit)
    fit.add_argument("--plot", metavar="OUT.png", help="write a PNG of the data with the three best fits")
    fit.set_defaults(handler=run_fit)

    compare = commands.add_parser(
        "compare", help="f1, f2 and their regulatory validity for a test curve against a reference",
        description="Compare TEST.csv with REF.csv (one curve each, same time points) by f1 and f2, "
                    "check the regulatory conditions, and optionally bootstrap f2 over replicate units.")
    compare.add_argument("reference", metavar="REF.csv")
    compare.add_argument("test", metavar="TEST.csv")
    compare.add_argument("--bootstrap", metavar="N", type=_count, default=0,
                         help="bootstrap samples for a 90 %% f2 interval (needs a replicate column)")
    compare.add_argument("--seed", type=int, default=0, help="random seed of the bootstrap (default: 0)")
    _curve_options(compare)
    compare.set_defaults(handler=run_compare)


def _console():
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 120, markup=False, highlight=False)


def _num(value, spec: str = ".4g") -> str:
    return "–" if value is None else format(value, spec)


def _mechanism(fit) -> dict | None:
    from nanoloop.loop.kinetics import release_mechanism

    kp = fit.get("korsmeyer_peppas")
    if kp is None:
        return None
    n = kp.params["n"]
    return {"n": n, "geometry": "sphere", "mechanism": release_mechanism(n, "sphere")}


def _fit_table(curve, fit):
    from rich.table import Table

    table = Table(title=f"curve {curve.curve_id}: {curve.times_hours.size} points, "
                        f"{curve.times_hours[0]:g}-{curve.times_hours[-1]:g} h"
                        + (f", mean of {curve.n_replicates} replicates" if curve.n_replicates else ""),
                  title_justify="left")
    for header in ("#", "model", "parameters (± SE)", "R²", "adj. R²", "RMSE", "AICc", "MSC"):
        table.add_column(header, justify="left" if header in ("model", "parameters (± SE)") else "right")
    for rank, law_fit in enumerate(fit.fits, 1):
        params = "\n".join(
            f"{p.name} = {_num(law_fit.params[p.name])} ± {_num(law_fit.std_errors[p.name], '.2g')}"
            + (f" {p.unit}" if p.unit != "-" else "")
            for p in law_fit.law.parameters)
        title = law_fit.law.title if law_fit.fitted_on_all_points else f"{law_fit.law.title} *"
        table.add_row(str(rank), title, params, _num(law_fit.r2, ".4f"), _num(law_fit.r2_adjusted, ".4f"),
                      _num(law_fit.rmse, ".3g"), _num(law_fit.aicc, ".2f"), _num(law_fit.msc, ".2f"))
    partial = [f for f in fit.fits if not f.fitted_on_all_points]
    if partial:
        table.caption = (f"* fitted on the {partial[0].n_points} points up to 60 % released; "
                         "its statistics do not compare with the others")
    return table


def run_fit(args) -> int:
    """Fit every law to each curve of `args.curves`; print tables or JSON, optionally a PNG."""
    from nanoloop.loop.kinetics import fit_laws, read_curves

    data = read_curves(args.curves, time_unit=args.time_unit, release_scale=args.release_scale)
    plot = Path(args.plot) if args.plot else None
    if plot is not None and not plot.parent.is_dir():
        raise InputError(f"cannot write the plot {plot}: folder {plot.parent} does not exist")
    results = [(curve, fit_laws(curve.times_hours, curve.release_pct, curve_id=curve.curve_id))
               for curve in data.curves]
    if args.json:
        print(json.dumps({
            "file": str(data.path),
            "release_scale": data.release_scale,
            "note": data.note,
            "curves": [{
                "curve_id": curve.curve_id,
                "n_points": int(curve.times_hours.size),
                "n_replicates": curve.n_replicates,
                "best_model": fit.best.law.name if fit.best else None,
                "korsmeyer_peppas_mechanism": _mechanism(fit),
                "models": [{"rank": rank, **law_fit.to_dict()} for rank, law_fit in enumerate(fit.fits, 1)],
                "skipped": fit.skipped,
            } for curve, fit in results],
        }, indent=2, ensure_ascii=False))
    else:
        console = _console()
        console.print(f"{data.path.name}: {len(data.curves)} curve(s); {data.note}")
        for curve, fit in results:
            console.print(_fit_table(curve, fit))
            best = fit.best
            console.print(f"best model: {best.law.title if best else 'none'} (lowest AICc on the whole curve)")
            mechanism = _mechanism(fit)
            if mechanism:
                console.print(f"Korsmeyer-Peppas n = {mechanism['n']:.3f} (sphere): {mechanism['mechanism']}")
            for name, reason in fit.skipped.items():
                console.print(f"not fitted: {name}: {reason}")
    if plot is not None:
        from nanoloop.loop.kinetics.plotting import plot_fits

        plot_fits(results, plot)
        print(f"wrote {plot}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _single_curve(path, args):
    from nanoloop.loop.kinetics import read_curves

    data = read_curves(path, time_unit=args.time_unit, release_scale=args.release_scale)
    if len(data.curves) != 1:
        names = ", ".join(c.curve_id for c in data.curves)
        raise InputError(f"{path}: holds {len(data.curves)} curves ({names}); compare takes one curve per file")
    return data


def run_compare(args) -> int:
    """Compare the test curve with the reference by f1/f2; print the result and its validity."""
    from nanoloop.loop.kinetics import compare_curves

    reference, test = _single_curve(args.reference, args), _single_curve(args.test, args)
    result = compare_curves(reference.curves[0], test.curves[0], n_bootstrap=args.bootstrap, seed=args.seed)
    if args.json:
        payload = {"reference_note": reference.note, "test_note": test.note, **result.to_dict()}
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return 0
    console = _console()
    console.print(f"reference {reference.path.name}: {reference.note}")
    console.print(f"test {test.path.name}: {test.note}")
    console.print(f"time points used: {', '.join(f'{x:g}' for x in result.times_hours)} h")
    console.print(f"f1 = {_num(result.f1, '.2f')}   f2 = {_num(result.f2, '.2f')}")
    if result.bootstrap is not None:
        boot = result.bootstrap
        console.print(f"bootstrap f2 ({boot.n_bootstrap} samples): {boot.confidence:.0%} interval "
                      f"{boot.lower:.2f} to {boot.upper:.2f}; "
                      f"{'similar' if boot.lower >= 50 else 'similarity not shown'} (lower bound vs 50)")
    for note in result.notes:
        console.print(f"note: {note}")
    if result.valid:
        verdict = "similar" if result.similar else "not similar"
        console.print(f"valid comparison: yes; the profiles are {verdict} (f1 ≤ 15 and f2 ≥ 50)")
    else:
        console.print("valid comparison: no")
        for reason in result.reasons:
            console.print(f"  because {reason}")
    return 0
