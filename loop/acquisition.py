"""Choosing the next batch: modAL query strategies on the ensemble's objective, made diverse.

The seam is :func:`choose_batch`: given a fitted curve model, a candidate pool
and the incumbent, it returns which candidates to make. modAL's
``BayesianOptimizer`` drives the choice with its EI / PI / UCB utilities; the
batch is made diverse by local penalization (each pick damps the utility of
its neighbours in the unit-encoded space), which a plain top-k lacks. Another
back end (BoTorch, BayBE) would replace this module without touching flows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator

from loop.config import TargetProfile
from loop.modal_compat import BayesianOptimizer, optimizer_EI, optimizer_PI, optimizer_UCB
from loop.objective import objective_samples

STRATEGIES = ("ei", "ucb", "pi", "max_std", "thompson", "random")


class ObjectiveModel(BaseEstimator):
    """A fitted curve ensemble seen by modAL as a regressor of the objective (f2 to the target).

    ``predict(X, return_std=True)`` returns the mean and spread over members of
    the f2 of each member's predicted curve. X: unit-encoded formulations (n, d).
    """

    def __init__(self, curve_model=None, target: TargetProfile | None = None):
        self.curve_model = curve_model
        self.target = target

    def fit(self, X, y):
        raise NotImplementedError("ObjectiveModel wraps an already fitted curve model; train that instead")

    def member_objective(self, X) -> np.ndarray:
        """f2 per member, shape (n_members, n)."""
        curves = self.curve_model.predict_curves(X, self.target.times_hours)
        return objective_samples(curves, self.target)

    def predict(self, X, return_std: bool = False):
        samples = self.member_objective(X)
        mean = samples.mean(axis=0)
        return (mean, samples.std(axis=0) + 1e-9) if return_std else mean


@dataclass(frozen=True)
class AcquisitionSettings:
    """What :func:`choose_batch` needs to know; stored with each proposal as provenance."""

    strategy: str = "ei"
    tradeoff: float = 0.0
    beta: float = 2.0
    diversity_length: float = 0.15
    seed: int = 0

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown acquisition strategy {self.strategy!r}; choose one of {STRATEGIES}")


@dataclass(frozen=True)
class Batch:
    """The chosen candidates: indices into the pool and, per pick, its figures."""

    indices: np.ndarray
    acquisition_value: np.ndarray
    objective_mean: np.ndarray
    objective_std: np.ndarray
    params: dict = field(default_factory=dict)


def _penalized_picks(utility: np.ndarray, encoded: np.ndarray, n: int, length: float, per_pick=None) -> list[int]:
    """Greedy picks; after each, utilities near the pick are multiplied by 1 - exp(-d^2 / (2 l^2)).

    ``per_pick(k)`` may give a fresh utility for pick k (Thompson sampling).
    """
    penalty = np.ones(len(encoded))
    picks: list[int] = []
    scale = np.sqrt(encoded.shape[1])
    for k in range(min(n, len(encoded))):
        u = per_pick(k) if per_pick is not None else utility
        u = u - u.min() + 1e-12
        score = u * penalty
        score[picks] = -np.inf
        i = int(np.argmax(score))
        picks.append(i)
        if length > 0:
            d = np.linalg.norm(encoded - encoded[i], axis=1) / scale
            penalty *= 1.0 - np.exp(-0.5 * (d / length) ** 2)
    return picks


def choose_batch(
    curve_model,
    target: TargetProfile,
    pool_encoded: np.ndarray,
    batch_size: int,
    incumbent_f2: float,
    settings: AcquisitionSettings,
) -> Batch:
    """Pick ``batch_size`` diverse candidates from the pool.

    Args:
        curve_model: fitted model with ``predict_curves(features, times_hours)``.
        target: target release profile.
        pool_encoded: unit-encoded candidates (n, d); already feasible and not yet made.
        batch_size: how many to choose.
        incumbent_f2: best measured f2 so far (EI and PI improve on it).
        settings: strategy and its parameters.
    """
    model = ObjectiveModel(curve_model, target)
    members = model.member_objective(pool_encoded)
    mean, std = members.mean(axis=0), members.std(axis=0) + 1e-9
    params = {"strategy": settings.strategy, "diversity_length": settings.diversity_length, "incumbent_f2": incumbent_f2}

    def query_strategy(optimizer, X, n_instances=1):
        if settings.strategy == "ei":
            utility = optimizer_EI(optimizer, X, tradeoff=settings.tradeoff)
        elif settings.strategy == "pi":
            utility = optimizer_PI(optimizer, X, tradeoff=settings.tradeoff)
        elif settings.strategy == "ucb":
            utility = optimizer_UCB(optimizer, X, beta=settings.beta)
        elif settings.strategy == "max_std":
            utility = std
        elif settings.strategy == "thompson":
            order = np.random.default_rng(settings.seed).permutation(max(n_instances, members.shape[0]))
            picks = _penalized_picks(None, X, n_instances, settings.diversity_length, lambda k: members[order[k] % members.shape[0]])
            return np.asarray(picks), members[order[: len(picks)] % members.shape[0], picks]
        else:  # random: the pool is a scrambled Sobol sample, so its first rows are a random design
            return np.arange(min(n_instances, len(X))), np.zeros(min(n_instances, len(X)))
        utility = np.asarray(utility, dtype=float).reshape(-1)
        picks = _penalized_picks(utility, X, n_instances, settings.diversity_length)
        return np.asarray(picks), utility[picks]

    if settings.strategy in ("ei", "pi"):
        params["tradeoff"] = settings.tradeoff
    if settings.strategy == "ucb":
        params["beta"] = settings.beta
    optimizer = BayesianOptimizer(estimator=model, query_strategy=query_strategy)
    optimizer.y_max = float(incumbent_f2)  # modAL's incumbent: the best measured objective
    picks, _, values = optimizer.query(pool_encoded, n_instances=batch_size, return_metrics=True)
    picks = np.asarray(picks, dtype=int)
    return Batch(picks, np.asarray(values, dtype=float), mean[picks], std[picks], params)
