"""The recommender that proposes from the trained surrogate: correct, calibrate, search, describe.

:class:`EnsembleAcquisition` takes a round in five steps, each a function here:

1. the objective, with a model of characterization when constraints need one
   (:func:`objective_with_constraints`);
2. the curve model: the surrogate as the mean of a residual GP per target time,
   or a plain curve GP for a cold start (:func:`curve_model`);
3. the objective's spread, calibrated on the campaign's own record
   (:func:`~nanoloop.loop.design.calibration.calibrated_spread`);
4. the candidate search and the diverse batch (:func:`~nanoloop.loop.design.acquisition.search`);
5. what a reviewer sees per pick: the predicted curve and its band, the f2 with its
   widened 90 % interval, the distance to the measured data (:func:`describe_picks`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from nanoloop.loop.design.acquisition import AcquisitionSettings, Search, search
from nanoloop.loop.design.calibration import calibrated_spread, prospective_widening
from nanoloop.loop.design.candidates import SearchSettings, taken_checker
from nanoloop.loop.design.cold_start import FlatCurves
from nanoloop.loop.design.domain import distance_to_data, is_outside
from nanoloop.loop.design.measured import Measured
from nanoloop.loop.design.objective import Objective
from nanoloop.loop.design.recommenders import Proposal, ProposalContext
from nanoloop.loop.errors import InputError
from nanoloop.loop.models.base import curve_rows
from nanoloop.loop.models.predictive import PredictiveCurves, interval_90
from nanoloop.loop.models.property_model import PropertyModel, fit_property_model
from nanoloop.loop.models.residual_gp import ResidualCorrected


@dataclass(frozen=True)
class EnsembleAcquisition:
    """The trained surrogate, corrected and calibrated, searched by the configured acquisition.

    Attributes:
        curves_from: "ensemble" (the surrogate as the mean of a residual GP per target time) or
            "curve-gp" (a GP per target time on the measured release alone, the prior's
            formulations included when the prior is used jointly): the cold-start alternative.
        evidence: the cold-start figures behind the choice, stored in the provenance.
    """

    curves_from: str = "ensemble"
    evidence: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return "ensemble-acquisition" if self.curves_from == "ensemble" else "curve-gp-acquisition"

    def recommend(self, context: ProposalContext) -> Proposal:
        if context.model is None:
            raise InputError(f"campaign {context.campaign!r}, round {context.round}: the {self.name} recommender needs a trained "
                             "surrogate, and nothing is measured yet")
        acq, seed = context.acquisition, context.seed + context.round
        objective, property_model, notes = objective_with_constraints(context, seed)
        prior = acq.spread_prior if acq.spread_prior is not None else (1.0 if acq.residual_gp else 3.0)
        scale, notes["spread_calibrated_on"] = (calibrated_spread(objective, context.formulations, context.measured.by_id, prior)
                                                if acq.calibrate_spread else (prior, 0))
        model = curve_model(context, objective, self.curves_from, seed, notes)
        if context.model.prior_use:
            notes["prior"] = {k: v for k, v in context.model.prior_use.items() if k != "prior_notes"}
        if self.evidence:
            notes["cold_start"] = self.evidence
        settings = AcquisitionSettings(acq.strategy, acq.tradeoff, acq.beta, spread_scale=scale)
        candidates = SearchSettings(acq.pool_size, acq.refine_starts, acq.refine_steps, acq.diversity_length, seed=seed,
                                    pool_seed=context.seed * 1000 + context.round)
        found = search(model, objective, context.space, context.batch_size, context.incumbent, settings, candidates,
                       property_model=property_model, pending_encoded=context.pending if len(context.pending) else None,
                       is_taken=taken_checker(context.space, context.campaign, context.taken))
        return describe_picks(context, found, model, self.curves_from, {**found.batch.params, **notes,
                                                                           "pool_size": acq.pool_size, "refine_starts": acq.refine_starts}, seed)


def objective_with_constraints(context: ProposalContext, seed: int) -> tuple[Objective, PropertyModel | None, dict]:
    """The round's objective, the characterization model its constraints need, and the notes for the provenance.

    With fewer than 3 characterized formulations there is no characterization model:
    its constraints are left out of this round's objective and the notes say so.
    """
    objective, notes = context.objective, {}
    if not objective.characterization_constraints:
        return objective, None, notes
    names = [c.name for c in objective.characterization_constraints]
    model = characterization_model(context.space, context.formulations, context.characterization, names, seed)
    if model is None:
        notes["constraints_not_modelled"] = [c.describe() for c in objective.characterization_constraints] + ["fewer than 3 characterized formulations"]
        objective = Objective(objective.target, objective.goals, objective.curve_constraints)
    return objective, model, notes


def characterization_model(space, formulations: pd.DataFrame, characterization: pd.DataFrame, properties, seed: int = 0) -> PropertyModel | None:
    """The campaign's model of ``properties`` (size, PDI, EE ...) from its characterized formulations; None below 3.

    Args:
        space: the design space.
        formulations: the ledger's formulations table (recipes).
        characterization: the ledger's characterization table.
        properties: the properties to model.
        seed: seed of the trees.
    """
    if characterization.empty:
        return None
    means = characterization.groupby("formulation_id")[list(properties)].mean()
    stored = formulations.drop_duplicates("formulation_id").set_index("formulation_id")
    ids = [i for i in means.index if i in stored.index]
    if len(ids) < 3:
        return None
    return fit_property_model(space.encode(space.recipes(stored.loc[ids])), means.loc[ids], properties, seed=seed)


def curve_model(context: ProposalContext, objective: Objective, curves_from: str, seed: int, notes: dict):
    """The curves the acquisition scores: the surrogate corrected by residual GPs, or a plain curve GP (``curves_from``)."""
    acq, trained = context.acquisition, context.model
    notes["residual_gp_on"] = 0
    if curves_from == "curve-gp":
        model, notes["curve_gp_on"] = corrected_by_measurements(
            FlatCurves(), objective, context.measured, draws=acq.residual_draws, seed=seed, max_formulations=acq.residual_gp_max,
            select_mean=False, min_formulations=2, extra=_joint_prior(context, objective), gp_restarts=acq.gp_restarts)
        return model
    if not acq.residual_gp:
        return trained.model
    model, notes["residual_gp_on"] = corrected_by_measurements(
        trained.model, objective, context.measured, draws=acq.residual_draws, seed=seed, max_formulations=acq.residual_gp_max,
        select_mean=acq.residual_gp_select_mean, gp_restarts=acq.gp_restarts)
    notes["ensemble_as_gp_mean"] = list(getattr(model, "uses_ensemble_", []))
    return model


def _joint_prior(context: ProposalContext, objective: Objective) -> tuple[np.ndarray, np.ndarray] | None:
    """The prior's formulations for the curve GP, when this round's model uses the prior jointly."""
    use = (context.model.prior_use or {}).get("use")
    if context.prior is None or use != "joint":
        return None
    return context.prior.encoded, context.prior.at_times(objective.curve_times_hours)


def corrected_by_measurements(curve_model, objective: Objective, measured: Measured, *, draws: int = 4, seed: int = 0,
                              min_formulations: int = 4, max_formulations: int = 150, select_mean: bool = True,
                              extra: tuple[np.ndarray, np.ndarray] | None = None, gp_restarts: int = 1):
    """The curve model corrected by :class:`~nanoloop.loop.models.residual_gp.ResidualCorrected` on measured formulations.

    Args:
        curve_model: the fitted surrogate (``predict_curves``).
        objective: goals and constraints (the GPs are fitted at its curve times).
        measured: the measured formulations and their mean curves.
        draws: GP draws per member.
        seed: seed.
        min_formulations: below this many formulations the model is returned as it is.
        max_formulations: GP cost grows as n^3 (fit) and n^2 per candidate (spread): above this many,
            the GPs use the best half by measured objective and a random draw of the rest.
        select_mean: see :class:`~nanoloop.loop.models.residual_gp.ResidualCorrected`.
        extra: more formulations to fit on (encoded (m, d), release % at the objective's times (m, T)),
            e.g. a prior's; they count towards ``max_formulations`` after the measured ones.
        gp_restarts: optimiser restarts of each GP fit (``[acquisition] gp_restarts``).

    Returns:
        (model, number of formulations the GPs were fitted on).
    """
    if len(measured) + (0 if extra is None else len(extra[0])) < min_formulations:
        return curve_model, 0
    if len(measured) > max_formulations:
        score = objective.measured(measured.by_id)["objective"]
        order = score.reindex(list(measured.ids)).to_numpy()
        best = np.argsort(-np.nan_to_num(order, nan=-np.inf), kind="stable")[: max_formulations // 2]
        rest = np.setdiff1d(np.arange(len(measured)), best)
        others = np.random.default_rng(seed).choice(rest, max_formulations - len(best), replace=False)
        keep = np.zeros(len(measured), bool)
        keep[np.concatenate([best, others])] = True
        measured = measured.where(keep)
    times = objective.curve_times_hours
    X, y = measured.encoded, measured.release_at(times)
    if extra is not None:
        room = max(max_formulations - len(measured), 0)
        keep = np.sort(np.random.default_rng(seed).choice(len(extra[0]), min(room, len(extra[0])), replace=False))
        X, y = np.vstack([X, extra[0][keep]]), np.vstack([y, extra[1][keep]])
    if len(X) < min_formulations:
        return curve_model, 0
    corrected = ResidualCorrected(curve_model, times, draws, seed=seed, select_mean=select_mean, restarts=gp_restarts).fit(X, y)
    return corrected, len(X)


def describe_picks(context: ProposalContext, found: Search, model, curves_from: str, params: dict, seed: int) -> Proposal:
    """The proposal: the picked recipes, their predicted curves and bands, f2 intervals and distances to the data."""
    batch, trained = found.batch, context.model
    picked = found.candidates.frame.iloc[batch.indices]
    chosen = found.candidates.encoded[batch.indices]
    times = context.times_hours
    if curves_from == "curve-gp":  # the GP's curves are at the objective's times only
        times = np.asarray(context.objective.curve_times_hours, float)
        drawn = 100 * np.asarray(model.predict_curves(chosen, times))
        mean, std = drawn.mean(axis=0).reshape(-1) / 100, drawn.std(axis=0).reshape(-1) / 100
    else:
        mean, std = trained.model.predict(curve_rows(chosen, times), return_std=True)
    return Proposal(
        tuple(context.space.validate(r) for r in picked.to_dict("records")), origin="acquisition", acquisition=context.acquisition.strategy,
        params=params, model_version=trained.version, times_hours=times, release_pct=100 * mean.reshape(len(picked), -1),
        release_std_pct=100 * std.reshape(len(picked), -1), objective_mean=batch.objective_mean,
        objective_std=batch.objective_std, acquisition_value=batch.acquisition_value,
        row_params=f2_and_distance(context, model, chosen, seed),
    )


def f2_and_distance(context: ProposalContext, model, chosen: np.ndarray, seed: int) -> tuple[dict, ...]:
    """Per picked formulation: the f2 a reviewer sees and how far it lies from the measured data.

    The f2 interval comes from the calibrated predictive distribution (members, noise, residual GP;
    :mod:`nanoloop.loop.models.predictive`), widened by the campaign's own prospective errors once there
    are some; the distance is to the nearest measured formulation (:mod:`nanoloop.loop.design.domain`).
    Computed after the picks: it never changes which formulations are chosen.
    """
    distance = distance_to_data(chosen, context.measured.encoded)
    f2_target = Objective(context.objective.target)
    f2 = f2_target.samples(PredictiveCurves(model, seed=seed), chosen)
    lower, upper = interval_90(f2.values)
    curves = context.measured.by_id
    widen, _ = prospective_widening(context.formulations, f2_target.measured(curves)["f2"] if curves else {})
    lower, upper = f2.mean - widen * (f2.mean - lower), f2.mean + widen * (upper - f2.mean)
    return tuple({"distance_to_data": round(float(distance[i]), 4), "outside_measured_data": bool(is_outside(distance[i])),
                  "f2": round(float(f2.mean[i]), 3), "f2_lower_90": round(float(lower[i]), 3), "f2_upper_90": round(float(upper[i]), 3),
                  "f2_widening": round(float(widen), 4)} for i in range(len(chosen)))
