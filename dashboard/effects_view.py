"""The feature view's signed part: which way each design variable moves the predicted release, and where.

Below the importance bars of the "Feature importance" tab: the signed effects
(one panel per explained time, bars sorted by size, coloured by direction) and
the partial dependence of release at a chosen time on a chosen continuous
variable, with its band, of the round chosen in the tab (``all``: the latest
explained round). The rows and figures are in :mod:`nanoloop.dashboard.signed_effects`
(the HTML report draws the same); this module holds the layout and the callbacks.
"""

from __future__ import annotations

from dash import Input, Output, State, dcc, html

from nanoloop.dashboard import figures
from nanoloop.dashboard.signed_effects import (chosen_round, default_pd_time, effects_figure, partial_dependence_figure,
                                               round_partial_dependence)
from nanoloop.loop.design.space import fixed_label


def layout() -> html.Div:
    control = {"display": "flex", "gap": "8px", "alignItems": "center", "margin": "12px 0"}
    return html.Div([
        html.Div(id="effects-note", style={"color": "#555", "margin": "8px 0"}),
        dcc.Graph(id="fig-effects", config={"displaylogo": False}, figure=figures.message_figure("loading…", height=120)),
        html.Div([html.Label("partial dependence on ", htmlFor="pd-variable"), dcc.Dropdown(id="pd-variable", clearable=False, style={"width": "260px"}),
                  html.Label(" at ", htmlFor="pd-time"), dcc.Dropdown(id="pd-time", clearable=False, style={"width": "140px"})], style=control),
        dcc.Graph(id="fig-pd", config={"displaylogo": False}, figure=figures.message_figure("loading…", height=120)),
    ])


# -- callbacks ---------------------------------------------------------------------------------------
def register(app, view) -> None:
    @app.callback(Output("pd-variable", "options"), Output("pd-variable", "value"), Output("pd-time", "options"), Output("pd-time", "value"),
                  Input("importance-round", "value"), Input("ledger-version", "data"), State("pd-variable", "value"), State("pd-time", "value"))
    def pd_options(round_, _version, variable, time_hours):
        snap, _ = view.get()
        if snap is None:
            return [], None, [], None
        table = round_partial_dependence(snap, chosen_round(snap, round_))
        if table.empty:
            return [], None, [], None
        variables = sorted(table["variable"].unique())
        times = sorted(float(t) for t in table["time_hours"].unique())
        default_time = default_pd_time(times)
        fixed = snap.config.design_space().fixed
        return ([{"label": fixed_label(v, fixed), "value": v} for v in variables], variable if variable in variables else variables[0],
                [{"label": f"{t:g} h", "value": t} for t in times], time_hours if time_hours in times else default_time)

    @app.callback(Output("fig-effects", "figure"), Output("effects-note", "children"), Input("importance-round", "value"), Input("ledger-version", "data"))
    def effects(round_, _version):
        snap, problem = view.get()
        if snap is None:
            return figures.message_figure(problem or ""), ""
        shown = chosen_round(snap, round_)
        note = "" if shown is None else (f"Signed effects of round {shown}: bar length is the size, colour the direction "
                                         "(more of the variable speeds or slows release at that time).")
        return effects_figure(snap, shown), note

    @app.callback(Output("fig-pd", "figure"), Input("pd-variable", "value"), Input("pd-time", "value"), Input("importance-round", "value"),
                  Input("ledger-version", "data"))
    def partial_dependence(variable, time_hours, round_, _version):
        snap, problem = view.get()
        if snap is None:
            return figures.message_figure(problem or "")
        return partial_dependence_figure(snap, chosen_round(snap, round_), variable, time_hours)
