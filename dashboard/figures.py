"""Plotly figures of the dashboard and the report, built from :mod:`nanoloop.dashboard.data`.

Every function takes a :class:`~nanoloop.dashboard.data.Snapshot` (and what to show) and
returns a ``plotly.graph_objects.Figure``; none reads the ledger itself.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from nanoloop.dashboard import data
from nanoloop.loop.kinetics.measures import time_scale  # days past 72 h, in every plot
from nanoloop.loop.campaign.review import short_reason
from nanoloop.loop.design.space import fixed_label
from nanoloop.loop.store.status import Status

PALETTE = qualitative.Plotly
F2_SIMILAR = 50.0  # f2 >= 50: similar to the target (FDA)
TEMPLATE = "plotly_white"
MEASURED_COLOR = "#d62728"
TARGET_STYLE = {"color": "black", "width": 2, "dash": "dot"}


def message_figure(text: str, height: int = 260) -> go.Figure:
    """An empty figure that says why there is nothing to plot."""
    fig = go.Figure()
    fig.add_annotation(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font={"size": 14, "color": "#555"})
    fig.update_layout(template=TEMPLATE, height=height, xaxis={"visible": False}, yaxis={"visible": False}, margin={"l": 20, "r": 20, "t": 30, "b": 20})
    return fig


def rgba(hex_color: str, alpha: float) -> str:
    """``#rrggbb`` with an opacity as a CSS ``rgba(...)`` colour (bands behind curves)."""
    h = hex_color.lstrip("#")
    return f"rgba({int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha})"


def best_f2_figure(snap: data.Snapshot) -> go.Figure:
    """f2 of each measured formulation (dots, coloured by round) and the best so far (step line), against experiments."""
    frame = data.best_by_experiment(snap)
    if frame.empty:
        return message_figure("No formulation measured yet: the best f2 appears after the first dissolution results.")
    fig = go.Figure()
    for i, (round_, part) in enumerate(frame.groupby("round")):
        label = "imported" if round_ < 0 else f"round {round_}"  # round -1: the lab's earlier formulations
        fig.add_trace(go.Scatter(
            x=part["experiment"], y=part["f2"], mode="markers", name=label,
            marker={"size": 9, "color": PALETTE[i % len(PALETTE)]}, customdata=part["formulation_id"],
            hovertemplate="%{customdata}<br>experiment %{x}<br>f2 %{y:.1f}<extra>" + label + "</extra>",
        ))
    fig.add_trace(go.Scatter(x=frame["experiment"], y=frame["best_f2"], mode="lines", line={"shape": "hv", "color": "black", "width": 2},
                             name="best so far", hovertemplate="best f2 %{y:.1f} after %{x} experiments<extra></extra>"))
    fig.add_hline(y=F2_SIMILAR, line={"color": "green", "dash": "dash", "width": 1}, annotation_text="f2 = 50 (similar)", annotation_position="bottom right")
    fig.update_layout(template=TEMPLATE, title="Best objective: f2 to the target against experiments", height=360,
                      xaxis_title="experiments (measured formulations)", yaxis_title="f2 to target", yaxis_range=[0, 100],
                      legend={"orientation": "h", "y": -0.25}, margin={"t": 50})
    return fig


def model_quality_figure(snap: data.Snapshot) -> go.Figure:
    """Prospective error (MAE, % released) and 90 % interval coverage of each round's predictions."""
    frame = data.model_quality(snap)
    if frame.empty:
        return message_figure("No prospective error yet: it needs a round proposed by the model and then measured (round 1 on).")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("prospective error (MAE)", "90 % interval coverage"), horizontal_spacing=0.12)
    labels = [f"round {r}" for r in frame["round"]]
    fig.add_trace(go.Bar(x=labels, y=frame["prospective_mae"], name="MAE", marker_color=PALETTE[0], customdata=frame[["points", "formulations"]],
                         hovertemplate="%{x}: MAE %{y:.1f} %<br>%{customdata[0]} points, %{customdata[1]} formulations<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=labels, y=frame["coverage_90"] * 100, mode="lines+markers", name="coverage", marker={"size": 10, "color": PALETTE[1]},
                             hovertemplate="%{x}: %{y:.0f} % of measured points inside the 90 % band<extra></extra>"), row=1, col=2)
    fig.add_hline(y=90, line={"color": "green", "dash": "dash", "width": 1}, annotation_text="nominal 90 %", row=1, col=2)
    fig.update_yaxes(title_text="% released", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="% of points", range=[0, 105], row=1, col=2)
    fig.update_layout(template=TEMPLATE, title="Is the model improving? Predictions made before each batch was measured", height=360,
                      showlegend=False, margin={"t": 80})
    return fig


def _first(legend: set, entry: str) -> bool:
    """True the first time ``entry`` is asked for: a legend lists each kind of trace once."""
    fresh = entry not in legend
    legend.add(entry)
    return fresh


def _wrap(text: str, width: int = 45) -> str:
    """Text broken into lines of about ``width`` characters (plotly titles do not wrap)."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + len(word) > width:
            lines.append(line)
            line = ""
        line = f"{line} {word}".strip()
    return "<br>".join(lines + [line])


def _max_hours(snap: data.Snapshot, items: list[dict]) -> float:
    """The longest time any curve of ``items`` (or the target) reaches, hours."""
    times = [max(snap.target.times_hours)]
    for item in items:
        for key, column in (("predicted", "times_hours"), ("measured", "times_hours")):
            if item.get(key) is not None and len(item[key][column]):
                times.append(float(max(item[key][column])))
    return max(times)


def _curve_traces(fig: go.Figure, item: dict, color: str, legend: set, row=None, col=None, name: str = "", scale: float = 1.0, unit: str = "hours") -> None:
    """Band and predicted mean (dashed, ``color``), then the measured mean curve (solid red, markers).

    ``legend``: the kinds of trace already in the legend (updated).
    """
    kw = {"row": row, "col": col} if row else {}
    predicted, measured = item.get("predicted"), item.get("measured")
    group = name or item.get("formulation_id", "")
    short = "h" if unit == "hours" else "d"
    if predicted is not None:
        t = list(np.asarray(predicted["times_hours"], float) / scale)
        fig.add_trace(go.Scatter(x=t + t[::-1], y=list(predicted["high_pct"]) + list(predicted["low_pct"])[::-1], fill="toself", mode="lines",
                                 fillcolor=rgba(color, 0.18), line={"width": 0}, hoverinfo="skip", legendgroup="band",
                                 name="predicted 90 % band", showlegend=_first(legend, "band")), **kw)
        fig.add_trace(go.Scatter(x=t, y=predicted["mean_pct"], mode="lines", line={"color": color, "dash": "dash"}, legendgroup="pred",
                                 name="predicted", showlegend=_first(legend, "predicted"),
                                 hovertemplate=f"{group} predicted<br>%{{x:.3g}} {short}: %{{y:.1f}} %<extra></extra>"), **kw)
    if measured is not None:
        fig.add_trace(go.Scatter(x=np.asarray(measured["times_hours"], float) / scale, y=measured["release_pct"], mode="lines+markers", line={"color": MEASURED_COLOR},
                                 marker={"size": 5}, legendgroup="meas", name="measured (mean)", showlegend=_first(legend, "measured"),
                                 hovertemplate=f"{group} measured<br>%{{x:.3g}} {short}: %{{y:.1f}} %<extra></extra>"), **kw)


def _target_trace(fig: go.Figure, snap: data.Snapshot, legend: set, row=None, col=None, scale: float = 1.0, unit: str = "hours") -> None:
    kw = {"row": row, "col": col} if row else {}
    short = "h" if unit == "hours" else "d"
    fig.add_trace(go.Scatter(x=np.asarray(snap.target.times_hours, float) / scale, y=snap.target.release_pct, mode="lines+markers", line=TARGET_STYLE,
                             marker={"symbol": "diamond", "size": 7, "color": "black"}, name="target", legendgroup="target",
                             showlegend=_first(legend, "target"), hovertemplate=f"target<br>%{{x:.3g}} {short}: %{{y:.0f}} %<extra></extra>"), **kw)


def round_batch_figure(snap: data.Snapshot, round_: int, columns: int = 4) -> go.Figure:
    """One panel per formulation of the round: predicted curve with its 90 % band, measured mean curve, target."""
    items = data.round_batch(snap, round_)
    if not items:
        return message_figure(f"Round {round_} has no formulations.")
    cols = min(columns, len(items))
    rows = math.ceil(len(items) / cols)
    titles, name = [], snap.objective_name
    for item in items:
        f2 = f"f2 {item['measured_f2']:.1f}" if item["measured_f2"] is not None else item["status"]
        pred = f" (pred. {name} {item['predicted_objective']:.0f})" if item["predicted_objective"] is not None else ""
        why = f"<br><i>{_wrap(short_reason(item['reason']))}</i>" if item["status"] == Status.FAILED and item["reason"] else ""
        titles.append(f"{item['formulation_id']}<br>{f2}{pred}{why}")
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, shared_yaxes=True, vertical_spacing=0.5 / rows if rows > 1 else 0.1,
                        horizontal_spacing=0.03)
    legend: set = set()
    scale, unit = time_scale(_max_hours(snap, items))
    for i, item in enumerate(items):
        r, c = i // cols + 1, i % cols + 1
        _curve_traces(fig, item, PALETTE[0], legend, row=r, col=c, scale=scale, unit=unit)
        _target_trace(fig, snap, legend, row=r, col=c, scale=scale, unit=unit)
    fig.update_yaxes(range=[0, 105])
    fig.update_yaxes(title_text="% released", col=1)
    fig.update_xaxes(title_text=unit, row=rows)
    fig.update_annotations(font_size=11)
    measured = sum(1 for i in items if i["measured"] is not None)
    lines = max(t.count("<br>") + 1 for t in titles)  # a failure's reason adds lines above its panel
    fig.update_layout(template=TEMPLATE, height=120 + 15 * lines + 260 * rows, margin={"t": 70 + 15 * lines},
                      title=f"Round {round_}: {len(items)} formulations, {measured} measured. Dashed: predicted at proposal with 90 % band (±1.645 sd)",
                      legend={"orientation": "h", "yanchor": "top", "y": -0.35 / rows})
    return fig


def formulation_figure(snap: data.Snapshot, fid: str) -> go.Figure:
    """One formulation: replicates (thin), measured mean, predicted curve with its band, target."""
    detail = data.formulation_detail(snap, fid)
    fig = go.Figure()
    scale, unit = time_scale(_max_hours(snap, [detail]))
    for rep in detail["replicates"]:
        fig.add_trace(go.Scatter(x=np.asarray(rep["times_hours"], float) / scale, y=rep["release_pct"], mode="lines+markers", line={"color": "#aaa", "width": 1},
                                 marker={"size": 3}, name=f"replicate {rep['replicate']}", legendgroup="replicates",
                                 hovertemplate=f"replicate {rep['replicate']}<br>%{{x:.3g}} {unit}: %{{y:.1f}} %<extra></extra>"))
    _curve_traces(fig, detail, PALETTE[0], set(), name=fid, scale=scale, unit=unit)
    _target_trace(fig, snap, set(), scale=scale, unit=unit)
    bits = [f"round {detail['round']}", detail["status"]]
    if detail["measured_f2"] is not None:
        bits.append(f"measured f2 {detail['measured_f2']:.1f}")
    if detail["predicted_objective"] is not None:
        bits.append(f"predicted {snap.objective_name} {detail['predicted_objective']:.1f}")
    if detail["status"] == Status.FAILED and detail["reason"]:
        bits.append(short_reason(detail["reason"]))
    if detail["predicted"] is None and detail["measured"] is None:
        fig.add_annotation(text="not measured, and proposed without a model: no curve yet", x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False)
    fig.update_layout(template=TEMPLATE, title=f"{fid}: {', '.join(bits)}", height=420, xaxis_title=unit, yaxis_title="% released",
                      yaxis_range=[0, 105])
    return fig


def importance_figure(snap: data.Snapshot, round_: int | None = None) -> go.Figure:
    """Horizontal bars of feature importance for one round (one colour per method, legend in time order), or a message.

    Variables are sorted by size (the first method's importance, largest on top).
    """
    frame = data.feature_importance(snap, round_)
    if frame.empty:
        where = f"for round {round_}" if round_ is not None else "for this campaign"
        return message_figure(f"No feature importance stored {where} yet (the explanations table is empty).")
    fixed = snap.config.design_space().fixed  # held for this campaign: said, so it is not read as a driver of its choices
    label = frame["feature"].map(lambda f: fixed_label(f, fixed))
    frame = frame.assign(label=label if round_ is not None else label + " (round " + frame["round"].astype(str) + ")")
    methods = list(dict.fromkeys(frame["method"]))
    first = frame[frame["method"] == methods[0]].sort_values("importance")
    order = list(dict.fromkeys([*first["label"], *frame["label"]]))  # smallest first: plotly draws the first category at the bottom
    fig = go.Figure()
    for i, method in enumerate(methods[::-1]):  # grouped horizontal bars stack upwards: the first method on top within a group
        part = frame[frame["method"] == method].sort_values("importance")
        fig.add_trace(go.Bar(x=part["importance"], y=part["label"], orientation="h", name=method, marker_color=PALETTE[(len(methods) - 1 - i) % len(PALETTE)],
                             hovertemplate="%{y}: %{x:.3g}<extra>" + method + "</extra>"))
    title = f"Feature importance, round {round_}" if round_ is not None else "Feature importance, every round"
    fig.update_layout(template=TEMPLATE, title=title, barmode="group", height=max(300, 60 + 28 * frame["feature"].nunique() * frame["method"].nunique()),
                      xaxis_title="importance", margin={"l": 160}, legend={"traceorder": "reversed"})
    fig.update_yaxes(categoryorder="array", categoryarray=order)
    return fig
