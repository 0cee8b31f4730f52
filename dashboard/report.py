"""A self-contained HTML report of a campaign: the dashboard's figures and tables in one file.

plotly.js is written inline once (no CDN, no network needed to open it); every
figure after the first reuses it. "What drives release" shows the signed
effects and partial dependence of the latest round that has them (as the
dashboard's feature view), then the magnitude bars of every explained round.
Variables fixed for the campaign are marked ``(fixed)`` wherever variables are listed.
"""

from __future__ import annotations

import html
import os
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from nanoloop.loop import __version__
from nanoloop.dashboard import data, figures, insights, signed_effects
from nanoloop.loop.explain.effects import PD_BAND
from nanoloop.loop.errors import InputError
from nanoloop.loop.explain.importance import signed_table
from nanoloop.loop.design.space import fixed_label, fixed_text
from nanoloop.loop.store.status import Status

STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; max-width: 1280px; margin: 0 auto; padding: 0 16px 40px; }
h1 { margin-bottom: 0; } .sub { color: #666; font-size: 13px; }
.cards { display: flex; gap: 12px; margin: 16px 0; flex-wrap: wrap; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 10px 16px; min-width: 150px; background: #fafafa; }
.card .label { font-size: 12px; color: #666; text-transform: uppercase; } .card .value { font-size: 28px; font-weight: 600; }
.card .note { font-size: 12px; color: #666; }
table.data { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
table.data th, table.data td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; } table.data th { background: #f0f0f0; }
.scroll { overflow-x: auto; } .note { color: #555; }
.swatch { display: inline-block; width: 11px; height: 11px; margin: 0 4px 0 10px; vertical-align: -1px; }
table.signed td.effect { font-weight: 600; } table.signed td.change, table.signed th:first-child, table.signed th:last-child { text-align: left; }
"""


def _table(frame: pd.DataFrame, digits: int = 1) -> str:
    if frame.empty:
        return '<p class="note">none</p>'
    text = frame.to_html(index=False, border=0, classes="data", na_rep="—", float_format=lambda v: f"{v:.{digits}f}", escape=True)
    return f'<div class="scroll">{text}</div>'


def _card(label: str, value: str, note: str = "") -> str:
    return (f'<div class="card"><div class="label">{html.escape(label)}</div><div class="value">{html.escape(value)}</div>'
            f'<div class="note">{html.escape(note)}</div></div>')


def measured_table(snap: data.Snapshot) -> pd.DataFrame:
    """Every measured or failed formulation: recipe, status and reason, measured objective and f2, characterization, kinetics; best first."""
    records = snap.records[snap.records["status"].isin([Status.MEASURED, Status.FAILED])]
    if records.empty:
        return pd.DataFrame()
    recipe = list(snap.parameters.columns)
    name = snap.objective_name
    columns = ["formulation_id", "round", "status", "status_reason", *recipe, "measured_objective", "measured_f2", "size_nm", "pdi",
               "encapsulation_efficiency_pct", "actual_drug_loading_pct", "best_law", "t50_hours", "burst_24h_pct", "mdt_hours"]
    frame = records[columns].rename(columns={"status_reason": "reason", "measured_objective": f"measured {name}", "measured_f2": "f2"})
    if name == "f2":
        frame = frame.drop(columns=[f"measured {name}"])
    return frame.sort_values(["f2", "round"], ascending=[False, True], na_position="last").reset_index(drop=True)


def _fixed_columns(frame: pd.DataFrame, fixed: dict) -> pd.DataFrame:
    """The frame with each fixed variable's column named ``NAME (fixed)``."""
    return frame.rename(columns={name: fixed_label(name, fixed) for name in fixed})


def _signed_html(table: pd.DataFrame) -> str:
    """:func:`~nanoloop.loop.explain.importance.signed_table` as HTML, each cell in its direction's colour (the dashboard's)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = []
    for row in table.itertuples(index=False):
        variable, *cells, change = row
        tds = [f'<td style="text-align:left">{html.escape(variable)}</td>']
        for cell in cells:
            sign = cell[0].strip() if len(cell) > 1 else None  # "-" alone: not explained at that time
            if sign is None:
                tds.append("<td>—</td>")
            else:
                color, words = signed_effects.DIRECTION[sign]
                tds.append(f'<td class="effect" style="color:{color}" title="{html.escape(words)}">{html.escape(cell.strip())}</td>')
        tds.append(f'<td class="change">{html.escape(change)}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    return f'<div class="scroll"><table class="data signed"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _what_drives_release(snap: data.Snapshot, parts: list[str], figure) -> None:
    """Signed effects and partial dependence of the latest round that has them, then the magnitude bars of every explained round."""
    hint = f"run <code>nanoloop explain {html.escape(snap.store)} --compute</code>"
    if snap.explanations.empty:
        parts.append('<p class="note">No feature importance has been computed for this campaign yet: the explanations table is empty; '
                     f"{hint} to add which way each design variable moves release.</p>")
        return
    round_ = signed_effects.chosen_round(snap, None)
    rows = signed_effects.round_effects(snap, round_)
    if rows.empty:
        parts.append(f'<p class="note">No signed effects stored (explained before they existed): {hint} to add which way each '
                     "design variable moves release, and the partial-dependence curves.</p>")
    else:
        legend = "".join(f'<span class="swatch" style="background:{color}"></span>{html.escape(words)}'
                         for color, words in signed_effects.DIRECTION.values())
        parts.append(f'<p class="note">Round {round_}\'s model, Shapley values at each target time (time order): each variable\'s '
                     "mean |Shapley value| in percentage points of release, from the average measured formulation, largest first; "
                     f"its colour is the direction: {legend}. min-&gt;max: change of release from the variable's min to its max "
                     "at the last time; a categorical: its mean value per category.</p>")
        figure(signed_effects.effects_figure(snap, round_))
        parts.append(_signed_html(signed_table(rows, snap.config.design_space().fixed)))
        curves = signed_effects.round_partial_dependence(snap, round_)
        if curves.empty:
            parts.append(f'<p class="note">No partial dependence stored for round {round_}: {hint}.</p>')
        else:
            at = signed_effects.default_pd_time(curves["time_hours"].unique())
            parts.append(f"<h3>Partial dependence at {at:g} h</h3>"
                         f'<p class="note">Predicted release at {at:g} h with one continuous variable set to each of its values in '
                         f"every measured formulation, averaged; band: {html.escape(PD_BAND)} (model uncertainty, not measurement noise). "
                         f"Other times: <code>nanoloop explain {html.escape(snap.store)} --pd VARIABLE --time-hours T</code>.</p>")
            figure(signed_effects.partial_dependence_panels(snap, round_, at))
        parts.append("<h3>Sizes without direction, every explained round</h3>")
    for explained in sorted(snap.explanations["round"].unique()):
        figure(figures.importance_figure(snap, int(explained)))


def build_report(snap: data.Snapshot) -> str:
    """The report's HTML text."""
    parts: list[str] = []
    first = [True]

    def figure(fig) -> None:
        parts.append(fig.to_html(full_html=False, include_plotlyjs=first[0], config={"displaylogo": False}))
        first[0] = False

    k = data.key_numbers(snap)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f"<h1>nanoloop campaign {html.escape(k['campaign'])}</h1>")
    parts.append(f'<div class="sub">ledger: {html.escape(snap.store)} · report written {now} by nanoloop {html.escape(__version__)}</div>')
    for reason in snap.status.get("unreadable_parts", {}).values():
        parts.append(f'<p class="warning"><b>Not shown: {html.escape(reason)}</b> (run <code>nanoloop doctor</code>)</p>')
    best_note = f"{k['best_id']} ({k['best_where']})" if k["best_id"] else "nothing measured yet"
    parts.append('<div class="cards">' + "".join([
        _card("rounds", str(k["rounds"]), f"{k['rounds_measured']} with results"),
        _card("experiments", str(k["experiments"]), f"{k['failed']} failed" if k["failed"] else "measured formulations"),
        _card("best f2 to target", f"{k['best_f2']:.1f}" if k["best_f2"] is not None else "—", best_note),
        _card("awaiting approval", str(k["awaiting_approval"]), ""),
    ]) + "</div>")

    fixed = snap.config.design_space().fixed
    if fixed:
        parts.append(f'<p class="note">Fixed for this campaign (not designed; marked <i>(fixed)</i> below): {html.escape(fixed_text(fixed))}.</p>')
    if k["imported_note"]:  # the lab's earlier formulations (round -1), apart from the designed rounds
        parts.append(f'<p class="imported"><b>{html.escape(k["imported_note"])}</b></p>')
    parts.append("<h2>Campaign overview</h2>")
    figure(figures.best_f2_figure(snap))
    figure(figures.model_quality_figure(snap))
    rounds = data.rounds_table(snap)
    rounds = rounds.assign(coverage_90=rounds["coverage_90"].astype(float) * 100).rename(
        columns={"coverage_90": "coverage_90 (%)", "prospective_mae": "prospective_mae (%)", "best_f2_round": "best_f2 (round)"})
    parts.append("<h3>Rounds</h3>" + _table(rounds))

    parts.append("<h2>Round batches</h2>")
    parts.append('<p class="note">Dashed: the curve predicted when the batch was proposed, with its 90 % band (mean ± 1.645 sd); '
                 "red: the measured mean over replicates; dotted black: the target.</p>")
    for round_ in snap.rounds:
        figure(figures.round_batch_figure(snap, round_))

    parts.append("<h2>What the campaign has learned</h2>")
    for make in (insights.parity_figure, insights.learning_figure, insights.coverage_figure, insights.failures_figure, insights.characterization_figure):
        figure(make(snap))
    if not snap.failures.empty:
        counts = snap.failures["reason"].value_counts().rename_axis("reason").reset_index(name="failed")
        parts.append("<h3>Failures by reason</h3>" + _table(counts))

    parts.append("<h2>Formulations made</h2>")
    if k["best_id"]:
        figure(figures.formulation_figure(snap, k["best_id"]))
    parts.append(_table(_fixed_columns(measured_table(snap), fixed), digits=2))

    parts.append("<h2>What drives release</h2>")
    _what_drives_release(snap, parts, figure)

    parts.append("<h2>Awaiting approval</h2>")
    pending = data.pending_approvals(snap)
    if pending.empty:
        parts.append('<p class="note">No batch is awaiting approval.</p>')
    else:
        parts.append(f"<p>Round {int(pending['round'].iloc[0])}: {len(pending)} formulations await approval "
                     f"(<code>nanoloop approve {html.escape(snap.store)}</code>).</p>" + _table(_fixed_columns(pending, fixed), digits=3))

    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>nanoloop report: {html.escape(k["campaign"])}</title>\n'
            f"<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def write_report(store: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the report of the campaign in ``store`` to ``out`` (written whole, then moved into place).

    Raises:
        InputError: the store cannot be shown (missing, empty, no campaign) or ``out`` is a folder.
    """
    out = Path(out)
    if out.is_dir():
        raise InputError(f"{out} is a folder; give the report's file name, e.g. {out / 'report.html'}")
    snap = data.load_snapshot(store)
    text = build_report(snap)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, out)
    return out
