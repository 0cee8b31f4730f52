"""The campaign benchmark's baselines: random, a scalar GP with modAL's EI, and a curve-level GP.

All start from the same 8-point Sobol design as the campaign's round 0 and draw
their pools from the same Sobol seeds (see bench_campaign.py for the protocol).

- ``random``: the continuation of that Sobol sequence;
- ``gp_ei``: scikit-learn GaussianProcessRegressor (Matern 5/2 ARD + noise) on the
  measured f2, modAL ``BayesianOptimizer`` with ``max_EI`` (top-k), ``teach()`` each round;
- ``curve_gp``: one GP per target time on the measured release; EI of the f2 of
  128 sampled curves per candidate (top-k). Given prior data (``--prior``), its GPs
  are fitted on the prior formulations' curves as well.
"""

from __future__ import annotations

import numpy as np

from campaign_lab import POOL_SIZE, Lab, design_space, f2_of, run_name, target_profile
from nanoloop.loop.design.objective import f2_to_target
from nanoloop.loop.design.space import formulation_id


def run_random(target_name: str, seed: int, rounds: int, batch: int) -> list[float]:
    """f2 of each experiment, in order (-inf: failed synthesis)."""
    space, target, lab = design_space(), target_profile(target_name), Lab(seed)
    frame = space.sample(rounds * batch, seed=seed)
    recipes = [space.validate(r) for r in frame.to_dict("records")]
    keys = [formulation_id(run_name(target_name, seed), r) for r in recipes]
    return [f2_of(m, target) for m in lab.measure(keys, recipes)]



def _gp(seed: int, d: int):
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    kernel = ConstantKernel(1.0, (1e-2, 1e3)) * Matern(np.full(d, 0.5), (1e-2, 1e2), nu=2.5) + WhiteKernel(1e-2, (1e-6, 1e0))
    return GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=2, random_state=seed)


class _Loop:
    """Shared bookkeeping of the GP baselines: the initial design, pools without taken formulations, measuring."""

    def __init__(self, target_name: str, seed: int, batch: int):
        self.space, self.target, self.lab = design_space(), target_profile(target_name), Lab(seed)
        self.name, self.seed, self.batch = run_name(target_name, seed), seed, batch
        self.taken: set[str] = set()
        self.f2: list[float] = []
        self.X, self.y, self.curves = [], [], []

    def run_batch(self, frame) -> None:
        recipes = [self.space.validate(r) for r in frame.to_dict("records")]
        keys = [formulation_id(self.name, r) for r in recipes]
        self.taken.update(keys)
        encoded = self.space.encode(frame)
        for x, m in zip(encoded, self.lab.measure(keys, recipes)):
            self.f2.append(f2_of(m, self.target))
            if m is not None:
                self.X.append(x)
                self.y.append(self.f2[-1])
                self.curves.append(np.interp(self.target.times_hours, m[0], m[1]))

    def pool(self, round_: int):
        frame = self.space.sample(POOL_SIZE, seed=self.seed * 1000 + round_)
        keep = [formulation_id(self.name, self.space.validate(r)) not in self.taken for r in frame.to_dict("records")]
        frame = frame[keep].reset_index(drop=True)
        return frame, self.space.encode(frame)


def run_gp_ei(target_name: str, seed: int, rounds: int, batch: int) -> list[float]:
    """Scalar GP on f2 with modAL's max_EI (top-k) and teach()."""
    from nanoloop.loop.design.modal_compat import BayesianOptimizer, max_EI

    state = _Loop(target_name, seed, batch)
    state.run_batch(state.space.sample(batch, seed=seed))
    optimizer = None
    for round_ in range(1, rounds):
        frame, encoded = state.pool(round_)
        if optimizer is None and len(state.y) >= 2:
            optimizer = BayesianOptimizer(estimator=_gp(seed, encoded.shape[1]), query_strategy=max_EI,
                                          X_training=np.array(state.X), y_training=np.array(state.y))
        if optimizer is None:  # fewer than 2 measured curves: another Sobol batch
            picks = np.arange(batch)
        else:
            picks, _ = optimizer.query(encoded, n_instances=batch)
        n_known = len(state.y)
        state.run_batch(frame.iloc[np.asarray(picks)].reset_index(drop=True))
        if optimizer is not None and len(state.y) > n_known:
            optimizer.teach(np.array(state.X[n_known:]), np.array(state.y[n_known:]))
    return state.f2


def run_curve_gp(target_name: str, seed: int, rounds: int, batch: int, n_samples: int = 128,
                 prior: tuple[np.ndarray, np.ndarray] | None = None) -> list[float]:
    """One GP per target time on the measured release; EI of the f2 of sampled curves (top-k).

    ``prior``: (encoded formulations, release % at the target times) fitted along with the measured
    ones; with it round 0 is chosen by the GPs too (as ours does with a prior).
    """
    state = _Loop(target_name, seed, batch)
    if prior is None:
        state.run_batch(state.space.sample(batch, seed=seed))
    rng = np.random.default_rng(seed)
    for round_ in range(0 if prior is not None else 1, rounds):
        frame, encoded = state.pool(round_)
        X, Y = np.array(state.X).reshape(-1, encoded.shape[1]), np.array(state.curves).reshape(-1, len(state.target.times_hours))
        if prior is not None:
            X, Y = np.vstack([X, prior[0]]), np.vstack([Y, prior[1]])
        if len(X) < 2:
            picks = np.arange(batch)
        else:
            means, stds = [], []
            for j in range(Y.shape[1]):
                gp = _gp(seed, X.shape[1]).fit(X, Y[:, j])
                m, s = gp.predict(encoded, return_std=True)
                means.append(m)
                stds.append(s)
            mean, std = np.array(means).T, np.array(stds).T  # (n, T)
            best = max(state.y) if state.y else 0.0
            ei = np.zeros(len(encoded))
            for chunk in range(0, n_samples, 32):
                z = rng.standard_normal((min(32, n_samples - chunk), len(encoded), mean.shape[1]))
                sampled = np.clip(mean + std * z, 0.0, 100.0)
                ei += np.maximum(f2_to_target(sampled, state.target) - best, 0.0).sum(axis=0)
            picks = np.argsort(-ei, kind="stable")[:batch]
        state.run_batch(frame.iloc[np.asarray(picks)].reset_index(drop=True))
    return state.f2
