"""Recommenders: who proposes a round's batch, from plain data, with what predictions and provenance.

The seam is one protocol, ``recommend(context) -> Proposal``:
:class:`ProposalContext` is plain data the campaign reads from its ledger (the
design space, the objective, the measured formulations and their curves, the
pending ones, the incumbent, the times to predict at, the trained model), so a
recommender never touches the ledger and another back end (BoTorch, BayBE) is
one class. :class:`Proposal` is a frozen batch with its predictions and
provenance; the campaign stores it (:mod:`nanoloop.loop.campaign.proposing`
chooses the recommender and writes the rows).

- :class:`SobolStart`: a scrambled Sobol design within the constraints, while
  there is no trained surrogate (round 0, or nothing measured yet);
- :class:`~nanoloop.loop.design.ensemble_recommender.EnsembleAcquisition`: the
  trained surrogate (corrected by residual GPs, its spread calibrated on the
  campaign's record) searched by the configured acquisition.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Protocol

import numpy as np
import pandas as pd

from nanoloop.loop.design.measured import Measured
from nanoloop.loop.design.objective import Objective
from nanoloop.loop.design.prior import PriorData
from nanoloop.loop.design.settings import AcquisitionConfig
from nanoloop.loop.design.space import DesignSpace, formulation_id
from nanoloop.loop.models.base import TrainedModel


@dataclass(frozen=True)
class ProposalContext:
    """What a recommender knows when it proposes a round's batch: plain data, no ledger, no callbacks.

    Attributes:
        campaign: the campaign's name (a formulation's id hashes it with the recipe).
        round: the round to propose for.
        seed: the campaign's seed (recommenders add the round).
        batch_size: formulations to propose.
        space: the design space.
        objective: goals and constraints, as the campaign scores measured formulations.
        acquisition: the ``[acquisition]`` settings.
        times_hours: times at which proposals store their predicted curve, shape (T,).
        incumbent: best measured objective among formulations that meet the constraints.
        formulations: every stored formulation (the ledger's table) with its latest ``status``;
            model-made ones carry the predictions stored with them (the campaign's prospective record).
        measured: the measured formulations with their mean curves.
        pending: unit encoding of the formulations approved or in the lab, shape (p, d).
        characterization: measured characterization, one row per formulation and measurement
            (``formulation_id`` and :meth:`~nanoloop.loop.lab.instruments.Characterization.fields`).
        model: the surrogate trained for this round, None before anything is measured.
        prior: the ``[prior]`` measurements in this campaign's encoding, None without one.
    """

    campaign: str
    round: int
    seed: int
    batch_size: int
    space: DesignSpace
    objective: Objective
    acquisition: AcquisitionConfig
    times_hours: np.ndarray
    incumbent: float
    formulations: pd.DataFrame
    measured: Measured
    pending: np.ndarray
    characterization: pd.DataFrame
    model: TrainedModel | None = None
    prior: PriorData | None = None

    @cached_property
    def taken(self) -> frozenset[str]:
        """Ids of every stored formulation (measured, in flight, rejected): never proposed again."""
        return frozenset(self.formulations["formulation_id"])


@dataclass(frozen=True)
class Proposal:
    """A batch of formulations with its predictions and provenance.

    Attributes:
        recipes: validated design variables, one dict per formulation.
        origin: "initial-design" or "acquisition".
        acquisition: "sobol" or the acquisition strategy.
        params: provenance (JSON-ready): recommender, why it was chosen, settings, notes.
        model_version: the surrogate's version ("" without one).
        times_hours: times of the predicted curves, shape (T,).
        release_pct: predicted mean release, %, shape (k, T).
        release_std_pct: its predictive std, %, shape (k, T).
        objective_mean: predicted objective (mean over members), shape (k,).
        objective_std: its spread over members, shape (k,).
        acquisition_value: the strategy's utility when each was picked, shape (k,).
        row_params: per-formulation provenance added to ``params`` (e.g. the f2 interval and
            the distance to the measured data), one dict per recipe; None for none.
    """

    recipes: tuple[dict, ...]
    origin: str
    acquisition: str
    params: dict = field(default_factory=dict)
    model_version: str = ""
    times_hours: np.ndarray | None = None
    release_pct: np.ndarray | None = None
    release_std_pct: np.ndarray | None = None
    objective_mean: np.ndarray | None = None
    objective_std: np.ndarray | None = None
    acquisition_value: np.ndarray | None = None
    row_params: tuple[dict, ...] | None = None

    def __len__(self) -> int:
        return len(self.recipes)

    def with_params(self, **params) -> "Proposal":
        """The same proposal with more provenance."""
        return replace(self, params={**self.params, **params})


class Recommender(Protocol):
    """Anything that proposes a batch."""

    name: str

    def recommend(self, context: ProposalContext) -> Proposal:
        """The batch for ``context.round`` (never a formulation in ``context.taken``)."""


@dataclass(frozen=True)
class SobolStart:
    """A scrambled Sobol design within the constraints (seed: the campaign's seed plus the round).

    Attributes:
        size: formulations to propose (default: the campaign's batch size).
    """

    size: int | None = None
    name: str = "sobol-start"

    def recommend(self, context: ProposalContext) -> Proposal:
        space, taken = context.space, context.taken
        size = context.batch_size if self.size is None else self.size
        candidates = space.sample(size + len(taken), seed=context.seed + context.round)
        recipes = [space.validate(r) for r in candidates.to_dict("records")]
        fresh = tuple(r for r in recipes if formulation_id(context.campaign, r) not in taken)[:size]
        return Proposal(fresh, origin="initial-design", acquisition="sobol", params={"scramble": True})
