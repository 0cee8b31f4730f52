"""Earlier experiments into a campaign's ledger, as measured formulations of round -1.

Each imported formulation is a formulations row (origin ``imported``, acquisition
``import``, round -1, no model), a ``measured`` event carrying the objective and f2
computed as for lab curves (:func:`nanoloop.loop.store.measurements.measured_scores`),
its curves (instrument ``import``, raw checksum = the file's sha256), its kinetic
summary and its characterization when the file has one. The file's name, sha256, the
rows and, when outside the space, the reasons are kept in ``acquisition_params_json``.

Importing is all-or-nothing (a bad row refuses the file unless ``skip_bad``) and
idempotent: the same file again writes nothing; a recipe the campaign already holds
(a designed round, another file) is skipped with a note.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from nanoloop.loop import __version__
from nanoloop.loop.errors import InputError
from nanoloop.loop.faults import fault_point
from nanoloop.loop.design.space import recipe_json
from nanoloop.loop.store.experiments import Experiments, experiments_summary
from nanoloop.loop.store.measurements import kinetics_row, measured_scores
from nanoloop.loop.store.events import record_events
from nanoloop.loop.store.ledger import now_utc
from nanoloop.loop.store.status import Status

ORIGIN = "imported"
ACQUISITION = "import"
ROUND = -1
INSTRUMENT = "import"


@dataclass
class ImportReport:
    """What an import did."""

    file: str
    sha256: str
    new: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # id -> why (already in the campaign otherwise)
    outside_space: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    bad_rows: list = field(default_factory=list)

    def summary_line(self) -> str:
        return (f"imported {self.file}: {len(self.new)} new, {len(self.already)} already imported"
                + (f", {len(self.skipped)} already in the campaign (skipped)" if self.skipped else "")
                + (f", {len(self.outside_space)} outside the design space (kept for training, never proposed)"
                   if self.outside_space else "")
                + (f", {len(self.bad_rows)} bad row(s) left out" if self.bad_rows else ""))

    def to_dict(self) -> dict:
        return {"file": self.file, "sha256": self.sha256, "new": self.new, "already_imported": self.already,
                "skipped": self.skipped, "outside_space": self.outside_space, "notes": self.notes,
                "bad_rows": [b.to_dict() for b in self.bad_rows]}


def refuse_bad_rows(experiments: Experiments) -> None:
    """Raise the first bad row as one line (file, row, column, problem), saying how many more there are."""
    bad = experiments.bad_rows
    if bad:
        more = f" (and {len(bad) - 1} more bad row(s))" if len(bad) > 1 else ""
        raise InputError(f"{bad[0]}{more}; nothing imported: fix the file, or pass --skip-bad to import the good rows")


def import_experiments(campaign, experiments: Experiments, skip_bad: bool = False) -> ImportReport:
    """Store `experiments` (read with ``campaign=campaign.config.name``) in the campaign's ledger.

    Raises:
        InputError: a bad row without `skip_bad`, or no formulation left to import (nothing is written).
        LedgerBusy: another run holds the campaign's lock.
    """
    if not skip_bad:
        refuse_bad_rows(experiments)
    if experiments.recipes.empty:
        raise InputError(f"{experiments.path.name}: no usable formulation"
                         + (f"; first bad row: {experiments.bad_rows[0]}" if experiments.bad_rows else ""))
    name, sha = experiments.path.name, experiments.sha256
    report = ImportReport(name, sha, outside_space=dict(experiments.outside_space), notes=list(experiments.notes),
                          bad_rows=list(experiments.bad_rows))
    ledger = campaign.ledger
    with ledger.lock():
        stored = ledger.read("formulations").set_index("formulation_id")
        ours = []
        for fid in experiments.keys:
            if fid not in stored.index:
                report.new.append(fid)
                ours.append(fid)
                continue
            row = stored.loc[fid]
            params = json.loads(row["acquisition_params_json"] or "{}")
            if row["origin"] == ORIGIN and params.get("source_sha256") == sha:
                report.already.append(fid)
                ours.append(fid)  # rewritten below only where a crash left a table short (appends are idempotent)
            else:
                where = f"file {params.get('source_file')}" if row["origin"] == ORIGIN else f"round {int(row['round'])}"
                report.skipped[fid] = f"the same recipe is already in the campaign ({where}, origin {row['origin']})"
        report.outside_space = {k: v for k, v in report.outside_space.items() if k in ours}
        if report.skipped:
            report.notes.append(f"{len(report.skipped)} recipe(s) already in the campaign were not imported again")
        _write(campaign, experiments, ours)
    return report


def _write(campaign, experiments: Experiments, ids: list[str]) -> None:
    if not ids:
        return
    config, ledger, now = campaign.config, campaign.ledger, now_utc()
    name, sha = experiments.path.name, experiments.sha256
    formulations = [{
        "formulation_id": fid, "campaign": config.name, "round": ROUND, "parameters_json": recipe_json(experiments.recipe(fid)),
        "origin": ORIGIN, "predicted_times_hours": None, "predicted_release_pct": None, "predicted_std_pct": None,
        "predicted_objective": np.nan, "objective_std": np.nan, "acquisition_value": np.nan, "acquisition": ACQUISITION,
        "acquisition_params_json": json.dumps({"source_file": name, "source_sha256": sha, "source_rows": experiments.source_rows[fid],
                                               "outside_space": experiments.outside_space.get(fid, [])}),
        "model_version": "", "seed": config.seed, "nanoloop_version": __version__, "created_at": now,
    } for fid in ids]
    method = config.dissolution_method
    curves = experiments.curves[experiments.curves["key"].isin(ids)]
    curve_rows = [{
        "formulation_id": r.key, "replicate": int(r.replicate), "time_hours": float(r.time_hours), "release_pct": float(r.release_pct),
        "instrument": INSTRUMENT, "raw_checksum": sha, "apparatus": method.apparatus, "medium": method.medium,
        "volume_ml": method.volume_ml, "temperature_c": method.temperature_c,
    } for r in curves.itertuples()]
    chars = experiments.characterization
    char_rows = []
    if not chars.empty:
        from nanoloop.loop.lab.instruments import Characterization

        for fid in chars.index.intersection(ids):
            values = chars.loc[fid].reindex(list(Characterization.fields()))
            char_rows.append({"formulation_id": fid, **{k: float(v) for k, v in values.items()}, "instrument": INSTRUMENT, "raw_checksum": sha})
    by_id: dict[str, list[dict]] = {}
    for row in curve_rows:
        by_id.setdefault(row["formulation_id"], []).append(row)
    # Order for a crash half-way: rows that refer to a formulation first, then the formulation (now measured, with
    # its event), its curves last; a rerun of the import completes what is missing (appends skip stored keys).
    scores = measured_scores(ledger, config, curve_rows)
    ledger.append("characterization", char_rows)
    ledger.append("kinetics", [kinetics_row(fid, rows) for fid, rows in by_id.items()])
    record_events(ledger, config.name, ids, Status.MEASURED, ROUND, f"imported from {name}", measured=scores)
    ledger.append("formulations", formulations)
    fault_point("during-import")
    ledger.append("curves", curve_rows)


def imported_summary(formulations, measured_f2=None) -> dict | None:
    """``status``'s "imported" block: formulations by source file, outside the space, best f2; None without imports."""
    rows = formulations[formulations["origin"] == ORIGIN]
    if rows.empty:
        return None
    files: dict[tuple, dict] = {}
    outside = 0
    for row in rows.itertuples():
        params = json.loads(row.acquisition_params_json or "{}")
        key = (params.get("source_file", "?"), params.get("source_sha256", ""))
        entry = files.setdefault(key, {"file": key[0], "sha256": key[1], "formulations": 0, "outside_space": 0})
        entry["formulations"] += 1
        if params.get("outside_space"):
            entry["outside_space"] += 1
            outside += 1
    best = None
    if measured_f2 is not None:
        scores = measured_f2.reindex(rows["formulation_id"]).dropna()
        best = float(scores.max()) if len(scores) else None
    return {"formulations": len(rows), "outside_space": outside, "best_f2": best, "files": list(files.values())}


def imported_line(imported: dict) -> str:
    """One line for terminals and reports: "imported: N formulations from FILE (...)"."""
    files = ", ".join(f"{f['file']} ({f['formulations']})" if len(imported["files"]) > 1 else f["file"] for f in imported["files"])
    return (f"imported: {imported['formulations']} formulations from {files}"
            + (f", {imported['outside_space']} outside the design space (kept for training, never proposed)" if imported["outside_space"] else "")
            + (f"; best f2 {imported['best_f2']:.1f}" if imported.get("best_f2") is not None else "")
            + "; not a designed round")


__all__ = ["import_experiments", "refuse_bad_rows", "ImportReport", "imported_summary", "imported_line", "experiments_summary"]
