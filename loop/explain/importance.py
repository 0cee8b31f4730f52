"""Which formulation variables drive the predicted release: explanations of the surrogate.

Two complementary views, both on the ensemble mean:

- **permutation importance** (global): how much the model's error on its
  training curves grows (mean absolute error, in percentage points of release)
  when one variable is shuffled across formulations, averaged over repeats. A
  categorical variable's one-hot columns are shuffled together, and whole
  formulations are shuffled, so each curve stays a curve.
- **integrated gradients** (local, on the curve): the change of the predicted
  release at a chosen time, from an average formulation (the training mean)
  to each formulation, split exactly among the features (the attributions
  sum to the difference). One-hot columns of a variable are summed; the
  summary is the mean absolute attribution over formulations, in percentage
  points.

:func:`explain_round` computes both for a campaign round's model and appends
them to the ledger's ``explanations`` table (model_version, round, feature,
importance, method), where ``nanoloop explain STORE`` reads them.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from nanoloop.loop.explain.effects import SHAPLEY, categories_of, direction, partial_dependence_rows, shapley_values, summarize_effects
from nanoloop.loop.errors import InputError
from nanoloop.loop.design.space import fixed_label

PERMUTATION = "permutation_mae_pct"


def ig_method(time_hours: float) -> str:
    """The ledger ``method`` of integrated gradients at one time, e.g. ``integrated_gradients_pct@168h``."""
    return f"integrated_gradients_pct@{time_hours:g}h"


def variable_columns(feature_names: list[str]) -> dict[str, list[int]]:
    """Group encoded columns by design variable: ``polymer=PLA`` and ``polymer=PLGA`` -> ``polymer``."""
    groups: dict[str, list[int]] = {}
    for j, name in enumerate(feature_names):
        groups.setdefault(name.split("=", 1)[0], []).append(j)
    return groups


def permutation_importance(model, X, y, groups, variables: dict[str, list[int]], n_repeats: int = 5, random_state: int = 0) -> pd.Series:
    """Increase of the ensemble's MAE (percentage points) when a variable is shuffled across formulations.

    Args:
        model: fitted ensemble with ``predict(X)``.
        X: (n_rows, n_features + 1) rows, time in hours last.
        y: (n_rows,) release fraction.
        groups: (n_rows,) formulation (curve) ids: the unit that is shuffled.
        variables: variable name -> its column indices in X.
        n_repeats: shuffles per variable.

    Returns:
        Series indexed by variable, sorted by decreasing importance.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if len(X) != len(y) or len(X) != len(groups):
        raise InputError(f"X, y and groups differ in length ({len(X)}, {len(y)}, {len(groups)})")
    if len(X) == 0:
        raise InputError("no rows to explain")
    _, first, row_group = np.unique(np.asarray(groups), return_index=True, return_inverse=True)
    base = np.mean(np.abs(model.predict(X) - y))
    rng = np.random.default_rng(random_state)
    out = {}
    for name, cols in variables.items():
        increases = []
        for _ in range(n_repeats):
            order = rng.permutation(len(first))
            shuffled = X.copy()
            # every row of formulation g takes the variable's values of formulation order[g]
            shuffled[:, cols] = X[first[order]][:, cols][row_group]
            increases.append(np.mean(np.abs(model.predict(shuffled) - y)) - base)
        out[name] = 100.0 * float(np.mean(increases))
    return pd.Series(out, name=PERMUTATION).sort_values(ascending=False)


def integrated_gradients(model, features, times_hours, baseline=None, steps: int = 32) -> np.ndarray:
    """Attributions of the ensemble-mean predicted release to each feature.

    Args:
        model: fitted ensemble with ``curve_tensor(features, times_hours)``.
        features: (n, d) formulation features (unscaled, as the model takes them).
        times_hours: (T,) times at which the curve is explained.
        baseline: (d,) reference formulation; defaults to the model's training mean.
        steps: Riemann (midpoint) steps along the straight path.

    Returns:
        (n, d, T) attributions in release fraction; summed over d they equal
        F(features, t) - F(baseline, t) up to the integration error.
    """
    import torch  # here, not at the top: the dashboard reads stored explanations without loading torch

    x = torch.as_tensor(np.asarray(features, dtype=np.float32))
    if x.ndim != 2:
        raise InputError(f"features must have shape (n, d), got {tuple(x.shape)}")
    times = torch.as_tensor(np.asarray(times_hours, dtype=np.float32).reshape(-1))
    base = torch.as_tensor(np.asarray(model.x_mean_ if baseline is None else baseline, dtype=np.float32)).reshape(1, -1)
    n, d = x.shape
    alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps  # (S,)
    path = base + alphas[:, None, None] * (x - base)[None]  # (S, n, d)
    path = path.reshape(steps * n, d).requires_grad_(True)
    curve = model.curve_tensor(path, times).mean(0)  # (S*n, T)
    grads = []
    for k in range(len(times)):
        (g,) = torch.autograd.grad(curve[:, k].sum(), path, retain_graph=k < len(times) - 1)
        grads.append(g.reshape(steps, n, d).mean(0).cpu())
    avg = torch.stack(grads, dim=-1)  # (n, d, T)
    return ((x - base)[..., None] * avg).detach().numpy().astype(np.float64)


def summarize_attributions(attributions: np.ndarray, variables: dict[str, list[int]], times_hours) -> pd.DataFrame:
    """Mean absolute attribution per variable and time (percentage points): index variable, columns methods."""
    out = {}
    for k, t in enumerate(np.asarray(times_hours, float).reshape(-1)):
        out[ig_method(t)] = {name: 100.0 * float(np.mean(np.abs(attributions[:, cols, k].sum(axis=1)))) for name, cols in variables.items()}
    return pd.DataFrame(out)


def explain_model(model, X, y, groups, feature_names: list[str], times_hours, n_repeats: int = 5, random_state: int = 0, steps: int = 32) -> pd.DataFrame:
    """Long table (feature, importance, method) of both explanations, per design variable."""
    variables = variable_columns(feature_names)
    if X.shape[1] != len(feature_names) + 1:
        raise InputError(f"X has {X.shape[1] - 1} feature columns but {len(feature_names)} feature names were given")
    perm = permutation_importance(model, X, y, groups, variables, n_repeats, random_state)
    _, first = np.unique(np.asarray(groups), return_index=True)
    attributions = integrated_gradients(model, X[first, :-1], times_hours, steps=steps)
    ig = summarize_attributions(attributions, variables, times_hours)
    rows = [{"feature": name, "importance": value, "method": PERMUTATION} for name, value in perm.items()]
    for method in ig.columns:
        rows += [{"feature": name, "importance": float(value), "method": method} for name, value in ig[method].items()]
    return pd.DataFrame(rows, columns=["feature", "importance", "method"])


def _round_model(campaign, round_: int) -> str:
    models = campaign.ledger.read("models")
    chosen = models[models["round"] == round_]
    if chosen.empty:
        trained = sorted(int(r) for r in models["round"].unique())
        raise InputError(f"no surrogate was trained in round {round_} (rounds with a model: {trained or 'none'})")
    return str(chosen.sort_values("trained_at").iloc[-1]["model_version"])


def explain_round(campaign, round_: int, times_hours=None, n_repeats: int = 5, n_samples: int = 25) -> pd.DataFrame:
    """Explain the surrogate trained in ``round_`` and append the result to the ledger.

    The model is explained on the curves it was trained on: those of
    formulations proposed before ``round_``. Besides permutation importance and
    integrated gradients, signed Shapley effects per variable and time and the
    partial dependence on each continuous variable (:mod:`nanoloop.loop.explain.effects`)
    are stored (``partial_dependence`` table). Idempotent: what is stored for
    the model is read back; only a missing part (e.g. the signed effects of a
    store explained by an older version) is computed.

    Args:
        campaign: a :class:`nanoloop.loop.campaign.campaign.Campaign`.
        round_: the round whose model to explain.
        times_hours: times for the curve attributions; defaults to the target profile's.
        n_repeats: shuffles per variable for permutation importance.
        n_samples: permutations of the variables for the Shapley values.

    Returns:
        DataFrame with the ``explanations`` table's rows of that model.
    """
    version = _round_model(campaign, round_)
    stored = campaign.ledger.read("explanations")
    stored = stored[stored["model_version"] == version]
    has_signed = stored["method"].str.startswith(SHAPLEY).any()
    has_pd = (campaign.ledger.read("partial_dependence")["model_version"] == version).any() or not campaign_continuous(campaign)
    if not stored.empty and has_signed and has_pd:
        return stored.reset_index(drop=True)
    model = campaign.models.load(version)
    X, y, groups, _ = campaign.models.training_data()
    forms = campaign.ledger.read("formulations").set_index("formulation_id")
    if len(groups):
        earlier = forms.loc[groups, "round"].to_numpy() < round_
        if earlier.any():
            X, y, groups = X[earlier], y[earlier], groups[earlier]
    if len(y) == 0:
        raise InputError(f"round {round_}: no measured curves to explain the model on")
    times = campaign.config.target.times_hours if times_hours is None else times_hours
    names = list(campaign.space.feature_names)
    seed = campaign.config.seed + round_
    parts = []
    if stored.empty:
        parts.append(explain_model(model, X, y, groups, names, times, n_repeats, random_state=seed))
    _, first = np.unique(np.asarray(groups), return_index=True)
    features = X[first, :-1]
    if not has_signed:
        variables = variable_columns(names)
        values = shapley_values(model, features, variables, times, n_samples=n_samples, random_state=seed)
        parts.append(summarize_effects(values, features, variables, times, categories_of(campaign.space)))
    if not has_pd:
        curves = partial_dependence_rows(model, features, campaign.space, times)
        curves.insert(0, "round", round_)
        curves.insert(0, "model_version", version)
        campaign.ledger.append("partial_dependence", curves)
    if parts:
        frame = pd.concat(parts, ignore_index=True)
        frame.insert(0, "round", round_)
        frame.insert(0, "model_version", version)
        campaign.ledger.append("explanations", frame)
    stored = campaign.ledger.read("explanations")
    return stored[stored["model_version"] == version].reset_index(drop=True)


def campaign_continuous(campaign) -> bool:
    """Whether the campaign's design space has a continuous variable (partial dependence needs one)."""
    return any(not hasattr(v, "categories") for v in campaign.space.variables)


def read_explanations(ledger, round_: int | None = None) -> tuple[int, pd.DataFrame]:
    """Stored explanations of one round (default: the latest explained), as a wide table.

    Returns:
        (round, frame indexed by feature with one column per method, sorted by permutation importance).
    """
    table = ledger.read("explanations")
    if table.empty:
        raise InputError(f"store {ledger.location!r} holds no explanations yet")
    rounds = sorted(int(r) for r in table["round"].unique())
    chosen = rounds[-1] if round_ is None else round_
    if chosen not in rounds:
        raise InputError(f"no explanations stored for round {chosen} (rounds explained: {rounds})")
    part = table[table["round"] == chosen]
    part = part[part["model_version"] == part["model_version"].iloc[-1]]
    signed = part[part["method"].str.startswith(SHAPLEY)]
    part = part[~part["method"].str.startswith(SHAPLEY)]
    wide = part.pivot_table(index="feature", columns="method", values="importance", aggfunc="last")
    ig_cols = sorted((c for c in wide.columns if c != PERMUTATION), key=_ig_hours)
    ordered = ([PERMUTATION] if PERMUTATION in wide.columns else []) + ig_cols
    wide = wide[ordered]
    if PERMUTATION in wide.columns:
        wide = wide.sort_values(PERMUTATION, ascending=False)
    wide.attrs["model_version"] = str(table[table["round"] == chosen]["model_version"].iloc[-1])
    wide.attrs["signed"] = signed_effects(signed)
    return chosen, wide


def signed_effects(rows: pd.DataFrame) -> pd.DataFrame:
    """Signed Shapley rows (feature, time_hours, importance, effect_pct, direction, effect_detail).

    Sorted by size: variables by their largest mean |Shapley value| over the
    times, then by time (numerically). Empty for a store explained before
    signed effects existed.
    """
    columns = ["feature", "time_hours", "importance", "effect_pct", "direction", "effect_detail"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    out = rows.assign(time_hours=rows["method"].map(_ig_hours), direction=rows["effect_pct"].map(direction))
    size = out.groupby("feature")["importance"].transform("max")
    out = out.assign(_size=size).sort_values(["_size", "feature", "time_hours"], ascending=[False, True, True])
    return out[columns].reset_index(drop=True)


def signed_table(signed: pd.DataFrame, fixed: dict | None = None) -> pd.DataFrame:
    """The signed effects as text, one row per variable: what ``nanoloop explain`` and the HTML report print.

    Rows in the order of ``signed`` (:func:`signed_effects`: by size). Columns:
    ``variable`` (``drug_logp (fixed)`` for a variable held for the campaign);
    ``@24h`` ... one per time in time order, the direction and the mean |Shapley
    value| (``-2.31``; a leading space for no sign, ``-`` alone when that time was
    not explained); ``min->max @672h``: the signed change of release from the
    variable's min to its max at the last time, or a categorical's mean value per category.
    """
    fixed = fixed or {}
    if signed.empty:
        return pd.DataFrame(columns=["variable"])
    times = sorted(signed["time_hours"].unique())
    change = f"min->max @{times[-1]:g}h"
    out = []
    for feature, rows in signed.groupby("feature", sort=False):
        by_time = rows.set_index("time_hours")
        row = {"variable": fixed_label(feature, fixed)}
        for t in times:
            row[f"@{t:g}h"] = f"{by_time.at[t, 'direction'] or ' '}{by_time.at[t, 'importance']:.2f}" if t in by_time.index else "-"
        last = by_time.loc[times[-1]] if times[-1] in by_time.index else None
        if last is None:
            row[change] = ""
        elif isinstance(last["effect_detail"], str):
            row[change] = last["effect_detail"]
        else:
            row[change] = "" if pd.isna(last["effect_pct"]) else f"{last['effect_pct']:+.1f}"
        out.append(row)
    return pd.DataFrame(out, columns=["variable", *(f"@{t:g}h" for t in times), change])


def read_partial_dependence(ledger, model_version: str, variable: str, time_hours: float | None = None) -> tuple[float, pd.DataFrame]:
    """Stored partial dependence of one variable at one time (default: the stored time nearest 24 h).

    Returns:
        (time_hours, frame of value, release_pct, low_pct, high_pct sorted by value).
    """
    table = ledger.read("partial_dependence")
    table = table[table["model_version"] == model_version]
    if table.empty:
        raise InputError(f"model {model_version} has no partial dependence stored (explained before it existed)")
    known = sorted(table["variable"].unique())
    if variable not in known:
        raise InputError(f"no partial dependence for {variable!r}; continuous variables: {', '.join(known)}")
    part = table[table["variable"] == variable]
    times = np.array(sorted(part["time_hours"].unique()), dtype=float)
    wanted = 24.0 if time_hours is None else float(time_hours)
    chosen = float(times[np.argmin(np.abs(times - wanted))])
    if time_hours is not None and not np.isclose(chosen, wanted):
        raise InputError(f"--time-hours {wanted:g}: no partial dependence at that time (stored: {', '.join(f'{t:g}' for t in times)} h)")
    rows = part[np.isclose(part["time_hours"], chosen)].sort_values("value")
    return chosen, rows[["value", "release_pct", "low_pct", "high_pct"]].reset_index(drop=True)


def _ig_hours(method: str) -> float:
    try:
        return float(method.split("@", 1)[1].rstrip("h"))
    except (IndexError, ValueError):
        return float("inf")


def explanations_json(round_: int, wide: pd.DataFrame, fixed: dict | None = None) -> str:
    """The wide table as one JSON object (what ``nanoloop explain --json`` prints).

    ``fixed``: variables held for this campaign (name -> value); each feature says whether it is one.
    """
    fixed = fixed or {}
    signed = wide.attrs.get("signed", pd.DataFrame())
    return json.dumps({
        "round": round_, "model_version": wide.attrs.get("model_version"), "unit": "percentage points of release",
        "features": [{"feature": f, "fixed": f in fixed, **{m: (None if pd.isna(v) else float(v)) for m, v in row.items()}}
                     for f, row in wide.iterrows()],
        "signed_effects": [
            {"feature": r.feature, "time_hours": float(r.time_hours), "size_pct": float(r.importance),
             "effect_pct": None if pd.isna(r.effect_pct) else float(r.effect_pct), "direction": r.direction or None,
             "category_effects": None if pd.isna(r.effect_detail) else r.effect_detail, "fixed": r.feature in fixed}
            for r in signed.itertuples()
        ],
    })
