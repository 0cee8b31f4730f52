"""Candidate formulations at scale: a Sobol pool, local refinement, and what is already taken.

The acquisition only ever chooses among candidates, so the candidates decide
how well the design space is searched:

- :func:`sobol_pool`: a scrambled Sobol sample of the whole space (categorical
  and continuous variables alike), within the linear constraints;
- :func:`refine`: a derivative-free local search (a (1+lambda) evolution
  strategy with step-size adaptation) from the best pool points on any score
  (acquisition utility, objective of one ensemble member, ...). It moves the
  continuous variables, occasionally switches a categorical one, and projects
  every step back onto the bounds and the linear constraints, so every
  candidate it returns is a valid formulation. Fixed variables
  (:attr:`DesignSpace.fixed`) are never moved;
- :func:`unique_mask` and :func:`formulation_ids`: repeated candidates, and
  the content-hash ids the ledger stores, so that formulations already made,
  in flight or rejected are never chosen again.

Everything works on the unit encoding of :class:`~nanoloop.loop.design.space.DesignSpace`
(continuous columns in [0, 1], categorical ones one-hot).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from nanoloop.loop.errors import InputError
from nanoloop.loop.design.space import Categorical, Continuous, DesignSpace, formulation_id

Score = Callable[[np.ndarray], np.ndarray]  # unit-encoded (n, d) -> (n,), higher is better


@dataclass(frozen=True)
class CandidateSet:
    """Candidates and their unit encoding.

    Attributes:
        frame: formulations, one column per variable, shape (n, n_variables).
        encoded: unit encoding, shape (n, d), float32.
        origin: "sobol" or "refined" per candidate, shape (n,).
    """

    frame: pd.DataFrame
    encoded: np.ndarray
    origin: np.ndarray

    def __len__(self) -> int:
        return len(self.frame)

    def subset(self, mask_or_index) -> "CandidateSet":
        idx = np.flatnonzero(mask_or_index) if np.asarray(mask_or_index).dtype == bool else np.asarray(mask_or_index, dtype=int)
        return CandidateSet(self.frame.iloc[idx].reset_index(drop=True), self.encoded[idx], self.origin[idx])

    def concat(self, other: "CandidateSet") -> "CandidateSet":
        return CandidateSet(
            pd.concat([self.frame, other.frame], ignore_index=True),
            np.concatenate([self.encoded, other.encoded]).astype(np.float32),
            np.concatenate([self.origin, other.origin]),
        )


@dataclass(frozen=True)
class SearchSettings:
    """How candidates are searched: shared by the campaign's search and inverse design.

    Attributes:
        pool_size: Sobol candidates.
        refine_starts: best candidates refined by the local search (0: none).
        refine_steps: generations of the local search.
        diversity_length: local penalization length between picks, in normalised unit distance (0: plain top-k).
        seed: seed of the local search (and of the pool unless ``pool_seed`` is given).
        pool_seed: seed of the Sobol pool when it differs from ``seed``.
    """

    pool_size: int = 4096
    refine_starts: int = 16
    refine_steps: int = 12
    diversity_length: float = 0.15
    seed: int = 0
    pool_seed: int | None = None

    def __post_init__(self):
        if self.pool_size < 1 or self.refine_starts < 0 or self.refine_steps < 1 or not self.diversity_length >= 0:
            raise InputError(f"search settings need pool_size >= 1, refine_starts >= 0, refine_steps >= 1 and "
                             f"diversity_length >= 0, got {self}")

    @property
    def sobol_seed(self) -> int:
        """The seed the pool is drawn with."""
        return self.seed if self.pool_seed is None else self.pool_seed


def sobol_pool(space: DesignSpace, n: int, seed: int) -> CandidateSet:
    """``n`` feasible candidates from a scrambled Sobol sequence."""
    frame = space.sample(n, seed=seed)
    return CandidateSet(frame, space.encode(frame), np.full(len(frame), "sobol", dtype=object))


# -- the geometry of the unit encoding ---------------------------------------------------
@dataclass(frozen=True)
class _Layout:
    continuous: np.ndarray  # column of each continuous variable in the encoding
    blocks: tuple[np.ndarray, ...]  # one-hot columns of each designed categorical variable
    moving: np.ndarray  # positions within ``continuous`` of the designed (not fixed) continuous variables
    a: np.ndarray  # linear constraints in unit coordinates: a @ u[continuous] <= b, shape (k, n_cont)
    b: np.ndarray


def _layout(space: DesignSpace) -> _Layout:
    continuous, blocks, moving, j = [], [], [], 0
    position = {}
    for v in space.variables:
        if isinstance(v, Categorical):
            if v.value is None:
                blocks.append(np.arange(j, j + len(v.categories)))
            j += len(v.categories)
        else:
            if v.value is None:
                moving.append(len(continuous))
            position[v.name] = len(continuous)
            continuous.append(j)
            j += 1
    a = np.zeros((len(space.constraints), len(continuous)))
    b = np.zeros(len(space.constraints))
    for k, c in enumerate(space.constraints):
        b[k] = c.max_total
        for name, coef in c.coefficients.items():
            v = space.by_name[name]
            assert isinstance(v, Continuous)
            a[k, position[name]] = coef * (v.high - v.low)
            b[k] -= coef * v.low
    return _Layout(np.asarray(continuous, dtype=int), tuple(blocks), np.asarray(moving, dtype=int), a, b)


def project(space: DesignSpace, start: np.ndarray, proposal: np.ndarray) -> np.ndarray:
    """Bring proposals back into the design space along the segment from feasible starts.

    The box is enforced by clipping; then, if a linear constraint is violated,
    the proposal moves towards its (feasible) start until every constraint holds.
    The feasible set is convex, so the result is feasible.

    Args:
        space: the design space.
        start: feasible unit-encoded points, shape (n, d).
        proposal: unit-encoded points, shape (n, d); categorical blocks are kept as given.

    Returns:
        Feasible unit-encoded points, shape (n, d), float64.
    """
    layout = _layout(space)
    out = np.array(proposal, dtype=np.float64, copy=True)
    cols = layout.continuous
    out[:, cols] = np.clip(out[:, cols], 0.0, 1.0)
    if len(layout.b):
        b = layout.b - _MARGIN
        s = np.clip(np.asarray(start, dtype=np.float64)[:, cols], 0.0, 1.0)
        step = out[:, cols] - s
        slack = b[None, :] - s @ layout.a.T  # >= 0 for feasible starts
        rate = step @ layout.a.T
        with np.errstate(divide="ignore", invalid="ignore"):
            limit = np.where(rate > 1e-15, np.maximum(slack, 0.0) / rate, np.inf).min(axis=1)
        out[:, cols] = s + np.clip(limit, 0.0, 1.0)[:, None] * step
        for _ in range(4):  # starts on the boundary (rounding): push back inside along the constraint normals
            excess = out[:, cols] @ layout.a.T - b[None, :]
            if not np.any(excess > 0):
                break
            for k in range(len(b)):
                over = np.maximum(excess[:, k], 0.0)
                out[:, cols] -= (over / max(float(layout.a[k] @ layout.a[k]), 1e-15))[:, None] * layout.a[k][None, :]
            out[:, cols] = np.clip(out[:, cols], 0.0, 1.0)
    return out


_MARGIN = 1e-7  # unit-coordinate slack kept inside linear constraints (float rounding)


def refine(
    space: DesignSpace,
    score: Score,
    starts: np.ndarray,
    *,
    steps: int = 12,
    offspring: int = 12,
    sigma: float = 0.08,
    switch_probability: float = 0.1,
    seed: int = 0,
) -> CandidateSet:
    """Local search from each start on ``score``; returns the best point found per start.

    A (1 + lambda) evolution strategy per start: each generation draws
    ``offspring`` Gaussian steps of size sigma (per start) on the continuous
    variables, switches each categorical variable to another category with
    ``switch_probability`` (fixed variables keep their value), projects onto the design space, and keeps the best
    of parent and children. sigma grows by 1.5 after a generation that
    improved and shrinks by 0.6 after one that did not (the 1/5th rule in
    spirit). Never returns a worse point than its start.

    Args:
        space: the design space.
        score: unit-encoded (n, d) -> (n,) scores, higher is better (vectorised).
        starts: feasible unit-encoded starting points, shape (k, d).
        steps: generations.
        offspring: children per start and generation.
        sigma: initial step size in unit coordinates.
        switch_probability: chance that a child changes a categorical variable.
        seed: random seed.

    Returns:
        k refined candidates (origin "refined").
    """
    layout = _layout(space)
    rng = np.random.default_rng(seed)
    parent = np.asarray(starts, dtype=np.float64).copy()
    k, d = parent.shape
    if k == 0:
        return CandidateSet(space.decode(parent), parent.astype(np.float32), np.empty(0, dtype=object))
    held, held_values = space.fixed_encoding()
    parent[:, held] = held_values  # starts carry the fixed values (a pool always does)
    parent = project(space, parent, parent)
    best = np.asarray(score(parent), dtype=float)
    step = np.full(k, float(sigma))
    for _ in range(steps):
        children = np.repeat(parent, offspring, axis=0)
        origin = children.copy()
        noise = rng.normal(size=(k * offspring, len(layout.moving))) * np.repeat(step, offspring)[:, None]
        children[:, layout.continuous[layout.moving]] += noise  # fixed variables never move
        for block in layout.blocks:
            if len(block) < 2:
                continue
            switch = rng.random(k * offspring) < switch_probability
            if switch.any():
                new = rng.integers(0, len(block), size=switch.sum())
                rows = np.flatnonzero(switch)
                children[np.ix_(rows, block)] = 0.0
                children[rows, block[new]] = 1.0
        children = project(space, origin, children)
        values = np.asarray(score(children), dtype=float).reshape(k, offspring)
        values = np.where(np.isfinite(values), values, -np.inf)
        pick = values.argmax(axis=1)
        improved = values[np.arange(k), pick] > best
        chosen = children.reshape(k, offspring, d)[np.arange(k), pick]
        parent[improved] = chosen[improved]
        best[improved] = values[np.arange(k), pick][improved]
        step = np.clip(np.where(improved, step * 1.5, step * 0.6), 1e-3, 0.5)
    frame = space.decode(parent)
    return CandidateSet(frame, space.encode(frame), np.full(k, "refined", dtype=object))


def top_starts(values: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` highest finite values, best first."""
    values = np.where(np.isfinite(values), values, -np.inf)
    n = min(n, len(values))
    if n <= 0:
        return np.empty(0, dtype=int)
    idx = np.argpartition(-values, n - 1)[:n]
    return idx[np.argsort(-values[idx])]


# -- what is already taken ----------------------------------------------------------------------
def _rounded(space: DesignSpace, frame: pd.DataFrame) -> pd.DataFrame:
    """Continuous values rounded to 6 significant digits (as in :func:`formulation_id`)."""
    out = {}
    for v in space.variables:
        x = frame[v.name].to_numpy()
        if isinstance(v, Continuous):
            x = x.astype(float)
            with np.errstate(divide="ignore"):
                e = np.floor(np.log10(np.abs(np.where(x == 0, 1.0, x)))) - 5
            x = np.round(x / 10.0**e) * 10.0**e
        out[v.name] = x
    return pd.DataFrame(out)


def unique_mask(space: DesignSpace, frame: pd.DataFrame) -> np.ndarray:
    """Boolean mask, shape (n,): False for a candidate repeating an earlier one (to 6 significant digits)."""
    return ~_rounded(space, frame).duplicated(keep="first").to_numpy()


def formulation_ids(space: DesignSpace, campaign: str, frame: pd.DataFrame) -> list[str]:
    """Content-hash ids of candidates (validating each one)."""
    return [formulation_id(campaign, space.validate(r)) for r in frame.to_dict("records")]


def taken_checker(space, campaign: str, taken: set[str]) -> Callable:
    """``is_taken`` for :func:`nanoloop.loop.design.acquisition.search`: exact content-hash ids against ``taken``, and repeats within the batch."""

    def is_taken(frame):
        ids = formulation_ids(space, campaign, frame)
        seen, out = set(), []
        for i in ids:
            out.append(i in taken or i in seen)
            seen.add(i)
        return np.asarray(out, dtype=bool)

    return is_taken
