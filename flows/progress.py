"""Progress lines and tables for the terminal (rich)."""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console(highlight=False)
_started = time.monotonic()


def say(*parts: str) -> None:
    """One progress line, stamped with seconds since the command started."""
    console.print(f"[dim]{time.monotonic() - _started:6.1f}s[/dim] " + "".join(parts))


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _proposer(r: dict) -> str:
    """e.g. "ensemble, prior joint (38)": who proposed a round, and how the prior was used."""
    names = {"sobol-start": "Sobol", "ensemble-acquisition": "ensemble", "curve-gp-acquisition": "curve GP"}
    text = names.get(r.get("recommender"), r.get("recommender") or "-")
    if r.get("prior_use"):
        text += f", prior {r['prior_use']} ({r.get('prior_formulations')})"
    return text


def rounds_table(status: dict) -> Table:
    """The per-round table of ``nanoloop status``."""
    proposed_by = "; ".join(f"{r['round']} {_proposer(r)}" for r in status["rounds"])
    table = Table(title=f"campaign {status['campaign']}", caption=escape(
        "prop/meas/fail/flight/wait: proposed, measured, failed, in flight, awaiting approval; "
        "f2 to the target: best of the round and best so far; MAE %: prospective error of the round's predictions; "
        "cov 90: share of measured points inside the 90 % interval. "
        f"Proposed by (round: recommender, and how a [prior] trained its model): {proposed_by}"
    ))
    for name in ("round", "prop", "meas", "fail", "flight", "wait", "f2 rnd", "f2 best", "MAE %", "cov 90"):
        table.add_column(name, justify="right")
    for r in status["rounds"]:
        table.add_row(
            str(r["round"]), str(r["proposed"]), str(r["measured"]), str(r["failed"]), str(r["in_flight"]), str(r["awaiting_approval"]),
            _fmt(r["best_f2_round"], ".1f"), _fmt(r["best_f2"], ".1f"), _fmt(r["prospective_mae"], ".1f"), _fmt(r["coverage_90"], ".0%"),
        )
    return table
