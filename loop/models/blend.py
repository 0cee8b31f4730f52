"""The blended release model: the deep ensemble and monotone gradient-boosted curves, weighted by group validation.

Rows are as for :class:`~nanoloop.loop.models.ensemble.ReleaseEnsemble`: ``X`` is
(n_rows, n_features + 1) with the time in hours last, ``y`` the cumulative
fraction released. The model has two parts:

- the deep ensemble (:class:`ReleaseEnsemble`, the two-phase release law per
  formulation), monotone and bounded by construction;
- ``n_members`` LightGBM models of release at (features, time), each trained on
  a bootstrap draw of the curves, constrained non-decreasing in time and
  clipped to [0, 1].

Member k of the blend mixes the two parts with one network weight before the
split time (the median time of the training rows) and another after it:

- up to the split, ``w_early * network_k(t) + (1 - w_early) * trees_k(t)``;
- after it, that value at the split plus ``w_late`` times the network's rise
  since the split plus ``1 - w_late`` times the trees' rise since the split.

Each piece only adds non-negative rises, so every member is non-decreasing in
time; it is clipped to [0, 1]. With ``w_early == w_late`` it is the plain
convex blend. On the real release curves the trees are better at the early
burst and the network's release law at the long tail (bench/README.md). The
candidates (by default the network alone, or trees up to the split and the
network's rise after it) and the trees' settings are chosen inside
:meth:`BlendedRelease.fit` by
group k-fold validation on the training rows only (whole curves or
drug-polymer groups held out), so the choice never sees the data it is judged
on. The predictive spread is the members' spread plus the network's noise,
rescaled so that 90 % of the held-out points of those folds fall inside the 90
% interval. With fewer than ``min_groups`` curves there is nothing to validate
on: the blend then uses ``default_network_weight`` (by default the network
alone) and the network's own calibration.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from nanoloop.loop.errors import InputError
from nanoloop.loop.models.base import Z90, curve_rows
from nanoloop.loop.models.ensemble import ReleaseEnsemble, training_rows
from nanoloop.loop.models.ensemble_io import write_blob

_FORMAT = 2  # 2: a network weight before and after the split time (1: one weight)
# LightGBM settings the fit chooses among (by group validation); "default" is the
# benchmark's gradient-boosting baseline made monotone in time.
TREE_SETTINGS = {
    "default": {"learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 20, "lambda_l2": 1.0, "num_boost_round": 400},
    "smooth": {"learning_rate": 0.05, "num_leaves": 7, "min_data_in_leaf": 40, "lambda_l2": 3.0, "num_boost_round": 400, "feature_fraction": 0.7},
}


def blend_by_time(net, trees, net_split, trees_split, late, w_early: float, w_late: float):
    """Blend member curves with weight ``w_early`` up to the split time and ``w_late`` for the rise after it.

    Arguments are numpy arrays or torch tensors of one shape (``*_split``: the
    same members at the split time, broadcastable); ``late`` marks times after
    the split. Non-decreasing in time whenever both parts are; clipped to [0, 1].
    """
    early = w_early * net + (1 - w_early) * trees
    later = w_early * net_split + (1 - w_early) * trees_split + w_late * (net - net_split) + (1 - w_late) * (trees - trees_split)
    if isinstance(early, torch.Tensor):
        return torch.where(late, later, early).clamp(0.0, 1.0)
    return np.clip(np.where(late, later, early), 0.0, 1.0)


def _lightgbm():
    import lightgbm

    return lightgbm


class BlendedRelease(RegressorMixin, BaseEstimator):
    """Deep ensemble blended with monotone gradient-boosted curves (scikit-learn contract).

    Args:
        head, n_members, hidden, epochs, learning_rate, weight_decay, bootstrap, clip_inputs:
            settings of the :class:`ReleaseEnsemble` part (``n_members`` is also the number of tree models).
        early_network_weights, late_network_weights: candidate network weights before and after the split time; every
            pair is scored by group validation and the best kept. The defaults offer the network alone (1, 1) or trees
            up to the split and the network's rise after it (0.2, 1): chosen on the benchmark's inner validation only.
        tree_settings: names in :data:`TREE_SETTINGS` to choose among.
        n_folds: group folds of the validation inside ``fit``.
        min_groups: fewest curves (groups) to validate on; below, ``default_network_weight`` is used and the network's
            members train on every curve, unclamped (``bootstrap`` and ``clip_inputs`` need more curves to pay).
        default_network_weight: network weight at every time without validation (1: the network alone).
        calibrate: rescale the spread so the 90 % interval covers 90 % of the held-out points.
        n_jobs: fits (the validation folds' networks and trees, and the final network) run on this many threads at
            once, each on one CPU thread; None: the CPU count, at most 4. The result does not depend on it.
        random_state: seed.
        device: device of the network ("auto", "cpu", "cuda").
    """

    def __init__(
        self,
        head: str = "hybrid",
        n_members: int = 5,
        hidden: int = 64,
        epochs: int = 400,
        learning_rate: float = 3e-3,
        weight_decay: float = 1e-4,
        bootstrap: bool = True,
        clip_inputs: bool = True,
        early_network_weights: tuple = (0.2, 1.0),
        late_network_weights: tuple = (1.0,),
        tree_settings: tuple = ("smooth",),
        n_folds: int = 3,
        min_groups: int = 10,
        default_network_weight: float = 1.0,
        calibrate: bool = True,
        n_jobs: int | None = None,
        random_state: int = 0,
        device: str = "auto",
    ):
        self.head = head
        self.n_members = n_members
        self.hidden = hidden
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.bootstrap = bootstrap
        self.clip_inputs = clip_inputs
        self.early_network_weights = early_network_weights
        self.late_network_weights = late_network_weights
        self.tree_settings = tree_settings
        self.n_folds = n_folds
        self.min_groups = min_groups
        self.default_network_weight = default_network_weight
        self.calibrate = calibrate
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.device = device

    # -- parts ------------------------------------------------------------------------
    def _check_params(self) -> None:
        early, late = [float(w) for w in self.early_network_weights], [float(w) for w in self.late_network_weights]
        weights = early + late
        if not early or not late or any(not (0.0 <= w <= 1.0) for w in weights + [float(self.default_network_weight)]):
            raise InputError("network weights must lie in [0, 1]")
        unknown = [s for s in self.tree_settings if s not in TREE_SETTINGS]
        if not self.tree_settings or unknown:
            raise InputError(f"tree_settings must be among {sorted(TREE_SETTINGS)}, got {list(self.tree_settings)}")
        if int(self.n_folds) < 2 or int(self.n_members) < 1:
            raise InputError("n_folds must be at least 2 and n_members at least 1")

    def _network(self, seed: int, few: bool = False) -> ReleaseEnsemble:
        """The network part; with ``few`` curves, plain members (no bootstrap, no clamping): the campaign's ensemble."""
        return ReleaseEnsemble(
            head=self.head, n_members=self.n_members, hidden=self.hidden, epochs=self.epochs, learning_rate=self.learning_rate,
            weight_decay=self.weight_decay, bootstrap=self.bootstrap and not few, clip_inputs=self.clip_inputs and not few,
            random_state=seed, device=self.device,
        )

    def _fit_trees(self, X, y, group_index, setting: str, seed: int) -> list:
        """``n_members`` boosters, each on a bootstrap draw of the groups, non-decreasing in time (last column)."""
        lgb = _lightgbm()
        params = dict(TREE_SETTINGS[setting])
        rounds = params.pop("num_boost_round")
        n_groups = int(group_index.max()) + 1
        rng = np.random.default_rng(seed)
        boosters = []
        for m in range(int(self.n_members)):
            counts = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)[group_index].astype(float)
            keep = counts > 0
            config = {
                **params, "objective": "regression", "monotone_constraints": [0] * (X.shape[1] - 1) + [1],
                "monotone_constraints_method": "advanced", "seed": seed * 100 + m, "deterministic": True,
                "force_row_wise": True, "num_threads": 1, "verbose": -1,
            }
            data = lgb.Dataset(X[keep], y[keep], weight=counts[keep], params={"verbose": -1})
            boosters.append(lgb.train(config, data, num_boost_round=rounds))
        return boosters

    @staticmethod
    def _tree_members(boosters, X) -> np.ndarray:
        return np.clip(np.stack([b.predict(X) for b in boosters]), 0.0, 1.0)

    # -- fitting ------------------------------------------------------------------------
    def fit(self, X, y, groups=None):
        """Choose the blend (the two network weights and the trees' settings) by group validation, then train on every row.

        Args:
            X: (n_rows, n_features + 1), time in hours last.
            y: (n_rows,) cumulative fraction released.
            groups: (n_rows,) curve or drug-polymer group ids; defaults to unique feature rows.

        Returns:
            self.
        """
        self._check_params()
        started = time.perf_counter()
        X, y = training_rows(X, y)
        if groups is None:
            _, groups = np.unique(X[:, :-1], axis=0, return_inverse=True)
        groups = np.asarray(groups).reshape(-1)
        if len(groups) != len(X):
            raise InputError(f"groups has {len(groups)} entries but X has {len(X)} rows")
        _, group_index = np.unique(groups, return_inverse=True)
        group_index = group_index.reshape(-1)
        n_groups = int(group_index.max()) + 1
        seed = int(self.random_state)
        self.n_features_in_ = X.shape[1]
        self.validation_ = {}
        self.split_hours_ = float(np.median(X[:, -1]))
        with self._parallel() as pool:
            final = pool.submit(self._network(seed, few=n_groups < int(self.min_groups)).fit, X, y, groups=group_index)
            if n_groups >= int(self.min_groups):
                weights, setting, scale = self._validate(X, y, group_index, seed, pool)
            else:
                weights, setting, scale = (float(self.default_network_weight),) * 2, self.tree_settings[0], None
            self.network_ = final.result()
        self.network_weight_early_, self.network_weight_late_ = weights
        self.tree_setting_ = setting
        self.trees_ = self._fit_trees(X, y, group_index, setting, seed) if min(weights) < 1.0 else []
        self.std_scale_ = float(scale) if scale is not None else float(self.network_.std_scale_)
        self.n_epochs_ = self.network_.n_epochs_
        self.fit_seconds_ = time.perf_counter() - started
        return self

    @contextlib.contextmanager
    def _parallel(self):
        """A thread pool for independent fits; torch on one thread each, the caller's random state left alone."""
        workers = self.n_jobs if self.n_jobs is not None else min(4, os.cpu_count() or 1)
        if self._network(0).torch_device().type != "cpu":
            workers = 1  # one GPU: the fits queue on it anyway
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.random.fork_rng(devices=[]), ThreadPoolExecutor(max(1, int(workers))) as pool:
                yield pool
        finally:
            torch.set_num_threads(before)

    def _validate(self, X, y, group_index, seed, pool) -> tuple[tuple[float, float], str, float | None]:
        """Out-of-fold predictions by group folds -> ((early, late) network weights, tree setting, std scale)."""
        n_groups = int(group_index.max()) + 1
        fold_of_group = np.random.default_rng(seed + 7).permutation(n_groups) % int(self.n_folds)
        fold = fold_of_group[group_index]
        pairs = [(float(a), float(b)) for a in sorted(set(self.early_network_weights)) for b in sorted(set(self.late_network_weights))]
        at_split = self._at_split(X)
        shape = (int(self.n_members), len(y))
        net, net_split, noise = np.zeros(shape), np.zeros(shape), np.zeros(len(y))
        trees = {s: (np.zeros(shape), np.zeros(shape)) for s in self.tree_settings}
        with_trees = min(min(pair) for pair in pairs) < 1.0

        def fold_parts(k: int, held: np.ndarray) -> dict:
            train = ~held
            _, inner = np.unique(group_index[train], return_inverse=True)
            network = self._network(seed + 31 * (k + 1)).fit(X[train], y[train], groups=inner)
            parts = {"net": (network.predict_members(X[held]), network.predict_noise(X[held])),
                     "net_split": network.predict_members(at_split[held])}
            for s in self.tree_settings if with_trees else ():
                boosters = self._fit_trees(X[train], y[train], inner, s, seed + 31 * (k + 1))
                parts[s] = (self._tree_members(boosters, X[held]), self._tree_members(boosters, at_split[held]))
            return parts

        folds = [fold == k for k in range(int(self.n_folds))]
        futures = [(held, pool.submit(fold_parts, k, held)) for k, held in enumerate(folds) if held.any() and not held.all()]
        for held, future in futures:
            parts = future.result()
            net[:, held], noise[held] = parts["net"]
            net_split[:, held] = parts["net_split"]
            for s in self.tree_settings if with_trees else ():
                trees[s][0][:, held], trees[s][1][:, held] = parts[s]
        late = X[:, -1] > self.split_hours_
        best = None
        for s in self.tree_settings:
            for w_early, w_late in pairs:
                members = blend_by_time(net, trees[s][0], net_split, trees[s][1], late, w_early, w_late)
                mae = float(np.mean(np.abs(y - members.mean(axis=0))))
                self.validation_[f"{s}/w={w_early:.2f},{w_late:.2f}"] = mae
                if best is None or mae < best[0] - 1e-9:
                    best = (mae, (w_early, w_late), s, members)
        _, chosen, s, members = best
        total = np.sqrt(members.var(axis=0) + noise**2)
        z = np.abs(y - members.mean(axis=0)) / np.maximum(total, 1e-6)
        scale = float(np.clip(np.quantile(z, 0.90) / Z90, 0.25, 10.0)) if (self.calibrate and len(z) >= 20) else None
        return chosen, s, scale

    def _at_split(self, X: np.ndarray) -> np.ndarray:
        """The same rows at the split time."""
        rows = np.array(X, dtype=np.float64, copy=True)
        rows[:, -1] = self.split_hours_
        return rows

    # -- prediction -----------------------------------------------------------------------
    def predict_members(self, X) -> np.ndarray:
        """Each member's release fraction, shape (n_members, n_rows)."""
        X = self._rows(X)
        net = self.network_.predict_members(X)
        if not self.trees_:
            return net
        at_split = self._at_split(X)
        return blend_by_time(net, self._tree_part(X), self.network_.predict_members(at_split),
                             self._tree_part(at_split), X[:, -1] > self.split_hours_,
                             self.network_weight_early_, self.network_weight_late_)

    def predict_noise(self, X) -> np.ndarray:
        """Std of the noise the members do not explain (the network's), uncalibrated, shape (n_rows,).

        ``predict(X, return_std=True)``'s std is ``sqrt(predict_members(X).var(axis=0) + predict_noise(X)**2) * std_scale_``.
        """
        return self.network_.predict_noise(self._rows(X))

    def predict(self, X, return_std: bool = False):
        """Mean release fraction (n_rows,); with ``return_std`` also the calibrated predictive std (members + noise)."""
        members = self.predict_members(X)
        mean = members.mean(axis=0)
        if not return_std:
            return mean
        return mean, np.sqrt(members.var(axis=0) + self.predict_noise(X) ** 2) * self.std_scale_

    def _tree_part(self, X: np.ndarray) -> np.ndarray:
        """The trees' members at rows ``X`` (M, n); rows after the split are skipped (zeros) when the trees carry no weight there."""
        needed = (X[:, -1] <= self.split_hours_) | (self.network_weight_late_ < 1.0)
        out = np.zeros((len(self.trees_), len(X)))
        if needed.any():
            out[:, needed] = self._tree_members(self.trees_, X[needed])
        return out

    def predict_curves(self, features, times_hours) -> np.ndarray:
        """Member curves for formulations: features (n, d), times (T,) -> fraction (n_members, n, T)."""
        check_is_fitted(self, "network_")
        times = np.asarray(times_hours, dtype=np.float64).reshape(-1)
        if not self.trees_:
            return self.network_.predict_curves(features, times)
        features = np.asarray(features, dtype=np.float64)
        grid = np.append(times, self.split_hours_)  # the split time rides along as the last column
        net = self.network_.predict_curves(features, grid)
        trees = self._tree_part(curve_rows(features, grid).astype(np.float64)).reshape(len(self.trees_), len(features), len(grid))
        return blend_by_time(net[..., :-1], trees[..., :-1], net[..., -1:], trees[..., -1:], times > self.split_hours_,
                             self.network_weight_early_, self.network_weight_late_)

    def _rows(self, X) -> np.ndarray:
        check_is_fitted(self, "network_")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise InputError(f"X must have shape (n_rows, {self.n_features_in_}), got {X.shape}")
        return X

    @property
    def x_mean_(self) -> np.ndarray:
        """The network's training mean of the features (the default baseline of attributions)."""
        return self.network_.x_mean_

    def curve_tensor(self, features: torch.Tensor, times_hours: torch.Tensor) -> torch.Tensor:
        """Member curves (M, n, T) with gradients through the network part (the trees' part is a constant)."""
        if not self.trees_:
            return self.network_.curve_tensor(features, times_hours)
        times = times_hours.detach().cpu().numpy().astype(np.float64).reshape(-1)
        grid_np = np.append(times, self.split_hours_)
        grid = torch.as_tensor(grid_np, dtype=times_hours.dtype, device=times_hours.device)
        net = self.network_.curve_tensor(features, grid)
        x = features.detach().cpu().numpy().astype(np.float64)
        trees = self._tree_part(curve_rows(x, grid_np).astype(np.float64)).reshape(len(self.trees_), len(x), len(grid_np))
        trees = torch.as_tensor(trees, dtype=net.dtype, device=net.device)
        late = torch.as_tensor(times > self.split_hours_, device=net.device)
        return blend_by_time(net[..., :-1], trees[..., :-1], net[..., -1:], trees[..., -1:], late,
                             self.network_weight_early_, self.network_weight_late_)

    # -- persistence ------------------------------------------------------------------------
    def save(self, path, metadata: dict | None = None) -> None:
        """Write the model to ``path`` (file path or binary buffer); trees as LightGBM text, never pickled."""
        check_is_fitted(self, "network_")
        network = io.BytesIO()
        self.network_.save(network)
        meta = {
            "kind": "blend", "format": _FORMAT, "params": {k: list(v) if isinstance(v, tuple) else v for k, v in self.get_params().items()},
            "n_features_in": self.n_features_in_, "network_weight_early": self.network_weight_early_,
            "network_weight_late": self.network_weight_late_, "split_hours": self.split_hours_, "tree_setting": self.tree_setting_,
            "std_scale": self.std_scale_, "validation": self.validation_, "n_epochs": self.n_epochs_,
            "fit_seconds": getattr(self, "fit_seconds_", None), "user": metadata or {},
        }
        blob = {
            "meta_json": json.dumps(meta),
            "network": torch.frombuffer(bytearray(network.getvalue()), dtype=torch.uint8),
            "trees": [b.model_to_string() for b in self.trees_],
        }
        write_blob(blob, path)

    @classmethod
    def from_saved(cls, blob: dict, meta: dict, device: str | None) -> "BlendedRelease":
        """The model a saved file holds (``blob``: its tensors and trees, ``meta``: its settings); see :func:`~nanoloop.loop.models.build.load_release_model`."""
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["params"].items()}
        if meta.get("format", 1) == 1:  # one candidate grid for every time
            grid = params.pop("network_weights", None)
            if grid is not None:
                params["early_network_weights"] = params["late_network_weights"] = grid
        unknown = sorted(set(params) - set(cls().get_params()))
        if unknown or meta.get("format", 1) > _FORMAT:
            raise InputError(f"model saved by a newer nanoloop (unknown settings {unknown}); upgrade to load it")
        if device is not None:
            params["device"] = device
        model = cls(**params)
        model.network_, _ = ReleaseEnsemble.load(io.BytesIO(blob["network"].numpy().tobytes()), device=device)
        lgb = _lightgbm() if blob["trees"] else None
        model.trees_ = [lgb.Booster(model_str=text) for text in blob["trees"]]
        model.n_features_in_ = meta["n_features_in"]
        if meta.get("format", 1) == 1:  # one weight at every time
            meta = {**meta, "network_weight_early": meta["network_weight"], "network_weight_late": meta["network_weight"], "split_hours": 0.0}
        model.network_weight_early_, model.network_weight_late_ = meta["network_weight_early"], meta["network_weight_late"]
        model.split_hours_, model.tree_setting_ = meta["split_hours"], meta["tree_setting"]
        model.std_scale_, model.validation_ = meta["std_scale"], meta["validation"]
        model.n_epochs_, model.fit_seconds_ = meta.get("n_epochs"), meta.get("fit_seconds")
        return model
