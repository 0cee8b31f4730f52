"""The campaign as tidy tables: one row per formulation, and the release curves in long form.

These are what ``nanoloop export`` writes and :func:`nanoloop.formulations` /
:func:`nanoloop.curves` return; no column holds JSON. :data:`COLUMNS` documents
every column with its unit.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from nanoloop.loop.lab.instruments import CHARACTERIZATION_UNITS, Characterization
from nanoloop.loop.kinetics.laws import LAWS_BY_NAME
from nanoloop.loop.design.objective import Objective
from nanoloop.loop.design.space import recipes_table
from nanoloop.loop.store.ledger import Ledger, latest_status
from nanoloop.loop.store.measurements import measured_objectives_from
from nanoloop.loop.store.status import Status, status_of

#: most parameters of any release law (param1 .. param3 columns)
MAX_LAW_PARAMETERS = max(len(law.parameters) for law in LAWS_BY_NAME.values())

#: column -> (unit, meaning) of the formulation table; recipe columns follow the design space (unit in the name)
COLUMNS: dict[str, tuple[str, str]] = {
    "formulation_id": ("", "content hash of the recipe within the campaign"),
    "campaign": ("", "campaign name"),
    "round": ("", "round the formulation was proposed in (0: initial design)"),
    "origin": ("", "initial-design, acquisition, or edit-of:<id> (a reviewer's edit)"),
    "status": ("", "latest status: proposed, approved, rejected, edited, dispatched, synthesized, dissolving, measured, failed, abandoned"),
    "status_reason": ("", "the reason recorded with the latest status (why it failed, was rejected, or which readings were dropped)"),
    "failure_stage": ("", "synthesis or dissolution, for failed formulations"),
    **{name: (unit, "measured by the synthesis instrument") for name, unit in CHARACTERIZATION_UNITS.items()},
    "best_law": ("", "release law with the lowest AICc fitted to the mean measured curve"),
    "law_r2": ("", "R² of that law's fit"),
    **{f"param{i}_{part}": (unit, text) for i in range(1, MAX_LAW_PARAMETERS + 1)
       for part, unit, text in (("name", "", f"name of the law's parameter {i}"), ("value", "see param_unit", f"fitted value of parameter {i}"),
                                ("unit", "", f"unit of parameter {i} (h, 1/h, %/h^n, %, - ...)"))},
    "t50_hours": ("h", "time to 50 % release (mean measured curve)"),
    "t80_hours": ("h", "time to 80 % release"),
    "burst_24h_pct": ("%", "release at 24 h"),
    "mdt_hours": ("h", "mean dissolution time"),
    "objective": ("", "the campaign objective's name (f2, -rmse_pct or desirability_pct)"),
    "predicted_objective": ("objective", "objective predicted when proposed (mean over the ensemble)"),
    "predicted_objective_sd": ("objective", "its standard deviation"),
    "measured_objective": ("objective", "objective of the mean measured curve"),
    "measured_f2": ("", "f2 similarity of the mean measured curve to the target (0-100, >= 50 similar)"),
    "model_version": ("", "surrogate that proposed it (empty: initial design)"),
    "apparatus": ("", "dissolution apparatus (USP 1, USP 2, USP 4, dialysis, sample-and-separate)"),
    "medium": ("", "dissolution medium"),
    "volume_ml": ("mL", "dissolution medium volume"),
    "temperature_c": ("°C", "dissolution temperature"),
}

#: column -> (unit, meaning) of the curves table
CURVE_COLUMNS: dict[str, tuple[str, str]] = {
    "formulation_id": ("", "formulation"), "round": ("", "its round"), "replicate": ("", "replicate vessel (1, 2, ...)"),
    "time_hours": ("h", "sampling time"), "time_days": ("d", "sampling time in days"),
    "release_pct": ("%", "cumulative release, % of the loaded drug"),
    "apparatus": ("", "dissolution apparatus"), "medium": ("", "medium"), "volume_ml": ("mL", "medium volume"),
    "temperature_c": ("°C", "temperature"), "instrument": ("", "instrument that measured it"),
}


def law_parameter_units(law_name: str) -> dict[str, str]:
    """Parameter name -> unit of a release law (empty for an unknown law)."""
    law = LAWS_BY_NAME.get(law_name)
    return {p.name: p.unit for p in law.parameters} if law else {}


def formulation_table(ledger: Ledger, config) -> pd.DataFrame:
    """One tidy row per formulation: recipe, status and reason, characterization, kinetics, objective, model.

    Args:
        ledger: the campaign's ledger.
        config: its :class:`~nanoloop.loop.config.CampaignConfig`.

    Returns:
        The columns of :data:`COLUMNS` with the design variables after ``status``
        (one column per variable, in the design space's order and units); ordered by round, then id.
    """
    forms = ledger.read("formulations")
    names = list(config.space)
    if forms.empty:
        return pd.DataFrame(columns=[*COLUMNS][:6] + names + [*COLUMNS][6:])
    forms = forms.sort_values(["round", "formulation_id"]).reset_index(drop=True)
    ids = forms["formulation_id"]
    events = ledger.read("events").sort_values("time")
    states = latest_status(ledger)
    status = status_of(ids, states)
    latest_reason = events.assign(_s=events["formulation_id"].map(states)).query("status == _s").groupby("formulation_id")["reason"].last()
    reason = ids.map(latest_reason).fillna("")
    recipe = recipes_table(forms).reindex(columns=names)
    out = pd.DataFrame({
        "formulation_id": ids, "campaign": forms["campaign"], "round": forms["round"].astype(int), "origin": forms["origin"],
        "status": status, "status_reason": reason,
        "failure_stage": np.where(status == Status.FAILED, reason.str.extract(r"^([a-z-]+):", expand=False).fillna(""), ""),
    })
    out = pd.concat([out, recipe], axis=1)
    chars = ledger.read("characterization").drop_duplicates("formulation_id").set_index("formulation_id")
    for name in Characterization.fields():
        out[name] = ids.map(chars[name]).astype(float)
    kinetics = ledger.read("kinetics").drop_duplicates("formulation_id").set_index("formulation_id")
    out["best_law"] = ids.map(kinetics["best_model"]).astype(object).fillna("")
    out["law_r2"] = ids.map(kinetics["r2"]).astype(float)
    params = ids.map(kinetics["params_json"]).map(lambda text: json.loads(text) if isinstance(text, str) and text else {})
    for i in range(MAX_LAW_PARAMETERS):
        items = [list(p.items())[i] if len(p) > i else (None, None) for p in params]
        out[f"param{i + 1}_name"] = [k or "" for k, _ in items]
        out[f"param{i + 1}_value"] = [np.nan if v is None else float(v) for _, v in items]
        out[f"param{i + 1}_unit"] = [law_parameter_units(law).get(k, "") if k else "" for (k, _), law in zip(items, out["best_law"])]
    for column in ("t50_hours", "t80_hours", "burst_24h_pct", "mdt_hours"):
        out[column] = ids.map(kinetics[column]).astype(float)
    objective = Objective.from_config(config)
    scores = measured_objectives_from(ledger, config)
    out["objective"] = objective.name
    out["predicted_objective"] = forms["predicted_objective"].astype(float)
    out["predicted_objective_sd"] = forms["objective_std"].astype(float)
    out["measured_objective"] = ids.map(scores["objective"]).astype(float)
    out["measured_f2"] = ids.map(scores["f2"]).astype(float)
    out["model_version"] = forms["model_version"].fillna("")
    curves = ledger.read("curves").drop_duplicates("formulation_id").set_index("formulation_id")
    for column in ("apparatus", "medium", "volume_ml", "temperature_c"):
        out[column] = ids.map(curves[column])
    return out


def curves_table(ledger: Ledger) -> pd.DataFrame:
    """Every measured reading in long form (the columns of :data:`CURVE_COLUMNS`), by formulation, replicate, time."""
    curves = ledger.read("curves")
    rounds = ledger.read("formulations").set_index("formulation_id")["round"]
    out = curves.assign(round=curves["formulation_id"].map(rounds).astype("Int64"), time_days=curves["time_hours"] / 24.0)
    out = out[list(CURVE_COLUMNS)]
    return out.sort_values(["formulation_id", "replicate", "time_hours"]).reset_index(drop=True)


def column_notes(frame: pd.DataFrame, columns: dict[str, tuple[str, str]] = COLUMNS, config=None) -> pd.DataFrame:
    """column, unit, meaning for each column of ``frame`` (design variables described from the config)."""
    rows = []
    for name in frame.columns:
        if name in columns:
            unit, meaning = columns[name]
        else:
            variable = config.space.get(name) if config is not None else None
            kind = "categorical" if variable is not None and variable.categories is not None else "continuous"
            unit, meaning = _unit_from_name(name), f"design variable ({kind}), as in the recipe"
        rows.append({"column": name, "unit": unit, "meaning": meaning})
    return pd.DataFrame(rows)


def _unit_from_name(name: str) -> str:
    for suffix, unit in (("_pct", "%"), ("_nm", "nm"), ("_kda", "kDa"), ("_hours", "h"), ("_fraction", "w/w fraction"), ("_ph", "pH")):
        if name.endswith(suffix):
            return unit
    return ""
