"""The fit figure: best law on top and thick, the others faint, residual panel, days after 72 h."""

import numpy as np
from matplotlib.figure import Figure

from nanoloop.loop.kinetics import ReleaseCurve, fit_laws
from nanoloop.loop.kinetics.plotting import _draw_curve, plot_fits


def _panel(times):
    release = 90 * (1 - np.exp(-np.asarray(times, dtype=float) / 20))
    curve = ReleaseCurve("A", times, release)
    fit = fit_laws(curve.times_hours, curve.release_pct, ["first_order_plateau", "higuchi", "zero_order"])
    ax, residual_ax = Figure().subplots(2, 1)
    _draw_curve(ax, residual_ax, curve, fit, top=3)
    return ax, residual_ax, fit


def test_best_law_is_drawn_last_thick_and_opaque_with_residuals():
    ax, residual_ax, fit = _panel([1, 2, 4, 8, 24, 48])
    lines = ax.get_lines()
    best = lines[-1]
    assert best.get_label() == f"best: {fit.best.law.title} (AICc {fit.best.aicc:.1f})"
    others = [line for line in lines[:-1] if not line.get_label().startswith("_")]
    assert len(others) == 2
    assert all(o.get_linewidth() < best.get_linewidth() and o.get_alpha() < 0.5 for o in others)
    assert best.get_zorder() > max(o.get_zorder() for o in others)
    assert residual_ax.get_ylabel() == "residual (%)"
    np.testing.assert_allclose(residual_ax.get_lines()[-1].get_ydata(), 0.0, atol=0.5)  # exact data, best law
    assert residual_ax.get_xlabel() == "time (hours)"  # 48 h: hours


def test_runs_longer_than_72_hours_are_drawn_in_days():
    ax, residual_ax, _ = _panel([1, 24, 48, 96, 168])
    assert residual_ax.get_xlabel() == "time (days)"
    assert max(ax.get_lines()[-1].get_xdata()) == 7.0  # 168 h


def test_plot_writes_a_png(tmp_path):
    curve = ReleaseCurve("A", [1, 2, 4, 8], [10, 20, 35, 55])
    path = plot_fits([(curve, fit_laws(curve.times_hours, curve.release_pct, ["zero_order", "higuchi"]))],
                     tmp_path / "f.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
