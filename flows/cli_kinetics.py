"""`nanoloop kinetics fit|compare`: release-law fitting and f1/f2 comparison of release curves."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from nanoloop.flows.cli_args import add_release_unit, add_time_unit, non_negative_int, positive_int
from nanoloop.loop.errors import InputError

_LAYOUTS = ("auto", "long", "wide", "vessels")
_GEOMETRIES = ("sphere", "cylinder", "slab")
#: --release-unit -> read_curves' release_scale
_RELEASE_SCALE = {"auto": "auto", "pct": "percent", "fraction": "fraction"}
#: Fits of at least this many curves show progress on stderr.
PROGRESS_FROM_CURVES = 20
#: Without a terminal, a progress line every few hundred curves, and at least this often (s).
PROGRESS_SECONDS = 30.0


def _curve_options(parser: argparse.ArgumentParser) -> None:
    add_time_unit(parser, help="unit of the time column (default: from its header, e.g. 'Time (min)', else h)")
    add_release_unit(parser, help="release in %% or as a fraction of the dose (default: detected)", old_option="--release-scale")
    parser.add_argument("--layout", choices=_LAYOUTS, default="auto",
                        help="long (time, release, curve/replicate columns), wide (a column per curve), vessels "
                             "(every column a vessel of one curve); default: detected and said")
    parser.add_argument("--sheet", help="Excel sheet (default: the first)")
    parser.add_argument("--strict", action="store_true",
                        help="refuse the file at the first unusable curve or missing value (exit 2) "
                             "instead of skipping it with its reason")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def register(subparsers) -> None:
    """Add the `kinetics` command, with `fit` and `compare`, to an argparse subparsers object."""
    kinetics = subparsers.add_parser("kinetics", help="fit release laws to release curves; compare curves by f1/f2")
    commands = kinetics.add_subparsers(dest="kinetics_command", required=True, metavar="{fit,compare}")

    fit = commands.add_parser(
        "fit", help="fit every release law to each curve and rank them by AICc",
        description="Fit every release law (DDSolver's set) to each curve of a CSV or Excel file, long "
                    "(time, release, optional curve and replicate columns) or wide (a time column and a "
                    "column per curve or vessel); rank the laws by AICc. Unsorted and repeated times are "
                    "tidied and said; an unusable curve is skipped with its reason.")
    fit.add_argument("curves", metavar="CURVES")
    _curve_options(fit)
    fit.add_argument("--geometry", choices=_GEOMETRIES, default="sphere",
                     help="geometry for reading the Korsmeyer-Peppas exponent (default: sphere)")
    fit.add_argument("--top", type=positive_int, default=5, help="laws shown per curve in tables (default 5; "
                                                                "--json has all)")
    fit.add_argument("--unweighted", action="store_true",
                     help="do not weight points by 1/SD² of the replicates")
    fit.add_argument("--plot", metavar="OUT.png", help="write a PNG of the data, the fits and the residuals")
    fit.set_defaults(handler=run_fit)

    compare = commands.add_parser(
        "compare", help="f1, f2 and their regulatory validity for a test curve against a reference",
        description="Compare a test formulation with a reference by f1 and f2 on their mean profiles, "
                    "check the FDA/EMA conditions (12 units, CV limits, at most one point above 85 %, "
                    "same times), and bootstrap f2 with a BCa interval when they fail. Each file holds "
                    "one formulation's vessels (long with a replicate column, or wide), or name the "
                    "curves with --ref-curve/--test-curve.")
    compare.add_argument("reference", metavar="REF")
    compare.add_argument("test", metavar="TEST", nargs="?", help="default: the REF file (with --test-curve)")
    compare.add_argument("--ref-curve", metavar="NAME", help="the reference curve, when REF holds several")
    compare.add_argument("--test-curve", metavar="NAME", help="the test curve, when TEST holds several")
    compare.add_argument("--bootstrap", metavar="N", type=non_negative_int, default=None,
                         help="bootstrap samples for a 90 %% BCa f2 interval (default: 2000 when a condition "
                              "fails and both have 2+ units; 0 for none)")
    compare.add_argument("--seed", type=int, default=0, help="random seed of the bootstrap (default: 0)")
    _curve_options(compare)
    compare.set_defaults(handler=run_compare)


def _console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(file=stream, width=None if stream.isatty() else 120, markup=False, highlight=False)


def _num(value, spec: str = ".4g") -> str:
    return "–" if value is None else format(value, spec)


def _read(path, args):
    from nanoloop.loop.kinetics import read_curves

    return read_curves(path, time_unit=args.time_unit, release_scale=_RELEASE_SCALE[args.release_unit], layout=args.layout,
                       sheet=args.sheet, strict=args.strict)


# ----------------------------------------------------------------------- fit
class _Progress:
    """Progress of a long fit on stderr: a rich bar with the time left on a terminal; else a line
    with the time left after 10 curves, every 50-500 curves, and at least every 30 s."""

    def __init__(self, total: int, n_laws: int):
        self.total, self.n_laws, self.done = total, n_laws, 0
        self.started = self.last_line = time.perf_counter()
        self.every = max(50, min(500, total // 20))
        self.bar = None
        if total < PROGRESS_FROM_CURVES:
            return
        if sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("fitting curves"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("ETA"), TimeRemainingColumn(), console=_console(stderr=True))
            self.task = self.bar.add_task("fit", total=total)
            self.bar.start()
        else:
            print(f"fitting {total} curves x {n_laws} laws", file=sys.stderr, flush=True)

    def step(self) -> None:
        self.done += 1
        if self.total < PROGRESS_FROM_CURVES:
            return
        if self.bar is not None:
            self.bar.advance(self.task)
        elif (self.done == 10 or self.done % self.every == 0 or self.done == self.total
              or time.perf_counter() - self.last_line > PROGRESS_SECONDS):
            self.last_line = time.perf_counter()
            elapsed = self.last_line - self.started
            left = elapsed / self.done * (self.total - self.done)
            rest = f"; about {_duration(left)} left" if self.done < self.total else ""
            print(f"fitted {self.done} of {self.total} curves in {elapsed:.0f} s{rest}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _fit_all(data, args):
    from nanoloop.loop.kinetics import LAWS, fit_laws

    progress = _Progress(len(data.curves), len(LAWS))
    results = []
    try:
        for curve in data.curves:
            sd = None if args.unweighted else curve.replicate_sd_pct
            results.append((curve, fit_laws(curve.times_hours, curve.release_pct, curve_id=curve.curve_id,
                                            sd_pct=sd)))
            progress.step()
    finally:
        progress.close()
    return results


def _mechanism(curve, fit, geometry):
    """The mechanism reading; Peppas-Sahlin terms compared at the median sampling time."""
    import numpy as np

    from nanoloop.loop.kinetics import mechanism_reading

    sampled = curve.times_hours[curve.times_hours > 0]
    return mechanism_reading(fit, geometry, at_hours=float(f"{np.median(sampled):.3g}") if sampled.size else 1.0)


def _params_text(law_fit) -> str:
    lines = []
    for p in law_fit.law.parameters:
        unit = f" {p.unit}" if p.unit != "-" else ""
        mark = " !" if any(flag.startswith(f"{p.name} ") or flag.startswith(f"{p.name}:") for flag in law_fit.flags) else ""
        lines.append(f"{p.name} = {_num(law_fit.params[p.name])} ± {_num(law_fit.std_errors[p.name], '.2g')}"
                     f"{unit}{mark}")
    return "\n".join(lines)


def _fit_table(curve, fit, top: int):
    from rich.table import Table

    table = Table(title=f"curve {curve.curve_id}: {curve.times_hours.size} points, "
                        f"{curve.times_hours[0]:g}-{curve.times_hours[-1]:g} h"
                        + (f", mean of {curve.n_replicates} replicates" if curve.n_replicates else "")
                        + (", weighted by 1/SD²" if fit.fits and fit.fits[0].weighted else ""),
                  title_justify="left")
    for header in ("#", "model", "parameters (± SE)", "R²", "adj. R²", "RMSE", "AICc", "MSC"):
        table.add_column(header, justify="left" if header in ("model", "parameters (± SE)") else "right")
    for rank, law_fit in enumerate(fit.fits[:top], 1):
        title = law_fit.law.title if law_fit.fitted_on_all_points else f"{law_fit.law.title} *"
        table.add_row(str(rank), title, _params_text(law_fit), _num(law_fit.r2, ".4f"),
                      _num(law_fit.r2_adjusted, ".4f"), _num(law_fit.rmse, ".3g"), _num(law_fit.aicc, ".2f"),
                      _num(law_fit.msc, ".2f"))
    captions = []
    partial = [f for f in fit.fits[:top] if not f.fitted_on_all_points]
    if partial:
        captions.append(f"* fitted on the {partial[0].n_points} points up to 60 % released; "
                        "its statistics do not compare with the others")
    if any(f.flags for f in fit.fits[:top]):
        captions.append("! a parameter at a bound or with a standard error above its estimate (see flags)")
    if len(fit.fits) > top:
        captions.append(f"{top} of {len(fit.fits)} laws shown (--top N; --json has all)")
    table.caption = "\n".join(captions) or None
    return table


def _print_fit(console, curve, fit, mechanism, top: int) -> None:
    console.print(_fit_table(curve, fit, top))
    best = fit.best
    console.print(f"best model: {best.law.title if best else 'none'} (lowest AICc on the whole curve)")
    if mechanism:
        console.print(f"mechanism ({mechanism['geometry']}): {mechanism['title']} n = {mechanism['n']:.3f}: "
                      f"{mechanism['mechanism']} ({mechanism['why']})")
        if mechanism["peppas_sahlin"]:
            ps = mechanism["peppas_sahlin"]
            console.print(f"Peppas-Sahlin: {ps['reading']}; m = {ps['m']:.3f} "
                          f"(Fickian limit for a {mechanism['geometry']}: {ps['fickian_limit']:g})")
    for note in curve.notes:
        console.print(f"read: {note}")
    for flag in curve.flags:
        console.print(f"flag: {flag}")
    for law_fit in fit.fits[:top]:
        for flag in law_fit.flags:
            console.print(f"flag: {law_fit.law.title}: {flag}")
    for name, reason in fit.skipped.items():
        console.print(f"not fitted: {name}: {reason}")


def _curve_json(curve, fit, mechanism) -> dict:
    return {
        "curve_id": curve.curve_id,
        "n_points": int(curve.times_hours.size),
        "n_replicates": curve.n_replicates,
        "weighted": bool(fit.fits and fit.fits[0].weighted),
        "notes": list(curve.notes),
        "flags": list(curve.flags),
        "best_model": fit.best.law.name if fit.best else None,
        "mechanism": mechanism,
        "models": [{"rank": rank, **law_fit.to_dict()} for rank, law_fit in enumerate(fit.fits, 1)],
        "skipped": fit.skipped,
    }


def run_fit(args) -> int:
    """Fit every law to each curve of `args.curves`; print tables or JSON, optionally a PNG."""
    plot = Path(args.plot) if args.plot else None
    if plot is not None and not plot.parent.is_dir():
        raise InputError(f"cannot write the plot {plot}: folder {plot.parent} does not exist")
    data = _read(args.curves, args)
    results = _fit_all(data, args)
    mechanisms = [_mechanism(curve, fit, args.geometry) for curve, fit in results]
    skipped = data.skipped or {}
    counts = {"curves": len(results) + len(skipped), "fitted": len(results), "skipped": len(skipped),
              "changed_on_reading": sum(bool(c.notes) for c, _ in results),
              "flagged_values": sum(bool(c.flags) for c, _ in results),
              "flagged_best_fits": sum(bool(fit.best and fit.best.flags) for _, fit in results)}
    if args.json:
        print(json.dumps({
            "file": str(data.path), "format": data.format_note, "release_scale": data.release_scale,
            "note": data.note, "geometry": args.geometry, "counts": counts,
            "skipped_curves": [{"curve_id": k, "reason": v} for k, v in skipped.items()],
            "curves": [_curve_json(c, f, m) for (c, f), m in zip(results, mechanisms)],
        }, indent=2, ensure_ascii=False))
    else:
        console = _console()
        console.print(f"{data.path.name}: {data.format_note}; {data.note}")
        for (curve, fit), mechanism in zip(results, mechanisms):
            _print_fit(console, curve, fit, mechanism, args.top)
        for curve_id, reason in skipped.items():
            console.print(f"skipped: {reason}")
        console.print(f"fitted {counts['fitted']} of {counts['curves']} curves; {counts['skipped']} skipped; "
                      f"{counts['changed_on_reading']} tidied on reading; {counts['flagged_values']} with flagged "
                      f"values")
    if skipped:
        print(f"nanoloop: warning: {len(skipped)} curve(s) skipped (reasons above; --strict refuses the file)",
              file=sys.stderr)
    if plot is not None:
        from nanoloop.loop.kinetics.plotting import MAX_PANELS, plot_fits

        plot_fits(results, plot)
        shown = f" (the first {MAX_PANELS} of {len(results)} curves)" if len(results) > MAX_PANELS else ""
        print(f"wrote {plot}{shown}", file=sys.stderr if args.json else sys.stdout)
    return 0


# ------------------------------------------------------------------- compare
def _pick(path, name, option, args):
    data = _read(path, args)
    skipped = data.skipped or {}
    if name is None:
        if len(data.curves) == 1 and not skipped:
            return data, data.curves[0]
        names = ", ".join([c.curve_id for c in data.curves] + list(skipped))
        raise InputError(f"{path}: holds {len(data.curves) + len(skipped)} curves ({names}); "
                         f"choose one with {option} NAME")
    if name in skipped:
        raise InputError(f"{path}: curve {name!r} is unusable: {skipped[name]}")
    for curve in data.curves:
        if curve.curve_id == name:
            return data, curve
    raise InputError(f"{path}: no curve {name!r} (curves: {', '.join(c.curve_id for c in data.curves)})")


def run_compare(args) -> int:
    """Compare the test curve with the reference by f1/f2; print the result, its reasons and one verdict."""
    from nanoloop.loop.kinetics import compare_curves

    reference, ref_curve = _pick(args.reference, args.ref_curve, "--ref-curve", args)
    test, test_curve = _pick(args.test or args.reference, args.test_curve, "--test-curve", args)
    result = compare_curves(ref_curve, test_curve, n_bootstrap=args.bootstrap, seed=args.seed)
    read_notes = {role: list(curve.notes) + list(curve.flags) for role, curve in
                  (("reference", ref_curve), ("test", test_curve))}
    if args.json:
        payload = {"reference_file": {"format": reference.format_note, "note": reference.note,
                                      "curve_notes": read_notes["reference"]},
                   "test_file": {"format": test.format_note, "note": test.note, "curve_notes": read_notes["test"]},
                   **result.to_dict()}
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return 0
    console = _console()
    for role, data, curve in (("reference", reference, ref_curve), ("test", test, test_curve)):
        console.print(f"{role} {curve.curve_id!r} ({data.path.name}): {curve.n_replicates} unit(s); "
                      f"{data.format_note}; {data.note}")
        for note in read_notes[role]:
            console.print(f"  read: {note}")
    console.print(f"time points used: {', '.join(f'{x:g}' for x in result.times_hours)} h")
    console.print(f"f1 = {_num(result.f1, '.2f')}   f2 = {_num(result.f2, '.2f')} (mean profiles)")
    if result.bootstrap is not None:
        boot = result.bootstrap
        console.print(f"bootstrap f2 ({boot.n_bootstrap} samples): {boot.confidence:.0%} BCa interval "
                      f"{boot.lower:.2f} to {boot.upper:.2f} (z0 = {boot.z0:.3f}, a = {boot.acceleration:.4f}; "
                      f"percentile interval {boot.percentile_lower:.2f} to {boot.percentile_upper:.2f})")
    for note in result.notes:
        console.print(f"note: {note}")
    for reason in result.reasons:
        console.print(f"fails: {reason}")
    console.print(f"verdict: {result.verdict}")
    return 0
