"""Inverse design: which formulations would give this release profile?

Searches the design space with a fitted curve ensemble: a Sobol pool, local
refinement of the best candidates (:mod:`nanoloop.loop.design.candidates`), then ``n``
distinct designs ranked by the predicted objective (the mean over ensemble
members of each member's f2 to the target, times the probability that the
constraints hold). Each design comes with its predicted curve and 90 %
interval, the predicted f2 with its spread and 90 % interval, and the
mechanistic release law the predicted curve follows
(:func:`nanoloop.loop.kinetics.summarize_curve`). The f2 spread comes from
the same calibrated predictive distribution as the curve band (members plus
noise, rescaled; :mod:`nanoloop.loop.models.predictive`), not from the members alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nanoloop.loop.design.acquisition import diverse_picks
from nanoloop.loop.design.candidates import SearchSettings, refine, sobol_pool, top_starts, unique_mask
from nanoloop.loop.design.domain import distance_to_data, is_outside
from nanoloop.loop.design.objective import Objective, ObjectiveSamples
from nanoloop.loop.models.predictive import PredictiveCurves, interval_90
from nanoloop.loop.models.base import curve_rows
from nanoloop.loop.models.base import Z90

#: times at which designs report their predicted curve, hours (the simulated tester's schedule)
DEFAULT_TIMES_HOURS = (1.0, 4.0, 8.0, 24.0, 48.0, 72.0, 120.0, 168.0, 240.0, 336.0, 504.0, 672.0)


@dataclass(frozen=True)
class Design:
    """One proposed formulation for a target profile.

    Attributes:
        rank: 1 is the best.
        formulation: design variables by name.
        objective_mean: mean over members of the objective (f2 for the default objective).
        objective_std: spread of the objective under the calibrated predictive distribution.
        f2_mean: mean over members of the f2 to the target.
        f2_std: spread of the f2 under the calibrated predictive distribution (members + noise).
        probability_feasible: probability that the constraints hold (1 without constraints).
        times_hours: times of the predicted curve, shape (T,).
        release_pct: predicted mean release, %, shape (T,).
        lower_pct: lower end of the 90 % predictive interval, %, shape (T,).
        upper_pct: upper end of the 90 % predictive interval, %, shape (T,).
        kinetics: :func:`nanoloop.loop.kinetics.summarize_curve` of the predicted mean curve
            (``best_model``: the release law it follows, its parameters, t50, burst ...).
        properties: predicted characterization (size_nm, ...) when a characterization model is given.
    """

    rank: int
    formulation: dict
    objective_mean: float
    objective_std: float
    f2_mean: float
    f2_std: float
    probability_feasible: float
    times_hours: np.ndarray
    release_pct: np.ndarray
    lower_pct: np.ndarray
    upper_pct: np.ndarray
    kinetics: dict
    properties: dict | None = None
    f2_lower: float = float("nan")
    f2_upper: float = float("nan")
    distance_to_data: float = float("nan")
    outside_measured_data: bool = False

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {
            "rank": self.rank,
            "formulation": {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in self.formulation.items()},
            "objective_mean": self.objective_mean,
            "objective_std": self.objective_std,
            "f2_mean": self.f2_mean,
            "f2_std": self.f2_std,
            "f2_lower_90": self.f2_lower,
            "f2_upper_90": self.f2_upper,
            "distance_to_data": self.distance_to_data,
            "outside_measured_data": self.outside_measured_data,
            "probability_feasible": self.probability_feasible,
            "predicted_curve": {
                "times_hours": [float(t) for t in self.times_hours],
                "release_pct": [float(v) for v in self.release_pct],
                "lower_90_pct": [float(v) for v in self.lower_pct],
                "upper_90_pct": [float(v) for v in self.upper_pct],
            },
            "kinetics": self.kinetics,
            "properties": self.properties,
        }


#: the search inverse design runs by default: a larger pool and longer refinement than a campaign round
DESIGN_SEARCH = SearchSettings(pool_size=32768, refine_starts=32, refine_steps=20, diversity_length=0.1, seed=0)


def inverse_design(
    curve_model,
    space,
    objective: Objective,
    n: int = 5,
    search: SearchSettings = DESIGN_SEARCH,
    *,
    property_model=None,
    times_hours=DEFAULT_TIMES_HOURS,
    measured_encoded=None,
    f2_widening: float = 1.0,
) -> list[Design]:
    """The ``n`` best distinct formulations for ``objective.target`` under a fitted curve model.

    Args:
        curve_model: fitted :class:`~nanoloop.loop.models.ensemble.ReleaseEnsemble` (or anything with
            ``predict_curves`` and ``predict(rows, return_std=True)``).
        space: the :class:`~nanoloop.loop.design.space.DesignSpace` the model was trained on.
        objective: goals and constraints (its target is the profile to reach).
        n: designs to return.
        search: pool size, refinement, diversity length between designs and seed
            (e.g. ``dataclasses.replace(DESIGN_SEARCH, pool_size=4096, seed=3)``).
        property_model: characterization model, needed for size / EE constraints.
        times_hours: times of the reported predicted curve (the target's are added).
        measured_encoded: (k, d) unit-encoded measured formulations, for each design's distance to
            the data and the "outside the measured data" flag (:mod:`nanoloop.loop.design.domain`).
        f2_widening: factor on the f2 interval from a campaign's prospective record
            (:func:`nanoloop.loop.models.predictive.prospective_widening`); 1 keeps the model's own.

    Returns:
        Designs, best first.
    """
    floor = objective.worst_value()

    def value(samples: ObjectiveSamples) -> np.ndarray:
        return np.maximum(samples.mean - floor, 0.0) * samples.probability_feasible

    def score(encoded):
        return value(objective.samples(curve_model, encoded, property_model))

    pool = sobol_pool(space, search.pool_size, seed=search.sobol_seed)
    samples = objective.samples(curve_model, pool.encoded, property_model)
    if search.refine_starts > 0:
        idx = top_starts(value(samples), search.refine_starts)
        refined = refine(space, score, pool.encoded[idx], steps=search.refine_steps, seed=search.seed)
        pool = pool.concat(refined)
        samples = samples.concat(objective.samples(curve_model, refined.encoded, property_model))
    picks, _ = diverse_picks(value(samples), pool.encoded, n, search.diversity_length, exclude=~unique_mask(space, pool.frame))
    picks = np.asarray(picks, dtype=int)
    chosen = pool.encoded[picks]

    f2_objective = Objective(objective.target)
    f2_members = f2_objective.samples(curve_model, chosen)  # the mean: over members, as the ranking
    honest = PredictiveCurves(curve_model, seed=search.seed)
    f2_samples = f2_objective.samples(honest, chosen)  # the spread: the calibrated predictive distribution
    f2_lower, f2_upper = interval_90(f2_samples.values)
    f2_lower = np.minimum(f2_members.mean - f2_widening * (f2_samples.mean - f2_lower), f2_members.mean)
    f2_upper = np.maximum(f2_members.mean + f2_widening * (f2_upper - f2_samples.mean), f2_members.mean)
    objective_std = objective.samples(honest, chosen, property_model).std
    times = np.unique(np.concatenate([np.asarray(times_hours, float), np.asarray(objective.target.times_hours, float)]))
    mean, std = curve_model.predict(curve_rows(chosen, times), return_std=True)
    mean, std = 100 * mean.reshape(len(picks), -1), 100 * std.reshape(len(picks), -1)
    properties = property_model.predict_values(chosen) if property_model is not None else None
    distance = distance_to_data(chosen, measured_encoded) if measured_encoded is not None else np.full(len(picks), np.nan)
    designs = []
    for k, i in enumerate(picks):
        designs.append(Design(
            rank=k + 1,
            formulation=space.validate(pool.frame.iloc[i].to_dict()),
            objective_mean=float(samples.mean[i]),
            objective_std=float(objective_std[k]),
            f2_mean=float(f2_members.mean[k]),
            f2_std=float(f2_samples.std[k]),
            f2_lower=float(f2_lower[k]),
            f2_upper=float(f2_upper[k]),
            distance_to_data=float(distance[k]),
            outside_measured_data=bool(is_outside(distance[k])),
            probability_feasible=float(samples.probability_feasible[i]),
            times_hours=times,
            release_pct=mean[k],
            lower_pct=np.clip(mean[k] - Z90 * std[k], 0.0, 100.0),
            upper_pct=np.clip(mean[k] + Z90 * std[k], 0.0, 100.0),
            kinetics=_kinetics(times, mean[k]),
            properties=None if properties is None else {p: float(v[k]) for p, v in properties.items()},
        ))
    return designs


def _kinetics(times_hours: np.ndarray, release_pct: np.ndarray) -> dict:
    """Release law and measures of a predicted curve (never raises on a valid curve)."""
    from nanoloop.loop.kinetics import summarize_curve

    return summarize_curve(times_hours, release_pct, curve_id="predicted")
