"""The ledger's tables: their Arrow schemas, the columns added since version 1, the renames, the row keys.

A table reads with ``pandas.read_parquet(STORE / table)``; its rows are unique by
their key (:data:`KEYS`), so appending a stored row again changes nothing.
"""

from __future__ import annotations

import pyarrow as pa

from nanoloop.loop.lab.instruments import RENAMED_FIELDS, Characterization

#: version 2: characterization's measured ``drug_loading_pct`` is ``actual_drug_loading_pct``; events carry the
#: measured objective; curves carry the dissolution method. Parts written under version 1 are read as version 2.
SCHEMA_VERSION = "2"

_LIST_F64 = pa.list_(pa.float64())

SCHEMAS: dict[str, pa.Schema] = {
    # One row per proposed (or edited) formulation, with its prediction and provenance.
    "formulations": pa.schema(
        [
            ("formulation_id", pa.string()),
            ("campaign", pa.string()),
            ("round", pa.int32()),
            ("parameters_json", pa.string()),
            ("origin", pa.string()),  # initial-design, acquisition, edit-of:<id>
            ("predicted_times_hours", _LIST_F64),
            ("predicted_release_pct", _LIST_F64),
            ("predicted_std_pct", _LIST_F64),
            ("predicted_objective", pa.float64()),
            ("objective_std", pa.float64()),
            ("acquisition_value", pa.float64()),
            ("acquisition", pa.string()),
            ("acquisition_params_json", pa.string()),
            ("model_version", pa.string()),
            ("seed", pa.int64()),
            ("nanoloop_version", pa.string()),
            ("created_at", pa.timestamp("us", tz="UTC")),
        ]
    ),
    # Status changes; the latest event of a formulation is its state.
    "events": pa.schema(
        [
            ("event_id", pa.string()),
            ("formulation_id", pa.string()),
            ("campaign", pa.string()),
            ("round", pa.int32()),
            ("status", pa.string()),
            ("reason", pa.string()),
            ("time", pa.timestamp("us", tz="UTC")),
            # on ``measured`` events: the campaign's objective and f2 to the target of the mean measured curve
            ("measured_objective", pa.float64()),
            ("measured_f2", pa.float64()),
        ]
    ),
    "characterization": pa.schema(
        [
            ("formulation_id", pa.string()),
            *((name, pa.float64()) for name in Characterization.fields()),
            ("instrument", pa.string()),
            ("raw_checksum", pa.string()),
        ]
    ),
    # Measured release, long format: one row per (formulation, replicate, time).
    "curves": pa.schema(
        [
            ("formulation_id", pa.string()),
            ("replicate", pa.int32()),
            ("time_hours", pa.float64()),
            ("release_pct", pa.float64()),
            ("instrument", pa.string()),
            ("raw_checksum", pa.string()),
            # the dissolution method the curve was measured by (the campaign's ``dissolution_method``)
            ("apparatus", pa.string()),
            ("medium", pa.string()),
            ("volume_ml", pa.float64()),
            ("temperature_c", pa.float64()),
        ]
    ),
    # Kinetic summary of each measured (mean) curve.
    "kinetics": pa.schema(
        [
            ("formulation_id", pa.string()),
            ("best_model", pa.string()),
            ("params_json", pa.string()),
            ("r2", pa.float64()),
            ("t50_hours", pa.float64()),
            ("t80_hours", pa.float64()),
            ("burst_24h_pct", pa.float64()),
            ("mdt_hours", pa.float64()),
        ]
    ),
    # One row per trained surrogate.
    "models": pa.schema(
        [
            ("model_version", pa.string()),
            ("campaign", pa.string()),
            ("round", pa.int32()),
            ("n_formulations", pa.int32()),
            ("n_points", pa.int32()),
            ("head", pa.string()),
            ("members", pa.int32()),
            ("seed", pa.int64()),
            ("train_seconds", pa.float64()),
            ("metrics_json", pa.string()),
            ("trained_at", pa.timestamp("us", tz="UTC")),
        ]
    ),
    # Per-round feature importance of the surrogate.
    "explanations": pa.schema(
        [
            ("model_version", pa.string()),
            ("round", pa.int32()),
            ("feature", pa.string()),
            ("importance", pa.float64()),
            ("method", pa.string()),
            # signed effects (loop/explain/effects.py): the time explained, signed change over the variable's range, per-category values
            ("time_hours", pa.float64()),
            ("effect_pct", pa.float64()),
            ("effect_detail", pa.string()),
        ]
    ),
    # Partial dependence of predicted release on each continuous variable, with the ensemble members' 5-95 % band.
    "partial_dependence": pa.schema(
        [
            ("model_version", pa.string()),
            ("round", pa.int32()),
            ("variable", pa.string()),
            ("time_hours", pa.float64()),
            ("value", pa.float64()),
            ("release_pct", pa.float64()),
            ("low_pct", pa.float64()),
            ("high_pct", pa.float64()),
        ]
    ),
}

#: columns added after schema version 1: rows may leave them out (stored as missing), old parts lack them
OPTIONAL: dict[str, tuple[str, ...]] = {
    "events": ("measured_objective", "measured_f2"),
    "curves": ("apparatus", "medium", "volume_ml", "temperature_c"),
    "explanations": ("time_hours", "effect_pct", "effect_detail"),
}

#: table -> {old column name: new column name}, applied when reading parts of an older schema
RENAMED: dict[str, dict[str, str]] = {"characterization": dict(RENAMED_FIELDS)}

KEYS: dict[str, tuple[str, ...]] = {
    "formulations": ("formulation_id",),
    "events": ("event_id",),
    "characterization": ("formulation_id",),
    "curves": ("formulation_id", "replicate", "time_hours"),
    "kinetics": ("formulation_id",),
    "models": ("model_version",),
    "explanations": ("model_version", "feature", "method"),
    "partial_dependence": ("model_version", "variable", "time_hours", "value"),
}
