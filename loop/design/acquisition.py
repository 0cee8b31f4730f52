"""Choosing the next batch: a strategy's utility of the ensemble's objective, made diverse.

Layers (BoTorch-style): curve model -> :class:`~nanoloop.loop.design.objective.ObjectiveSamples`
(the objective under each ensemble member, and the probability of feasibility)
-> utility (one entry of the strategy table, :data:`nanoloop.loop.design.strategies.STRATEGIES`:
modAL's EI / PI / UCB, max-std, Thompson sampling, random) -> one greedy,
penalised batch picker (:func:`pick_batch`, run as the query strategy of modAL's
``BayesianOptimizer``) -> a diverse batch.

The seam is :func:`choose_batch`: given a fitted curve model, a candidate pool
and the incumbent, it returns which candidates to make. :func:`search` wraps
it with the candidate generation of :mod:`nanoloop.loop.design.candidates` (Sobol pool, local
refinement, no repeats of taken formulations), under one
:class:`~nanoloop.loop.design.candidates.SearchSettings`. Another back end (BoTorch,
BayBE) would be another recommender (:mod:`nanoloop.loop.design.recommenders`).

Batches are diverse by two mechanisms, because a ``max_EI`` batch is only the
top-k of one utility:

- a Kriging believer on the incumbent: after each pick, EI and PI are
  recomputed as if the pick had been measured at its predicted mean;
- local penalization: each pick (and each formulation in flight) damps the
  utility of its neighbours in the unit-encoded space by
  ``1 - exp(-d^2 / (2 l^2))``, d the distance over sqrt(d_features).

Constraints enter as a probability of feasibility multiplying the utility
(constrained EI, Gardner et al. 2014).

Two corrections make the ensemble's objective fit for EI with few data
(measured on development seeds of the simulated lab, see bench/README.md):

- :class:`nanoloop.loop.models.residual_gp.ResidualCorrected`: a GP per target time on the ensemble's residuals,
  i.e. a GP with the ensemble as its mean function; its uncertainty joins the
  members' spread;
- ``spread_scale``: the members' spread of the objective understates its
  prospective error (3x and more for raw members); the campaign rescales it by
  its own record of predicted vs measured objective
  (:func:`nanoloop.loop.design.objective.spread_scale`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from sklearn.base import BaseEstimator

from nanoloop.loop.design.candidates import CandidateSet, SearchSettings, refine, sobol_pool, top_starts, unique_mask
from nanoloop.loop.design.target import TargetProfile
from nanoloop.loop.design.objective import Objective, ObjectiveSamples
from nanoloop.loop.design.strategies import STRATEGIES, STRATEGY_NAMES, Scored, Strategy


class ObjectiveModel(BaseEstimator):
    """A fitted curve ensemble seen by modAL as a regressor of the objective.

    ``predict(X, return_std=True)`` returns the mean and spread over members of
    the objective of each member's predicted curve (f2 to the target unless
    ``objective`` says otherwise). X: unit-encoded formulations (n, d).
    The last scored X is cached, so modAL's repeated calls on one pool cost one evaluation.
    """

    def __init__(self, curve_model=None, target: TargetProfile | None = None, objective: Objective | None = None, property_model=None,
                 spread_scale: float = 1.0):
        self.curve_model = curve_model
        self.target = target
        self.objective = objective
        self.property_model = property_model
        self.spread_scale = spread_scale

    def fit(self, X, y):
        raise NotImplementedError("ObjectiveModel wraps an already fitted curve model; train that instead")

    def _objective(self) -> Objective:
        return self.objective if self.objective is not None else Objective(self.target)

    def samples(self, X) -> ObjectiveSamples:
        """Objective and feasibility per member for X (n, d)."""
        cached = getattr(self, "_cache", None)
        if cached is not None and cached[0] is X:
            return cached[1]
        result = self._objective().samples(self.curve_model, X, self.property_model)
        self._cache = (X, result)
        return result

    def remember(self, X, samples: ObjectiveSamples) -> None:
        """Use already computed samples for X (avoids scoring a large pool twice)."""
        self._cache = (X, samples)

    def member_objective(self, X) -> np.ndarray:
        """Objective per member, shape (n_members, n)."""
        return self.samples(X).values

    def predict(self, X, return_std: bool = False):
        """Mean over members of the objective; with ``return_std`` also the spread times ``spread_scale``."""
        samples = self.samples(X)
        mean = samples.mean
        return (mean, self.spread_scale * samples.std + 1e-9) if return_std else mean


@dataclass(frozen=True)
class AcquisitionSettings:
    """How candidates are scored; stored with each proposal as provenance.

    Attributes:
        strategy: a name in :data:`~nanoloop.loop.design.strategies.STRATEGIES`.
        tradeoff: EI / PI margin over the incumbent (objective units).
        beta: UCB weight of the spread.
        believer: EI / PI: raise the incumbent to each pick's predicted mean before the next pick.
        spread_scale: factor on the members' spread of the objective (see
            :func:`nanoloop.loop.design.objective.spread_scale`): EI, PI, UCB and max-std use the
            scaled spread, Thompson sampling scales each member's deviation from the mean.
    """

    strategy: str = "ei"
    tradeoff: float = 0.0
    beta: float = 2.0
    believer: bool = True
    spread_scale: float = 1.0

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown acquisition strategy {self.strategy!r}; choose one of {STRATEGY_NAMES}")
        if not (self.spread_scale > 0 and np.isfinite(self.spread_scale)):
            raise ValueError(f"spread_scale must be a positive number, got {self.spread_scale}")

    @property
    def rule(self) -> Strategy:
        """The strategy's entry in the table."""
        return STRATEGIES[self.strategy]


@dataclass(frozen=True)
class Batch:
    """The chosen candidates: indices into the pool and, per pick, its figures.

    Attributes:
        indices: rows of the pool, shape (k,).
        acquisition_value: utility of each pick when it was picked, shape (k,).
        objective_mean: mean over members of the objective, shape (k,).
        objective_std: spread over members of the objective (not scaled), shape (k,).
        params: strategy and settings (JSON-ready provenance).
        probability_feasible: probability that the constraints hold, shape (k,).
    """

    indices: np.ndarray
    acquisition_value: np.ndarray
    objective_mean: np.ndarray
    objective_std: np.ndarray
    params: dict = field(default_factory=dict)
    probability_feasible: np.ndarray | None = None


def _normalised_distance(encoded: np.ndarray, point: np.ndarray) -> np.ndarray:
    diff = encoded - point
    return np.sqrt(np.einsum("ij,ij->i", diff, diff) / encoded.shape[1])


def _penalty(encoded: np.ndarray, points: np.ndarray, length: float) -> np.ndarray:
    """Product over points of 1 - exp(-d^2 / (2 l^2)), shape (n,)."""
    penalty = np.ones(len(encoded))
    if length <= 0:
        return penalty
    for point in np.atleast_2d(points):
        d = _normalised_distance(encoded, point)
        penalty *= 1.0 - np.exp(-0.5 * (d / length) ** 2)
    return penalty


def _penalized_picks(utility_for_pick: Callable[[int, list[int]], np.ndarray], encoded: np.ndarray, n: int, length: float,
                     pending: np.ndarray | None = None, exclude: np.ndarray | None = None) -> tuple[list[int], list[float]]:
    """Greedy picks: pick k maximises utility_for_pick(k, picks) times the local penalty of earlier picks and pending points."""
    penalty = _penalty(encoded, pending, length) if pending is not None and len(pending) else np.ones(len(encoded))
    blocked = np.zeros(len(encoded), dtype=bool) if exclude is None else np.asarray(exclude, dtype=bool).copy()
    picks, values = [], []
    for k in range(min(n, int((~blocked).sum()))):
        u = np.asarray(utility_for_pick(k, picks), dtype=float)
        u = np.where(np.isfinite(u), u, -np.inf)
        floor = np.min(u[~blocked & np.isfinite(u)]) if np.any(~blocked & np.isfinite(u)) else 0.0
        score = (u - floor + 1e-12) * penalty
        score[blocked] = -np.inf
        i = int(np.argmax(score))
        picks.append(i)
        values.append(float(u[i]))
        blocked[i] = True
        if length > 0:
            penalty *= 1.0 - np.exp(-0.5 * (_normalised_distance(encoded, encoded[i]) / length) ** 2)
    return picks, values


def diverse_picks(utility: np.ndarray, encoded: np.ndarray, n: int, length: float, *, pending: np.ndarray | None = None,
                  exclude: np.ndarray | None = None) -> tuple[list[int], list[float]]:
    """``n`` greedy picks of a fixed utility (n,) under local penalization; returns (indices, utilities)."""
    utility = np.asarray(utility, dtype=float)
    return _penalized_picks(lambda k, picks: utility, np.asarray(encoded), n, length, pending, exclude)


def pick_batch(settings: AcquisitionSettings, scored: Scored, incumbent: float, encoded: np.ndarray, n: int, *,
               diversity_length: float, seed: int = 0, pending: np.ndarray | None = None,
               exclude: np.ndarray | None = None) -> tuple[list[int], list[float]]:
    """The one greedy, penalised batch picker, for any strategy of the table.

    Pick k maximises the strategy's utility times the local penalty of the
    earlier picks and of the pending formulations. Strategies that improve on
    the incumbent see it raised to the best feasible pick so far (Kriging
    believer, when ``settings.believer``); Thompson sampling scores one member
    per pick in a random order drawn from ``seed``; random takes the pool in order.
    """
    rule = settings.rule
    if rule.ignores_model:
        diversity_length = 0.0
    order = np.random.default_rng(seed).permutation(scored.members.shape[0]) if rule.one_member_per_pick else None

    def utility_for_pick(k, picks):
        current = incumbent
        if rule.improves_on_incumbent and settings.believer and picks:  # the picks are "measured" at their mean
            believed = np.max(np.where(scored.probability_feasible[picks] >= 0.5, scored.mean[picks], -np.inf))
            current = max(incumbent, float(believed))
        member = None if order is None else int(order[k % len(order)])
        return rule.score(scored, current, settings, member)

    return _penalized_picks(utility_for_pick, np.asarray(encoded), n, diversity_length, pending, exclude)


def choose_batch(
    curve_model,
    target: TargetProfile,
    pool_encoded: np.ndarray,
    batch_size: int,
    incumbent: float,
    settings: AcquisitionSettings,
    *,
    diversity_length: float = 0.15,
    seed: int = 0,
    objective: Objective | None = None,
    property_model=None,
    pending_encoded: np.ndarray | None = None,
    exclude: np.ndarray | None = None,
    samples: ObjectiveSamples | None = None,
) -> Batch:
    """Pick ``batch_size`` diverse candidates from the pool (through modAL's ``BayesianOptimizer.query``).

    Args:
        curve_model: fitted model with ``predict_curves(features, times_hours)``.
        target: target release profile (used when ``objective`` is None: f2 to it).
        pool_encoded: unit-encoded candidates (n, d); feasible in the design space.
        batch_size: how many to choose.
        incumbent: best measured objective so far; EI and PI improve on it.
        settings: strategy and its parameters.
        diversity_length: local penalization length in normalised unit distance (0: plain top-k).
        seed: seed of Thompson sampling's member order.
        objective: goals and constraints (default: f2 to ``target``, no constraints).
        property_model: fitted :class:`~nanoloop.loop.design.objective.PropertyModel` for characterization constraints.
        pending_encoded: formulations in flight (m, d): their neighbourhoods are penalized like picks.
        exclude: boolean mask (n,) of candidates never to pick (already taken).
        samples: precomputed :class:`ObjectiveSamples` of the pool (else computed here).
    """
    objective = objective if objective is not None else Objective(target)
    model = ObjectiveModel(curve_model, objective.target, objective, property_model, settings.spread_scale)
    if samples is not None:
        model.remember(pool_encoded, samples)
    samples = model.samples(pool_encoded)
    scored = Scored.from_samples(samples, settings.spread_scale, objective.worst_value())
    params = {"strategy": settings.strategy, "objective": objective.name, "diversity_length": diversity_length,
              "incumbent": float(incumbent), "pending": 0 if pending_encoded is None else int(len(pending_encoded)),
              "spread_scale": float(settings.spread_scale)}
    if objective.constraints:
        params["constraints"] = [c.describe() for c in objective.constraints]
    params.update({name: getattr(settings, name) for name in settings.rule.params})
    pending = None if pending_encoded is None or len(pending_encoded) == 0 else np.asarray(pending_encoded, dtype=np.float32)

    def query_strategy(optimizer, X, n_instances=1):
        picks, values = pick_batch(settings, scored, optimizer.y_max, X, n_instances, diversity_length=diversity_length,
                                   seed=seed, pending=pending, exclude=exclude)
        return np.asarray(picks, dtype=int), np.asarray(values, dtype=float)

    from nanoloop.loop.design.modal_compat import BayesianOptimizer  # modAL imports torch: loaded when a batch is chosen

    optimizer = BayesianOptimizer(estimator=model, query_strategy=query_strategy)
    optimizer.y_max = float(incumbent)  # modAL's incumbent: the best measured objective
    picks, _, values = optimizer.query(pool_encoded, n_instances=batch_size, return_metrics=True)
    picks = np.asarray(picks, dtype=int)
    return Batch(picks, np.asarray(values, dtype=float), samples.mean[picks], samples.std[picks], params, samples.probability_feasible[picks])


@dataclass(frozen=True)
class Search:
    """The outcome of :func:`search`: the candidates considered and the batch chosen among them."""

    candidates: CandidateSet
    batch: Batch
    samples: ObjectiveSamples
    timings_s: dict


def search(
    curve_model,
    objective: Objective,
    space,
    batch_size: int,
    incumbent: float,
    settings: AcquisitionSettings,
    candidates: SearchSettings = SearchSettings(),
    *,
    property_model=None,
    pending_encoded: np.ndarray | None = None,
    is_taken: Callable | None = None,
) -> Search:
    """Generate candidates (Sobol pool + local refinement of the best), then choose a diverse batch.

    Args:
        curve_model: fitted curve ensemble.
        objective: goals and constraints.
        space: the :class:`~nanoloop.loop.design.space.DesignSpace`.
        batch_size: formulations to choose.
        incumbent: best measured objective among feasible formulations.
        settings: how candidates are scored.
        candidates: pool size, refinement, diversity length and seeds (its ``seed`` also
            orders Thompson sampling's members).
        property_model: characterization model for characterization constraints.
        pending_encoded: formulations in flight, unit-encoded (m, d).
        is_taken: callable(frame) -> bool mask of candidates already in the ledger (exact ids);
            called on the picks only, which are replaced until none is taken.
    """
    import time

    timings = {}
    started = time.perf_counter()
    pool = sobol_pool(space, candidates.pool_size, seed=candidates.sobol_seed)
    timings["pool_s"] = time.perf_counter() - started
    started = time.perf_counter()
    samples = objective.samples(curve_model, pool.encoded, property_model)
    timings["score_pool_s"] = time.perf_counter() - started
    started = time.perf_counter()
    if candidates.refine_starts > 0 and not settings.rule.ignores_model:
        refined = _refine(curve_model, objective, space, samples, pool, incumbent, settings, candidates, property_model)
        if len(refined):
            pool = pool.concat(refined)
            samples = samples.concat(objective.samples(curve_model, refined.encoded, property_model))
    timings["refine_s"] = time.perf_counter() - started
    started = time.perf_counter()
    exclude = ~unique_mask(space, pool.frame)
    for _ in range(50):
        batch = choose_batch(curve_model, objective.target, pool.encoded, batch_size, incumbent, settings,
                             diversity_length=candidates.diversity_length, seed=candidates.seed, objective=objective,
                             property_model=property_model, pending_encoded=pending_encoded, exclude=exclude, samples=samples)
        if is_taken is None:
            break
        bad = np.asarray(is_taken(pool.frame.iloc[batch.indices]), dtype=bool)
        if not bad.any():
            break
        exclude[batch.indices[bad]] = True
    else:
        raise RuntimeError("could not find untaken candidates in 50 tries")
    timings["choose_s"] = time.perf_counter() - started
    return Search(pool, batch, samples, timings)


def _refine(curve_model, objective, space, samples, pool, incumbent, settings, candidates: SearchSettings, property_model) -> CandidateSet:
    """Refine the best pool candidates on the strategy's utility (per member for Thompson sampling)."""
    floor, rule = objective.worst_value(), settings.rule

    def utility(s: ObjectiveSamples, member=None) -> np.ndarray:
        return rule.score(Scored.from_samples(s, settings.spread_scale, floor), incumbent, settings, member)

    def scorer(member=None):
        return lambda encoded: utility(objective.samples(curve_model, encoded, property_model), member)

    starts, steps, seed = candidates.refine_starts, candidates.refine_steps, candidates.seed
    if rule.one_member_per_pick:
        n_members = samples.values.shape[0]
        per = max(1, starts // n_members)
        parts = [refine(space, scorer(m), pool.encoded[top_starts(utility(samples, m), per)], steps=steps, seed=seed + m)
                 for m in range(n_members)]
        out = parts[0]
        for part in parts[1:]:
            out = out.concat(part)
        return out
    u = utility(samples)
    if rule.climbs_mean_when_flat and np.max(u) <= 1e-9:  # the utility vanished everywhere: climb the predicted objective
        u = samples.mean * samples.probability_feasible
    return refine(space, scorer(), pool.encoded[top_starts(u, starts)], steps=steps, seed=seed)
