"""What the dashboard shows, read from a campaign's ledger: plain frames and dicts, no plotting.

The dashboard only reads: it opens the ledger without creating it and reads the
stored config (:func:`~nanoloop.loop.store.stored_config.read_stored_config`)
without writing it back. Everything a view needs is
read once into a :class:`Snapshot`; :func:`fingerprint` tells cheaply (file
counts and modification times, no Parquet read) whether the ledger has changed
since.

Units: times in hours, release in % of the loaded drug, f2 dimensionless
(0-100, 50 and above means similar to the target).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from nanoloop.loop.config import CampaignConfig
from nanoloop.loop.design.space import recipes_table
from nanoloop.loop.errors import InputError
from nanoloop.loop.models.base import Z90
from nanoloop.loop.campaign.evaluation import campaign_status, failure_reasons, prospective_errors
from nanoloop.loop.store.measurements import measured_mean_curves, measured_objective
from nanoloop.loop.explain.effects import SHAPLEY
from nanoloop.loop.explain.importance import PERMUTATION
from nanoloop.loop.store.ledger import Ledger, latest_status
from nanoloop.loop.store.stored_config import CONFIG_BLOB, read_stored_config
from nanoloop.loop.store.records import formulation_table, law_parameter_units
from nanoloop.loop.store.status import Status, status_of




class StoreUnavailable(InputError):
    """The store cannot be shown (missing, a file, no campaign, no formulations); the message says why."""


def fingerprint(store: str | os.PathLike) -> tuple:
    """A cheap summary of the store's files: (table, part count, latest mtime) per table, and the config.

    Equal fingerprints mean nothing was appended (parts are never rewritten,
    only added). Costs one directory listing per table
    (:meth:`~nanoloop.loop.store.ledger.Ledger.parts_summary`); creates nothing.
    """
    try:
        ledger = Ledger(store, create=False)
    except (InputError, OSError) as err:
        return ("missing", str(err))
    config = ledger.blob_info(CONFIG_BLOB)
    return (*ledger.parts_summary(), ("config", config.type.name, config.mtime_ns or 0))


@dataclass
class Snapshot:
    """Everything the views show, read from the ledger at one moment.

    Attributes:
        store: the store's location as given.
        config: the campaign config stored with the ledger.
        status: :func:`nanoloop.loop.campaign.evaluation.campaign_status` (what ``nanoloop status --json`` prints).
        formulations: the formulations table plus ``status`` (latest event) and
            ``measured_f2``; indexed by formulation id.
        parameters: design variables, one column per variable, same index.
        mean_curves: id -> mean measured curve (index hours, values %).
        curves, characterization, kinetics, explanations, events, models, partial_dependence: the ledger tables.
        errors: :func:`nanoloop.loop.campaign.evaluation.prospective_errors`.
        failures: :func:`nanoloop.loop.campaign.evaluation.failure_reasons` (id, round, stage, reason).
        records: :func:`nanoloop.loop.store.records.formulation_table` (one tidy row per formulation), same index.
    """

    store: str
    config: CampaignConfig
    status: dict
    formulations: pd.DataFrame
    parameters: pd.DataFrame
    mean_curves: dict[str, pd.Series]
    curves: pd.DataFrame
    characterization: pd.DataFrame
    kinetics: pd.DataFrame
    explanations: pd.DataFrame
    events: pd.DataFrame
    models: pd.DataFrame
    errors: pd.DataFrame
    failures: pd.DataFrame = field(default_factory=pd.DataFrame)
    records: pd.DataFrame = field(default_factory=pd.DataFrame)
    partial_dependence: pd.DataFrame = field(default_factory=pd.DataFrame)
    fingerprint: tuple = field(default=())

    @property
    def target(self):
        return self.config.target

    @property
    def objective_name(self) -> str:
        """The campaign objective's name: f2, -rmse_pct or desirability_pct."""
        from nanoloop.loop.design.objective import Objective

        return Objective.from_config(self.config).name

    @property
    def rounds(self) -> list[int]:
        return [r["round"] for r in self.status["rounds"]]


def load_snapshot(store: str | os.PathLike) -> Snapshot:
    """Read the whole campaign from ``store``.

    Raises:
        StoreUnavailable: the store is missing, is a file, holds no campaign, or no formulation yet.
    """
    text = os.fspath(store)
    stamp = fingerprint(text)
    try:
        ledger = Ledger(text, create=False, tolerant=True)  # an unreadable part is skipped and named, the rest is shown
    except InputError as err:
        raise StoreUnavailable(str(err)) from None
    if ledger.read_blob(CONFIG_BLOB) is None:
        raise StoreUnavailable(f"store {text!r} holds no campaign yet (no blobs/{CONFIG_BLOB})")
    try:
        config = read_stored_config(ledger)
    except InputError as err:
        raise StoreUnavailable(f"store {text!r}: its campaign config cannot be read: {err}") from None
    forms = ledger.read("formulations")
    if forms.empty:
        raise StoreUnavailable(f"campaign {config.name!r} in {text!r} has no formulations yet")
    status = campaign_status(ledger, config.target, config.name)
    status["unreadable_parts"] = ledger.unreadable  # filled as tables are read below
    states = latest_status(ledger)
    forms["status"] = status_of(forms["formulation_id"], states)
    forms["measured_f2"] = forms["formulation_id"].map(measured_objective(ledger, config.target))
    forms = forms.set_index("formulation_id", drop=False)
    names = config.design_space().names
    parameters = recipes_table(forms)
    parameters = parameters[[n for n in names if n in parameters.columns]]
    return Snapshot(
        store=text, config=config, status=status, formulations=forms, parameters=parameters,
        mean_curves=measured_mean_curves(ledger), curves=ledger.read("curves"),
        characterization=ledger.read("characterization").set_index("formulation_id", drop=False),
        kinetics=ledger.read("kinetics").set_index("formulation_id", drop=False),
        explanations=ledger.read("explanations"), events=ledger.read("events"), models=ledger.read("models"),
        errors=prospective_errors(ledger), failures=failure_reasons(ledger),
        records=formulation_table(ledger, config).set_index("formulation_id", drop=False), fingerprint=stamp,
        partial_dependence=ledger.read("partial_dependence"),
    )


# -- campaign overview ---------------------------------------------------------------
def key_numbers(snap: Snapshot) -> dict:
    """The headline: rounds, experiments (measured formulations), failures, best f2 and where, awaiting approval."""
    rounds = snap.status["rounds"]
    best = snap.status["best"]
    return {
        "campaign": snap.status["campaign"],
        "rounds": len(rounds),
        "rounds_measured": sum(1 for r in rounds if r["measured"] > 0),
        "experiments": sum(r["measured"] for r in rounds),
        "failed": sum(r["failed"] for r in rounds),
        "in_flight": sum(r["in_flight"] for r in rounds),
        "best_f2": best["f2"] if best else None,
        "best_id": best["formulation_id"] if best else None,
        "best_round": best["round"] if best else None,
        "best_where": ("imported" if best["round"] < 0 else f"round {best['round']}") if best else None,
        "awaiting_approval": len(snap.status["awaiting_approval"]),
        "imported": (snap.status.get("imported") or {}).get("formulations", 0),
        "imported_note": _imported_note(snap.status.get("imported")),
    }


def _imported_note(imported: dict | None) -> str:
    """"imported: N formulations from FILE ..." (formulations of round -1, apart from the designed rounds), or ""."""
    if not imported:
        return ""
    from nanoloop.loop.store.importing import imported_line

    return imported_line(imported)


def rounds_table(snap: Snapshot) -> pd.DataFrame:
    """One row per round, the columns of ``campaign_status``'s rounds (f2 and errors rounded for reading)."""
    columns = ["round", "proposed", "approved", "rejected", "measured", "failed", "in_flight", "awaiting_approval",
               "best_f2_round", "best_f2", "prospective_mae", "coverage_90", "model_version"]
    frame = pd.DataFrame(snap.status["rounds"] or None, columns=None if snap.status["rounds"] else columns)  # none yet: only imports
    return frame[[c for c in columns if c in frame.columns]]


def best_by_experiment(snap: Snapshot) -> pd.DataFrame:
    """Measured formulations in the order they were measured, with the best f2 so far.

    Columns: experiment (1, 2, ...), formulation_id, round, f2, best_f2.
    Order: time of the ``measured`` event, then round, then id. Imported formulations (round -1) come first.
    """
    forms = snap.formulations
    measured = forms[forms["measured_f2"].notna()]
    if measured.empty:
        return pd.DataFrame(columns=["experiment", "formulation_id", "round", "f2", "best_f2"])
    events = snap.events[snap.events["status"] == Status.MEASURED].groupby("formulation_id")["time"].min()
    frame = pd.DataFrame({
        "formulation_id": measured["formulation_id"].to_numpy(),
        "round": measured["round"].astype(int).to_numpy(),
        "f2": measured["measured_f2"].astype(float).to_numpy(),
        "time": measured["formulation_id"].map(events).to_numpy(),
    })
    frame = frame.sort_values(["time", "round", "formulation_id"], na_position="last").reset_index(drop=True)
    frame["experiment"] = np.arange(1, len(frame) + 1)
    frame["best_f2"] = frame["f2"].cummax()
    return frame[["experiment", "formulation_id", "round", "f2", "best_f2"]]


def model_quality(snap: Snapshot) -> pd.DataFrame:
    """Is the model improving? Per round with measured predictions: prospective MAE and 90 % coverage.

    Prospective: each prediction was stored when the batch was proposed, before
    it was measured. Columns: round, prospective_mae (% released), coverage_90
    (fraction of measured points inside the predicted 90 % interval), points
    (measured time points compared), formulations.
    """
    err = snap.errors
    rows = []
    for r in snap.status["rounds"]:
        if r["prospective_mae"] is None:
            continue
        part = err[err["round"] == r["round"]]
        rows.append({"round": r["round"], "prospective_mae": r["prospective_mae"], "coverage_90": r["coverage_90"],
                     "points": len(part), "formulations": part["formulation_id"].nunique()})
    return pd.DataFrame(rows, columns=["round", "prospective_mae", "coverage_90", "points", "formulations"])


# -- curves ------------------------------------------------------------------------------
def predicted_curve(snap: Snapshot, fid: str) -> dict | None:
    """The curve predicted at proposal, with its 90 % band (mean ± 1.645 std, clipped to 0-100 %).

    None for formulations proposed without a model (the initial design).
    Keys: times_hours, mean_pct, low_pct, high_pct, std_pct (arrays of equal length).
    """
    row = snap.formulations.loc[fid]
    times = row["predicted_times_hours"]
    if times is None or len(times) == 0:
        return None
    mean = np.asarray(row["predicted_release_pct"], float)
    std = np.asarray(row["predicted_std_pct"], float)
    return {
        "times_hours": np.asarray(times, float), "mean_pct": mean, "std_pct": std,
        "low_pct": np.clip(mean - Z90 * std, 0.0, 100.0), "high_pct": np.clip(mean + Z90 * std, 0.0, 100.0),
    }


def measured_curve(snap: Snapshot, fid: str) -> dict | None:
    """The mean measured curve over replicates, or None when not measured. Keys: times_hours, release_pct."""
    curve = snap.mean_curves.get(fid)
    if curve is None:
        return None
    return {"times_hours": curve.index.to_numpy(float), "release_pct": curve.to_numpy(float)}


def replicate_curves(snap: Snapshot, fid: str) -> list[dict]:
    """Each replicate of a measured curve: replicate, times_hours, release_pct."""
    part = snap.curves[snap.curves["formulation_id"] == fid]
    return [
        {"replicate": int(rep), "times_hours": g["time_hours"].to_numpy(float), "release_pct": g["release_pct"].to_numpy(float)}
        for rep, g in part.sort_values("time_hours").groupby("replicate")
    ]


def round_batch(snap: Snapshot, round_: int) -> list[dict]:
    """The formulations of a round, each with its predicted band and measured mean curve.

    Each item: formulation_id, status, origin, predicted (see :func:`predicted_curve`
    or None), measured (see :func:`measured_curve` or None), measured_f2,
    predicted_objective, predicted_objective_std (the campaign's objective, see
    :attr:`Snapshot.objective_name`), reason (of the latest status: why it failed, ...).
    """
    forms = snap.formulations[snap.formulations["round"] == round_]
    items = []
    for fid, row in forms.iterrows():
        items.append({
            "formulation_id": fid, "status": row["status"], "origin": row["origin"],
            "predicted": predicted_curve(snap, fid), "measured": measured_curve(snap, fid),
            "measured_f2": _maybe(row["measured_f2"]), "predicted_objective": _maybe(row["predicted_objective"]),
            "predicted_objective_std": _maybe(row["objective_std"]), "reason": _reason(snap, fid),
        })
    return items


# -- one formulation -------------------------------------------------------------------------
def formulation_detail(snap: Snapshot, fid: str) -> dict:
    """All the ledger says of one formulation.

    Keys: formulation_id, round, status, origin, model_version, parameters (dict),
    reason (of the latest status), measured_f2, measured_objective, predicted_objective,
    predicted, measured, replicates, characterization (dict or None), kinetics
    (dict with ``params`` parsed and ``units`` of each, or None), dissolution_method
    (apparatus, medium, volume_ml, temperature_c, or None), events (list of status,
    time, reason, oldest first).

    Raises:
        KeyError: no such formulation.
    """
    if fid not in snap.formulations.index:
        raise KeyError(f"no formulation {fid!r} in {snap.store!r}")
    row = snap.formulations.loc[fid]
    chars = snap.characterization.loc[fid].drop(["formulation_id"]).to_dict() if fid in snap.characterization.index else None
    kinetics = None
    if fid in snap.kinetics.index:
        k = snap.kinetics.loc[fid]
        kinetics = {
            "best_model": k["best_model"], "params": json.loads(k["params_json"] or "{}"), "units": law_parameter_units(k["best_model"]),
            **{c: _maybe(k[c]) for c in ("r2", "t50_hours", "t80_hours", "burst_24h_pct", "mdt_hours")},
        }
    events = snap.events[snap.events["formulation_id"] == fid].sort_values("time")
    return {
        "formulation_id": fid, "round": int(row["round"]), "status": row["status"], "origin": row["origin"],
        "model_version": row["model_version"] or None, "parameters": snap.parameters.loc[fid].to_dict(),
        "reason": _reason(snap, fid), "measured_f2": _maybe(row["measured_f2"]),
        "measured_objective": _maybe(snap.records.loc[fid, "measured_objective"]) if fid in snap.records.index else None,
        "predicted_objective": _maybe(row["predicted_objective"]), "dissolution_method": _method(snap, fid),
        "predicted": predicted_curve(snap, fid), "measured": measured_curve(snap, fid),
        "replicates": replicate_curves(snap, fid), "characterization": chars, "kinetics": kinetics,
        "events": [{"status": e.status, "time": e.time, "reason": e.reason} for e in events.itertuples()],
    }


def formulation_choices(snap: Snapshot) -> list[dict]:
    """Dropdown entries for every formulation, best measured first, then by round: label and value."""
    forms = snap.formulations.assign(_f2=snap.formulations["measured_f2"].fillna(-np.inf))
    forms = forms.sort_values(["_f2", "round"], ascending=[False, False])
    out = []
    for fid, row in forms.iterrows():
        f2 = "" if pd.isna(row["measured_f2"]) else f", f2 {row['measured_f2']:.1f}"
        out.append({"label": f"{fid} (round {int(row['round'])}, {row['status']}{f2})", "value": fid})
    return out


# -- explanations, approvals --------------------------------------------------------------------
def feature_importance(snap: Snapshot, round_: int | None = None) -> pd.DataFrame:
    """Feature importance rows (round, feature, importance, method, model_version) of the magnitude methods.

    Permutation importance and integrated gradients (the signed Shapley rows
    are drawn by :mod:`nanoloop.dashboard.signed_effects`). Sorted by round, method
    (permutation first, then by time in hours, not by string) and size.
    ``round_`` None: every round. Empty when the campaign has stored no explanations.
    """
    frame = snap.explanations
    if frame.empty:
        return frame
    frame = frame[~frame["method"].str.startswith(SHAPLEY)]
    if round_ is not None:
        frame = frame[frame["round"] == round_]
    rank = {m: k for k, m in enumerate(magnitude_methods(frame))}
    frame = frame.assign(_rank=frame["method"].map(rank))
    return frame.sort_values(["round", "_rank", "importance"], ascending=[True, True, False]).drop(columns="_rank").reset_index(drop=True)


def magnitude_methods(frame: pd.DataFrame) -> list[str]:
    """The explanation methods other than Shapley, permutation first, then in time order (``@24h`` before ``@168h``)."""
    if frame.empty:
        return []
    methods = {m for m in frame["method"].unique() if not m.startswith(SHAPLEY)}
    return sorted(methods, key=lambda m: (m != PERMUTATION, _method_hours(m), m))


def _method_hours(method: str) -> float:
    try:
        return float(method.split("@", 1)[1].rstrip("h"))
    except (IndexError, ValueError):
        return -1.0


def pending_approvals(snap: Snapshot) -> pd.DataFrame:
    """Formulations awaiting approval (``campaign_status``'s list): id, round, predicted objective ± sd, acquisition value, variables.

    The prediction columns are named for the objective, e.g. ``predicted f2`` and ``predicted f2 sd``.
    """
    ids = snap.status["awaiting_approval"]
    forms = snap.formulations.loc[ids]
    name = snap.objective_name
    frame = pd.DataFrame({
        "formulation_id": ids, "round": forms["round"].astype(int).to_numpy(), "origin": forms["origin"].to_numpy(),
        f"predicted {name}": forms["predicted_objective"].to_numpy(float), f"predicted {name} sd": forms["objective_std"].to_numpy(float),
        "acquisition_value": forms["acquisition_value"].to_numpy(float),
    })
    return pd.concat([frame, snap.parameters.loc[ids].reset_index(drop=True)], axis=1)


def _reason(snap: Snapshot, fid: str) -> str:
    """The reason recorded with the formulation's latest status ('' when none)."""
    if fid in snap.records.index:
        return str(snap.records.loc[fid, "status_reason"] or "")
    return ""


def _method(snap: Snapshot, fid: str) -> dict | None:
    """The dissolution method its curve was measured by, or None (not measured, or measured before it was recorded)."""
    part = snap.curves[snap.curves["formulation_id"] == fid]
    if part.empty or part["apparatus"].isna().all():
        return None
    first = part.iloc[0]
    return {"apparatus": first["apparatus"], "medium": first["medium"], "volume_ml": _maybe(first["volume_ml"]), "temperature_c": _maybe(first["temperature_c"])}


def _maybe(value) -> float | None:
    """A float, or None for a missing value (NaN, None)."""
    if value is None:
        return None
    value = float(value)
    return None if np.isnan(value) else value
