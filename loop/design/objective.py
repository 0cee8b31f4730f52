"""Campaign objectives: how close a release curve is to the target, and whether the batch is usable.

Goals (higher is better after :meth:`Objective.score`):

- ``f2``: the FDA similarity factor to the target profile (0..100, >= 50 similar);
- ``rmse``: the (time-weighted) root-mean-square distance to the target, % points.

One goal is the objective itself (f2, or minus the RMSE); several goals are
combined by desirability: each goal maps linearly onto [0, 1] between its
``worst`` and ``best`` value, and the objective is 100 x the weighted geometric
mean of the desirabilities (Derringer and Suich).

Constraints on the made batch (particle size 80-200 nm, encapsulation
efficiency >= 60 %, burst <= 25 % at 24 h, ...) enter as a probability of
feasibility: characterization properties come from a
:class:`~nanoloop.loop.models.property_model.PropertyModel`
trained on the ledger's characterization table, the burst from each ensemble
member's predicted curve.

**The objective is computed on each ensemble member's curve**, then summarised
by its mean and spread over members (never on the mean curve).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import ndtr

from nanoloop.loop.design.target import TargetProfile
from nanoloop.loop.errors import InputError
from nanoloop.loop.lab.instruments import Characterization
from nanoloop.loop.kinetics.similarity import f2
from nanoloop.loop.models.property_model import PropertyModel

GOAL_KINDS = ("f2", "rmse")
#: characterization properties a constraint may name (columns of the ledger's characterization table)
CHARACTERIZATION_PROPERTIES = Characterization.fields()
#: release read from the (predicted or measured) curve at ``at_hours``
CURVE_PROPERTIES = ("burst_pct",)
PROPERTIES = CHARACTERIZATION_PROPERTIES + CURVE_PROPERTIES
_DEFAULT_RANGE = {"f2": (0.0, 100.0), "rmse": (30.0, 0.0)}  # (worst, best)
_BURST_SMOOTHING_PCT = 2.0  # member burst feasibility is smoothed by a normal of this SD (assay noise)


def f2_to_target(release_pct: np.ndarray, target: TargetProfile) -> np.ndarray:
    """f2 of curves sampled at the target's times.

    Args:
        release_pct: cumulative release in %, shape (..., len(target.times_hours)).
        target: the target profile.

    Returns:
        f2, shape (...).
    """
    return f2(np.asarray(target.release_pct), release_pct)


def rmse_to_target(release_pct: np.ndarray, target: TargetProfile, time_weights=None) -> np.ndarray:
    """Weighted root-mean-square distance to the target, in % points.

    Args:
        release_pct: cumulative release in %, shape (..., len(target.times_hours)).
        target: the target profile.
        time_weights: one non-negative weight per target time (None: equal weights).

    Returns:
        RMSE, shape (...).
    """
    diff = np.asarray(release_pct, dtype=float) - np.asarray(target.release_pct, dtype=float)
    w = np.ones(diff.shape[-1]) if time_weights is None else np.asarray(time_weights, dtype=float)
    return np.sqrt(np.sum(w * diff**2, axis=-1) / np.sum(w))


def measured_f2(times_hours: np.ndarray, release_pct: np.ndarray, target: TargetProfile) -> float:
    """f2 of one measured (mean) curve to the target, interpolating at the target's times.

    Times past the last measurement use the last value (no extrapolation).
    """
    at_target = np.interp(target.times_hours, times_hours, release_pct)
    return float(f2_to_target(at_target, target))


# -- goals and constraints ---------------------------------------------------------
@dataclass(frozen=True)
class Goal:
    """One thing to get close to the target.

    Attributes:
        kind: "f2" (higher is better) or "rmse" (% points, lower is better).
        weight: weight in the desirability's geometric mean.
        worst: value with desirability 0 (default f2 0, RMSE 30 % points).
        best: value with desirability 1 (default f2 100, RMSE 0).
        time_weights: RMSE only: one weight per target time (None: equal).
    """

    kind: str = "f2"
    weight: float = 1.0
    worst: float | None = None
    best: float | None = None
    time_weights: tuple[float, ...] | None = None

    def __post_init__(self):
        if self.kind not in GOAL_KINDS:
            raise InputError(f"objective goal {self.kind!r}: choose one of {list(GOAL_KINDS)}")
        if not self.weight > 0:
            raise InputError(f"objective goal {self.kind}: weight must be positive, got {self.weight}")
        if self.time_weights is not None:
            if self.kind != "rmse":
                raise InputError("objective goal f2: time_weights apply to rmse only")
            w = np.asarray(self.time_weights, dtype=float)
            if np.any(~np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
                raise InputError(f"objective goal rmse: time_weights must be non-negative with a positive sum, got {list(self.time_weights)}")
        worst, best = self.range
        if worst == best:
            raise InputError(f"objective goal {self.kind}: worst and best must differ (both {worst:g})")

    @property
    def range(self) -> tuple[float, float]:
        """(worst, best) of the desirability scale."""
        worst, best = _DEFAULT_RANGE[self.kind]
        return (worst if self.worst is None else self.worst, best if self.best is None else self.best)

    def value(self, release_pct: np.ndarray, target: TargetProfile) -> np.ndarray:
        """The goal's raw value (f2, or RMSE in % points) of curves (..., T) at the target times."""
        if self.kind == "f2":
            return f2_to_target(release_pct, target)
        return rmse_to_target(release_pct, target, self.time_weights)

    def desirability(self, value: np.ndarray) -> np.ndarray:
        """Linear map of ``value`` onto [0, 1], 0 at ``worst`` and 1 at ``best``."""
        worst, best = self.range
        return np.clip((np.asarray(value, dtype=float) - worst) / (best - worst), 0.0, 1.0)


@dataclass(frozen=True)
class PropertyConstraint:
    """A bound on a property of the made batch, e.g. 80 <= size_nm <= 200.

    Attributes:
        name: one of :data:`PROPERTIES`.
        min: lower bound (None: none).
        max: upper bound (None: none).
        at_hours: for ``burst_pct``: the time at which release is read, hours.
    """

    name: str
    min: float | None = None
    max: float | None = None
    at_hours: float = 24.0

    def __post_init__(self):
        if self.name not in PROPERTIES:
            raise InputError(f"objective constraint {self.name!r}: choose one of {list(PROPERTIES)}")
        if self.min is None and self.max is None:
            raise InputError(f"objective constraint {self.name}: give min, max or both")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise InputError(f"objective constraint {self.name}: min ({self.min:g}) must be below max ({self.max:g})")
        if not self.at_hours > 0:
            raise InputError(f"objective constraint {self.name}: at_hours must be positive, got {self.at_hours}")

    def describe(self) -> str:
        name = f"release at {self.at_hours:g} h (%)" if self.name == "burst_pct" else self.name
        if self.min is not None and self.max is not None:
            return f"{self.min:g} <= {name} <= {self.max:g}"
        return f"{name} >= {self.min:g}" if self.min is not None else f"{name} <= {self.max:g}"

    def satisfied(self, values: np.ndarray) -> np.ndarray:
        """Boolean array: ``values`` within the bounds (NaN: not satisfied)."""
        v = np.asarray(values, dtype=float)
        ok = np.isfinite(v)
        if self.min is not None:
            ok &= v >= self.min
        if self.max is not None:
            ok &= v <= self.max
        return ok

    def probability(self, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        """P(min <= value <= max) for a normal belief (mean, std)."""
        std = np.maximum(np.asarray(std, dtype=float), 1e-9)
        upper = ndtr((self.max - mean) / std) if self.max is not None else 1.0
        lower = ndtr((self.min - mean) / std) if self.min is not None else 0.0
        return np.clip(upper - lower, 0.0, 1.0)


@dataclass(frozen=True)
class ObjectiveSamples:
    """The objective of a set of candidates under each ensemble member.

    Attributes:
        values: objective per member, shape (n_members, n) (higher is better).
        feasible: probability of feasibility per member, shape (n_members, n), in [0, 1]
            (curve constraints per member times characterization constraints).
    """

    values: np.ndarray
    feasible: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        return self.values.mean(axis=0)

    @property
    def std(self) -> np.ndarray:
        return self.values.std(axis=0)

    @property
    def probability_feasible(self) -> np.ndarray:
        """Mean over members of the feasibility, shape (n,)."""
        return self.feasible.mean(axis=0)

    def concat(self, other: "ObjectiveSamples") -> "ObjectiveSamples":
        """These candidates followed by ``other``'s."""
        return ObjectiveSamples(np.concatenate([self.values, other.values], axis=1), np.concatenate([self.feasible, other.feasible], axis=1))


@dataclass(frozen=True)
class Objective:
    """What the campaign maximises and which batches are acceptable.

    Attributes:
        target: the release profile to reach.
        goals: one goal is the objective; several are combined by desirability.
        constraints: bounds on properties of the made batch (probability of feasibility).
    """

    target: TargetProfile
    goals: tuple[Goal, ...] = (Goal(),)
    constraints: tuple[PropertyConstraint, ...] = field(default_factory=tuple)

    def __post_init__(self):
        if not self.goals:
            raise InputError("objective: at least one goal is needed")
        n_times = len(self.target.times_hours)
        for goal in self.goals:
            if goal.time_weights is not None and len(goal.time_weights) != n_times:
                raise InputError(f"objective goal rmse: time_weights has {len(goal.time_weights)} values but the target has {n_times} times")

    @classmethod
    def from_config(cls, config) -> "Objective":
        """The objective a :class:`~nanoloop.loop.config.CampaignConfig` describes (f2 to its target when it names none)."""
        section = getattr(config, "objective", None)
        if section is None:
            return cls(config.target)
        goals = tuple(Goal(g.kind, g.weight, g.worst, g.best, None if g.time_weights is None else tuple(g.time_weights)) for g in section.goals)
        constraints = tuple(PropertyConstraint(c.property, c.min, c.max, c.at_hours) for c in section.constraints)
        return cls(config.target, goals or (Goal(),), constraints)

    # -- what it is ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        """"f2", "-rmse_pct" or "desirability_pct"."""
        if len(self.goals) > 1:
            return "desirability_pct"
        return "f2" if self.goals[0].kind == "f2" else "-rmse_pct"

    def describe(self) -> str:
        if len(self.goals) == 1:
            text = "f2 to the target" if self.goals[0].kind == "f2" else "minus the weighted RMSE to the target (% points)"
        else:
            text = "desirability (%) of " + ", ".join(f"{g.kind} (weight {g.weight:g})" for g in self.goals)
        if self.constraints:
            text += "; subject to " + ", ".join(c.describe() for c in self.constraints)
        return text

    @property
    def characterization_constraints(self) -> tuple[PropertyConstraint, ...]:
        return tuple(c for c in self.constraints if c.name in CHARACTERIZATION_PROPERTIES)

    @property
    def curve_constraints(self) -> tuple[PropertyConstraint, ...]:
        return tuple(c for c in self.constraints if c.name in CURVE_PROPERTIES)

    @property
    def curve_times_hours(self) -> np.ndarray:
        """Times the predicted curves are needed at: the target's and the curve constraints', sorted."""
        times = list(self.target.times_hours) + [c.at_hours for c in self.curve_constraints]
        return np.unique(np.asarray(times, dtype=float))

    # -- scoring ------------------------------------------------------------------------
    def score(self, release_pct: np.ndarray) -> np.ndarray:
        """Objective of curves at the target's times, in %, shape (..., T) -> (...); higher is better."""
        if len(self.goals) == 1:
            goal = self.goals[0]
            value = goal.value(release_pct, self.target)
            return value if goal.kind == "f2" else -value
        weights = np.array([g.weight for g in self.goals], dtype=float)
        log_d = sum(w * np.log(np.maximum(g.desirability(g.value(release_pct, self.target)), 1e-12)) for g, w in zip(self.goals, weights))
        return 100.0 * np.exp(log_d / weights.sum())

    def worst_value(self) -> float:
        """The objective's floor, used as the incumbent before any feasible measurement."""
        if len(self.goals) > 1:
            return 0.0
        return 0.0 if self.goals[0].kind == "f2" else -100.0

    def samples(self, curve_model, encoded: np.ndarray, property_model: PropertyModel | None = None) -> ObjectiveSamples:
        """Objective and feasibility of candidates under every ensemble member.

        Args:
            curve_model: fitted model with ``predict_curves(features, times_hours) -> (M, n, T)`` fractions.
            encoded: unit-encoded candidates, shape (n, d).
            property_model: fitted :class:`~nanoloop.loop.models.property_model.PropertyModel`; required when a characterization constraint is set.
        """
        times = self.curve_times_hours
        curves = 100.0 * np.asarray(curve_model.predict_curves(encoded, times), dtype=float)  # (M, n, T')
        return self.samples_from_curves(curves, times, encoded, property_model)

    def samples_from_curves(self, curves_pct: np.ndarray, times_hours: np.ndarray, encoded=None, property_model=None) -> ObjectiveSamples:
        """As :meth:`samples`, from member curves (M, n, T) in % at ``times_hours`` (which include the target's)."""
        times_hours = np.asarray(times_hours, dtype=float)
        index = [int(np.flatnonzero(np.isclose(times_hours, t))[0]) for t in self.target.times_hours]
        values = self.score(curves_pct[..., index])
        feasible = np.ones_like(values)
        for c in self.curve_constraints:
            burst = curves_pct[..., int(np.flatnonzero(np.isclose(times_hours, c.at_hours))[0])]
            feasible = feasible * c.probability(burst, _BURST_SMOOTHING_PCT)
        if self.characterization_constraints:
            if property_model is None:
                names = ", ".join(c.name for c in self.characterization_constraints)
                raise InputError(f"constraints on {names} need a characterization model: no characterization data yet")
            feasible = feasible * property_model.probability(encoded, self.characterization_constraints)[None, :]
        return ObjectiveSamples(values, feasible)

    # -- measured formulations ------------------------------------------------------------
    def measured(self, curves: dict[str, pd.Series], characterization: pd.DataFrame | None = None) -> pd.DataFrame:
        """Objective and feasibility of measured formulations.

        Args:
            curves: formulation id -> mean measured curve (index: time in hours, values: release %).
            characterization: the ledger's characterization table (column ``formulation_id``).

        Returns:
            Frame indexed by formulation id with columns ``objective``, ``f2`` and ``feasible``
            (every constraint met by the measured values; a missing measurement is not feasible).
        """
        chars = None
        if characterization is not None and len(characterization):
            chars = characterization.groupby("formulation_id")[list(CHARACTERIZATION_PROPERTIES)].mean()
        rows = {}
        for fid, curve in curves.items():
            t, r = curve.index.to_numpy(float), curve.to_numpy(float)
            at_target = np.interp(self.target.times_hours, t, r)
            ok = True
            for c in self.curve_constraints:
                ok &= bool(c.satisfied(np.interp(c.at_hours, t, r)))
            for c in self.characterization_constraints:
                value = chars.loc[fid, c.name] if chars is not None and fid in chars.index else np.nan
                ok &= bool(c.satisfied(value))
            rows[fid] = {"objective": float(self.score(at_target)), "f2": float(f2_to_target(at_target, self.target)), "feasible": ok}
        return pd.DataFrame.from_dict(rows, orient="index", columns=["objective", "f2", "feasible"])

    def incumbent(self, measured: pd.DataFrame) -> float:
        """Best objective among feasible measured formulations (the floor when there is none)."""
        feasible = measured.loc[measured["feasible"].astype(bool), "objective"] if len(measured) else pd.Series(dtype=float)
        return float(feasible.max()) if len(feasible) else self.worst_value()


# -- calibrating the ensemble's spread of the objective ----------------------------------
def spread_scale(predicted: np.ndarray, predicted_std: np.ndarray, measured: np.ndarray, *, prior: float = 3.0,
                 prior_weight: float = 8.0, bounds: tuple[float, float] = (1.0, 10.0)) -> tuple[float, int]:
    """Factor by which the members' spread of the objective understates its prospective error.

    Each earlier proposal stored its predicted objective (mean over members) and
    spread before it was made; once measured, ``z = |measured - predicted| / spread``
    says how honest the spread was. The robust estimate ``median(z) / 0.6745``
    (1 for a calibrated normal) is shrunk in log space towards ``prior`` with the
    weight of ``prior_weight`` proposals, so the first rounds lean on the prior
    and later ones on the campaign's own record.

    Args:
        predicted: predicted objective of measured proposals, shape (k,).
        predicted_std: their spread over members, shape (k,).
        measured: their measured objective, shape (k,).
        prior: the factor assumed without prospective data.
        prior_weight: how many proposals the prior is worth.
        bounds: clip range of the factor.

    Returns:
        (factor, number of proposals it used).
    """
    predicted, predicted_std, measured = (np.asarray(a, dtype=float) for a in (predicted, predicted_std, measured))
    ok = np.isfinite(predicted) & np.isfinite(predicted_std) & np.isfinite(measured) & (predicted_std > 0)
    k = int(ok.sum())
    log_prior = np.log(np.clip(prior, *bounds))
    if k == 0:
        return float(np.exp(log_prior)), 0
    z = np.abs(measured[ok] - predicted[ok]) / np.maximum(predicted_std[ok], 1e-3)
    observed = np.log(np.clip(np.median(z) / 0.6745, *bounds))
    return float(np.exp((k * observed + prior_weight * log_prior) / (k + prior_weight))), k
