"""Recommenders: who proposes a round's batch, and with what predictions and provenance.

A recommender answers ``recommend(context) -> Proposal``. The campaign picks
one per round (:func:`choose_recommender`) and stores ``Proposal.to_rows()``
in the ledger's formulations table; the recommender's name and the reason it
was chosen are kept in each row's ``acquisition_params_json``.

- :class:`SobolStart`: a scrambled Sobol design within the constraints, while
  there is no trained surrogate (round 0, or nothing measured yet);
- :class:`EnsembleAcquisition`: the ensemble surrogate as the mean function of
  a residual GP per target time, its spread calibrated on the campaign's own
  record, a property model for characterization constraints, then the
  candidate search and acquisition of :func:`nanoloop.loop.design.acquisition.search`.

A new recommender (a cold-start design chosen by evidence, another back end)
implements the protocol and enters :func:`choose_recommender`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Callable, Protocol

import numpy as np
import pandas as pd

from nanoloop.loop import __version__
from nanoloop.loop.errors import InputError
from nanoloop.loop.design.space import formulation_id, recipe_json
from nanoloop.loop.store.status import PENDING  # moves to the campaign with the data seam



@dataclass(frozen=True)
class ProposalContext:
    """What a recommender may know when it proposes a round's batch.

    Attributes:
        config: the campaign config.
        space: its design space.
        round: the round to propose for.
        formulations: every stored formulation with its latest ``status``.
        model: the surrogate trained for this round (a
            :class:`~nanoloop.loop.campaign.training.TrainedModel`), None before any measurement.
        ledger: the campaign's ledger (read only).
        parameters: ``parameters(frame)`` -> design variables of stored formulations.
        incumbent: ``incumbent()`` -> best measured objective among feasible formulations.
        prediction_times_hours: ``prediction_times_hours()`` -> times the predicted curves are stored at.
        prior: the ``[prior]`` data (:class:`~nanoloop.loop.design.prior.PriorData`), None without one.
    """

    config: object
    space: object
    round: int
    formulations: pd.DataFrame
    model: object | None
    ledger: object
    parameters: Callable[[pd.DataFrame], pd.DataFrame]
    incumbent: Callable[[], float]
    prediction_times_hours: Callable[[], np.ndarray]
    prior: object | None = None

    @property
    def taken(self) -> set[str]:
        """Ids of every stored formulation (measured, in flight, rejected): never proposed again."""
        return set(self.formulations["formulation_id"])


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

    def to_rows(self, campaign: str, round_: int, seed: int, created_at: pd.Timestamp) -> list[dict]:
        """The ledger's formulations rows, one per recipe."""
        rows = []
        for i, recipe in enumerate(self.recipes):
            predicted = self.times_hours is not None
            rows.append({
                "formulation_id": formulation_id(campaign, recipe), "campaign": campaign, "round": round_, "seed": seed,
                "parameters_json": recipe_json(recipe), "origin": self.origin, "acquisition": self.acquisition,
                "acquisition_params_json": json.dumps({**self.params, **(self.row_params[i] if self.row_params else {})}), "model_version": self.model_version,
                "nanoloop_version": __version__, "created_at": created_at,
                "predicted_times_hours": self.times_hours.tolist() if predicted else None,
                "predicted_release_pct": self.release_pct[i].tolist() if predicted else None,
                "predicted_std_pct": self.release_std_pct[i].tolist() if predicted else None,
                "predicted_objective": _at(self.objective_mean, i), "objective_std": _at(self.objective_std, i),
                "acquisition_value": _at(self.acquisition_value, i),
            })
        return rows


def _at(values: np.ndarray | None, i: int) -> float:
    return np.nan if values is None else float(values[i])


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
        config, space, taken = context.config, context.space, context.taken
        size = config.batch_size if self.size is None else self.size
        candidates = space.sample(size + len(taken), seed=config.seed + context.round)
        recipes = [space.validate(r) for r in candidates.to_dict("records")]
        fresh = tuple(r for r in recipes if formulation_id(config.name, r) not in taken)[:size]
        return Proposal(fresh, origin="initial-design", acquisition="sobol", params={"scramble": True})


@dataclass(frozen=True)
class EnsembleAcquisition:
    """The trained ensemble, corrected and calibrated, searched by the configured acquisition.

    Attributes:
        curves_from: "ensemble" (the ensemble as the mean of a residual GP per target time) or
            "curve-gp" (a GP per target time on the measured release alone, the prior's
            formulations included when the prior is used jointly): the cold-start alternative.
    """

    curves_from: str = "ensemble"
    evidence: dict = field(default_factory=dict)  # the cold-start figures behind the choice, stored in the provenance

    @property
    def name(self) -> str:
        return "ensemble-acquisition" if self.curves_from == "ensemble" else "curve-gp-acquisition"

    def recommend(self, context: ProposalContext) -> Proposal:
        from nanoloop.loop.design.acquisition import AcquisitionSettings, search
        from nanoloop.loop.design.candidates import SearchSettings, taken_checker
        from nanoloop.loop.store.measurements import measured_mean_curves  # moves to the campaign with the data seam
        from nanoloop.loop.design.objective import Objective
        from nanoloop.loop.models.property_model import fit_property_model
        from nanoloop.loop.models.residual_gp import residual_corrected
        from nanoloop.loop.models.ensemble import curve_rows

        config, space, frame, trained = context.config, context.space, context.formulations, context.model
        if trained is None:
            raise InputError(f"campaign {config.name!r}, round {context.round}: the {self.name} recommender needs a trained "
                             "surrogate, and nothing is measured yet")
        acq, seed = config.acquisition, config.seed + context.round
        objective, property_model, notes = Objective.from_config(config), None, {}
        if objective.characterization_constraints:  # size, EE, ...: a model of characterization
            names = [c.name for c in objective.characterization_constraints]
            property_model = fit_property_model(space, frame, context.ledger.read("characterization"), context.parameters, names, seed=seed)
            if property_model is None:  # said in the proposal's provenance, not silent
                notes["constraints_not_modelled"] = [c.describe() for c in objective.characterization_constraints] + ["fewer than 3 characterized formulations"]
                objective = Objective(objective.target, objective.goals, objective.curve_constraints)
        in_flight = frame[frame["status"].isin(PENDING)]  # penalized like picks, for diversity
        pending = space.encode(context.parameters(in_flight)) if len(in_flight) else None
        # the ensemble as the mean function of a GP per target time; its spread calibrated on this campaign's record
        curves = measured_mean_curves(context.ledger)
        prior = acq.spread_prior if acq.spread_prior is not None else (1.0 if acq.residual_gp else 3.0)
        scale, notes["spread_calibrated_on"] = calibrated_spread(objective, frame, curves, prior) if acq.calibrate_spread else (prior, 0)
        model, notes["residual_gp_on"] = (trained.model, 0)
        if self.curves_from == "curve-gp":
            from nanoloop.loop.design.cold_start import FlatCurves

            extra = _joint_prior(context, trained, objective)
            model, notes["curve_gp_on"] = residual_corrected(FlatCurves(),
                                                             objective, space, frame, curves, context.parameters, draws=acq.residual_draws, seed=seed,
                                                             max_formulations=acq.residual_gp_max, select_mean=False, min_formulations=2, extra=extra)
        elif acq.residual_gp:
            model, notes["residual_gp_on"] = residual_corrected(trained.model, objective, space, frame, curves, context.parameters,
                                                                draws=acq.residual_draws, seed=seed, max_formulations=acq.residual_gp_max,
                                                                select_mean=acq.residual_gp_select_mean)
            notes["ensemble_as_gp_mean"] = list(getattr(model, "uses_ensemble_", []))
        if trained.prior_use:
            notes["prior"] = {k: v for k, v in trained.prior_use.items() if k != "prior_notes"}
        if self.evidence:
            notes["cold_start"] = self.evidence
        settings = AcquisitionSettings(acq.strategy, acq.tradeoff, acq.beta, spread_scale=scale)
        candidates = SearchSettings(acq.pool_size, acq.refine_starts, acq.refine_steps, acq.diversity_length, seed=seed,
                                    pool_seed=config.seed * 1000 + context.round)
        found = search(model, objective, space, config.batch_size, context.incumbent(), settings, candidates,
                       property_model=property_model, pending_encoded=pending, is_taken=taken_checker(space, config.name, context.taken))
        batch = found.batch
        picked = found.candidates.frame.iloc[batch.indices]
        times = context.prediction_times_hours()
        chosen = found.candidates.encoded[batch.indices]
        if self.curves_from == "curve-gp":  # the GP's curves are at the objective's times only
            times = np.asarray(objective.curve_times_hours, float)
            drawn = 100 * np.asarray(model.predict_curves(chosen, times))
            mean, std = drawn.mean(axis=0).reshape(-1) / 100, drawn.std(axis=0).reshape(-1) / 100
        else:
            mean, std = trained.model.predict(curve_rows(chosen, times), return_std=True)
        return Proposal(
            tuple(space.validate(r) for r in picked.to_dict("records")), origin="acquisition", acquisition=acq.strategy,
            params={**batch.params, **notes, "pool_size": acq.pool_size, "refine_starts": acq.refine_starts},
            model_version=trained.version, times_hours=times, release_pct=100 * mean.reshape(len(picked), -1),
            release_std_pct=100 * std.reshape(len(picked), -1), objective_mean=batch.objective_mean,
            objective_std=batch.objective_std, acquisition_value=batch.acquisition_value,
            row_params=_f2_and_distance(context, model, chosen, frame, curves, seed),
        )


def _joint_prior(context: ProposalContext, trained, objective) -> tuple[np.ndarray, np.ndarray] | None:
    """The prior's formulations for the curve GP, when this round's model uses the prior jointly."""
    if context.prior is None or not trained.prior_use or trained.prior_use.get("use") != "joint":
        return None
    return context.prior.encoded, context.prior.at_times(objective.curve_times_hours)


def _f2_and_distance(context: ProposalContext, model, chosen: np.ndarray, frame: pd.DataFrame, curves: dict, seed: int) -> tuple[dict, ...]:
    """Per picked formulation: the f2 a reviewer sees and how far it lies from the measured data.

    The f2 interval comes from the calibrated predictive distribution (members, noise, residual GP;
    :mod:`nanoloop.loop.models.predictive`), widened by the campaign's own prospective errors once there
    are some; the distance is to the nearest measured formulation (:mod:`nanoloop.loop.design.domain`).
    Computed after the picks: it never changes which formulations are chosen.
    """
    from nanoloop.loop.design.domain import distance_to_data, is_outside, measured_encoded
    from nanoloop.loop.design.objective import Objective
    from nanoloop.loop.models.predictive import PredictiveCurves, interval_90, prospective_widening

    distance = distance_to_data(chosen, measured_encoded(context))
    f2_target = Objective(context.config.target)
    f2 = f2_target.samples(PredictiveCurves(model, seed=seed), chosen)
    lower, upper = interval_90(f2.values)
    widen, _ = prospective_widening(frame, f2_target.measured(curves)["f2"] if curves else {})
    lower, upper = f2.mean - widen * (f2.mean - lower), f2.mean + widen * (upper - f2.mean)
    return tuple({"distance_to_data": round(float(distance[i]), 4), "outside_measured_data": bool(is_outside(distance[i])),
                  "f2": round(float(f2.mean[i]), 3), "f2_lower_90": round(float(lower[i]), 3), "f2_upper_90": round(float(upper[i]), 3),
                  "f2_widening": round(float(widen), 4)} for i in range(len(chosen)))


def calibrated_spread(objective, formulations, mean_curves: dict, prior: float) -> tuple[float, int]:
    """:func:`nanoloop.loop.design.objective.spread_scale` from a campaign's record of model-made proposals.

    Uses the predicted objective and spread stored with each proposal (edits
    excluded) and the objective of its measured mean curve.
    """
    from nanoloop.loop.design.objective import spread_scale

    made = formulations[(formulations["model_version"] != "") & ~formulations["origin"].str.startswith("edit-of:")
                        & formulations["predicted_objective"].notna()]
    if made.empty or not mean_curves:
        return spread_scale([], [], [], prior=prior)
    measured = objective.measured(mean_curves)["objective"]
    made = made[made["formulation_id"].isin(measured.index)]
    return spread_scale(made["predicted_objective"], made["objective_std"], measured.reindex(made["formulation_id"]).to_numpy(), prior=prior)


def choose_recommender(context: ProposalContext) -> tuple[Recommender, str]:
    """The recommender for this round and why it was chosen.

    While few formulations are measured, the model that proposes (the ensemble or a plain
    curve GP) is ``[acquisition] cold_start``'s: the ensemble by default, or with "auto" the one
    with the lower prospective error on the rounds measured so far
    (:func:`nanoloop.loop.design.cold_start.choose_proposer`).
    """
    from nanoloop.loop.design.cold_start import choose_proposer

    if context.model is None:
        return SobolStart(), "no trained surrogate yet (round 0 or nothing measured)"
    imported = int((context.formulations["origin"] == "imported").sum()) if len(context.formulations) else 0
    trained = f"surrogate {context.model.version} trained on {context.model.n_formulations} measured formulations"
    if imported:
        trained += f" ({imported} imported from the lab's files)"
    if context.model.prior_use:
        trained += f" and {context.model.prior_use['prior_formulations']} prior ones ({context.model.prior_use['use']})"
    if context.round == 0:
        trained += ", so no Sobol start"
    curves_from, why, figures = choose_proposer(context)
    return EnsembleAcquisition(curves_from=curves_from, evidence=figures), f"{trained}; {why}"
