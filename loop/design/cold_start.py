"""Decisions taken by evidence while a campaign has few measurements: how to use a prior, which model proposes.

Both are decided each round on the campaign's own record and stored, with the
figures behind them, in the proposal's provenance.

- :func:`choose_prior_use`: whether earlier measurements help predict this
  campaign's formulations, by grouped cross-validation on this campaign's
  measured formulations with a curve-level GP (one per target time; fast, so
  every fold can be refitted): this campaign's data alone ("none"), pooled with
  the prior ("joint"), or on the residuals of a GP fitted to the prior (the prior
  as mean, the GP analogue of pretraining and fine-tuning: "fine-tune"). The
  lowest held-out error decides how the ensemble is trained.
- :func:`replay_errors`: each candidate proposer's prospective error on the
  rounds measured so far, replayed as it would have been: fitted on what was
  measured before the round, scored on the round's measured formulations. The
  ensemble is the round's stored model (with its residual GPs); the curve GP is
  refitted. The lower error proposes the next round.
"""

from __future__ import annotations

import numpy as np

from nanoloop.loop.models.gp import fit_standardised_gp

#: fewer measured formulations of this campaign than this: the prior cannot be judged, it is used jointly
MIN_TO_JUDGE = 4
PRIOR_USES = ("none", "joint", "fine-tune")


class FlatCurves:
    """A curve model predicting 0 % everywhere: a GP on its residuals is a plain GP on the release itself."""

    def __init__(self, members: int = 8):
        self.members = members

    std_scale_ = 1.0

    def predict_curves(self, features, times_hours) -> np.ndarray:
        return np.zeros((self.members, len(features), len(np.atleast_1d(times_hours))))

    def predict(self, X, return_std: bool = False):
        """Zero release with zero spread (the GP on top carries all of it, measurement noise included)."""
        zeros = np.zeros(len(X))
        return (zeros, zeros) if return_std else zeros

    def predict_noise(self, X) -> np.ndarray:
        """No noise, shape (n_rows,): the GP on top carries it."""
        return np.zeros(len(X))


def _gp_per_time(X: np.ndarray, Y: np.ndarray, seed: int, kernels=None, restarts: int = 1):
    """One GP per column of Y (standardised); returns [(gp, centre, scale)] with fitted kernels reused when given."""
    return [fit_standardised_gp(X, Y[:, j], seed, None if kernels is None else kernels[j], restarts) for j in range(Y.shape[1])]


def _predict(gps, X: np.ndarray) -> np.ndarray:
    return np.column_stack([centre + scale * gp.predict(X) for gp, centre, scale in gps])


def _folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return [order[i::k] for i in range(k)]


def choose_prior_use(own_encoded: np.ndarray, own_pct: np.ndarray, prior_encoded: np.ndarray, prior_pct: np.ndarray,
                     seed: int = 0, folds: int = 5, max_formulations: int = 100, restarts: int = 1) -> tuple[str, dict, str]:
    """How the prior should train this round's model, by grouped cross-validation on this campaign's formulations.

    Args:
        own_encoded: this campaign's measured formulations, encoded, shape (n, d).
        own_pct: their mean release (%) at the objective's times, shape (n, T).
        prior_encoded: the prior's formulations, shape (m, d).
        prior_pct: their mean release (%) at the same times, shape (m, T).
        seed: fold assignment and optimiser seed.
        folds: at most this many folds (one formulation per fold below that).
        max_formulations: at most this many of this campaign's and as many of the prior's
            formulations (a seeded random draw) enter the GPs, which cost n^3.
        restarts: optimiser restarts of each GP fitted on all data (``[acquisition] gp_restarts``).

    Returns:
        (use, held-out mean absolute error in %-points per use, the reason in words).
    """
    n = len(own_encoded)
    if n < MIN_TO_JUDGE:
        return "joint", {}, f"{n} measured formulations of this campaign (fewer than {MIN_TO_JUDGE} to judge the prior): the prior is used jointly"
    X, Y, P, PY = (np.asarray(a, np.float64) for a in (own_encoded, own_pct, prior_encoded, prior_pct))
    rng = np.random.default_rng(seed)
    if n > max_formulations:
        keep = np.sort(rng.choice(n, max_formulations, replace=False))
        X, Y, n = X[keep], Y[keep], max_formulations
    if len(P) > max_formulations:
        keep = np.sort(rng.choice(len(P), max_formulations, replace=False))
        P, PY = P[keep], PY[keep]
    # kernels fitted once per use on all data, then reused for every fold (no optimiser inside the folds)
    kernels = {"none": [g.kernel_ for g, _, _ in _gp_per_time(X, Y, seed, restarts=restarts)],
               "joint": [g.kernel_ for g, _, _ in _gp_per_time(np.vstack([X, P]), np.vstack([Y, PY]), seed, restarts=restarts)]}
    prior_gps = _gp_per_time(P, PY, seed, restarts=restarts)
    prior_mean = _predict(prior_gps, X)
    kernels["fine-tune"] = [g.kernel_ for g, _, _ in _gp_per_time(X, Y - prior_mean, seed, restarts=restarts)]
    errors = {use: [] for use in PRIOR_USES}
    for held in _folds(n, min(folds, n), seed):
        train = np.setdiff1d(np.arange(n), held)
        fits = {
            "none": _predict(_gp_per_time(X[train], Y[train], seed, kernels["none"]), X[held]),
            "joint": _predict(_gp_per_time(np.vstack([X[train], P]), np.vstack([Y[train], PY]), seed, kernels["joint"]), X[held]),
            "fine-tune": prior_mean[held] + _predict(_gp_per_time(X[train], Y[train] - prior_mean[train], seed, kernels["fine-tune"]), X[held]),
        }
        for use, predicted in fits.items():
            errors[use].append(np.abs(predicted - Y[held]))
    mae = {use: round(float(np.mean(np.vstack(e))), 3) for use, e in errors.items()}
    use = min(PRIOR_USES, key=lambda u: (mae[u], PRIOR_USES.index(u)))
    shown = ", ".join(f"{u} {mae[u]:.2f}" for u in PRIOR_USES)
    return use, mae, f"{min(folds, n)}-fold cross-validation on {n} measured formulations, held-out error (%-points): {shown}"


def replay_errors(rounds: list[dict], times_hours, seed: int = 0, restarts: int = 1) -> dict[str, float]:
    """Mean prospective error (%-points at the objective's times) of each proposer over past rounds.

    Args:
        rounds: one dict per replayed round with ``before`` (encoded, %) measured before it,
            ``after`` (encoded, %) its measured formulations, and ``ensemble`` the
            round's model as it proposed (a curve model with ``predict_curves``), or None
            (a round without a model, e.g. the Sobol start, is not replayed).
        times_hours: the objective's times.
        seed: seed of the GP fits.
        restarts: optimiser restarts of each curve GP (``[acquisition] gp_restarts``).

    Returns:
        name -> mean absolute error; a proposer without any replayable round is absent.
    """
    errors = {"curve-gp": [], "ensemble": []}
    for r in rounds:
        (Xb, Yb), (Xa, Ya) = r["before"], r["after"]
        if len(Xb) < 2 or len(Xa) == 0 or r.get("ensemble") is None:  # compared on the same rounds only
            continue
        gp = _gp_per_time(np.asarray(Xb, np.float64), np.asarray(Yb, np.float64), seed, restarts=restarts)
        errors["curve-gp"].append(np.abs(_predict(gp, np.asarray(Xa, np.float64)) - Ya))
        predicted = 100.0 * np.asarray(r["ensemble"].predict_curves(np.asarray(Xa, np.float32), times_hours)).mean(axis=0)
        errors["ensemble"].append(np.abs(predicted - Ya))
    return {name: round(float(np.mean(np.vstack(e))), 3) for name, e in errors.items() if e}
