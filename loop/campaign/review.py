"""What a reviewer decides on before approving a batch, and why formulations failed.

For each formulation of a round :func:`batch_review` gives the recipe, the
predicted objective with its 90 % interval, the predicted release at the
target's times, why the acquisition picked it (exploit: predicted to beat the
best measured so far; explore: picked for its uncertainty), the nearest
measured formulation, and, where the ledger holds failed syntheses, the
predicted risk that its synthesis fails (:class:`FailureRisk`). Edits are
previewed the same way: validated against the design space and re-predicted
by the model that proposed the batch (:func:`predict_recipes`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nanoloop.loop.errors import InputError
from nanoloop.loop.campaign.evaluation import failure_reasons
from nanoloop.loop.design.space import fixed_text, recipe_of
from nanoloop.loop.store.measurements import measured_objectives_from
from nanoloop.loop.models.base import Z90
from nanoloop.loop.store.status import Status

#: a predicted failure risk at or above this is "high": an edit into such a region warns
HIGH_RISK = 0.5
#: fewest made formulations (measured or failed in synthesis) before a failure model is fitted
MIN_MADE_FOR_RISK = 4


# -- failures -------------------------------------------------------------------------------
def short_reason(reason: str) -> str:
    """A failure reason without its stage prefix, e.g. ``aggregation during nanoprecipitation: drug loading ...``."""
    head, sep, rest = reason.partition(": ")
    return rest if sep and head.isalpha() and head.islower() else reason


class FailureRisk:
    """The probability that a recipe's synthesis fails, learned from the ledger's made formulations.

    A kernel-weighted share of failures among nearby made formulations (measured:
    0, failed in synthesis: 1), in the unit-encoded design space, shrunk towards
    the campaign's failure rate where few formulations are near:
    ``risk(x) = (sum w_i y_i + a p0) / (sum w_i + a)`` with ``w_i = exp(-d_i^2 / 2 l^2)``,
    ``p0`` the overall failure rate and ``a`` = :attr:`prior_weight`. The length
    ``l`` is chosen by leave-one-out likelihood.
    """

    prior_weight = 1.0
    lengths = (0.15, 0.25, 0.4, 0.6, 1.0)

    def fit(self, encoded: np.ndarray, failed: np.ndarray) -> "FailureRisk":
        self.encoded_ = np.asarray(encoded, float)
        self.failed_ = np.asarray(failed, float)
        self.base_rate_ = float(self.failed_.mean())
        squared = ((self.encoded_[:, None, :] - self.encoded_[None, :, :]) ** 2).sum(-1)
        best = -np.inf
        for length in self.lengths:
            weights = np.exp(-squared / (2 * length**2))
            np.fill_diagonal(weights, 0.0)
            p = self._smooth(weights)
            p = np.clip(p, 1e-3, 1 - 1e-3)
            loglik = float(np.sum(self.failed_ * np.log(p) + (1 - self.failed_) * np.log(1 - p)))
            if loglik > best:
                best, self.length_ = loglik, length
        self.n_made_, self.n_failed_ = len(self.failed_), int(self.failed_.sum())
        return self

    def _smooth(self, weights: np.ndarray) -> np.ndarray:
        return (weights @ self.failed_ + self.prior_weight * self.base_rate_) / (weights.sum(axis=1) + self.prior_weight)

    def predict(self, encoded: np.ndarray) -> np.ndarray:
        """Probability of a failed synthesis, shape (n,)."""
        squared = ((np.asarray(encoded, float)[:, None, :] - self.encoded_[None, :, :]) ** 2).sum(-1)
        return self._smooth(np.exp(-squared / (2 * self.length_**2)))


def fit_failure_risk(campaign) -> FailureRisk | None:
    """The campaign's failure model, or None before the ledger holds a failed synthesis and a made one."""
    frame = campaign.formulations()
    failed = failure_reasons(campaign.ledger)
    synthesis_failed = set(failed.loc[failed["stage"] == "synthesis", "formulation_id"])
    made = frame[(frame["status"] == Status.MEASURED) | frame["formulation_id"].isin(synthesis_failed)]
    labels = made["formulation_id"].isin(synthesis_failed).to_numpy(int)
    if len(made) < MIN_MADE_FOR_RISK or labels.sum() == 0 or labels.sum() == len(labels):
        return None
    return FailureRisk().fit(campaign.space.encode(campaign.space.recipes(made)), labels)


def parse_edits(texts) -> dict[str, dict]:
    """``ID:VARIABLE=VALUE`` strings -> ``{id: {variable: value}}`` (numbers as floats, other values as text).

    Raises:
        InputError: a string is not of that form.
    """
    edits: dict[str, dict] = {}
    for text in texts or []:
        fid, _, assignment = str(text).partition(":")
        variable, _, value = assignment.partition("=")
        if not fid.strip() or not variable.strip() or not value.strip():
            raise InputError(f"--edit {text!r}: expected ID:VARIABLE=VALUE")
        value = value.strip()
        try:
            value = float(value)
        except ValueError:
            pass
        edits.setdefault(fid.strip(), {})[variable.strip()] = value
    return edits


# -- predictions ------------------------------------------------------------------------------
def predict_recipes(campaign, recipes: list[dict], model_version: str, times_hours=None) -> list[dict]:
    """Predicted curve (mean and std, %) and objective (mean and std over ensemble members) of recipes.

    Args:
        campaign: the campaign (its design space and objective).
        recipes: validated recipes.
        model_version: the stored model to predict with (the one that proposed the batch).
        times_hours: times of the stored curve (default: the target's).

    Returns:
        One dict per recipe with the formulations table's prediction columns.
    """
    from nanoloop.loop.design.objective import Objective
    from nanoloop.loop.models.base import curve_rows

    model = campaign.models.load(model_version)
    objective = Objective.from_config(campaign.config)
    objective = Objective(objective.target, objective.goals, objective.curve_constraints)  # no characterization model here
    times = np.asarray(times_hours if times_hours is not None and len(times_hours) else campaign.config.target.times_hours, float)
    encoded = campaign.space.encode(pd.DataFrame(recipes)[campaign.space.names])
    mean, std = model.predict(curve_rows(encoded, times), return_std=True)
    mean, std = mean.reshape(len(recipes), -1), std.reshape(len(recipes), -1)
    samples = objective.samples(model, encoded)
    return [
        {"predicted_times_hours": times.tolist(), "predicted_release_pct": (100 * mean[i]).tolist(), "predicted_std_pct": (100 * std[i]).tolist(),
         "predicted_objective": float(samples.mean[i]), "objective_std": float(samples.std[i])}
        for i in range(len(recipes))
    ]


def repredicted_edit(campaign, original_row: dict, edited: dict) -> dict:
    """The prediction columns of an edited proposal: predicted on the edit by the model that proposed the original.

    A proposal of the initial design (no model) stays without a prediction.
    """
    version = original_row.get("model_version") or ""
    if not version:
        return {}
    predicted = predict_recipes(campaign, [edited], version, original_row.get("predicted_times_hours"))[0]
    params = json.loads(original_row.get("acquisition_params_json") or "{}")
    for key in ("f2", "f2_lower_90", "f2_upper_90", "f2_widening", "distance_to_data", "outside_measured_data"):
        params.pop(key, None)  # the original's f2 interval and distance to data do not hold for the edit
    params["repredicted_on_edit"] = True
    return {**predicted, "acquisition_value": np.nan, "acquisition_params_json": json.dumps(params)}


# -- the batch review ------------------------------------------------------------------------
@dataclass
class _Context:
    measured: pd.DataFrame  # index id: objective, f2, feasible, round
    measured_encoded: np.ndarray
    risk: FailureRisk | None


def measured_objectives(campaign) -> pd.DataFrame:
    """:func:`measured_objectives_from` the campaign's ledger."""
    return measured_objectives_from(campaign.ledger, campaign.config)


def _why(row, incumbent: float, name: str) -> tuple[str, str]:
    """(exploit | explore | design, the reason in words) for one proposal."""
    strategy = row["acquisition"]
    if row["origin"] == "initial-design" or not row["model_version"]:
        return "design", "space-filling initial design (no model yet)"
    mean, std = row["predicted_objective"], row["objective_std"]
    if strategy == "random":
        return "explore", "picked at random"
    if strategy == "max_std" or not np.isfinite(mean):
        return "explore", f"picked for its uncertainty (± {std:.1f})"
    if mean >= incumbent:
        return "exploit", f"predicted {name} {mean:.1f} ± {std:.1f} beats the best measured before this round ({incumbent:.1f})"
    return "explore", f"predicted {name} {mean:.1f} is below the best measured ({incumbent:.1f}); picked for its uncertainty (± {std:.1f})"


def batch_review(campaign, round_: int | None = None, edits: dict[str, dict] | None = None) -> dict:
    """The batch of a round as a reviewer needs it (JSON-ready).

    Args:
        campaign: the campaign.
        round_: the round (default: the one awaiting approval, else the last).
        edits: optional ``{id: {variable: value}}`` to preview: each edited recipe is
            validated against the design space (an InputError names the problem)
            and shown re-predicted, with a warning when its failure risk is high.

    Returns:
        ``{"campaign", "round", "objective", "objective_description", "target", "high_risk",
        "failure_model", "formulations": [...]}``; each formulation has formulation_id, status,
        origin, recipe, predicted (objective, objective_sd, objective_low_90, objective_high_90),
        predicted_release (time_hours, release_pct, sd_pct at the target's times), acquisition
        (strategy, reason: exploit | explore | design, why), nearest_measured (formulation_id,
        distance, objective, f2) or None, failure_risk (0-1) or None, warnings, edited_from.
    """
    from nanoloop.loop.design.objective import Objective

    frame = campaign.formulations()
    designed = frame[frame["round"] >= 0]  # round -1: formulations imported from the lab's files, not a batch
    if designed.empty:
        raise InputError(f"campaign {campaign.config.name}: no formulation proposed yet")
    if round_ is None:
        waiting = designed[designed["status"] == Status.PROPOSED]
        round_ = int(waiting["round"].max()) if len(waiting) else int(designed["round"].max())
    batch = frame[(frame["round"] == round_) & (frame["status"] != Status.EDITED)]
    if batch.empty:
        raise InputError(f"campaign {campaign.config.name}: round {round_} has no formulations (rounds 0-{int(frame['round'].max())})")
    objective = Objective.from_config(campaign.config)
    measured = measured_objectives(campaign)
    earlier = measured[measured["round"] < round_]
    feasible = earlier.loc[earlier["feasible"].astype(bool), "objective"]
    incumbent = float(feasible.max()) if len(feasible) else objective.worst_value()
    measured_frame = frame.set_index("formulation_id").loc[measured.index]
    context = _Context(measured, campaign.space.encode(campaign.space.recipes(measured_frame)) if len(measured) else np.empty((0, 0)),
                       fit_failure_risk(campaign))
    rows = [_review_row(campaign, row, recipe_of(row["parameters_json"]), incumbent, objective.name, context) for _, row in batch.iterrows()]
    for fid, changes in (edits or {}).items():
        if fid not in set(batch["formulation_id"]):
            raise InputError(f"--edit {fid}: not a formulation of round {round_}")
        original = batch.set_index("formulation_id").loc[fid]
        unknown = sorted(set(changes) - set(campaign.space.names))
        if unknown:
            raise InputError(f"--edit {fid}: unknown variable(s) {unknown}; the design space has {campaign.space.names}")
        held = sorted(set(changes) & set(campaign.space.fixed))
        if held:
            raise InputError(f"--edit {fid}: {', '.join(held)} cannot be edited, fixed for this campaign "
                             f"({fixed_text(campaign.space.fixed)}); only the designed variables can")
        recipe = campaign.space.validate({**recipe_of(original["parameters_json"]), **changes})
        preview = {**original.to_dict(), "formulation_id": f"{fid} (edited)", "status": "edit preview", "origin": f"edit-of:{fid}"}
        preview.update(repredicted_edit(campaign, original.to_dict(), recipe))
        rows.append(_review_row(campaign, pd.Series(preview), recipe, incumbent, objective.name, context))
    target = campaign.config.target
    return {
        "campaign": campaign.config.name, "round": int(round_), "objective": objective.name, "objective_description": objective.describe(),
        "target": {"times_hours": list(target.times_hours), "release_pct": list(target.release_pct)},
        "best_measured_before_round": incumbent if len(feasible) else None, "high_risk": HIGH_RISK,
        "failure_model": None if context.risk is None else {"made": context.risk.n_made_, "failed_in_synthesis": context.risk.n_failed_},
        "fixed": dict(campaign.space.fixed),  # held for this campaign: shown, never editable
        "formulations": rows,
    }


def _review_row(campaign, row, recipe: dict, incumbent: float, name: str, context: _Context) -> dict:
    recipe = {n: recipe[n] for n in campaign.space.names}
    mean, std = _num(row["predicted_objective"]), _num(row["objective_std"])
    kind, why = _why(row, incumbent, name)
    encoded = campaign.space.encode(pd.DataFrame([recipe])[campaign.space.names])
    nearest = None
    if len(context.measured):
        distances = np.linalg.norm(context.measured_encoded - encoded, axis=1)
        i = int(np.argmin(distances))
        fid = context.measured.index[i]
        nearest = {"formulation_id": fid, "distance": float(distances[i]), "objective": float(context.measured.iloc[i]["objective"]),
                   "f2": float(context.measured.iloc[i]["f2"])}
    risk = float(context.risk.predict(encoded)[0]) if context.risk is not None else None
    notes = []
    if risk is not None and risk >= HIGH_RISK:
        notes.append(f"high predicted failure risk of the synthesis ({risk:.0%})")
    times = row["predicted_times_hours"]
    release = []
    if times is not None and len(times):
        t = np.asarray(times, float)
        for target_t in campaign.config.target.times_hours:
            release.append({"time_hours": float(target_t), "release_pct": float(np.interp(target_t, t, np.asarray(row["predicted_release_pct"], float))),
                            "sd_pct": float(np.interp(target_t, t, np.asarray(row["predicted_std_pct"], float)))})
    origin = str(row["origin"])
    return {
        "formulation_id": str(row["formulation_id"]), "status": str(row["status"]), "origin": origin, "recipe": recipe,
        "predicted": {"objective": mean, "objective_sd": std,
                      "objective_low_90": None if mean is None or std is None else mean - Z90 * std,
                      "objective_high_90": None if mean is None or std is None else mean + Z90 * std},
        "predicted_release": release, "model_version": str(row["model_version"]) or None,
        "acquisition": {"strategy": str(row["acquisition"]), "reason": kind, "why": why},
        "nearest_measured": nearest, "failure_risk": risk, "warnings": notes,
        "edited_from": origin.removeprefix("edit-of:") if origin.startswith("edit-of:") else None,
    }


def _num(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if np.isnan(value) else value
