"""The monitoring web app: a Dash server over one campaign's ledger.

Views (tabs): campaign overview, a round's batch, one formulation, feature
importance, and the batch awaiting approval (with approve and reject buttons
that run ``nanoloop approve``). A ``dcc.Interval`` asks the server every few
seconds whether the ledger changed (a file listing, see
:func:`nanoloop.dashboard.data.fingerprint`); only then is the ledger reread and the
views redrawn, so a newly finished round shows without a restart.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import traceback

import dash
import pandas as pd
from dash import Input, Output, State, dcc, html, no_update

from nanoloop.dashboard import approval_view, auth, data, effects_view, figures, insights

log = logging.getLogger("nanoloop.dashboard")

GRAPH_CONFIG = {"displaylogo": False}
CARD = {"border": "1px solid #ddd", "borderRadius": "6px", "padding": "10px 16px", "minWidth": "150px", "background": "#fafafa"}
PAGE = {"fontFamily": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "maxWidth": "1280px", "margin": "0 auto", "padding": "0 16px 40px"}
TABLE = {"borderCollapse": "collapse", "fontSize": "13px", "margin": "8px 0"}
CELL = {"border": "1px solid #ddd", "padding": "3px 8px", "textAlign": "right"}
# Hidden but laid out: a plot drawn in here while hidden still gets the page's width when shown.
HIDDEN = {"visibility": "hidden", "height": "0", "overflow": "hidden"}
#: the plots that answer a scientist's questions (the Insights tab), by the id of their graph
INSIGHTS = {
    "parity": insights.parity_figure, "learning": insights.learning_figure, "coverage": insights.coverage_figure,
    "failures": insights.failures_figure, "characterization": insights.characterization_figure,
}
TABS = ("overview", "batch", "formulation", "insights", "importance", "approvals")
BANNER = {"padding": "16px", "border": "1px solid #e0b252", "background": "#fff8e6", "borderRadius": "6px", "margin": "16px 0", "fontSize": "16px"}


class LedgerView:
    """The latest :class:`~nanoloop.dashboard.data.Snapshot` of a store, reread only when its fingerprint changes (thread-safe)."""

    def __init__(self, store: str):
        self.store = store
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._snapshot: data.Snapshot | None = None
        self._problem: str | None = None

    def version(self) -> str:
        """A short digest of the store's fingerprint: changes when a part file is added."""
        return hashlib.sha1(repr(data.fingerprint(self.store)).encode()).hexdigest()[:16]

    def get(self) -> tuple[data.Snapshot | None, str | None]:
        """(snapshot, None), or (None, why nothing can be shown)."""
        stamp = data.fingerprint(self.store)
        with self._lock:
            if stamp != self._stamp:
                try:
                    self._snapshot, self._problem = data.load_snapshot(self.store), None
                    for reason in self._snapshot.status.get("unreadable_parts", {}).values():
                        log.warning("skipped %s; run `nanoloop doctor %s --repair`", reason, self.store)
                except data.StoreUnavailable as err:
                    self._snapshot, self._problem = None, str(err)
                except Exception as err:  # a part being written by a foreign tool, a damaged file: say so, keep serving
                    log.error("reading %s failed:\n%s", self.store, traceback.format_exc())
                    self._snapshot, self._problem = None, f"could not read the ledger in {self.store!r}: {type(err).__name__}: {err}"
                self._stamp = stamp
            return self._snapshot, self._problem


# -- small html helpers -----------------------------------------------------------------------------
def _fmt(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1e5 else f"{value:.3g}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def html_table(frame: pd.DataFrame, table_id: str | None = None, digits: int = 1) -> html.Table:
    """A plain HTML table of a frame (numbers rounded to ``digits``)."""
    head = html.Tr([html.Th(str(c), style={**CELL, "background": "#f0f0f0", "textAlign": "center"}) for c in frame.columns])
    rows = [html.Tr([html.Td(_fmt(v, digits), style=CELL) for v in row]) for row in frame.itertuples(index=False)]
    kw = {"id": table_id} if table_id else {}
    return html.Div(html.Table([html.Thead(head), html.Tbody(rows)], style=TABLE, **kw), style={"overflowX": "auto"})


def key_value_table(values: dict, table_id: str | None = None, digits: int = 3) -> html.Table:
    rows = [html.Tr([html.Th(str(k), style={**CELL, "textAlign": "left", "background": "#f7f7f7"}), html.Td(_fmt(v, digits), style=CELL)]) for k, v in values.items()]
    kw = {"id": table_id} if table_id else {}
    return html.Table(html.Tbody(rows), style=TABLE, **kw)


def _card(label: str, value_id: str, note_id: str) -> html.Div:
    return html.Div([
        html.Div(label, style={"fontSize": "12px", "color": "#666", "textTransform": "uppercase"}),
        html.Div("—", id=value_id, style={"fontSize": "28px", "fontWeight": "600"}),
        html.Div("", id=note_id, style={"fontSize": "12px", "color": "#666"}),
    ], style=CARD)


def _graph(graph_id: str) -> dcc.Graph:
    return dcc.Graph(id=graph_id, config=GRAPH_CONFIG, figure=figures.message_figure("loading…", height=120))


# -- layout ---------------------------------------------------------------------------------------------
def layout(store: str, poll_seconds: float) -> html.Div:
    overview = html.Div([
        _graph("fig-best-f2"),
        _graph("fig-model-quality"),
        html.H4("Rounds"),
        html.Div(id="rounds-table"),
        html.H4("Failures by reason"),
        html.Div(id="failure-reasons"),
    ])
    batch = html.Div([
        html.Div([html.Label("round ", htmlFor="round-select"), dcc.Dropdown(id="round-select", clearable=False, style={"width": "200px"})],
                 style={"display": "flex", "gap": "8px", "alignItems": "center", "margin": "12px 0"}),
        _graph("fig-batch"),
        html.Div(id="round-table"),
    ])
    formulation = html.Div([
        html.Div([html.Label("formulation ", htmlFor="formulation-select"),
                  dcc.Dropdown(id="formulation-select", clearable=False, style={"width": "480px"})],
                 style={"display": "flex", "gap": "8px", "alignItems": "center", "margin": "12px 0"}),
        _graph("fig-formulation"),
        html.Div(id="formulation-tables", style={"display": "flex", "gap": "32px", "flexWrap": "wrap"}),
    ])
    importance = html.Div([
        html.Div([html.Label("round ", htmlFor="importance-round"), dcc.Dropdown(id="importance-round", clearable=False, style={"width": "200px"})],
                 style={"display": "flex", "gap": "8px", "alignItems": "center", "margin": "12px 0"}),
        html.Div(id="importance-note", style={"color": "#555", "margin": "8px 0"}),
        _graph("fig-importance"),
        effects_view.layout(),
    ])
    approvals = approval_view.layout()
    insights_view = html.Div([_graph(f"fig-{name}") for name in INSIGHTS])
    tab_style = {"padding": "8px"}
    return html.Div([
        dcc.Location(id="url", refresh=False),
        dcc.Interval(id="poll", interval=int(poll_seconds * 1000), n_intervals=0),
        dcc.Store(id="ledger-version"),
        html.H2(["nanoloop ", html.Span("", id="campaign-name")], style={"marginBottom": "0"}),
        html.Div([f"ledger: {store} · ", html.Span("", id="last-read")], style={"color": "#666", "fontSize": "13px"}),
        html.Div(id="problem", style={**BANNER, "display": "none"}),
        html.Div(id="main", children=[
            html.Div([
                _card("rounds", "kpi-rounds", "kpi-rounds-note"),
                _card("experiments", "kpi-experiments", "kpi-experiments-note"),
                _card("best f2 to target", "kpi-best-f2", "kpi-best-f2-note"),
                _card("awaiting approval", "kpi-awaiting", "kpi-awaiting-note"),
            ], style={"display": "flex", "gap": "12px", "margin": "16px 0", "flexWrap": "wrap"}),
            dcc.Tabs(id="tabs", value="overview", children=[
                dcc.Tab(label="Campaign overview", value="overview", id="tab-overview", children=overview, style=tab_style, selected_style=tab_style),
                dcc.Tab(label="Round batch", value="batch", id="tab-batch", children=batch, style=tab_style, selected_style=tab_style),
                dcc.Tab(label="Formulation", value="formulation", id="tab-formulation", children=formulation, style=tab_style, selected_style=tab_style),
                dcc.Tab(label="Insights", value="insights", id="tab-insights", children=insights_view, style=tab_style, selected_style=tab_style),
                dcc.Tab(label="Feature importance", value="importance", id="tab-importance", children=importance, style=tab_style, selected_style=tab_style),
                dcc.Tab(label="Approvals", value="approvals", id="tab-approvals", children=approvals, style=tab_style, selected_style=tab_style),
            ]),
        ]),
    ], style=PAGE)


# -- the app --------------------------------------------------------------------------------------------
def create_app(store: str, poll_seconds: float = 3.0, approve_command: list[str] | None = None, tokens: dict[str, str] | None = None) -> dash.Dash:
    """The Dash app for ``store`` (nothing is read until a page asks).

    Args:
        store: ledger folder or URI.
        poll_seconds: how often a page asks whether the ledger changed.
        approve_command: how to run the command line (default: this Python running ``flows.cli``).
        tokens: approval tokens (secret -> label, see :mod:`nanoloop.dashboard.auth`); every request needs one when given.
    """
    view = LedgerView(store)
    app = dash.Dash(__name__, title="nanoloop dashboard", update_title=None, serve_locally=True)
    auth.protect(app.server, tokens or {})
    app.layout = layout(store, poll_seconds)

    @app.callback(Output("ledger-version", "data"), Input("poll", "n_intervals"), State("ledger-version", "data"))
    def poll(_n, current):
        version = view.version()
        return no_update if version == current else version

    @app.callback(
        Output("problem", "children"), Output("problem", "style"), Output("main", "style"),
        Output("campaign-name", "children"), Output("last-read", "children"),
        Output("kpi-rounds", "children"), Output("kpi-rounds-note", "children"),
        Output("kpi-experiments", "children"), Output("kpi-experiments-note", "children"),
        Output("kpi-best-f2", "children"), Output("kpi-best-f2-note", "children"),
        Output("kpi-awaiting", "children"), Output("kpi-awaiting-note", "children"),
        Output("fig-best-f2", "figure"), Output("fig-model-quality", "figure"), Output("rounds-table", "children"),
        Output("failure-reasons", "children"),
        Input("ledger-version", "data"),
    )
    def overview(_version):
        snap, problem = view.get()
        stamp = f"read {pd.Timestamp.now().strftime('%H:%M:%S')}, checked every {poll_seconds:g} s"
        if snap is None:
            banner = [html.Strong("Nothing to show yet. "), html.Span(problem, id="problem-text"),
                      html.Div(f"Start a campaign with `nanoloop demo {store}` or `nanoloop run CONFIG {store}`; "
                               f"this page checks the store every {poll_seconds:g} s and shows it when it appears.", style={"fontSize": "14px", "marginTop": "8px"})]
            empty = figures.message_figure("no campaign")
            return (banner, {**BANNER, "display": "block"}, HIDDEN, "", stamp,
                    "—", "", "—", "", "—", "", "—", "", empty, empty, "", "")
        k = data.key_numbers(snap)
        rounds_note = f"{k['rounds_measured']} with results" + (f"; {k['imported_note']}" if k["imported_note"] else "")
        exp_note = ", ".join(p for p in (f"{k['failed']} failed" if k["failed"] else "", f"{k['in_flight']} in the lab" if k["in_flight"] else "") if p) or "measured formulations"
        best_note = f"{k['best_id']} ({k['best_where']})" if k["best_id"] else "nothing measured yet"
        await_note = "see the Approvals tab" if k["awaiting_approval"] else "nothing to approve"
        best = _fmt(k["best_f2"]) if k["best_f2"] is not None else "—"
        rounds = data.rounds_table(snap)
        rounds = rounds.assign(coverage_90=rounds["coverage_90"].astype(float) * 100).rename(
            columns={"coverage_90": "coverage_90 (%)", "prospective_mae": "prospective_mae (%)", "best_f2_round": "best_f2 (round)"})
        damaged = [html.Div(f"Not shown: {reason} (run `nanoloop doctor {store}`)") for reason in snap.status.get("unreadable_parts", {}).values()]
        return (damaged or None, {**BANNER, "display": "block" if damaged else "none"}, {}, f"campaign {k['campaign']}", stamp,
                str(k["rounds"]), rounds_note, str(k["experiments"]), exp_note, best, best_note,
                str(k["awaiting_approval"]), await_note,
                figures.best_f2_figure(snap), figures.model_quality_figure(snap), html_table(rounds, "rounds-table-body"), _failure_table(snap))

    @app.callback(Output("round-select", "options"), Output("round-select", "value"), Input("ledger-version", "data"), State("round-select", "value"))
    def round_options(_version, current):
        snap, _ = view.get()
        if snap is None:
            return [], None
        rounds = snap.rounds
        options = [{"label": f"round {r}", "value": r} for r in rounds]
        if current in rounds:
            return options, no_update
        measured = [r["round"] for r in snap.status["rounds"] if r["measured"] > 0]
        return options, (measured or rounds or [None])[-1]  # None: only imported formulations yet

    @app.callback(Output("fig-batch", "figure"), Output("round-table", "children"), Input("round-select", "value"), Input("ledger-version", "data"))
    def batch(round_, _version):
        snap, problem = view.get()
        if snap is None or round_ is None:
            return figures.message_figure(problem or "choose a round"), None
        items = data.round_batch(snap, int(round_))
        name = snap.objective_name
        table = pd.DataFrame([{"formulation": i["formulation_id"], "status": i["status"], "reason": i["reason"], f"predicted {name}": i["predicted_objective"],
                               "measured f2": i["measured_f2"]} for i in items])
        return figures.round_batch_figure(snap, int(round_)), html_table(table, "round-table-body")

    @app.callback(Output("formulation-select", "options"), Output("formulation-select", "value"), Input("ledger-version", "data"),
                  State("formulation-select", "value"))
    def formulation_options(_version, current):
        snap, _ = view.get()
        if snap is None:
            return [], None
        options = data.formulation_choices(snap)
        if current in snap.formulations.index:
            return options, no_update
        return options, options[0]["value"] if options else None

    @app.callback(Output("fig-formulation", "figure"), Output("formulation-tables", "children"), Input("formulation-select", "value"),
                  Input("ledger-version", "data"))
    def formulation(fid, _version):
        snap, problem = view.get()
        if snap is None or fid is None or fid not in snap.formulations.index:
            return figures.message_figure(problem or "choose a formulation"), None
        detail = data.formulation_detail(snap, fid)
        recipe = {"formulation": fid, "round": detail["round"], "status": detail["status"], "reason": detail["reason"] or "—", "origin": detail["origin"],
                  "model version": detail["model_version"] or "(initial design)", f"measured {snap.objective_name}": detail["measured_objective"],
                  **detail["parameters"]}
        chars = detail["characterization"]
        kin = detail["kinetics"]
        blocks = [html.Div([html.H4("Recipe"), key_value_table(recipe, "formulation-recipe")])]
        blocks.append(html.Div([html.H4("Characterization"),
                                key_value_table({k: v for k, v in chars.items() if k != "raw_checksum"}, "formulation-characterization") if chars
                                else html.P("not synthesized yet (or synthesis failed)", id="formulation-characterization")]))
        if kin:
            kin_rows = {"best model": kin["best_model"], **{f"{k} ({kin['units'].get(k, '?')})": v for k, v in kin["params"].items()},
                        "R²": kin["r2"], "t50 (h)": kin["t50_hours"], "t80 (h)": kin["t80_hours"], "burst 24 h (%)": kin["burst_24h_pct"], "MDT (h)": kin["mdt_hours"]}
            blocks.append(html.Div([html.H4("Kinetics fit"), key_value_table(kin_rows, "formulation-kinetics")]))
        else:
            blocks.append(html.Div([html.H4("Kinetics fit"), html.P("no measured curve yet", id="formulation-kinetics")]))
        method = detail["dissolution_method"]
        blocks.append(html.Div([html.H4("Dissolution method"), key_value_table(
            {"apparatus": method["apparatus"], "medium": method["medium"], "volume (mL)": method["volume_ml"], "temperature (°C)": method["temperature_c"]},
            "formulation-method", digits=1) if method else html.P("not measured (or measured before the method was recorded)", id="formulation-method")]))
        history = pd.DataFrame(detail["events"], columns=["status", "time", "reason"])
        blocks.append(html.Div([html.H4("History"), html_table(history, "formulation-events")]))
        return figures.formulation_figure(snap, fid), blocks

    @app.callback(Output("importance-round", "options"), Output("importance-round", "value"), Output("importance-note", "children"),
                  Input("ledger-version", "data"), State("importance-round", "value"))
    def importance_options(_version, current):
        snap, _ = view.get()
        if snap is None:
            return [], None, ""
        stored = sorted(int(r) for r in snap.explanations["round"].unique())
        if not stored:
            note = ("No feature importance has been computed for this campaign yet: the explanations table is empty. "
                    "The view fills in as soon as explanations of a round's model are stored in the ledger.")
            return [{"label": "all rounds", "value": "all"}], "all", note
        options = [{"label": "all rounds", "value": "all"}] + [{"label": f"round {r}", "value": r} for r in stored]
        value = no_update if current in ["all", *stored] else stored[-1]
        methods = ", ".join(data.magnitude_methods(snap.explanations))
        return options, value, f"Importance by {methods}; rounds with explanations: {', '.join(map(str, stored))}."

    @app.callback(Output("fig-importance", "figure"), Input("importance-round", "value"), Input("ledger-version", "data"))
    def importance(round_, _version):
        snap, problem = view.get()
        if snap is None:
            return figures.message_figure(problem or "")
        return figures.importance_figure(snap, None if round_ in (None, "all") else int(round_))

    approval_view.register(app, view, store, approve_command)
    effects_view.register(app, view)

    @app.callback(*[Output(f"fig-{name}", "figure") for name in INSIGHTS], Input("ledger-version", "data"))
    def insights_figures(_version):
        snap, problem = view.get()
        if snap is None:
            return [figures.message_figure(problem or "")] * len(INSIGHTS)
        return [function(snap) for function in INSIGHTS.values()]

    @app.callback(Output("url", "hash"), Output("tabs", "value"), Input("url", "hash"), Input("tabs", "value"))
    def tab_in_url(hash_, tab):
        """Each view has its own address (``/#approvals``, ``/#insights``, ...): a link opens it, choosing a tab updates it."""
        if dash.ctx.triggered_id == "tabs":
            return f"#{tab}", no_update
        wanted = (hash_ or "").lstrip("#")
        return no_update, wanted if wanted in TABS else (tab or "overview")

    return app


def _failure_table(snap: data.Snapshot):
    """Failures counted by reason (the same as ``nanoloop status``), or a sentence when there are none."""
    if snap.failures.empty:
        return html.P("No formulation has failed.", id="failure-reasons-body")
    counts = snap.failures.groupby("reason").agg(failed=("formulation_id", "size"), rounds=("round", lambda r: ", ".join(map(str, sorted(set(r))))))
    return html_table(counts.reset_index().sort_values("failed", ascending=False), "failure-reasons-body")


def serve(store: str, port: int = 8050, host: str = "127.0.0.1", poll_seconds: float = 3.0, tokens: dict[str, str] | None = None) -> None:
    """Serve the dashboard until interrupted (Werkzeug's threaded server; meant for one lab's loopback or LAN)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = create_app(store, poll_seconds=poll_seconds, tokens=tokens)
    app.run(host=host, port=port, debug=False)
