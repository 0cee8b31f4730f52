"""A campaign: every step of a round as a plain method over the ledger.

The state lives in the ledger, so each step first reads what is stored and
does only what is missing: a step run twice, or after a crash, changes nothing
that is already done. Prefect flows call these steps; so can a Python session.

A formulation moves through the statuses
``proposed -> approved | rejected -> dispatched -> synthesized -> dissolving -> measured``,
or ends ``failed`` (with a reason) or ``abandoned``.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from nanoloop.loop import __version__
from nanoloop.loop.instruments import Characterization, JobState, PermanentInstrumentError, WorkItem
from nanoloop.loop.plausibility import result_problems
from nanoloop.loop.acquisition import AcquisitionSettings, choose_batch
from nanoloop.loop.config import CampaignConfig, parse_config
from nanoloop.loop.errors import InputError
from nanoloop.loop.faults import fault_point
from nanoloop.loop.evaluation import mean_curves, measured_mean_curves, measured_objective
from nanoloop.loop.ledger import Ledger, latest_status
from nanoloop.loop.space import formulation_id
from nanoloop.loop.blend import build_release_model, load_release_model
from nanoloop.loop.surrogate import ReleaseEnsemble, curve_rows

TERMINAL = ("measured", "failed", "rejected", "abandoned", "edited")
IN_FLIGHT = ("dispatched", "synthesized", "dissolving")

CONFIG_BLOB = "campaign.json"


def _now() -> pd.Timestamp:
    return pd.Timestamp(datetime.now(timezone.utc))


def _event_id(fid: str, status: str) -> str:
    return hashlib.sha256(f"{fid}|{status}".encode()).hexdigest()[:20]


@dataclass
class TrainedModel:
    """A surrogate and the version it is stored under."""

    version: str
    model: ReleaseEnsemble  # or a BlendedRelease (same estimator contract)
    n_formulations: int


class Campaign:
    """One campaign over one ledger.

    Args:
        config: the validated campaign config.
        ledger: where the campaign's state lives.
        instruments: ``{"synthesis": ..., "dissolution": ...}`` (objects that
            implement :class:`~nanoloop.loop.instruments.Instrument`), or a
            factory ``config -> that dict`` called when a step first needs them
            (flows pass :func:`nanoloop.adapters.registry.build_instruments`).
            Reading, approving and evaluating need none.
    """

    def __init__(self, config: CampaignConfig, ledger: Ledger, instruments: dict | Callable[[CampaignConfig], dict] | None = None):
        self.config = config
        self.ledger = ledger
        self.space = config.design_space()
        self._instruments = instruments
        self._store_config()

    # -- opening ----------------------------------------------------------------
    @classmethod
    def open(cls, store: str, instruments: dict | Callable[[CampaignConfig], dict] | None = None) -> "Campaign":
        """Reopen the campaign kept in ``store`` with the config stored there."""
        ledger = Ledger(store, create=False)
        blob = ledger.read_blob(CONFIG_BLOB)
        if blob is None:
            raise InputError(f"store {store!r} holds no campaign (no {CONFIG_BLOB})")
        return cls(parse_config(json.loads(blob), source=f"{store}/{CONFIG_BLOB}"), ledger, instruments)

    def _store_config(self) -> None:
        text = json.dumps(self.config.model_dump(mode="json"), indent=1)  # key order is the variable order
        stored = self.ledger.read_blob(CONFIG_BLOB)
        if stored is not None:
            name = json.loads(stored).get("name")
            if name != self.config.name:
                raise InputError(f"store {self.ledger.location!r} belongs to campaign {name!r}, not {self.config.name!r}")
            if stored.decode() == text:
                return
        self.ledger.write_blob(CONFIG_BLOB, text.encode())

    @property
    def timeout_s(self) -> float:
        """Seconds any one instrument call may take."""
        return self.config.instruments.timeout_s

    @property
    def instruments(self) -> dict:
        """``{"synthesis": ..., "dissolution": ...}``, built on first use when given as a factory."""
        if self._instruments is None:
            raise InputError(f"campaign {self.config.name!r} was opened without instruments; pass instruments= "
                             "(e.g. nanoloop.adapters.registry.build_instruments) to run the lab steps")
        if callable(self._instruments):
            self._instruments = self._instruments(self.config)
        return self._instruments

    # -- reading state ------------------------------------------------------------
    def formulations(self) -> pd.DataFrame:
        """Stored formulations with their latest status (column ``status``)."""
        frame = self.ledger.read("formulations")
        states = self.states()
        frame["status"] = frame["formulation_id"].map(states).fillna("proposed")
        return frame

    def states(self) -> pd.Series:
        """Latest status per formulation id."""
        return latest_status(self.ledger)

    def parameters(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Design variables of stored formulations, one column per variable."""
        return pd.DataFrame([json.loads(p) for p in frame["parameters_json"]], index=frame.index)[self.space.names]

    def current_round(self) -> int:
        """The round the next step belongs to: the last round until all its formulations are settled."""
        frame = self.formulations()
        if frame.empty:
            return 0
        last = int(frame["round"].max())
        settled = frame.loc[frame["round"] == last, "status"].isin(TERMINAL).all()
        return last + 1 if settled else last

    def failure_budget_exceeded(self) -> str | None:
        """Why the campaign must stop, when more than ``max_failed_pct`` of the made formulations failed."""
        states = self.states()
        settled = states[states.isin(["measured", "failed"])]
        if len(settled) < self.config.batch_size:
            return None
        failed_pct = 100.0 * float((settled == "failed").mean())
        if failed_pct <= self.config.max_failed_pct:
            return None
        return (
            f"campaign {self.config.name} stopped: {failed_pct:.0f} % of {len(settled)} formulations failed "
            f"(max_failed_pct = {self.config.max_failed_pct:g}); the reasons are in `nanoloop status` and the events table"
        )

    def record(self, ids, status: str, round_: int, reason: str = "") -> int:
        """Append a status event for each id (a status already recorded is not repeated)."""
        now = _now()
        rows = [
            {"event_id": _event_id(fid, status), "formulation_id": fid, "campaign": self.config.name, "round": round_, "status": status, "reason": reason, "time": now}
            for fid in ids
        ]
        return self.ledger.append("events", rows)

    def _ids(self, round_: int, status: str) -> list[str]:
        frame = self.formulations()
        return frame.loc[(frame["round"] == round_) & (frame["status"] == status), "formulation_id"].tolist()

    # -- training -----------------------------------------------------------------
    def training_data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Rows (features + time hours), release fraction, curve groups, number of formulations."""
        curves = self.ledger.read("curves")
        if curves.empty:
            return np.empty((0, len(self.space.feature_names) + 1)), np.empty(0), np.empty(0), 0
        forms = self.ledger.read("formulations").set_index("formulation_id")
        measured = forms.loc[curves["formulation_id"].unique()]
        encoded = pd.DataFrame(self.space.encode(self.parameters(measured)), index=measured.index)
        features = encoded.loc[curves["formulation_id"]].to_numpy(np.float32)
        X = np.column_stack([features, curves["time_hours"].to_numpy(np.float32)])
        y = np.clip(curves["release_pct"].to_numpy(float) / 100.0, 0.0, 1.2)
        return X, y, curves["formulation_id"].to_numpy(), len(measured)

    def _new_model(self, n_members: int, random_state: int):
        return build_release_model(self.config.surrogate, random_state, n_members)

    def train(self, round_: int, fit_members=None) -> TrainedModel | None:
        """Train the surrogate on every measured curve and store it; None before any measurement.

        Args:
            round_: the round the model proposes for (part of its seed).
            fit_members: optional ``fit_members(models, X, y, groups) -> fitted models``
                that fits one-member ensembles elsewhere (e.g. on Dask workers);
                by default all members train together in this process.

        The version is a hash of the training set and settings, so retraining on
        the same data (after a crash) reuses the stored model.
        """
        X, y, groups, n_formulations = self.training_data()
        if n_formulations == 0:
            return None
        settings = self.config.surrogate
        seed = self.config.seed + round_
        mode = "batched" if (fit_members is None or settings.model == "blend") else "per-member"
        digest = hashlib.sha256(X.tobytes() + y.tobytes() + settings.model_dump_json().encode() + f"{seed}|{mode}".encode())
        version = f"M{round_:03d}-{digest.hexdigest()[:10]}"
        blob_name = f"models/{version}.pt"
        stored = self.ledger.read_blob(blob_name)
        if stored is not None:
            return TrainedModel(version, load_release_model(io.BytesIO(stored))[0], n_formulations)
        if fit_members is None or settings.model == "blend":  # the blend validates and trains its parts in this process
            model = self._new_model(settings.members, seed).fit(X, y, groups=groups)
        else:
            singles = [self._new_model(1, seed * 1000 + m) for m in range(settings.members)]
            model = ReleaseEnsemble.from_members(fit_members(singles, X, y, groups))
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.pt"
            model.save(path, metadata={"feature_names": self.space.feature_names, "time_unit": "hours", "release_unit": "fraction", "campaign": self.config.name, "nanoloop_version": __version__})
            self.ledger.write_blob(blob_name, path.read_bytes())
        fitted = model.predict(X)
        metrics = {"train_mae_pct": float(100 * np.mean(np.abs(fitted - y))), "epochs": model.n_epochs_, "std_scale": model.std_scale_, "training": mode,
                   "model": settings.model, "network_weight": getattr(model, "network_weight_", 1.0)}
        self.ledger.append("models", [{
            "model_version": version, "campaign": self.config.name, "round": round_, "n_formulations": n_formulations,
            "n_points": len(y), "head": settings.head, "members": settings.members, "seed": seed,
            "train_seconds": model.fit_seconds_, "metrics_json": json.dumps(metrics), "trained_at": _now(),
        }])
        return TrainedModel(version, model, n_formulations)

    def load_model(self, version: str) -> ReleaseEnsemble:
        blob = self.ledger.read_blob(f"models/{version}.pt")
        if blob is None:
            raise InputError(f"model {version} is not in the store")
        return load_release_model(io.BytesIO(blob))[0]

    def latest_model(self) -> TrainedModel | None:
        models = self.ledger.read("models")
        if models.empty:
            return None
        row = models.sort_values(["round", "trained_at"]).iloc[-1]
        return TrainedModel(row["model_version"], self.load_model(row["model_version"]), int(row["n_formulations"]))

    # -- proposing ----------------------------------------------------------------
    def prediction_times_hours(self) -> np.ndarray:
        """Times at which proposals store their predicted curve: the target's and the instrument's."""
        sampling = self.instruments["dissolution"].describe().get("sampling_times_hours", [])
        return np.unique(np.concatenate([np.asarray(self.config.target.times_hours, float), np.asarray(sampling, float)]))

    def propose(self, round_: int, fit_members=None) -> list[str]:
        """Store the round's batch (idempotent: an existing batch is returned as it is).

        Round 0 is a scrambled Sobol design within the constraints; later rounds
        train the surrogate (``fit_members``: see :meth:`train`) and choose by
        the acquisition function.
        """
        frame = self.formulations()
        existing = frame.loc[frame["round"] == round_, "formulation_id"].tolist()
        if existing:
            return existing
        config = self.config
        taken = set(frame["formulation_id"])  # measured, in flight, rejected: never proposed again
        trained = self.train(round_, fit_members) if round_ > 0 else None
        base = {
            "campaign": config.name, "round": round_, "seed": config.seed, "nanoloop_version": __version__, "created_at": _now(),
            "predicted_times_hours": None, "predicted_release_pct": None, "predicted_std_pct": None,
            "predicted_objective": np.nan, "objective_std": np.nan, "acquisition_value": np.nan, "model_version": "",
        }
        if trained is None:
            candidates = self.space.sample(config.batch_size + len(taken), seed=config.seed + round_)
            candidates = self._untaken(candidates, taken).iloc[: config.batch_size]
            rows = [{**base, "origin": "initial-design", "acquisition": "sobol", "acquisition_params_json": json.dumps({"scramble": True})}] * len(candidates)
        else:
            from nanoloop.loop.acquisition import calibrated_spread, search, taken_checker
            from nanoloop.loop.objective import Objective, fit_property_model
            from nanoloop.loop.residual_gp import residual_corrected

            acq, objective, property_model, notes = config.acquisition, Objective.from_config(config), None, {}
            if objective.characterization_constraints:  # size, EE, ...: a model of characterization
                names = [c.name for c in objective.characterization_constraints]
                property_model = fit_property_model(self.space, frame, self.ledger.read("characterization"), self.parameters, names, seed=config.seed + round_)
                if property_model is None:  # said in the proposal's provenance, not silent
                    notes["constraints_not_modelled"] = [c.describe() for c in objective.characterization_constraints] + ["fewer than 3 characterized formulations"]
                    objective = Objective(objective.target, objective.goals, objective.curve_constraints)
            in_flight = frame[frame["status"].isin(IN_FLIGHT + ("approved",))]  # penalized like picks, for diversity
            pending = self.space.encode(self.parameters(in_flight)) if len(in_flight) else None
            # the ensemble as the mean function of a GP per target time; its spread calibrated on this campaign's record
            curves = measured_mean_curves(self.ledger)
            prior = acq.spread_prior if acq.spread_prior is not None else (1.0 if acq.residual_gp else 3.0)
            scale, notes["spread_calibrated_on"] = calibrated_spread(objective, frame, curves, prior) if acq.calibrate_spread else (prior, 0)
            model, notes["residual_gp_on"] = (trained.model, 0)
            if acq.residual_gp:
                model, notes["residual_gp_on"] = residual_corrected(trained.model, objective, self.space, frame, curves, self.parameters,
                                                                    draws=acq.residual_draws, seed=config.seed + round_, max_formulations=acq.residual_gp_max,
                                                                    select_mean=acq.residual_gp_select_mean)
                notes["ensemble_as_gp_mean"] = list(getattr(model, "uses_ensemble_", []))
            settings = AcquisitionSettings(acq.strategy, acq.tradeoff, acq.beta, acq.diversity_length, config.seed + round_, spread_scale=scale)
            found = search(
                model, objective, self.space, config.batch_size, self.incumbent_f2(), settings, pool_size=acq.pool_size,
                refine_starts=acq.refine_starts, refine_steps=acq.refine_steps, property_model=property_model, pending_encoded=pending,
                is_taken=taken_checker(self.space, config.name, taken), pool_seed=config.seed * 1000 + round_,
            )
            batch = found.batch
            batch.params.update(notes, pool_size=acq.pool_size, refine_starts=acq.refine_starts)
            encoded = found.candidates.encoded
            candidates = found.candidates.frame.iloc[batch.indices].reset_index(drop=True)
            times = self.prediction_times_hours()
            mean, std = trained.model.predict(curve_rows(encoded[batch.indices], times), return_std=True)
            mean, std = mean.reshape(len(candidates), -1), std.reshape(len(candidates), -1)
            from nanoloop.loop.domain import distance_to_data, is_outside
            from nanoloop.loop.domain import measured_encoded as measured_unit

            from nanoloop.loop.predictive import PredictiveCurves, interval_90, prospective_widening

            distance = distance_to_data(encoded[batch.indices], measured_unit(self))
            # the f2 a reviewer sees: from the calibrated predictive distribution (members + noise + residual GP),
            # widened by the campaign's own prospective errors once there are some
            f2_target = Objective(config.target)
            f2 = f2_target.samples(PredictiveCurves(model, seed=config.seed + round_), encoded[batch.indices])
            f2_lower, f2_upper = interval_90(f2.values)
            measured_f2 = f2_target.measured(curves)["f2"] if curves else {}
            widen, _ = prospective_widening(frame, measured_f2)
            f2_lower, f2_upper = f2.mean - widen * (f2.mean - f2_lower), f2.mean + widen * (f2_upper - f2.mean)
            per_row = [{"distance_to_data": round(float(distance[i]), 4), "outside_measured_data": bool(is_outside(distance[i])),
                        "f2": round(float(f2.mean[i]), 3), "f2_lower_90": round(float(f2_lower[i]), 3), "f2_upper_90": round(float(f2_upper[i]), 3),
                        "f2_widening": round(float(widen), 4)}
                       for i in range(len(candidates))]
            rows = [
                {**base, "origin": "acquisition", "acquisition": config.acquisition.strategy,
                 "acquisition_params_json": json.dumps({**batch.params, **per_row[i]}),
                 "model_version": trained.version, "predicted_times_hours": times.tolist(), "predicted_release_pct": (100 * mean[i]).tolist(),
                 "predicted_std_pct": (100 * std[i]).tolist(), "predicted_objective": float(batch.objective_mean[i]),
                 "objective_std": float(batch.objective_std[i]), "acquisition_value": float(batch.acquisition_value[i])}
                for i in range(len(candidates))
            ]
        return self._store_proposals(candidates, rows, round_)

    def _untaken(self, candidates: pd.DataFrame, taken: set) -> pd.DataFrame:
        ids = [formulation_id(self.config.name, self.space.validate(r)) for r in candidates.to_dict("records")]
        return candidates[[i not in taken for i in ids]].reset_index(drop=True)

    def _store_proposals(self, candidates: pd.DataFrame, rows: list[dict], round_: int) -> list[str]:
        records = []
        for formulation, row in zip(candidates.to_dict("records"), rows):
            formulation = self.space.validate(formulation)
            records.append({**row, "formulation_id": formulation_id(self.config.name, formulation), "parameters_json": json.dumps(formulation, sort_keys=True)})
        self.ledger.append("formulations", records)
        ids = [r["formulation_id"] for r in records]
        self.record(ids, "proposed", round_)
        fault_point("after-proposal")
        return ids

    def incumbent_f2(self) -> float:
        """Best objective among measured formulations that meet the constraints.

        For the default objective this is the best f2 to the target (0 when none).
        """
        from nanoloop.loop.objective import Objective

        objective = Objective.from_config(self.config)
        if not objective.constraints and objective.name == "f2":
            scores = measured_objective(self.ledger, self.config.target)
            return float(scores.max()) if len(scores) else 0.0
        chars = self.ledger.read("characterization") if objective.characterization_constraints else None
        return objective.incumbent(objective.measured(measured_mean_curves(self.ledger), chars))

    # -- approval -----------------------------------------------------------------
    def awaiting_approval(self, round_: int) -> list[str]:
        return self._ids(round_, "proposed")

    def approve(self, round_: int, rejected: dict[str, str] | None = None, edits: dict[str, dict] | None = None) -> list[str]:
        """Approve the round's proposed batch, except rejected ids (id -> reason); edits replace a proposal.

        An edit is validated against the design space; the original is kept and
        marked ``edited``, and the edited recipe is stored as a new formulation.
        Returns the approved ids.
        """
        rejected, edits = dict(rejected or {}), dict(edits or {})
        waiting = set(self.awaiting_approval(round_))
        unknown = (set(rejected) | set(edits)) - waiting
        if unknown:
            raise InputError(f"round {round_}: {sorted(unknown)} are not awaiting approval")
        frame = self.formulations().set_index("formulation_id")
        new_ids = []
        for fid, changes in edits.items():
            original = json.loads(frame.loc[fid, "parameters_json"])
            edited = self.space.validate({**original, **changes})
            row = frame.loc[fid].to_dict()
            row.update(origin=f"edit-of:{fid}", model_version=row["model_version"], created_at=_now())
            new_ids += self._store_proposals(pd.DataFrame([edited]), [row], round_)
        for fid, reason in rejected.items():
            self.record([fid], "rejected", round_, reason or "rejected")
        self.record(list(edits), "edited", round_, "replaced by an edit")
        approved = sorted((waiting - set(rejected) - set(edits)) | set(new_ids))
        self.record(approved, "approved", round_)
        return approved

    # -- the lab --------------------------------------------------------------------
    def _work_items(self, ids: list[str], with_characterization: bool = False):
        frame = self.ledger.read("formulations").set_index("formulation_id")
        chars = self.ledger.read("characterization").set_index("formulation_id") if with_characterization else None
        items = []
        for fid in ids:
            context = {}
            if chars is not None and fid in chars.index:
                context["characterization"] = chars.loc[fid, list(Characterization.fields())].to_dict()
            items.append(WorkItem(key=fid, recipe=json.loads(frame.loc[fid, "parameters_json"]), context=context))
        return items

    def dispatch_synthesis(self, round_: int) -> list[str]:
        """Send approved formulations to synthesis (the idempotency key is the formulation id).

        A recipe the instrument refuses for good is marked failed with its reason.
        """
        ids = self._ids(round_, "approved")
        sent = self._submit_once(self.instruments["synthesis"], self._work_items(ids), round_)
        self.record(sent, "dispatched", round_)
        return sent

    def _submit_once(self, instrument, items, round_: int) -> list[str]:
        """Submit only what the instrument does not know yet; returns the keys it has taken.

        After a crash between a submit and its ledger record, the rerun finds
        the items known to the instrument and polls them instead of sending
        them again. An item refused permanently is recorded as failed and the
        rest of the batch is sent without it.
        """
        if not items:
            return []
        known = instrument.status([item.key for item in items], timeout_s=self.timeout_s)
        fresh = [item for item in items if known.get(item.key, JobState.UNKNOWN) == JobState.UNKNOWN]
        while fresh:
            try:
                instrument.submit(fresh, timeout_s=self.timeout_s)
                break
            except PermanentInstrumentError as err:
                if err.item_key not in {item.key for item in fresh}:
                    raise
                self.record([err.item_key], "failed", round_, f"{instrument.kind}: {err}")
                fresh = [item for item in fresh if item.key != err.item_key]
        fault_point("after-dispatch")
        failed = set(self.states().pipe(lambda s: s[s == "failed"]).index)
        return [item.key for item in items if item.key not in failed]

    def collect_synthesis(self, round_: int, wait_s: float = 60.0) -> dict[str, list[str]]:
        """Poll synthesis for dispatched formulations; store characterization, or the failure reason.

        A result that fails the plausibility checks (NaN or absurd values) is
        recorded as a failed synthesis with the problems found.
        """
        ids = self._ids(round_, "dispatched")
        instrument = self.instruments["synthesis"]
        done, failed = [], {}
        for r in _wait_and_collect(instrument, ids, wait_s, self.timeout_s):
            problems = [str(p) for p in result_problems(r)]
            if r.state != JobState.DONE or problems or r.characterization is None:
                failed[r.key] = f"synthesis: {r.reason or '; '.join(problems) or r.state.value}"
            else:
                done.append(r)
        self.ledger.append("characterization", [
            {"formulation_id": r.key, **r.characterization.__dict__, "instrument": instrument.name, "raw_checksum": r.raw_checksum} for r in done
        ])
        self.record([r.key for r in done], "synthesized", round_)
        for fid, reason in failed.items():
            self.record([fid], "failed", round_, reason)
        return {"synthesized": [r.key for r in done], "failed": list(failed)}

    def dispatch_dissolution(self, round_: int) -> list[str]:
        """Start a dissolution test for each synthesized formulation."""
        ids = self._ids(round_, "synthesized")
        sent = self._submit_once(self.instruments["dissolution"], self._work_items(ids, with_characterization=True), round_)
        self.record(sent, "dissolving", round_)
        return sent

    def collect_dissolution(self, round_: int, wait_s: float = 60.0) -> dict[str, list[str]]:
        """Ingest finished release curves (and their kinetic summary); failed tests are recorded.

        Policy for bad readings: NaN readings are dropped; a replicate with an
        implausible reading (above 110 % or below -5 %), or with broken times,
        is dropped whole and the reason kept on the ``measured`` event; a test
        with no usable replicate is failed.
        """
        ids = self._ids(round_, "dissolving")
        instrument = self.instruments["dissolution"]
        measured, failed, curve_rows, kinetics_rows = {}, [], [], []
        for r in _wait_and_collect(instrument, ids, wait_s, self.timeout_s):
            curves, notes = _usable_curves(r)
            rows = [
                {"formulation_id": r.key, "replicate": c.replicate, "time_hours": float(t), "release_pct": float(v), "instrument": instrument.name, "raw_checksum": r.raw_checksum}
                for c in curves for t, v in zip(c.times_hours, c.release_pct)
                if np.isfinite(t) and np.isfinite(v)
            ]
            if r.state != JobState.DONE or not rows:
                failed.append(r.key)
                self.record([r.key], "failed", round_, f"dissolution: {r.reason or '; '.join(notes) or 'no valid readings'}")
                continue
            curve_rows += rows
            kinetics_rows.append(_kinetics_row(r.key, rows))
            measured[r.key] = "; ".join(notes)
        # one append per table, whatever the batch size; a crash in between is resumed by collecting again
        self.ledger.append("curves", curve_rows)
        fault_point("during-ingest")
        self.ledger.append("kinetics", kinetics_rows)
        for reason in dict.fromkeys(measured.values()):
            self.record([fid for fid, r in measured.items() if r == reason], "measured", round_, reason)
        return {"measured": list(measured), "failed": failed}

    def run_round(self, round_: int) -> None:
        """Every step of a round in this process, auto-approved, without Prefect (scripts, benchmarks)."""
        self.propose(round_)
        if self.awaiting_approval(round_):
            self.approve(round_)
        self.dispatch_synthesis(round_)
        self.collect_synthesis(round_)
        self.dispatch_dissolution(round_)
        self.collect_dissolution(round_)

def _kinetics_row(fid: str, curve_rows: list[dict]) -> dict:
    """The kinetic summary (best law, t50, t80, burst, MDT) of the mean of a formulation's replicates."""
    from nanoloop.loop.kinetics import summarize_curve

    mean = mean_curves(pd.DataFrame(curve_rows))[fid]
    summary = summarize_curve(mean.index.to_numpy(float), mean.to_numpy(float))
    return {
        "formulation_id": fid, "best_model": summary.get("best_model") or "", "params_json": json.dumps(summary.get("best_params") or {}),
        **{k: _num(summary.get(k)) for k in ("r2", "t50_hours", "t80_hours", "burst_24h_pct", "mdt_hours")},
    }


def _num(value) -> float:
    return float(value) if value is not None else np.nan


def _usable_curves(result) -> tuple[list, list[str]]:
    """The replicates that pass the plausibility checks, and what was wrong with the others."""
    kept, notes = [], []
    for curve in result.curves:
        problems = [str(p) for p in result_problems(replace(result, curves=(curve,), characterization=None)) if p.kind != "nan_reading"]
        if problems:
            notes.append(f"dropped {'; '.join(problems)}")
        else:
            kept.append(curve)
    return kept, notes


def _wait_and_collect(instrument, ids: list[str], wait_s: float, timeout_s: float, poll_s: float = 0.05):
    """Collect what finishes within ``wait_s``; the rest stays in flight for the next poll.

    A result delivered twice is taken once.
    """
    if not ids:
        return []
    deadline = time.monotonic() + wait_s
    results, pending = {}, set(ids)
    while pending:
        for result in instrument.collect(sorted(pending), timeout_s=timeout_s):
            if result.key in pending:
                results[result.key] = result
                pending.discard(result.key)
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(poll_s)
    return [results[k] for k in ids if k in results]
