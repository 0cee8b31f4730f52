"""``nanoloop batch`` (review a batch before approving it) and ``nanoloop export`` (tidy tables out)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from nanoloop.flows.cli_args import add_store
from nanoloop.loop.errors import InputError

EXPORT_FORMATS = (".csv", ".xlsx", ".parquet")


def _num(value, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def cmd_batch(args) -> int:
    from nanoloop.loop.campaign.campaign import Campaign
    from nanoloop.loop.campaign.review import batch_review, parse_edits
    from nanoloop.loop.store.ledger import check_location

    check_location(args.store)
    review = batch_review(Campaign.open(args.store), args.round, parse_edits(args.edit))
    if args.json:
        print(json.dumps(review, indent=1))
        return 0
    print_review(review)
    return 0


def print_review(review: dict) -> None:
    """The batch review, one block of lines per formulation (readable at any terminal width)."""
    from rich.markup import escape

    from nanoloop.flows.progress import console
    from nanoloop.loop.design.space import fixed_text
    from nanoloop.loop.store.status import Status

    rows, name = review["formulations"], review["objective"]
    target = ", ".join(f"{_time(t)} {v:g} %" for t, v in zip(review["target"]["times_hours"], review["target"]["release_pct"]))
    best = review["best_measured_before_round"]
    console.print(f"[bold]campaign {review['campaign']}, round {review['round']}[/bold]: {len(rows)} formulations; "
                  f"objective: {review['objective_description']}; best measured before this round: {_num(best)}")
    console.print(f"target release: {target}")
    if review.get("fixed"):
        console.print("fixed for this campaign (not designed, not editable): " + escape(fixed_text(review["fixed"])))
    if review["failure_model"] is None:
        console.print("failure risk: no model yet (it needs failed and made syntheses in the ledger)")
    else:
        fm = review["failure_model"]
        console.print(f"failure risk: learned from {fm['failed_in_synthesis']} failed of {fm['made']} made syntheses; high at {review['high_risk']:.0%} or more")
    for r in rows:
        p = r["predicted"]
        console.print("")
        console.print(f"[bold]{r['formulation_id']}[/bold]  {r['status']}  {r['acquisition']['reason']}" + (f"  (edit of {r['edited_from']})" if r["edited_from"] else ""))
        console.print("  recipe: " + escape(", ".join(f"{k}={v if isinstance(v, str) else format(v, '.4g')}" for k, v in r["recipe"].items())))
        if p["objective"] is None:
            console.print("  predicted: none (proposed without a model)")
        else:
            release = ", ".join(f"{_time(x['time_hours'])} {x['release_pct']:.0f} ± {x['sd_pct']:.0f} %" for x in r["predicted_release"])
            console.print(f"  predicted {name} {p['objective']:.1f} (90 % interval {p['objective_low_90']:.1f} to {p['objective_high_90']:.1f}); release {release}")
        console.print(f"  why chosen: {r['acquisition']['why']}")
        near = r["nearest_measured"]
        if near is not None:
            console.print(f"  nearest measured: {near['formulation_id']} ({name} {near['objective']:.1f}, distance {near['distance']:.2f} in the unit-scaled design space)")
        if r["failure_risk"] is not None:
            console.print(f"  predicted failure risk: {r['failure_risk']:.0%}")
        for warning in r["warnings"]:
            console.print(f"  [bold red]warning[/bold red]: {warning}")
    if any(r["status"] == Status.PROPOSED for r in rows):
        console.print("")
        console.print("approve with `nanoloop approve STORE` (--reject ID ... --reason TEXT, --edit ID:VARIABLE=VALUE); "
                      "preview an edit first with `nanoloop batch STORE --edit ID:VARIABLE=VALUE`")


def _time(hours: float) -> str:
    return f"{hours:g} h" if hours <= 72 else f"{hours / 24:g} d"


def export_paths(out: Path) -> dict[str, Path]:
    """Where an export to ``out`` writes: the formulations; for csv and parquet also curves and columns files beside it."""
    suffix = out.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise InputError(f"--out {out}: the file name must end in {', '.join(EXPORT_FORMATS)} (got {suffix or 'no extension'!r})")
    if out.is_dir():
        raise InputError(f"--out {out} is a folder; give a file name such as {out / 'campaign.xlsx'}")
    if suffix == ".xlsx":
        return {"formulations": out}
    return {"formulations": out, "curves": out.with_name(f"{out.stem}-curves{suffix}"), "columns": out.with_name(f"{out.stem}-columns.csv")}


def cmd_export(args) -> int:
    import pandas as pd

    from nanoloop.loop.campaign.campaign import Campaign
    from nanoloop.loop.store.ledger import check_location
    from nanoloop.loop.store.records import CURVE_COLUMNS, column_notes, curves_table, formulation_table

    check_location(args.store)
    campaign = Campaign.open(args.store)
    out = Path(args.out or f"{campaign.config.name}-formulations.xlsx")
    paths = export_paths(out)
    forms = formulation_table(campaign.ledger, campaign.config)
    curves = curves_table(campaign.ledger)
    notes = pd.concat([column_notes(forms, config=campaign.config).assign(table="formulations"),
                       column_notes(curves, CURVE_COLUMNS).assign(table="curves")])[["table", "column", "unit", "meaning"]]
    out.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, path in paths.items():
        temporary = path.with_name(f".{path.name}.tmp{path.suffix}")
        if path.suffix == ".xlsx":
            with pd.ExcelWriter(temporary, engine="openpyxl") as writer:
                forms.to_excel(writer, sheet_name="formulations", index=False)
                curves.to_excel(writer, sheet_name="curves", index=False)
                notes.to_excel(writer, sheet_name="columns", index=False)
        else:
            frame = {"formulations": forms, "curves": curves, "columns": notes}[kind]
            if path.suffix == ".parquet":
                frame.to_parquet(temporary, index=False)
            else:
                frame.to_csv(temporary, index=False)
        written.append((temporary, path))
    for temporary, path in written:
        os.replace(temporary, path)
    what = ", ".join(str(p) for p in paths.values())
    print(f"wrote {len(forms)} formulations and {len(curves)} curve readings: {what}")
    return 0


def register(subparsers) -> None:
    """Add the ``batch`` and ``export`` commands."""
    p = subparsers.add_parser("batch", help="review a round's batch: recipes, predictions with intervals, why chosen, failure risk")
    add_store(p)
    p.add_argument("--round", type=int, default=None, help="the round (default: the batch awaiting approval, else the last)")
    p.add_argument("--edit", action="append", metavar="ID:VARIABLE=VALUE", help="preview an edit: validated and re-predicted, nothing is changed")
    p.add_argument("--json", action="store_true", help="print the review as JSON")
    p.set_defaults(handler=cmd_batch)

    p = subparsers.add_parser("export", help="write one tidy row per formulation (and the curves in long form) to CSV, Excel or Parquet")
    add_store(p)
    p.add_argument("--out", default=None, help="FILE.csv, FILE.xlsx or FILE.parquet (default ./<campaign>-formulations.xlsx)")
    p.set_defaults(handler=cmd_export)
