"""Plots that answer a scientist's questions, for the dashboard and the report.

- parity: is the model right? prospective predictions (stored before measuring) against measurements;
- learning curve: is it getting better? prospective error and coverage against measured formulations,
  beside the best objective against experiments;
- design-space coverage: where have we been? measured formulations in parallel coordinates;
- where failures happen: failures by reason over the two variables that separate them best;
- characterization against release: particle size and encapsulation efficiency against t50 and burst.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from nanoloop.dashboard import data, figures
from nanoloop.loop.models.base import Z90
from nanoloop.loop.campaign.review import short_reason
from nanoloop.loop.store.status import Status

FAILED_COLORS = ("#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")


# -- parity ------------------------------------------------------------------------------------
def parity_figure(snap: data.Snapshot) -> go.Figure:
    """Predicted (at proposal, with its 90 % interval) against measured release, each point a time of a measured curve."""
    err = snap.errors
    if err.empty:
        return figures.message_figure("No prospective prediction measured yet: the parity plot needs a model-proposed round that was measured (round 1 on).")
    fig = go.Figure()
    for i, (round_, part) in enumerate(err.groupby("round")):
        fig.add_trace(go.Scatter(
            x=part["measured_pct"], y=part["predicted_pct"], mode="markers", name=f"round {round_}",
            marker={"size": 7, "color": figures.PALETTE[(i + 1) % len(figures.PALETTE)], "opacity": 0.8},
            error_y={"type": "data", "array": Z90 * part["std_pct"], "thickness": 1, "width": 0},
            customdata=np.column_stack([part["formulation_id"], part["time_hours"]]),
            hovertemplate="%{customdata[0]} at %{customdata[1]} h<br>measured %{x:.1f} %<br>predicted %{y:.1f} %<extra>round " + str(round_) + "</extra>",
        ))
    fig.add_trace(go.Scatter(x=[0, 105], y=[0, 105], mode="lines", line={"color": "black", "dash": "dot", "width": 1}, name="predicted = measured", hoverinfo="skip"))
    inside = float(err["inside_90"].mean())
    fig.update_layout(template=figures.TEMPLATE, height=460, title=f"Parity: predicted before measuring vs measured release ({inside:.0%} of points inside the 90 % interval)",
                      xaxis_title="measured release (%)", yaxis_title="predicted at proposal (%), bars: 90 % interval",
                      xaxis_range=[0, 105], yaxis_range=[0, 105], legend={"orientation": "h", "y": -0.2})
    return fig


# -- learning curve ---------------------------------------------------------------------------
def learning_table(snap: data.Snapshot) -> pd.DataFrame:
    """Per model-proposed round with measurements: formulations the model had learned from, prospective MAE (%) and coverage (0-1)."""
    quality = data.model_quality(snap)
    if quality.empty:
        return quality.assign(trained_on=pd.Series(dtype=float))
    trained = snap.models.groupby("round")["n_formulations"].max()
    return quality.assign(trained_on=quality["round"].map(trained).astype(float))


def learning_figure(snap: data.Snapshot) -> go.Figure:
    """Prospective MAE and 90 % coverage against the measured formulations the model learned from, beside best f2 against experiments."""
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.08,
                        subplot_titles=("prospective error vs formulations learned from", "90 % interval coverage vs formulations learned from",
                                        "best f2 vs experiments"))
    table = learning_table(snap)
    if len(table):
        labels = [f"round {r}" for r in table["round"]]
        fig.add_trace(go.Scatter(x=table["trained_on"], y=table["prospective_mae"], mode="lines+markers", name="prospective MAE (%)",
                                 marker={"size": 9, "color": figures.PALETTE[0]}, text=labels,
                                 hovertemplate="%{text}: model learned from %{x} formulations<br>MAE %{y:.1f} %<extra></extra>"), row=1, col=1)
        fig.add_trace(go.Scatter(x=table["trained_on"], y=100 * table["coverage_90"], mode="lines+markers", name="90 % coverage (%)",
                                 marker={"size": 9, "symbol": "square", "color": figures.PALETTE[1]}, text=labels,
                                 hovertemplate="%{text}: %{y:.0f} % of points inside the 90 % interval<extra></extra>"), row=1, col=2)
        fig.add_hline(y=90, line={"color": "green", "dash": "dash", "width": 1}, row=1, col=2)
    else:
        fig.add_annotation(text="no prospective error yet (needs a measured model-proposed round)", x=0.2, y=0.5, xref="paper", yref="paper", showarrow=False)
    best = data.best_by_experiment(snap)
    if len(best):
        fig.add_trace(go.Scatter(x=best["experiment"], y=best["f2"], mode="markers", name="f2 of each", marker={"size": 6, "color": "#999"},
                                 customdata=best["formulation_id"], hovertemplate="%{customdata}: f2 %{y:.1f}<extra></extra>"), row=1, col=3)
        fig.add_trace(go.Scatter(x=best["experiment"], y=best["best_f2"], mode="lines", line={"shape": "hv", "color": "black", "width": 2},
                                 name="best f2 so far", hovertemplate="best f2 %{y:.1f} after %{x} experiments<extra></extra>"), row=1, col=3)
    for col in (1, 2):
        fig.update_xaxes(title_text="measured formulations learned from", rangemode="tozero", row=1, col=col)
    fig.update_yaxes(title_text="MAE (% released)", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="% of measured points", range=[0, 105], row=1, col=2)
    fig.update_xaxes(title_text="experiments (measured formulations)", row=1, col=3)
    fig.update_yaxes(title_text="f2 to target", range=[0, 100], row=1, col=3)
    fig.update_layout(template=figures.TEMPLATE, height=400, title="Learning curve: is the model getting better, and is the campaign?",
                      legend={"orientation": "h", "y": -0.3}, margin={"t": 90})
    fig.update_annotations(font_size=12)
    return fig


# -- design-space coverage --------------------------------------------------------------------
def made_formulations(snap: data.Snapshot) -> pd.DataFrame:
    """Measured and failed formulations: the design variables, status, measured f2 and the short failure reason."""
    forms = snap.formulations[snap.formulations["status"].isin([Status.MEASURED, Status.FAILED])]
    frame = snap.parameters.loc[forms.index].copy()
    reasons = snap.failures.set_index("formulation_id")["reason"] if len(snap.failures) else pd.Series(dtype=str)
    return frame.assign(status=forms["status"], measured_f2=forms["measured_f2"],
                        reason=[short_reason(reasons.get(fid, "")) if s == Status.FAILED else "" for fid, s in zip(forms.index, forms["status"])])


def coverage_figure(snap: data.Snapshot) -> go.Figure:
    """Parallel coordinates of every made formulation, coloured by measured f2; failures black (the last axis says failed)."""
    made = made_formulations(snap)
    if made.empty:
        return figures.message_figure("Nothing made yet: the design-space coverage appears after the first synthesis.")
    names = list(snap.parameters.columns)
    space = snap.config.space
    dimensions = []
    for name in names:
        variable = space[name]
        if variable.categories is not None:
            codes = made[name].map({c: i for i, c in enumerate(variable.categories)})
            dimensions.append({"label": _axis(name, variable), "values": codes, "tickvals": list(range(len(variable.categories))), "ticktext": variable.categories,
                               "range": [0, len(variable.categories) - 1]})
        else:
            dimensions.append({"label": _axis(name, variable), "values": made[name].astype(float), "range": [variable.min, variable.max]})
    failed = (made["status"] == Status.FAILED).astype(int)
    dimensions.append({"label": "failed", "values": failed, "tickvals": [0, 1], "ticktext": ["no", "yes"], "range": [0, 1]})
    color = made["measured_f2"].astype(float).fillna(-10.0)
    fig = go.Figure(go.Parcoords(
        dimensions=dimensions,
        line={"color": color, "cmin": -10, "cmax": 100, "showscale": True,
              "colorscale": [[0.0, "black"], [0.0909, "black"], [0.0910, "#440154"], [0.5, "#21918c"], [1.0, "#fde725"]],
              "colorbar": {"title": "f2", "tickvals": [-10, 0, 50, 100], "ticktext": ["failed", "0", "50", "100"]}},
    ))
    fig.update_layout(template=figures.TEMPLATE, height=460, margin={"l": 80, "r": 40, "t": 90},
                      title=f"Design-space coverage: {int((failed == 0).sum())} measured (coloured by f2) and {int(failed.sum())} failed (black) formulations")
    return fig


def _axis(name: str, variable) -> str:
    """An axis label; a variable fixed for this campaign says so."""
    return name if variable.value is None else f"{name} (fixed)"


# -- where failures happen -------------------------------------------------------------------
def separating_pair(made: pd.DataFrame, names: list[str], space) -> tuple[str, str] | None:
    """The two designed continuous variables whose plane best separates the outcomes (measured, each failure reason).

    Scored by leave-one-out nearest-neighbour balanced accuracy (mean recall over outcomes) in the unit-scaled plane; None with fewer than two variables.
    """
    continuous = [n for n in names if space[n].categories is None and space[n].value is None]  # a fixed variable separates nothing
    if len(continuous) < 2 or len(made) < 2:
        return None
    labels = np.where(made["status"] == Status.FAILED, made["reason"], "measured")
    scaled = {n: (made[n].astype(float).to_numpy() - space[n].min) / (space[n].max - space[n].min) for n in continuous}
    best, best_score = None, -1.0
    for a, b in combinations(continuous, 2):
        points = np.column_stack([scaled[a], scaled[b]])
        distance = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)
        np.fill_diagonal(distance, np.inf)
        predicted = labels[distance.argmin(axis=1)]
        score = float(np.mean([np.mean(predicted[labels == c] == c) for c in np.unique(labels)]))  # balanced: every outcome counts alike
        if score > best_score:
            best, best_score = (a, b), score
    return best


def failures_figure(snap: data.Snapshot) -> go.Figure:
    """Measured (grey) and failed formulations (a colour per reason) over the two variables that separate them best."""
    made = made_formulations(snap)
    if made.empty or not (made["status"] == Status.FAILED).any():
        return figures.message_figure("No failed formulation: nothing to map yet. Failures appear here by reason.")
    pair = separating_pair(made, list(snap.parameters.columns), snap.config.space)
    if pair is None:
        return figures.message_figure("Fewer than two continuous design variables: no plane to map failures on.")
    x, y = pair
    fig = go.Figure()
    ok = made[made["status"] == Status.MEASURED]
    fig.add_trace(go.Scatter(x=ok[x], y=ok[y], mode="markers", name="measured", marker={"size": 9, "color": "#bbb", "line": {"width": 1, "color": "#777"}},
                             text=ok.index, hovertemplate="%{text} (measured)<extra></extra>"))
    for i, (reason, part) in enumerate(made[made["status"] == Status.FAILED].groupby("reason")):
        fig.add_trace(go.Scatter(x=part[x], y=part[y], mode="markers", name=f"failed: {reason[:70]}", text=part.index,
                                 marker={"size": 12, "symbol": "x", "color": FAILED_COLORS[i % len(FAILED_COLORS)]},
                                 hovertemplate="%{text}<br>" + reason.replace("%", "%%") + "<extra></extra>"))
    fig.update_layout(template=figures.TEMPLATE, height=460, title=f"Where failures happen: by reason, over {x} and {y} (the pair that separates them best)",
                      xaxis_title=x, yaxis_title=y, xaxis_range=[snap.config.space[x].min, snap.config.space[x].max],
                      yaxis_range=[snap.config.space[y].min, snap.config.space[y].max], legend={"orientation": "h", "y": -0.2})
    return fig


# -- characterization against release ------------------------------------------------------------
def characterization_figure(snap: data.Snapshot) -> go.Figure:
    """Particle size against t50, and encapsulation efficiency against the burst at 24 h, of measured formulations."""
    chars, kinetics = snap.characterization, snap.kinetics
    ids = [i for i in kinetics.index if i in chars.index]
    if not ids:
        return figures.message_figure("No formulation both characterized and measured yet.")
    frame = pd.DataFrame({
        "size_nm": chars.loc[ids, "size_nm"].astype(float).to_numpy(), "ee": chars.loc[ids, "encapsulation_efficiency_pct"].astype(float).to_numpy(),
        "t50": kinetics.loc[ids, "t50_hours"].astype(float).to_numpy(), "burst": kinetics.loc[ids, "burst_24h_pct"].astype(float).to_numpy(),
        "round": snap.formulations.loc[ids, "round"].astype(int).to_numpy(),
    }, index=ids)
    scale, unit = figures.time_scale(float(np.nanmax(frame["t50"])) if frame["t50"].notna().any() else 0.0)
    fig = make_subplots(rows=1, cols=2, subplot_titles=(f"particle size vs t50 (time to 50 % release, {unit})", "encapsulation efficiency vs burst (release at 24 h)"),
                        horizontal_spacing=0.1)
    for i, (round_, part) in enumerate(frame.groupby("round")):
        color = figures.PALETTE[i % len(figures.PALETTE)]
        fig.add_trace(go.Scatter(x=part["size_nm"], y=part["t50"] / scale, mode="markers", name="imported" if round_ < 0 else f"round {round_}", legendgroup=str(round_),
                                 marker={"size": 9, "color": color}, text=part.index,
                                 hovertemplate="%{text}<br>size %{x:.0f} nm<br>t50 %{y:.1f} " + unit + "<extra></extra>"), row=1, col=1)
        fig.add_trace(go.Scatter(x=part["ee"], y=part["burst"], mode="markers", name="imported" if round_ < 0 else f"round {round_}", legendgroup=str(round_), showlegend=False,
                                 marker={"size": 9, "color": color}, text=part.index,
                                 hovertemplate="%{text}<br>EE %{x:.0f} %<br>burst %{y:.1f} %<extra></extra>"), row=1, col=2)
    missing = int(frame["t50"].isna().sum())
    fig.update_xaxes(title_text="particle size (nm)", row=1, col=1)
    fig.update_yaxes(title_text=f"t50 ({unit})", row=1, col=1)
    fig.update_xaxes(title_text="encapsulation efficiency (%)", row=1, col=2)
    fig.update_yaxes(title_text="release at 24 h (%)", row=1, col=2)
    note = f" ({missing} never reached 50 %: not on the left)" if missing else ""
    fig.update_layout(template=figures.TEMPLATE, height=420, title="Characterization against release" + note, legend={"orientation": "h", "y": -0.25}, margin={"t": 80})
    return fig
