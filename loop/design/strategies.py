"""The acquisition strategies: one table, one entry per strategy.

A strategy scores candidates from their objective samples (the objective
under each ensemble member, see :class:`~nanoloop.loop.design.objective.ObjectiveSamples`);
:func:`nanoloop.loop.design.acquisition.choose_batch` turns any of them into a diverse
batch with one greedy, penalised picker, and :func:`nanoloop.loop.design.acquisition.search`
refines candidates on the same score. Adding a strategy is one entry in
:data:`STRATEGIES`; the campaign config accepts exactly its names.

EI, PI and UCB are modAL's acquisition functions. This module imports nothing
of the model stack (modAL is imported when a score is computed), so the config
can list the strategy names without loading it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Scored:
    """Candidates' objective as the strategies see it.

    Attributes:
        mean: mean over members of the objective, shape (n,).
        std: spread over members times the spread scale, plus 1e-9, shape (n,).
        members: each member's objective, its deviation from the mean times the spread scale, shape (M, n).
        feasible: whether each member's prediction meets the constraints, shape (M, n).
        probability_feasible: probability that the constraints hold, shape (n,).
        floor: the objective's lowest value (UCB and Thompson utilities count from it).
    """

    mean: np.ndarray
    std: np.ndarray
    members: np.ndarray
    feasible: np.ndarray
    probability_feasible: np.ndarray
    floor: float

    @classmethod
    def from_samples(cls, samples, spread_scale: float, floor: float) -> "Scored":
        """From :class:`~nanoloop.loop.design.objective.ObjectiveSamples` and the spread scale."""
        mean = samples.mean
        return cls(mean, spread_scale * samples.std + 1e-9, mean + spread_scale * (samples.values - mean),
                   samples.feasible, samples.probability_feasible, floor)


def _ei(s: Scored, incumbent: float, settings, member: int | None) -> np.ndarray:
    from nanoloop.loop.design.modal_compat import EI

    return np.asarray(EI(s.mean, s.std, incumbent, settings.tradeoff), dtype=float).reshape(-1) * s.probability_feasible


def _pi(s: Scored, incumbent: float, settings, member: int | None) -> np.ndarray:
    from nanoloop.loop.design.modal_compat import PI

    return np.asarray(PI(s.mean, s.std, incumbent, settings.tradeoff), dtype=float).reshape(-1) * s.probability_feasible


def _ucb(s: Scored, incumbent: float, settings, member: int | None) -> np.ndarray:
    from nanoloop.loop.design.modal_compat import UCB

    return np.maximum(np.asarray(UCB(s.mean, s.std, settings.beta), dtype=float).reshape(-1) - s.floor, 0.0) * s.probability_feasible


def _max_std(s: Scored, incumbent: float, settings, member: int | None) -> np.ndarray:
    return s.std * s.probability_feasible


def _thompson(s: Scored, incumbent: float, settings, member: int | None) -> np.ndarray:
    m = 0 if member is None else member
    return np.maximum(s.members[m] - s.floor, 0.0) * s.feasible[m]


def _random(s: Scored, incumbent: float, settings, member: int | None) -> np.ndarray:
    return np.zeros(len(s.mean))


@dataclass(frozen=True)
class Strategy:
    """One acquisition strategy.

    Attributes:
        score: ``score(scored, incumbent, settings, member) -> utility (n,)``, higher is better;
            ``settings`` is the :class:`~nanoloop.loop.design.acquisition.AcquisitionSettings`.
        improves_on_incumbent: the utility counts improvement over the incumbent, so the
            Kriging believer raises the incumbent to each pick's predicted mean.
        one_member_per_pick: each pick scores one ensemble member, in a random order (Thompson sampling).
        ignores_model: picks the pool in its (scrambled Sobol) order: no refinement, no penalty.
        climbs_mean_when_flat: when the utility vanishes everywhere, refinement starts from the
            best predicted objective instead.
        params: the settings it uses, stored with each proposal as provenance.
    """

    score: Callable[[Scored, float, object, int | None], np.ndarray]
    improves_on_incumbent: bool = False
    one_member_per_pick: bool = False
    ignores_model: bool = False
    climbs_mean_when_flat: bool = False
    params: tuple[str, ...] = ()


#: the strategies by name (the config's ``acquisition.strategy``)
STRATEGIES: dict[str, Strategy] = {
    "ei": Strategy(_ei, improves_on_incumbent=True, climbs_mean_when_flat=True, params=("tradeoff", "believer")),
    "ucb": Strategy(_ucb, params=("beta",)),
    "pi": Strategy(_pi, improves_on_incumbent=True, params=("tradeoff", "believer")),
    "max_std": Strategy(_max_std),
    "thompson": Strategy(_thompson, one_member_per_pick=True),
    "random": Strategy(_random, ignores_model=True),
}
STRATEGY_NAMES: tuple[str, ...] = tuple(STRATEGIES)
