"""A campaign: every step of a round as a plain method over the ledger.

The state lives in the ledger, so each step first reads what is stored and
does only what is missing: a step run twice, or after a crash, changes nothing
that is already done. Prefect flows call these steps; so can a Python session.

A formulation moves through the statuses
``proposed -> approved | rejected -> dispatched -> synthesized -> dissolving -> measured``,
or ends ``failed`` (with a reason) or ``abandoned``.

At about 490 lines this module is above the project's 400: it is one stateful
object whose methods are the round's steps (config and amendments, approval
checks, dispatch, recovery of lost jobs, ingest); proposing, model training and
lab polling already live in :mod:`~nanoloop.loop.design.recommenders`,
:mod:`~nanoloop.loop.campaign.training` and :mod:`~nanoloop.loop.lab.collect`.
Approval checking is the next candidate to move out.
"""

from __future__ import annotations

import hashlib
from typing import Callable

import numpy as np
import pandas as pd

from nanoloop.loop.config import CampaignConfig
from nanoloop.loop.errors import InputError
from nanoloop.loop.faults import fault_point
from nanoloop.loop.lab.instruments import Characterization, JobState, PermanentInstrumentError, WorkItem
from nanoloop.loop.lab.collect import usable_curves, wait_and_collect
from nanoloop.loop.store.measurements import kinetics_row, mean_curves, measured_mean_curves, measured_objective
from nanoloop.loop.store.ledger import Ledger, latest_status, now_utc
from nanoloop.loop.store.stored_config import config_changes, read_stored_config, store_config
from nanoloop.loop.campaign.training import ModelStore, TrainedModel
from nanoloop.loop.lab.plausibility import result_problems
from nanoloop.loop.design.recommenders import ProposalContext, Recommender, choose_recommender
from nanoloop.loop.campaign.review import repredicted_edit
from nanoloop.loop.design.space import formulation_id, recipe_json, recipe_of, recipes_table
from nanoloop.loop.models.ensemble import ReleaseEnsemble
from nanoloop.loop.store.status import TERMINAL, Status




def _event_id(fid: str, status: str) -> str:
    return hashlib.sha256(f"{fid}|{status}".encode()).hexdigest()[:20]


class Campaign:
    """One campaign over one ledger.

    Args:
        config: the validated campaign config.
        ledger: where the campaign's state lives.
        instruments: ``{"synthesis": ..., "dissolution": ...}`` (objects that
            implement :class:`~nanoloop.loop.lab.instruments.Instrument`), or a
            factory ``config -> that dict`` called when a step first needs them
            (flows pass :func:`nanoloop.adapters.registry.build_instruments`).
            Reading, approving and evaluating need none.
    """

    def __init__(self, config: CampaignConfig, ledger: Ledger, instruments: dict | Callable[[CampaignConfig], dict] | None = None,
                 read_only: bool = False, amend: bool = False):
        self.config = config
        self.ledger = ledger
        self.space = config.design_space()
        self._instruments = instruments
        self.models = ModelStore(ledger, config, self.parameters)
        if not read_only:  # read_only: a viewer (the dashboard) never writes the config back
            self._store_config(amend)

    # -- opening ----------------------------------------------------------------
    @classmethod
    def open(cls, store: str, instruments: dict | Callable[[CampaignConfig], dict] | None = None,
             read_only: bool = False, tolerant: bool = False) -> "Campaign":
        """Reopen the campaign kept in ``store`` with the config stored there.

        ``read_only``: write nothing back (viewers); ``tolerant``: skip unreadable parts (views).
        """
        ledger = Ledger(store, create=False, tolerant=tolerant)
        return cls(read_stored_config(ledger), ledger, instruments, read_only=read_only)

    def _store_config(self, amend: bool = False) -> None:
        """Store the config with the ledger: a change is recorded, a change of what results mean needs ``amend``."""
        changed = config_changes(self.ledger, self.config, amend)
        if changed != []:
            store_config(self.ledger, self.config, changed, self.current_round() if changed else 0)

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
        frame["status"] = frame["formulation_id"].map(states).fillna(Status.PROPOSED)
        return frame

    def states(self) -> pd.Series:
        """Latest status per formulation id."""
        return latest_status(self.ledger)

    def parameters(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Design variables of stored formulations, one column per variable."""
        return recipes_table(frame)[self.space.names]

    def current_round(self) -> int:
        """The round the next step belongs to: the last round until all its formulations are settled."""
        frame = self.formulations()
        frame = frame[frame["round"] >= 0]  # round -1: imported from the lab's files, never a designed round
        if frame.empty:
            return 0
        last = int(frame["round"].max())
        settled = frame.loc[frame["round"] == last, "status"].isin(TERMINAL).all()
        return last + 1 if settled else last

    def failure_budget_exceeded(self) -> str | None:
        """Why the campaign must stop, when more than ``max_failed_pct`` of the made formulations failed."""
        states = self.states()
        forms = self.ledger.read("formulations")
        states = states.drop(forms.loc[forms["round"] < 0, "formulation_id"], errors="ignore")  # imported: not made in this campaign
        settled = states[states.isin([Status.MEASURED, Status.FAILED])]
        if len(settled) < self.config.batch_size:
            return None
        failed_pct = 100.0 * float((settled == Status.FAILED).mean())
        if failed_pct <= self.config.max_failed_pct:
            return None
        return (
            f"campaign {self.config.name} stopped: {failed_pct:.0f} % of {len(settled)} formulations failed "
            f"(max_failed_pct = {self.config.max_failed_pct:g}); the reasons are in `nanoloop status` and the events table"
        )

    def record(self, ids, status: str, round_: int, reason: str = "", measured: dict[str, tuple[float, float]] | None = None) -> int:
        """Append a status event for each id (a status already recorded is not repeated).

        ``measured``: id -> (objective, f2) of its mean measured curve, stored on ``measured`` events.
        """
        now = now_utc()
        measured = measured or {}
        rows = [
            {"event_id": _event_id(fid, status), "formulation_id": fid, "campaign": self.config.name, "round": round_, "status": str(status), "reason": reason, "time": now,
             "measured_objective": measured.get(fid, (np.nan, np.nan))[0], "measured_f2": measured.get(fid, (np.nan, np.nan))[1]}
            for fid in ids
        ]
        return self.ledger.append("events", rows)

    def _ids(self, round_: int, status: str) -> list[str]:
        frame = self.formulations()
        return frame.loc[(frame["round"] == round_) & (frame["status"] == status), "formulation_id"].tolist()

    # -- training ------------------------------------------------------------------
    def training_data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Rows (features + time hours), release fraction, curve groups, number of formulations."""
        return self.models.training_data()

    def train(self, round_: int, fit_members=None) -> TrainedModel | None:
        """Train the surrogate on every measured curve and store it (see :meth:`ModelStore.train`)."""
        return self.models.train(round_, fit_members)

    def load_model(self, version: str) -> ReleaseEnsemble:
        """The stored surrogate of that version."""
        return self.models.load(version)

    def latest_model(self) -> TrainedModel | None:
        """The latest stored surrogate, None before any training."""
        return self.models.latest()

    # -- proposing ----------------------------------------------------------------
    def prediction_times_hours(self) -> np.ndarray:
        """Times at which proposals store their predicted curve: the target's and the instrument's."""
        sampling = self.instruments["dissolution"].describe().get("sampling_times_hours", [])
        return np.unique(np.concatenate([np.asarray(self.config.target.times_hours, float), np.asarray(sampling, float)]))

    def proposal_context(self, round_: int, model: TrainedModel | None = None) -> ProposalContext:
        """What a recommender knows when it proposes for ``round_``."""
        return ProposalContext(self.config, self.space, round_, self.formulations(), model, self.ledger, self.parameters,
                               self.incumbent, self.prediction_times_hours, prior=self.models.prior)

    def propose(self, round_: int, fit_members=None, recommender: Recommender | None = None) -> list[str]:
        """Store the round's batch (idempotent: an existing batch is returned as it is).

        Until something is measured (in this campaign, imported into it, or in
        its ``[prior]``) a round is a scrambled Sobol design within the
        constraints; then every round trains the surrogate (``fit_members``: see
        :meth:`train`) and chooses by the acquisition function, with the model
        chosen by evidence (:func:`nanoloop.loop.design.recommenders.choose_recommender`).
        ``recommender`` replaces that choice (e.g. ``SobolStart(size=500)`` for
        a large first round).
        """
        frame = self.formulations()
        existing = frame.loc[frame["round"] == round_, "formulation_id"].tolist()
        if existing:
            return existing
        trained = self.train(round_, fit_members)  # None until something is measured (here, imported or in a [prior])
        context = self.proposal_context(round_, trained)
        recommender, reason = choose_recommender(context) if recommender is None else (recommender, "given by the caller")
        proposal = recommender.recommend(context).with_params(recommender=recommender.name, chosen_because=reason)
        return self._store_rows(proposal.to_rows(self.config.name, round_, self.config.seed, now_utc()), round_)

    def _store_rows(self, rows: list[dict], round_: int) -> list[str]:
        self.ledger.append("formulations", rows)
        ids = [r["formulation_id"] for r in rows]
        self.record(ids, Status.PROPOSED, round_)
        fault_point("after-proposal")
        return ids

    def incumbent(self) -> float:
        """Best objective among measured formulations that meet the constraints (0 for f2 when none is measured)."""
        from nanoloop.loop.design.objective import Objective

        objective = Objective.from_config(self.config)
        if not objective.constraints and objective.name == "f2":
            scores = measured_objective(self.ledger, self.config.target)
            return float(scores.max()) if len(scores) else 0.0
        chars = self.ledger.read("characterization") if objective.characterization_constraints else None
        return objective.incumbent(objective.measured(measured_mean_curves(self.ledger), chars))

    # -- approval -----------------------------------------------------------------
    def awaiting_approval(self, round_: int) -> list[str]:
        return self._ids(round_, Status.PROPOSED)

    def check_approval(self, round_: int, rejected: dict[str, str] | None = None, edits: dict[str, dict] | None = None) -> dict[str, dict]:
        """Validate an approval answer without writing anything; returns the edited recipes by original id.

        Raises:
            InputError: an id not awaiting approval, an id both rejected and
                edited, or an edit outside the design space.
        """
        rejected, edits = dict(rejected or {}), dict(edits or {})
        waiting = set(self.awaiting_approval(round_))
        unknown = (set(rejected) | set(edits)) - waiting
        if unknown:
            raise InputError(f"round {round_}: {sorted(unknown)} are not awaiting approval")
        both = sorted(set(rejected) & set(edits))
        if both:
            raise InputError(f"round {round_}: {both} are both rejected and edited; reject or edit an id, not both")
        frame = self.formulations().set_index("formulation_id")
        checked = {}
        for fid, changes in edits.items():
            if not isinstance(changes, dict) or not changes:
                raise InputError(f"edit of {fid}: expected {{variable: value}}, got {changes!r}")
            try:
                checked[fid] = self.space.validate({**recipe_of(frame.loc[fid, "parameters_json"]), **changes})
            except InputError as err:
                raise InputError(f"edit of {fid}: {err}") from None
        return checked

    def approve(self, round_: int, rejected: dict[str, str] | None = None, edits: dict[str, dict] | None = None, by: str = "") -> list[str]:
        """Approve the round's proposed batch, except rejected ids (id -> reason); edits replace a proposal.

        The whole answer is validated first (:meth:`check_approval`), so a bad
        answer writes nothing. The original of an edit is kept and marked
        ``edited``; the edited recipe is stored as a new formulation. ``by``
        (who approved) is kept on the approval events. Returns the approved ids.
        """
        rejected = dict(rejected or {})
        edited = self.check_approval(round_, rejected, edits)
        waiting = set(self.awaiting_approval(round_))
        frame = self.formulations().set_index("formulation_id")
        new_ids = []
        for fid, recipe in edited.items():
            row = {**frame.loc[fid].to_dict(), "origin": f"edit-of:{fid}", "created_at": now_utc()}
            row.update(repredicted_edit(self, row, recipe))  # the edit's own prediction, not the original's
            row.update(formulation_id=formulation_id(self.config.name, recipe), parameters_json=recipe_json(recipe))
            new_ids += self._store_rows([row], round_)
        for fid, reason in rejected.items():
            self.record([fid], Status.REJECTED, round_, reason or "rejected")
        self.record(list(edited), Status.EDITED, round_, "replaced by an edit")
        approved = sorted((waiting - set(rejected) - set(edited)) | set(new_ids))
        self.record(approved, Status.APPROVED, round_, f"approved by {by}" if by else "")
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
            items.append(WorkItem(key=fid, recipe=recipe_of(frame.loc[fid, "parameters_json"]), context=context))
        return items

    def dispatch_synthesis(self, round_: int) -> list[str]:
        """Send approved formulations to synthesis (the idempotency key is the formulation id).

        A recipe the instrument refuses for good is marked failed with its reason.
        """
        ids = self._ids(round_, Status.APPROVED)
        sent = self._submit_once(self.instruments["synthesis"], self._work_items(ids), round_)
        self.record(sent, Status.DISPATCHED, round_)
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
                self.record([err.item_key], Status.FAILED, round_, f"{instrument.kind}: {err}")
                fresh = [item for item in fresh if item.key != err.item_key]
        fault_point("after-dispatch")
        failed = set(self.states().pipe(lambda s: s[s == Status.FAILED]).index)
        return [item.key for item in items if item.key not in failed]

    def recover_lost_jobs(self, round_: int, kind: str) -> list[str]:
        """Resubmit in-flight jobs the instrument no longer knows (e.g. it restarted after a crash); returns the ids failed.

        Each lost job is submitted again under the same idempotency key (so an
        instrument that does know it does nothing twice); one still unknown
        after that is marked failed with the reason, so no run waits for it forever.
        """
        status = Status.DISPATCHED if kind == "synthesis" else Status.DISSOLVING
        ids = self._ids(round_, status)
        if not ids:
            return []
        instrument = self.instruments[kind]
        known = instrument.status(ids, timeout_s=self.timeout_s)
        lost = [k for k in ids if known.get(k, JobState.UNKNOWN) == JobState.UNKNOWN]
        if not lost:
            return []
        items = self._work_items(lost, with_characterization=kind == "dissolution")
        try:
            instrument.submit(items, timeout_s=self.timeout_s)
        except PermanentInstrumentError as err:
            if err.item_key not in lost:
                raise
            self.record([err.item_key], Status.FAILED, round_, f"{kind}: {err}")
        known = instrument.status(lost, timeout_s=self.timeout_s)
        gone = [k for k in lost if known.get(k, JobState.UNKNOWN) == JobState.UNKNOWN]
        for fid in gone:
            self.record([fid], Status.FAILED, round_, f"{kind}: the instrument no longer knows this job and did not take it again")
        return gone

    def collect_synthesis(self, round_: int, wait_s: float | None = None) -> dict[str, list[str]]:
        """Poll synthesis for dispatched formulations; store characterization, or the failure reason.

        A result that fails the plausibility checks (NaN or absurd values) is
        recorded as a failed synthesis with the problems found.
        """
        self.recover_lost_jobs(round_, "synthesis")
        ids = self._ids(round_, Status.DISPATCHED)
        instrument = self.instruments["synthesis"]
        done, failed = [], {}
        for r in wait_and_collect(instrument, ids, self._wait(wait_s), self.timeout_s):
            problems = [str(p) for p in result_problems(r)]
            if r.state != JobState.DONE or problems or r.characterization is None:
                failed[r.key] = f"synthesis: {r.reason or '; '.join(problems) or r.state.value}"
            else:
                done.append(r)
        self.ledger.append("characterization", [
            {"formulation_id": r.key, **r.characterization.__dict__, "instrument": instrument.name, "raw_checksum": r.raw_checksum} for r in done
        ])
        self.record([r.key for r in done], Status.SYNTHESIZED, round_)
        for fid, reason in failed.items():
            self.record([fid], Status.FAILED, round_, reason)
        return {"synthesized": [r.key for r in done], "failed": list(failed)}

    def _wait(self, wait_s: float | None) -> float:
        return self.config.instruments.collect_wait_s if wait_s is None else wait_s

    def dispatch_dissolution(self, round_: int) -> list[str]:
        """Start a dissolution test for each synthesized formulation."""
        ids = self._ids(round_, Status.SYNTHESIZED)
        sent = self._submit_once(self.instruments["dissolution"], self._work_items(ids, with_characterization=True), round_)
        self.record(sent, Status.DISSOLVING, round_)
        return sent

    def collect_dissolution(self, round_: int, wait_s: float | None = None) -> dict[str, list[str]]:
        """Ingest finished release curves (and their kinetic summary); failed tests are recorded.

        Policy for bad readings: NaN readings are dropped; a replicate with an
        implausible reading (above 110 % or below -5 %), or with broken times,
        is dropped whole and the reason kept on the ``measured`` event; a test
        with no usable replicate is failed.
        """
        self.recover_lost_jobs(round_, "dissolution")
        ids = self._ids(round_, Status.DISSOLVING)
        instrument = self.instruments["dissolution"]
        method = self.config.dissolution_method
        method_columns = {"apparatus": method.apparatus, "medium": method.medium, "volume_ml": method.volume_ml, "temperature_c": method.temperature_c}
        measured, failed, curve_rows, kinetics_rows = {}, [], [], []
        for r in wait_and_collect(instrument, ids, self._wait(wait_s), self.timeout_s):
            curves, notes = usable_curves(r)
            if r.state == JobState.DONE and r.reason:  # what the instrument dropped or flagged itself
                notes.insert(0, r.reason)
            rows = [
                {"formulation_id": r.key, "replicate": c.replicate, "time_hours": float(t), "release_pct": float(v), "instrument": instrument.name,
                 "raw_checksum": r.raw_checksum, **method_columns}
                for c in curves for t, v in zip(c.times_hours, c.release_pct)
                if np.isfinite(t) and np.isfinite(v)
            ]
            if r.state != JobState.DONE or not rows:
                failed.append(r.key)
                self.record([r.key], Status.FAILED, round_, f"dissolution: {r.reason or '; '.join(notes) or 'no valid readings'}")
                continue
            curve_rows += rows
            kinetics_rows.append(kinetics_row(r.key, rows))
            measured[r.key] = "; ".join(notes)
        # one append per table, whatever the batch size; a crash in between is resumed by collecting again
        self.ledger.append("curves", curve_rows)
        fault_point("during-ingest")
        self.ledger.append("kinetics", kinetics_rows)
        scores = self.measured_scores(curve_rows)
        for reason in dict.fromkeys(measured.values()):
            self.record([fid for fid, r in measured.items() if r == reason], "measured", round_, reason, measured=scores)
        return {"measured": list(measured), "failed": failed}

    def measured_scores(self, curve_rows: list[dict]) -> dict[str, tuple[float, float]]:
        """id -> (objective, f2 to the target) of each new mean measured curve."""
        if not curve_rows:
            return {}
        from nanoloop.loop.design.objective import Objective

        objective = Objective.from_config(self.config)
        chars = self.ledger.read("characterization") if objective.characterization_constraints else None
        scores = objective.measured(mean_curves(pd.DataFrame(curve_rows)), chars)
        return {fid: (float(r.objective), float(r.f2)) for fid, r in scores.iterrows()}

    def run_round(self, round_: int, recommender: Recommender | None = None) -> list[str]:
        """Every step of a round in this process, auto-approved, without Prefect (scripts, benchmarks, tests).

        ``recommender`` replaces the campaign's choice of who proposes (see :meth:`propose`).
        Returns the ids proposed for the round.
        """
        ids = self.propose(round_, recommender=recommender)
        if self.awaiting_approval(round_):
            self.approve(round_)
        self.dispatch_synthesis(round_)
        self.collect_synthesis(round_)
        self.dispatch_dissolution(round_)
        self.collect_dissolution(round_)
        return ids
