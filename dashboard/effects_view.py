"""The feature view's signed part: which way each design variable moves the predicted release, and where.

Below the importance bars of the "Feature importance" tab:

- **signed effects**: one panel per explained time, in time order; a bar per
  variable, its length the mean |Shapley value| (percentage points), its
  colour the direction (green: more of the variable speeds release at that
  time, red: slows it, grey: categorical or no clear direction); variables
  sorted by size, largest on top.
- **partial dependence** of release at a chosen time on a chosen continuous
  variable, with the band of the ensemble's members (5-95 %).

Both read the ledger's ``explanations`` (``shapley_pct@…`` rows) and
``partial_dependence`` tables of the round chosen in the tab (``all``: the
latest explained round). See :mod:`nanoloop.loop.effects`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html
from plotly.subplots import make_subplots

from nanoloop.dashboard import figures
from nanoloop.loop.effects import PD_BAND, SHAPLEY
from nanoloop.loop.explain import signed_effects

DIRECTION = {"+": ("#2a9d4b", "+ more speeds release"), "-": ("#c0392b", "- more slows release"),
             "": ("#9e9e9e", "categorical / no clear direction")}


def layout() -> html.Div:
    control = {"display": "flex", "gap": "8px", "alignItems": "center", "margin": "12px 0"}
    return html.Div([
        html.Div(id="effects-note", style={"color": "#555", "margin": "8px 0"}),
        dcc.Graph(id="fig-effects", config={"displaylogo": False}, figure=figures.message_figure("loading…", height=120)),
        html.Div([html.Label("partial dependence on ", htmlFor="pd-variable"), dcc.Dropdown(id="pd-variable", clearable=False, style={"width": "260px"}),
                  html.Label(" at ", htmlFor="pd-time"), dcc.Dropdown(id="pd-time", clearable=False, style={"width": "140px"})], style=control),
        dcc.Graph(id="fig-pd", config={"displaylogo": False}, figure=figures.message_figure("loading…", height=120)),
    ])


# -- data --------------------------------------------------------------------------------------------
def chosen_round(snap, round_) -> int | None:
    """The round shown: the one chosen, or (``all``/None) the latest round with signed effects."""
    table = snap.explanations
    signed = table[table["method"].str.startswith(SHAPLEY)] if not table.empty else table
    if round_ not in (None, "all"):
        return int(round_)
    return None if signed.empty else int(signed["round"].max())


def round_effects(snap, round_: int | None) -> pd.DataFrame:
    """Signed rows of the round's latest explained model, sorted by size then time (:func:`~nanoloop.loop.explain.signed_effects`)."""
    table = snap.explanations
    if table.empty or round_ is None:
        return signed_effects(pd.DataFrame())
    part = table[(table["round"] == round_) & table["method"].str.startswith(SHAPLEY)]
    if not part.empty:
        part = part[part["model_version"] == part["model_version"].iloc[-1]]
    return signed_effects(part)


def round_partial_dependence(snap, round_: int | None) -> pd.DataFrame:
    """The round's stored partial-dependence rows (latest model of the round); empty when none."""
    table = snap.partial_dependence
    if table.empty or round_ is None:
        return pd.DataFrame(columns=["variable", "time_hours", "value", "release_pct", "low_pct", "high_pct"])
    part = table[table["round"] == round_]
    if not part.empty:
        part = part[part["model_version"] == part["model_version"].iloc[-1]]
    return part


# -- figures -----------------------------------------------------------------------------------------
def effects_figure(snap, round_: int | None) -> go.Figure:
    """One panel per time (time order), bars sorted by size, coloured by direction, with a legend."""
    rows = round_effects(snap, round_)
    if rows.empty:
        return figures.message_figure("No signed effects stored for this round (explained before they existed, or not explained yet): "
                                      "run `nanoloop explain STORE --compute`.")
    times = sorted(rows["time_hours"].unique())
    order = list(dict.fromkeys(rows["feature"]))  # largest first
    fig = make_subplots(rows=1, cols=len(times), shared_yaxes=True, subplot_titles=[f"release at {t:g} h" for t in times],
                        horizontal_spacing=0.02)
    shown = set()
    for col, t in enumerate(times, start=1):
        at = rows[rows["time_hours"] == t].set_index("feature").reindex(order[::-1]).dropna(subset=["importance"])
        for sign, (color, label) in DIRECTION.items():
            part = at[at["direction"].fillna("") == sign]
            if part.empty:
                continue
            detail = [d if isinstance(d, str) else (f"{e:+.1f} pct points min->max" if np.isfinite(e) else "") for d, e in zip(part["effect_detail"], part["effect_pct"])]
            fig.add_trace(go.Bar(x=part["importance"], y=part.index, orientation="h", marker_color=color, name=label, legendgroup=sign,
                                 showlegend=sign not in shown, customdata=detail,
                                 hovertemplate=f"%{{y}} at {t:g} h: %{{x:.2f}} pct points (%{{customdata}})<extra>{label}</extra>"), row=1, col=col)
            shown.add(sign)
    fig.update_yaxes(categoryorder="array", categoryarray=order[::-1])
    fig.update_xaxes(range=[0, 1.05 * float(rows["importance"].max())])  # one scale: sizes compare across times
    fig.update_layout(template=figures.TEMPLATE, title=f"Direction of each variable's effect on the predicted release, round {round_} "
                      "(bar: mean |Shapley value|, pct points)", barmode="overlay", height=max(340, 160 + 30 * len(order)),
                      margin={"l": 170, "b": 80}, legend={"orientation": "h", "y": -0.1, "yanchor": "top"})
    return fig


def partial_dependence_figure(snap, round_: int | None, variable: str | None, time_hours: float | None) -> go.Figure:
    """Release at a time against one continuous variable, with the members' band."""
    table = round_partial_dependence(snap, round_)
    if table.empty or variable is None or time_hours is None:
        return figures.message_figure("No partial dependence stored for this round: run `nanoloop explain STORE --compute`.")
    part = table[(table["variable"] == variable) & np.isclose(table["time_hours"], float(time_hours))].sort_values("value")
    if part.empty:
        return figures.message_figure(f"No partial dependence of {variable} at {float(time_hours):g} h in this round.")
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=np.concatenate([part["value"], part["value"][::-1]]), y=np.concatenate([part["high_pct"], part["low_pct"][::-1]]),
                             fill="toself", fillcolor="rgba(43,92,138,0.2)", line={"width": 0}, name=f"band ({PD_BAND})", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=part["value"], y=part["release_pct"], mode="lines+markers", line={"color": "#2b5c8a"}, name="partial dependence",
                             hovertemplate=f"{variable} %{{x:.4g}}: %{{y:.1f}} % released<extra></extra>"))
    fig.update_layout(template=figures.TEMPLATE, height=380, title=f"Predicted release at {float(time_hours):g} h against {variable}, round {round_}",
                      xaxis_title=variable, yaxis_title="% released (averaged over the measured formulations)")
    return fig


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
        default_time = times[int(np.argmin(np.abs(np.array(times) - 24.0)))]
        return ([{"label": v, "value": v} for v in variables], variable if variable in variables else variables[0],
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
