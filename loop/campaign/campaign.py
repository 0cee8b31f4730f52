"""A campaign: every step of a round as a plain method over the ledger.

The state lives in the ledger, so each step first reads what is stored and
does only what is missing: a step run twice, or after a crash, changes nothing
that is already done. Prefect flows call these steps; so can a Python session.
A formulation's statuses and their lifecycle: :class:`~nanoloop.loop.store.status.Status`.

The :class:`Campaign` is the one stateful object; its steps live in modules by
concern: this one (opening, state, proposing, a whole round),
:mod:`~nanoloop.loop.campaign.approval` (approve, reject, edit),
:mod:`~nanoloop.loop.campaign.lab_steps` (dispatch, collect, ingest),
:mod:`~nanoloop.loop.campaign.proposing` (the recommender's data and choice) and
:mod:`~nanoloop.loop.campaign.training` (the models, as ``campaign.models``).
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import pandas as pd

from nanoloop.loop.campaign.approval import ApprovalSteps
from nanoloop.loop.campaign.lab_steps import LabSteps
from nanoloop.loop.campaign.proposing import choose_recommender, proposal_context, proposal_rows
from nanoloop.loop.campaign.training import ModelStore
from nanoloop.loop.config import CampaignConfig
from nanoloop.loop.design.measured import Measured
from nanoloop.loop.design.objective import Objective
from nanoloop.loop.design.recommenders import Recommender
from nanoloop.loop.errors import InputError
from nanoloop.loop.faults import fault_point
from nanoloop.loop.store.events import record_events
from nanoloop.loop.store.ledger import Ledger, latest_status, now_utc
from nanoloop.loop.store.measurements import measured_mean_curves, measured_objective
from nanoloop.loop.store.status import Status, TERMINAL, status_of
from nanoloop.loop.store.stored_config import config_changes, read_stored_config, store_config


class Campaign(ApprovalSteps, LabSteps):
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
        self.models = ModelStore(ledger, config)
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
        frame["status"] = status_of(frame["formulation_id"], states)
        return frame

    def states(self) -> pd.Series:
        """Latest status per formulation id."""
        return latest_status(self.ledger)

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

    def record(self, ids, status: Status, round_: int, reason: str = "", measured: dict[str, tuple[float, float]] | None = None) -> int:
        """Append a ``status`` event for each id (a status already recorded is not repeated); returns how many were written.

        ``measured``: id -> (objective, f2) of its mean measured curve, stored on ``measured`` events.
        """
        return record_events(self.ledger, self.config.name, ids, status, round_, reason, measured)

    def formulation_ids(self, round_: int, status: Status) -> list[str]:
        """Ids of the round's formulations whose latest status is ``status``."""
        frame = self.formulations()
        return frame.loc[(frame["round"] == round_) & (frame["status"] == status), "formulation_id"].tolist()

    def measured(self) -> Measured:
        """The measured formulations (imported ones included) with their mean curves."""
        return Measured.of(self.ledger.read("formulations"), measured_mean_curves(self.ledger), self.space)

    # -- deprecated since 0.2.0 (removed in 0.3.0): the models are ``campaign.models`` ----------
    def train(self, round_: int, fit_members=None):
        """Deprecated: :meth:`campaign.models.train <nanoloop.loop.campaign.training.ModelStore.train>`."""
        _deprecated("campaign.train(...)", "campaign.models.train(...)")
        return self.models.train(round_, fit_members)

    def training_data(self):
        """Deprecated: :meth:`campaign.models.training_data <nanoloop.loop.campaign.training.ModelStore.training_data>`."""
        _deprecated("campaign.training_data()", "campaign.models.training_data()")
        return self.models.training_data()

    # -- proposing ----------------------------------------------------------------
    def prediction_times_hours(self) -> np.ndarray:
        """Times at which proposals store their predicted curve: the target's and the instrument's."""
        sampling = self.instruments["dissolution"].describe().get("sampling_times_hours", [])
        return np.unique(np.concatenate([np.asarray(self.config.target.times_hours, float), np.asarray(sampling, float)]))

    def propose(self, round_: int, fit_members=None, recommender: Recommender | None = None) -> list[str]:
        """Store the round's batch (idempotent: an existing batch is returned as it is).

        Until something is measured (in this campaign, imported into it, or in
        its ``[prior]``) a round is a scrambled Sobol design within the
        constraints; then every round trains the surrogate (``fit_members``: see
        :meth:`~nanoloop.loop.campaign.training.ModelStore.train`) and chooses by the acquisition function, with the model
        chosen by evidence (:func:`nanoloop.loop.campaign.proposing.choose_recommender`).
        ``recommender`` replaces that choice (e.g. ``SobolStart(size=500)`` for
        a large first round).
        """
        frame = self.formulations()
        existing = frame.loc[frame["round"] == round_, "formulation_id"].tolist()
        if existing:
            return existing
        trained = self.models.train(round_, fit_members)  # None until something is measured (here, imported or in a [prior])
        context = proposal_context(self, round_, trained, self.prediction_times_hours())
        recommender, reason = choose_recommender(self, context) if recommender is None else (recommender, "given by the caller")
        proposal = recommender.recommend(context).with_params(recommender=recommender.name, chosen_because=reason)
        return self.add_proposed(proposal_rows(proposal, self.config.name, round_, self.config.seed, now_utc()), round_)

    def add_proposed(self, rows: list[dict], round_: int) -> list[str]:
        """Store formulations rows (the ledger's schema) as proposed in ``round_``; returns their ids."""
        self.ledger.append("formulations", rows)
        ids = [r["formulation_id"] for r in rows]
        self.record(ids, Status.PROPOSED, round_)
        fault_point("after-proposal")
        return ids

    def incumbent(self) -> float:
        """Best objective among measured formulations that meet the constraints (0 for f2 when none is measured)."""
        objective = Objective.from_config(self.config)
        if not objective.constraints and objective.name == "f2":
            scores = measured_objective(self.ledger, self.config.target)
            return float(scores.max()) if len(scores) else 0.0
        chars = self.ledger.read("characterization") if objective.characterization_constraints else None
        return objective.incumbent(objective.measured(measured_mean_curves(self.ledger), chars))

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


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"{old} is deprecated and goes in nanoloop 0.3.0: use {new}", DeprecationWarning, stacklevel=3)
