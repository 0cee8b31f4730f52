"""Which way each design variable moves the predicted release, and where: rows and figures.

Shared by the dashboard's feature view (:mod:`nanoloop.dashboard.effects_view`)
and the HTML report (:mod:`nanoloop.dashboard.report`); no Dash here.

- **signed effects**: one panel per explained time, in time order; a bar per
  variable, its length the mean |Shapley value| (percentage points), its
  colour the direction (green: more of the variable speeds release at that
  time, red: slows it, grey: categorical or no clear direction); variables
  sorted by size, largest on top.
- **partial dependence** of release at a time on a continuous variable, with
  the band of the ensemble's members (5-95 %).

Both read the ledger's ``explanations`` (``shapley_pct@…`` rows) and
``partial_dependence`` tables of one round (by default the latest round with
signed effects). A variable fixed for the campaign is labelled ``(fixed)``.
See :mod:`nanoloop.loop.explain.effects`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from nanoloop.dashboard import figures
from nanoloop.loop.explain.effects import PD_BAND, SHAPLEY
from nanoloop.loop.explain.importance import signed_effects
from nanoloop.loop.design.space import fixed_label

#: direction -> (colour, legend words); "" is a categorical or a change under MIN_EFFECT_PCT
DIRECTION = {"+": ("#2a9d4b", "+ more speeds release"), "-": ("#c0392b", "- more slows release"),
             "": ("#9e9e9e", "categorical / no clear direction")}
PD_TIME_HOURS = 24.0  # the partial dependence shown first: at the stored time nearest this
NO_SIGNED = "No signed effects stored for this round (explained before they existed, or not explained yet): run `nanoloop explain STORE --compute`."


# -- data --------------------------------------------------------------------------------------------
def chosen_round(snap, round_) -> int | None:
    """The round shown: the one chosen, or (``all``/None) the latest round with signed effects."""
    table = snap.explanations
    signed = table[table["method"].str.startswith(SHAPLEY)] if not table.empty else table
    if round_ not in (None, "all"):
        return int(round_)
    return None if signed.empty else int(signed["round"].max())


def round_effects(snap, round_: int | None) -> pd.DataFrame:
    """Signed rows of the round's latest explained model, sorted by size then time (:func:`~nanoloop.loop.explain.importance.signed_effects`)."""
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


def default_pd_time(times_hours) -> float:
    """The stored time nearest 24 h: the partial dependence shown first (as ``nanoloop explain --pd``)."""
    times = np.asarray(sorted(float(t) for t in times_hours))
    return float(times[int(np.argmin(np.abs(times - PD_TIME_HOURS)))])


# -- figures -----------------------------------------------------------------------------------------
def effects_figure(snap, round_: int | None) -> go.Figure:
    """One panel per time (time order), bars sorted by size, coloured by direction, with a legend."""
    rows = round_effects(snap, round_)
    if rows.empty:
        return figures.message_figure(NO_SIGNED)
    fixed = snap.config.design_space().fixed
    rows = rows.assign(feature=rows["feature"].map(lambda f: fixed_label(f, fixed)))
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


def _pd_traces(fig: go.Figure, part: pd.DataFrame, variable: str, legend: bool = True, **at) -> None:
    """The members' band (filled) and the partial-dependence curve of one variable, sorted by value."""
    part = part.sort_values("value")
    fig.add_trace(go.Scatter(x=np.concatenate([part["value"], part["value"][::-1]]), y=np.concatenate([part["high_pct"], part["low_pct"][::-1]]),
                             fill="toself", fillcolor="rgba(43,92,138,0.2)", line={"width": 0}, name=f"band ({PD_BAND})", hoverinfo="skip",
                             legendgroup="band", showlegend=legend), **at)
    fig.add_trace(go.Scatter(x=part["value"], y=part["release_pct"], mode="lines+markers", line={"color": "#2b5c8a"}, name="partial dependence",
                             legendgroup="pd", showlegend=legend, hovertemplate=f"{variable} %{{x:.4g}}: %{{y:.1f}} % released<extra></extra>"), **at)


def partial_dependence_figure(snap, round_: int | None, variable: str | None, time_hours: float | None) -> go.Figure:
    """Release at a time against one continuous variable, with the members' band."""
    table = round_partial_dependence(snap, round_)
    if table.empty or variable is None or time_hours is None:
        return figures.message_figure("No partial dependence stored for this round: run `nanoloop explain STORE --compute`.")
    part = table[(table["variable"] == variable) & np.isclose(table["time_hours"], float(time_hours))]
    if part.empty:
        return figures.message_figure(f"No partial dependence of {variable} at {float(time_hours):g} h in this round.")
    fig = go.Figure()
    _pd_traces(fig, part, variable)
    label = fixed_label(variable, snap.config.design_space().fixed)
    fig.update_layout(template=figures.TEMPLATE, height=380, title=f"Predicted release at {float(time_hours):g} h against {label}, round {round_}",
                      xaxis_title=label, yaxis_title="% released (averaged over the measured formulations)")
    return fig


def partial_dependence_panels(snap, round_: int | None, time_hours: float, columns: int = 3) -> go.Figure:
    """Small panels, one per continuous variable (alphabetical), of release at ``time_hours`` with the members' band."""
    table = round_partial_dependence(snap, round_)
    table = table[np.isclose(table["time_hours"].astype(float), float(time_hours))] if not table.empty else table
    if table.empty:
        return figures.message_figure(f"No partial dependence stored at {float(time_hours):g} h for this round: run `nanoloop explain STORE --compute`.")
    fixed = snap.config.design_space().fixed
    variables = sorted(table["variable"].unique())
    cols = min(columns, len(variables))
    rows = math.ceil(len(variables) / cols)
    fig = make_subplots(rows=rows, cols=cols, shared_yaxes=True, subplot_titles=[fixed_label(v, fixed) for v in variables],
                        horizontal_spacing=0.04, vertical_spacing=0.5 / rows if rows > 1 else 0.1)
    for i, variable in enumerate(variables):
        _pd_traces(fig, table[table["variable"] == variable], variable, legend=i == 0, row=i // cols + 1, col=i % cols + 1)
    fig.update_yaxes(title_text="% released", col=1)
    fig.update_layout(template=figures.TEMPLATE, height=120 + 240 * rows, margin={"t": 80},
                      title=f"Predicted release at {float(time_hours):g} h against each continuous variable, round {round_} "
                            "(averaged over the measured formulations)",
                      legend={"orientation": "h", "yanchor": "top", "y": -0.3 / rows})
    return fig
