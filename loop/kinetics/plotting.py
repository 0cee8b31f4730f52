"""PNG figure of release curves with their fitted laws and the best law's residuals (matplotlib, Agg)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nanoloop.loop.kinetics.curves import ReleaseCurve
from nanoloop.loop.kinetics.fitting import CurveFit
from nanoloop.loop.kinetics.measures import time_scale

#: At most this many curves are drawn in one figure.
MAX_PANELS = 12


def plot_fits(results: Sequence[tuple[ReleaseCurve, CurveFit]], path, *, top: int = 3) -> Path:
    """Draw each curve's data (mean ± SD of replicates) with its `top` ranked laws, and residuals.

    The best law (lowest AICc on the whole curve) is drawn last, thick and opaque;
    the other laws faint beneath it. A panel under each curve shows the best law's
    residuals (data − fit). Time is in days for a curve longer than 72 h.
    At most `MAX_PANELS` curves are drawn (the first ones).

    Args:
        results: (curve, its ranked fits) pairs, one panel each.
        path: PNG file to write.
        top: number of best-ranked laws drawn per curve.

    Returns:
        The path written.
    """
    path = Path(path)
    results = list(results)[:MAX_PANELS]
    columns = min(len(results), 3)
    rows = math.ceil(len(results) / columns)
    figure = Figure(figsize=(4.8 * columns, 4.6 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(2 * rows, columns, height_ratios=[3, 1] * rows)
    for index, (curve, fit) in enumerate(results):
        row, column = divmod(index, columns)
        ax = figure.add_subplot(grid[2 * row, column])
        residual_ax = figure.add_subplot(grid[2 * row + 1, column], sharex=ax)
        _draw_curve(ax, residual_ax, curve, fit, top)
    figure.savefig(path, dpi=120)
    return path


def _draw_curve(ax, residual_ax, curve: ReleaseCurve, fit: CurveFit, top: int) -> None:
    t, F = curve.times_hours, curve.release_pct
    scale, unit = time_scale(float(t[-1]))
    sd = curve.replicate_sd_pct
    ax.errorbar(t / scale, F, yerr=sd, fmt="o", color="black", markersize=4, capsize=2, label="data", zorder=4)
    grid = np.linspace(0.0, float(t[-1]), 400)
    best = fit.best
    others = [f for f in fit.fits[:top] if f is not best]
    for law_fit in others:
        ax.plot(grid / scale, law_fit.predict(grid), linewidth=1.0, alpha=0.35, zorder=2,
                label=f"{law_fit.law.title} (AICc {_aicc(law_fit)})")
    if best is not None:
        ax.plot(grid / scale, best.predict(grid), color="tab:red", linewidth=2.6, zorder=3,
                label=f"best: {best.law.title} (AICc {_aicc(best)})")
        residual_ax.axhline(0.0, color="grey", linewidth=0.8)
        residual_ax.plot(t / scale, F - best.predict(t), "o", color="tab:red", markersize=3)
    ax.set_title(curve.curve_id)
    ax.set_ylabel("cumulative release (%)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    ax.tick_params(labelbottom=False)
    residual_ax.set_xlabel(f"time ({unit})")
    residual_ax.set_ylabel("residual (%)")
    residual_ax.grid(alpha=0.3)


def _aicc(law_fit) -> str:
    return "n/a" if law_fit.aicc is None else f"{law_fit.aicc:.1f}"
