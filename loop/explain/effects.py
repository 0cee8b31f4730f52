"""Signed effects of the design variables on the predicted release, and partial dependence.

Answers "does more of this variable speed release up or slow it down, and
where?" for a campaign's surrogate (a ReleaseEnsemble or a BlendedRelease:
only ``predict_curves`` is used, so any model with that contract works).

- **Shapley values** (captum's ``ShapleyValueSampling``, model-agnostic): the
  predicted release at a time t of each measured formulation, minus that of
  the baseline, split among the design variables. The baseline is the
  *average measured formulation*: the mean of the unit encoding over the
  formulations explained (for a categorical, the category shares). The
  one-hot columns of a categorical are one player. Per variable and time the
  summary is its size, the mean |value| (percentage points), and for a
  continuous variable its signed effect: the least-squares slope of the
  variable's Shapley value on its value, times its range (percentage points
  of release from its min to its max). Positive: more of the variable speeds
  release (more released at t). For a categorical, the mean Shapley value per
  category instead.
- **Partial dependence** of the release at t on each continuous variable:
  every measured formulation with the variable set to each of 12 values from
  its min to its max (other variables kept; constraints are not enforced),
  averaged over formulations. The band is the spread over the ensemble's
  members (5th to 95th percentile of the members' partial dependence):
  model uncertainty, without measurement noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nanoloop.loop.errors import InputError

SHAPLEY = "shapley_pct"
PD_POINTS = 12
PD_BAND = "5-95 % of ensemble members"
#: a signed effect smaller than this (percentage points over the whole range) gets no direction
MIN_EFFECT_PCT = 0.1


def shapley_method(time_hours: float) -> str:
    """The ledger ``method`` of Shapley values at one time, e.g. ``shapley_pct@24h``."""
    return f"{SHAPLEY}@{time_hours:g}h"


def _forward(model, times_hours: np.ndarray):
    import torch

    def forward(x):
        curves = model.predict_curves(x.detach().cpu().numpy().astype(np.float64), times_hours)  # (M, n, T)
        return torch.as_tensor(100.0 * curves.mean(axis=0))

    return forward


def shapley_values(model, features, variables: dict[str, list[int]], times_hours, baseline=None, n_samples: int = 25,
                   random_state: int = 0) -> np.ndarray:
    """Shapley values of the ensemble-mean predicted release (percentage points) per variable and time.

    Args:
        model: fitted surrogate with ``predict_curves(features, times_hours)``.
        features: (n, d) unit-encoded formulations.
        variables: variable name -> its column indices (one-hot columns form one player).
        times_hours: (T,) times at which release is explained.
        baseline: (d,) reference formulation; default the mean of ``features``.
        n_samples: random permutations of the variables (captum's ``n_samples``).
        random_state: seed of the permutations.

    Returns:
        (n, V, T) values in the order of ``variables``; summed over V they equal
        release(x, t) - release(baseline, t).
    """
    import torch  # here, not at the top: the dashboard imports this module's names without loading torch
    from captum.attr import ShapleyValueSampling

    x = torch.as_tensor(np.asarray(features, dtype=np.float64))
    if x.ndim != 2 or len(x) == 0:
        raise InputError(f"features must have shape (n, d) with n > 0, got {tuple(x.shape)}")
    times = np.asarray(times_hours, dtype=np.float64).reshape(-1)
    base = x.mean(0, keepdim=True) if baseline is None else torch.as_tensor(np.asarray(baseline, dtype=np.float64)).reshape(1, -1)
    mask = torch.zeros(1, x.shape[1], dtype=torch.long)
    for k, cols in enumerate(variables.values()):
        mask[0, cols] = k
    first = [cols[0] for cols in variables.values()]  # captum repeats a player's value on each of its columns
    torch.manual_seed(random_state)
    # the forward returns (n, T): captum attributes every time at once, values shaped (n, T, d)
    values = ShapleyValueSampling(_forward(model, times)).attribute(
        x, baselines=base, feature_mask=mask, n_samples=n_samples, perturbations_per_eval=len(variables))
    values = values.reshape(len(x), len(times), x.shape[1])[:, :, first]  # (n, T, V)
    return values.permute(0, 2, 1).numpy().astype(np.float64)


def summarize_effects(values: np.ndarray, features: np.ndarray, variables: dict[str, list[int]], times_hours,
                      categories: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """Rows (feature, importance, method, time_hours, effect_pct, effect_detail) per variable and time.

    ``importance`` is the mean |Shapley value|; ``effect_pct`` the signed change
    of the Shapley value from the variable's min to its max (continuous only);
    ``effect_detail`` for a categorical lists its categories' mean values.
    """
    categories = categories or {}
    rows = []
    for v, (name, cols) in enumerate(variables.items()):
        for k, t in enumerate(np.asarray(times_hours, float).reshape(-1)):
            a = values[:, v, k]
            row = {"feature": name, "importance": float(np.mean(np.abs(a))), "method": shapley_method(t), "time_hours": float(t),
                   "effect_pct": np.nan, "effect_detail": None}
            if len(cols) == 1 and name not in categories:
                u = features[:, cols[0]]
                spread = np.var(u)
                if spread > 1e-12:
                    row["effect_pct"] = float(np.cov(u, a, bias=True)[0, 1] / spread)  # unit encoding spans [0, 1]: the whole range
            else:
                labels = categories.get(name) or [f"#{j}" for j in range(len(cols))]
                which = np.argmax(features[:, cols], axis=1)
                means = sorted(((float(a[which == j].mean()), labels[j]) for j in np.unique(which)), reverse=True)
                row["effect_detail"] = ", ".join(f"{label} {m:+.1f}" for m, label in means)
            rows.append(row)
    return pd.DataFrame(rows)


def partial_dependence(model, features, column: int, times_hours, grid_unit=None) -> dict[str, np.ndarray]:
    """Partial dependence of release (percentage points) on one unit-encoded column, with the members' band.

    Returns:
        dict of arrays: ``grid_unit`` (G,), ``release_pct``, ``low_pct``, ``high_pct`` each (G, T).
    """
    x = np.asarray(features, dtype=np.float64)
    grid = np.linspace(0.0, 1.0, PD_POINTS) if grid_unit is None else np.asarray(grid_unit, float)
    times = np.asarray(times_hours, dtype=np.float64).reshape(-1)
    stacked = np.repeat(x[None], len(grid), axis=0)  # (G, n, d)
    stacked[:, :, column] = grid[:, None]
    curves = 100.0 * model.predict_curves(stacked.reshape(-1, x.shape[1]), times)  # (M, G*n, T)
    members = curves.reshape(len(curves), len(grid), len(x), len(times)).mean(axis=2)  # (M, G, T)
    return {"grid_unit": grid, "release_pct": members.mean(axis=0),
            "low_pct": np.percentile(members, 5, axis=0), "high_pct": np.percentile(members, 95, axis=0)}


def partial_dependence_rows(model, features, space, times_hours) -> pd.DataFrame:
    """Long table (variable, time_hours, value, release_pct, low_pct, high_pct) for every continuous variable.

    ``value`` is in the variable's own unit (its name says which).
    """
    from nanoloop.loop.design.space import Continuous

    names = list(space.feature_names)
    times = np.asarray(times_hours, dtype=np.float64).reshape(-1)
    rows = []
    for var in space.variables:
        if not isinstance(var, Continuous):
            continue
        pd_ = partial_dependence(model, features, names.index(var.name), times)
        values = var.low + pd_["grid_unit"] * (var.high - var.low)
        for g, value in enumerate(values):
            for k, t in enumerate(times):
                rows.append({"variable": var.name, "time_hours": float(t), "value": float(value),
                             "release_pct": float(pd_["release_pct"][g, k]), "low_pct": float(pd_["low_pct"][g, k]),
                             "high_pct": float(pd_["high_pct"][g, k])})
    return pd.DataFrame(rows, columns=["variable", "time_hours", "value", "release_pct", "low_pct", "high_pct"])


def categories_of(space) -> dict[str, list[str]]:
    """Categorical variable -> its categories, in one-hot column order."""
    return {v.name: list(v.categories) for v in space.variables if hasattr(v, "categories")}


def direction(effect_pct: float) -> str:
    """'+' (speeds release), '-' (slows it) or '' (categorical, or under MIN_EFFECT_PCT)."""
    if effect_pct is None or not np.isfinite(effect_pct) or abs(effect_pct) < MIN_EFFECT_PCT:
        return ""
    return "+" if effect_pct > 0 else "-"
