"""Proposing a round: the data a recommender is given, who proposes and why, and the rows the ledger keeps.

The campaign reads its ledger once into a
:class:`~nanoloop.loop.design.recommenders.ProposalContext` (plain data), chooses the
recommender by evidence on its own record (:func:`choose_recommender`), and stores
the :class:`~nanoloop.loop.design.recommenders.Proposal` as formulations rows
(:func:`proposal_rows`) with the recommender's name and the reason it was chosen.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd

from nanoloop.loop import __version__
from nanoloop.loop.design.cold_start import replay_errors
from nanoloop.loop.design.ensemble_recommender import EnsembleAcquisition, corrected_by_measurements
from nanoloop.loop.design.measured import Measured
from nanoloop.loop.design.objective import Objective
from nanoloop.loop.design.recommenders import Proposal, ProposalContext, Recommender, SobolStart
from nanoloop.loop.design.space import formulation_id, recipe_json
from nanoloop.loop.models.base import TrainedModel
from nanoloop.loop.models.build import load_release_model
from nanoloop.loop.store.measurements import measured_mean_curves
from nanoloop.loop.store.status import PENDING


def proposal_context(campaign, round_: int, model: TrainedModel | None, times_hours) -> ProposalContext:
    """What a recommender knows when it proposes for ``round_``, read from ``campaign``'s ledger.

    Args:
        campaign: the :class:`~nanoloop.loop.campaign.campaign.Campaign`.
        round_: the round to propose for.
        model: the surrogate trained for the round (None before anything is measured).
        times_hours: times at which the proposals' predicted curves are stored, shape (T,).
    """
    config, space, ledger = campaign.config, campaign.space, campaign.ledger
    formulations = campaign.formulations()
    pending = formulations[formulations["status"].isin(PENDING)]  # penalised like picks, for diversity
    return ProposalContext(
        campaign=config.name, round=round_, seed=config.seed, batch_size=config.batch_size, space=space,
        objective=Objective.from_config(config), acquisition=config.acquisition, times_hours=np.asarray(times_hours, float),
        incumbent=campaign.incumbent(), formulations=formulations,
        measured=Measured.of(formulations, measured_mean_curves(ledger), space),
        pending=space.encode(space.recipes(pending)) if len(pending) else np.empty((0, len(space.feature_names)), np.float32),
        characterization=ledger.read("characterization"), model=model, prior=campaign.models.prior,
    )


def choose_recommender(campaign, context: ProposalContext) -> tuple[Recommender, str]:
    """The recommender for this round and why it was chosen.

    Without a trained surrogate, a Sobol start. Then, while few formulations are measured,
    the model that proposes (the ensemble or a plain curve GP) is ``[acquisition] cold_start``'s:
    the ensemble by default, or with "auto" the one with the lower prospective error on the
    rounds measured so far (:func:`choose_proposer`).
    """
    if context.model is None:
        return SobolStart(), "no trained surrogate yet (round 0 or nothing measured)"
    frame, model = context.formulations, context.model
    imported = int((frame["origin"] == "imported").sum()) if len(frame) else 0
    trained = f"surrogate {model.version} trained on {model.n_formulations} measured formulations"
    if imported:
        trained += f" ({imported} imported from the lab's files)"
    if model.prior_use:
        trained += f" and {model.prior_use['prior_formulations']} prior ones ({model.prior_use['use']})"
    if context.round == 0:
        trained += ", so no Sobol start"
    curves_from, why, figures = choose_proposer(campaign, context)
    return EnsembleAcquisition(curves_from=curves_from, evidence=figures), f"{trained}; {why}"


def choose_proposer(campaign, context: ProposalContext) -> tuple[str, str, dict]:
    """Which model proposes this round: "ensemble" or "curve-gp", why, and the prospective errors behind it.

    With ``cold_start = "auto"`` each earlier round is replayed as it was: the round's stored
    model (with its residual GPs on what was measured before the round) against a curve GP
    refitted on the same measurements, both scored on the round's measured formulations
    (:func:`nanoloop.loop.design.cold_start.replay_errors`).
    """
    acq, measured, frame = context.acquisition, context.measured, context.formulations
    if acq.cold_start != "auto":
        return acq.cold_start, f"set by [acquisition] cold_start = {acq.cold_start!r}", {}
    objective = context.objective
    times = objective.curve_times_hours
    if len(measured) >= acq.cold_start_until:
        return "ensemble", f"{len(measured)} measured formulations (cold start ends at {acq.cold_start_until})", {}
    prior = None
    if context.prior is not None and (context.model.prior_use or {}).get("use") == "joint":
        prior = (context.prior.encoded, context.prior.at_times(times))
    rounds = []
    for round_ in sorted(r for r in frame["round"].unique() if 0 <= r < context.round):
        made = frame[(frame["round"] == round_) & ~frame["origin"].str.startswith("edit-of:")]
        after = measured.where(np.isin(measured.ids, made["formulation_id"]))
        before = measured.where(measured.rounds < round_)
        Xb, Yb = before.encoded, before.release_at(times)
        if prior is not None:
            Xb, Yb = np.vstack([Xb, prior[0]]), np.vstack([Yb, prior[1]])
        versions = made["model_version"].replace("", np.nan).dropna().unique()
        rounds.append({"before": (Xb, Yb), "after": (after.encoded, after.release_at(times)),
                       "ensemble": _replayed_model(campaign, versions, objective, before, round_) if len(versions) else None})
    errors = replay_errors(rounds, times, seed=context.seed, restarts=acq.gp_restarts)
    replayed = sum(1 for r in rounds if r["ensemble"] is not None and len(r["before"][0]) >= 2 and len(r["after"][0]))
    figures = {"prospective_mae_pct": errors, "replayed_rounds": replayed}
    if "ensemble" not in errors or "curve-gp" not in errors:
        return "ensemble", "no model-made round of this campaign measured yet: the ensemble (release laws as the GP's mean) proposes", figures
    name = "curve-gp" if errors["curve-gp"] < errors["ensemble"] else "ensemble"
    return name, (f"prospective error on {replayed} replayed round(s): curve GP {errors['curve-gp']:.2f}, "
                  f"ensemble {errors['ensemble']:.2f} %-points"), figures


def _replayed_model(campaign, versions, objective: Objective, before: Measured, round_: int):
    """The model that proposed ``round_`` as it proposed: the stored surrogate, with its residual GPs on what was measured before."""

    blob = campaign.ledger.read_blob(f"models/{versions[0]}.pt")
    if blob is None:
        return None
    stored = load_release_model(io.BytesIO(blob))[0]
    acq = campaign.config.acquisition
    if not acq.residual_gp or not len(before):
        return stored
    corrected, _ = corrected_by_measurements(stored, objective, before, draws=acq.residual_draws, seed=campaign.config.seed + round_,
                                             max_formulations=acq.residual_gp_max, select_mean=acq.residual_gp_select_mean,
                                             gp_restarts=acq.gp_restarts)
    return corrected


def proposal_rows(proposal: Proposal, campaign: str, round_: int, seed: int, created_at: pd.Timestamp) -> list[dict]:
    """The ledger's formulations rows of a proposal, one per recipe."""
    rows = []
    predicted = proposal.times_hours is not None
    for i, recipe in enumerate(proposal.recipes):
        rows.append({
            "formulation_id": formulation_id(campaign, recipe), "campaign": campaign, "round": round_, "seed": seed,
            "parameters_json": recipe_json(recipe), "origin": proposal.origin, "acquisition": proposal.acquisition,
            "acquisition_params_json": json.dumps({**proposal.params, **(proposal.row_params[i] if proposal.row_params else {})}),
            "model_version": proposal.model_version, "nanoloop_version": __version__, "created_at": created_at,
            "predicted_times_hours": proposal.times_hours.tolist() if predicted else None,
            "predicted_release_pct": proposal.release_pct[i].tolist() if predicted else None,
            "predicted_std_pct": proposal.release_std_pct[i].tolist() if predicted else None,
            "predicted_objective": _at(proposal.objective_mean, i), "objective_std": _at(proposal.objective_std, i),
            "acquisition_value": _at(proposal.acquisition_value, i),
        })
    return rows


def _at(values: np.ndarray | None, i: int) -> float:
    return np.nan if values is None else float(values[i])
