"""The dashboard's approval view: what a reviewer decides on, edits previewed, and the approve buttons.

The batch is shown as :func:`nanoloop.loop.campaign.review.batch_review` gives it (the
same as ``nanoloop batch``): one column per formulation and one row per
variable, so it fits the page; then the predicted curves of the batch against
the target. Edits (``ID:VARIABLE=VALUE``, one per line) are validated against the
design space and re-predicted before anything is sent; the buttons run
``nanoloop approve`` (see :mod:`nanoloop.dashboard.actions`).
"""

from __future__ import annotations

import dash
import numpy as np
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html, no_update

from nanoloop.dashboard import actions, auth, figures
from nanoloop.loop.errors import InputError
from nanoloop.loop.design.space import fixed_text
from nanoloop.loop.models.base import Z90
from nanoloop.loop.store.status import Status

BUTTON = {"color": "white", "border": "none", "padding": "8px 14px", "borderRadius": "4px", "cursor": "pointer"}
CELL = {"border": "1px solid #ddd", "padding": "3px 6px", "textAlign": "right", "fontSize": "12px"}
HEAD = {**CELL, "background": "#f0f0f0", "textAlign": "left", "whiteSpace": "nowrap"}
WARN = {"color": "#b03030", "fontWeight": "600"}


def layout() -> html.Div:
    return html.Div([
        html.Div(id="approval-summary", style={"margin": "12px 0"}),
        html.Div(id="approval-table", style={"overflowX": "auto"}),
        dcc.Graph(id="fig-approval", config={"displaylogo": False}, figure=figures.message_figure("loading…", height=120)),
        html.Div(id="approval-controls", children=[
            html.Div("Tick the formulations to reject:", style={"fontSize": "13px", "color": "#555"}),
            dcc.Checklist(id="reject-select", options=[], value=[], inline=True, inputStyle={"marginRight": "4px"}, labelStyle={"marginRight": "16px"}),
            dcc.Input(id="reject-reason", type="text", placeholder="reason for rejecting (optional)", style={"width": "420px", "margin": "8px 0"}),
            html.Div("Edits, one per line as ID:VARIABLE=VALUE (checked against the design space and re-predicted by Preview):",
                     style={"fontSize": "13px", "color": "#555", "marginTop": "8px"}),
            dcc.Textarea(id="edit-text", value="", placeholder="F0123456789abcde:particle_size_nm=250", style={"width": "520px", "height": "60px"}),
            html.Div(id="edit-preview", style={"margin": "6px 0", "whiteSpace": "pre-wrap"}),
            html.Div([
                html.Button("Preview edits", id="preview-button", n_clicks=0, style={**BUTTON, "background": "#2b5c8a"}),
                html.Button("Approve batch (reject the ticked ones, apply the edits)", id="approve-button", n_clicks=0, style={**BUTTON, "background": "#2a7d2a"}),
                html.Button("Reject the whole batch", id="reject-all-button", n_clicks=0, style={**BUTTON, "background": "#b03030"}),
            ], style={"display": "flex", "gap": "12px", "marginTop": "8px"}),
        ], style={"margin": "8px 0"}),
        dcc.Loading(html.Div(id="approval-message", style={"margin": "12px 0", "fontWeight": "600", "whiteSpace": "pre-wrap"}), type="dot"),
        html.Div(id="prefect-note", style={"fontSize": "13px", "color": "#555", "margin": "8px 0"}),
    ])


def review_table(review: dict) -> html.Table:
    """One column per formulation, one row per variable and per prediction (``id="pending-table"``)."""
    rows, name = review["formulations"], review["objective"]
    head = html.Tr([html.Th("", style=HEAD)] + [html.Th(r["formulation_id"], style={**HEAD, "textAlign": "center"}, className="formulation-column") for r in rows])

    def line(label, cells, style=None):
        return html.Tr([html.Th(label, style=HEAD)] + [html.Td(c, style={**CELL, **(style or {})}) for c in cells])

    body = [line("status", [r["status"] for r in rows])]
    fixed = review.get("fixed") or {}
    for variable in rows[0]["recipe"] if rows else []:
        cells = [v if isinstance(v, str) else f"{v:.3g}" for v in (r["recipe"][variable] for r in rows)]
        if variable in fixed:  # held for this campaign: shown as fixed, greyed, not editable
            body.append(html.Tr([html.Th(f"{variable} (fixed)", style=HEAD, title="fixed for this campaign: not designed, not editable")]
                                + [html.Td(c, style={**CELL, "color": "#888"}) for c in cells], className="fixed-variable"))
        else:
            body.append(line(variable, cells))
    body.append(line(f"predicted {name}", [_f(r["predicted"]["objective"]) for r in rows], {"fontWeight": "600"}))
    body.append(line("90 % interval", ["—" if r["predicted"]["objective_low_90"] is None
                                       else f"{r['predicted']['objective_low_90']:.0f}–{r['predicted']['objective_high_90']:.0f}" for r in rows]))
    for i, t in enumerate(review["target"]["times_hours"]):
        label = f"release at {t:g} h (%)" if t <= 72 else f"release at {t / 24:g} d (%)"
        target = review["target"]["release_pct"][i]
        body.append(line(f"{label}, target {target:g}", [
            f"{r['predicted_release'][i]['release_pct']:.0f} ± {r['predicted_release'][i]['sd_pct']:.0f}" if r["predicted_release"] else "—" for r in rows]))
    body.append(line("chosen to", [r["acquisition"]["reason"] for r in rows]))
    body.append(line("nearest measured", [
        "—" if r["nearest_measured"] is None else f"{r['nearest_measured']['formulation_id']} ({name} {r['nearest_measured']['objective']:.0f})" for r in rows]))
    if review["failure_model"] is not None:
        body.append(html.Tr([html.Th("failure risk", style=HEAD)] + [
            html.Td(f"{r['failure_risk']:.0%}", style={**CELL, **(WARN if r["warnings"] else {})}, title="; ".join(r["warnings"])) for r in rows]))
    return html.Table([html.Thead(head), html.Tbody(body)], id="pending-table", style={"borderCollapse": "collapse", "margin": "8px 0"})


def batch_figure(review: dict) -> go.Figure:
    """The predicted curves of the batch (mean and 90 % band) against the target; edit previews dashed."""
    rows = [r for r in review["formulations"] if r["predicted_release"]]
    if not rows:
        return figures.message_figure("This batch was proposed without a model (the initial design): no predicted curves.")
    times = np.asarray(review["target"]["times_hours"], float)
    scale, unit = figures.time_scale(float(times.max()))
    fig = go.Figure()
    for i, r in enumerate(rows):
        color = figures.PALETTE[i % len(figures.PALETTE)]
        mean = np.array([x["release_pct"] for x in r["predicted_release"]])
        sd = np.array([x["sd_pct"] for x in r["predicted_release"]])
        t = list(times / scale)
        fig.add_trace(go.Scatter(x=t + t[::-1], y=list(np.clip(mean + Z90 * sd, 0, 100)) + list(np.clip(mean - Z90 * sd, 0, 100))[::-1], fill="toself", mode="lines",
                                 fillcolor=figures.rgba(color, 0.10), line={"width": 0}, hoverinfo="skip", showlegend=False, legendgroup=r["formulation_id"]))
        fig.add_trace(go.Scatter(x=t, y=mean, mode="lines+markers", name=r["formulation_id"], legendgroup=r["formulation_id"],
                                 line={"color": color, "dash": "dash" if r["edited_from"] else "solid"},
                                 hovertemplate=r["formulation_id"] + "<br>%{x:.3g} " + unit + ": %{y:.1f} %<extra></extra>"))
    fig.add_trace(go.Scatter(x=times / scale, y=review["target"]["release_pct"], mode="lines+markers", name="target", line=figures.TARGET_STYLE,
                             marker={"symbol": "diamond", "size": 8, "color": "black"}))
    fig.update_layout(template=figures.TEMPLATE, height=420, yaxis_range=[0, 105], xaxis_title=unit, yaxis_title="% released",
                      title=f"Round {review['round']}: predicted release of the batch (90 % bands) against the target" +
                            ("; edits dashed" if any(r["edited_from"] for r in rows) else ""))
    return fig


def _f(value) -> str:
    return "—" if value is None else f"{value:.1f}"


def _review(store: str, edits_text: str):
    """(review with the edits previewed, problem with the edits or None); review None when nothing awaits approval."""
    from nanoloop.loop.campaign.campaign import Campaign
    from nanoloop.loop.campaign.review import batch_review, parse_edits

    campaign = Campaign.open(store, read_only=True)
    waiting = campaign.formulations().query("status == 'proposed'")
    if waiting.empty:
        return None, None
    round_ = int(waiting["round"].max())
    lines = [line.strip() for line in (edits_text or "").replace(",", "\n").splitlines() if line.strip()]
    try:
        return batch_review(campaign, round_, parse_edits(lines)), None
    except InputError as err:
        return batch_review(campaign, round_), str(err)


def register(app: dash.Dash, view, store: str, approve_command: list[str] | None) -> None:
    """The approval view's callbacks (``view``: the app's :class:`~nanoloop.dashboard.app.LedgerView`)."""

    @app.callback(Output("approval-summary", "children"), Output("approval-table", "children"), Output("fig-approval", "figure"),
                  Output("reject-select", "options"), Output("reject-select", "value"), Output("approve-button", "disabled"),
                  Output("reject-all-button", "disabled"), Output("prefect-note", "children"), Output("tab-approvals", "label"),
                  Output("approval-controls", "style"), Output("edit-preview", "children"),
                  Input("ledger-version", "data"), Input("preview-button", "n_clicks"), State("reject-select", "value"), State("edit-text", "value"))
    def approvals(_version, _preview, ticked, edits_text):
        snap, _ = view.get()
        hidden = {"display": "none"}
        if snap is None or not snap.status["awaiting_approval"]:
            none = html.P("No batch is awaiting approval.", id="no-pending") if snap is not None else ""
            return none, None, figures.message_figure("No batch is awaiting approval."), [], [], True, True, "", "Approvals", hidden, ""
        review, problem = _review(store, edits_text)
        if review is None:  # approved since the snapshot was read: the next poll shows it
            return no_update, no_update, no_update, no_update, no_update, no_update, no_update, no_update, no_update, no_update, no_update
        rows = [r for r in review["formulations"] if r["status"] == Status.PROPOSED]
        ids = [r["formulation_id"] for r in rows]
        _, note = actions.prefect_server()
        summary = html.P(f"Round {review['round']}: {len(ids)} formulations await approval. Objective: {review['objective_description']}."
                         + (f" Fixed for this campaign (not editable): {fixed_text(review['fixed'])}." if review.get("fixed") else ""),
                         id="pending-summary")
        previews = [r for r in review["formulations"] if r["edited_from"]]
        messages = []
        if problem:
            messages.append(html.Div("✘ " + problem, id="edit-problem", style=WARN))
        for r in previews:
            text = f"{r['formulation_id']}: predicted {review['objective']} {_f(r['predicted']['objective'])} (was {_f(next(x for x in rows if x['formulation_id'] == r['edited_from'])['predicted']['objective'])})"
            messages.append(html.Div(text, className="edit-ok"))
            messages += [html.Div(f"⚠ {r['formulation_id']}: {w}", className="edit-warning", style=WARN) for w in r["warnings"]]
        ticked = [t for t in (ticked or []) if t in ids]
        return (summary, review_table(review), batch_figure(review), [{"label": fid, "value": fid} for fid in ids], ticked,
                False, False, note, f"Approvals ({len(ids)})", {"display": "block"}, messages)

    @app.callback(Output("approval-message", "children"), Output("ledger-version", "data", allow_duplicate=True),
                  Input("approve-button", "n_clicks"), Input("reject-all-button", "n_clicks"),
                  State("reject-select", "value"), State("reject-select", "options"), State("reject-reason", "value"), State("edit-text", "value"),
                  prevent_initial_call=True,
                  running=[(Output("approve-button", "disabled"), True, False), (Output("reject-all-button", "disabled"), True, False)])
    def approve(_approve, _reject_all, ticked, options, reason, edits_text):
        from nanoloop.loop.campaign.review import parse_edits

        if not options:
            return "Nothing awaits approval.", no_update
        edits = {}
        if dash.ctx.triggered_id == "reject-all-button":
            reject = [o["value"] for o in options]
        else:
            reject = list(ticked or [])
            review, problem = _review(store, edits_text)
            if problem:  # the same check as `nanoloop approve`: nothing is sent
                return html.Div("✘ not sent: " + problem, id="approval-result"), no_update
            lines = [line.strip() for line in (edits_text or "").replace(",", "\n").splitlines() if line.strip()]
            edits = parse_edits(lines)  # an id both rejected and edited is refused by `nanoloop approve`
        result = actions.approve(store, reject, reason or "", approve_command, edits=edits, by=auth.current_user())
        reachable, note = actions.prefect_server()
        lines = [("✔ " if result.ok else "✘ ") + result.message]
        if not reachable:
            lines.append(note)
        return html.Div([html.Div(lines[0], id="approval-result"), *[html.Div(line) for line in lines[1:]]]), view.version()
