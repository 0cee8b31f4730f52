"""PNG figure of release curves with their best fitted laws (matplotlib, Agg backend)."""

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


def plot_fits(results: Sequence[tuple[ReleaseCurve, CurveFit]], path, *, top: int = 3) -> Path:
    """Draw each curve's data (mean ± SD of replicates) with its `top` ranked fitted laws.

    Args:
        results: (curve, its ranked fits) pairs, one panel each.
        path: PNG file to write.
        top: number of best-ranked laws drawn per curve.

    Returns:
        The path written.
    """
    path = Path(path)
    columns = min(len(results), 3)
    rows = math.ceil(len(results) / columns)
    figure = Figure(figsize=(4.8 * columns, 3.8 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, (curve, fit) in zip(axes, results):
        t, F = curve.times_hours, curve.release_pct
        scale, unit = time_scale(float(t[-1]))
        spread = curve.replicates_pct.std(axis=0, ddof=1) if curve.n_replicates >= 2 else None
        ax.errorbar(t / scale, F, yerr=spread, fmt="o", color="black", markersize=4, capsize=2, label="data", zorder=3)
        grid = np.linspace(0.0, float(t[-1]), 400)
        for law_fit in fit.fits[:top]:
            aicc = "n/a" if law_fit.aicc is None else f"{law_fit.aicc:.1f}"
            ax.plot(grid / scale, law_fit.predict(grid), label=f"{law_fit.law.title} (AICc {aicc})")
        ax.set_title(curve.curve_id)
        ax.set_xlabel(f"time ({unit})")
        ax.set_ylabel("cumulative release (%)")
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(alpha=0.3)
    for ax in axes[len(results):]:
        ax.set_visible(False)
    figure.savefig(path, dpi=120)
    return path
