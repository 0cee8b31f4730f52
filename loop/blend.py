"""The blended release model: the deep ensemble and monotone gradient-boosted curves, weighted by group validation.

Rows are as for :class:`~nanoloop.loop.surrogate.ReleaseEnsemble`: ``X`` is
(n_rows, n_features + 1) with the time in hours last, ``y`` the cumulative
fraction released. The model has two parts:

- the deep ensemble (:class:`ReleaseEnsemble`, the two-phase release law per
  formulation), monotone and bounded by construction;
- ``n_members`` LightGBM models of release at (features, time), each trained on
  a bootstrap draw of the curves, constrained non-decreasing in time and
  clipped to [0, 1].

Member k of the blend is ``w * network_k + (1 - w) * trees_k``: a convex
blend of two non-decreasing curves in [0, 1] is one too. The network weight
``w`` and the trees' settings are chosen inside :meth:`BlendedRelease.fit` by
group k-fold validation on the training rows only (whole curves or
drug-polymer groups held out), so the choice never sees the data it is judged
on. The predictive spread is the members' spread plus the network's noise,
rescaled so that 90 % of the held-out points of those folds fall inside the 90
% interval. With fewer than ``min_groups`` curves there is nothing to validate
on: the blend then uses ``default_network_weight`` and the network's own
calibration.
"""

from __future__ import annotations

import io
import json
import time

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from nanoloop.loop.errors import InputError
from nanoloop.loop.ensemble_training import Z90
from nanoloop.loop.surrogate import ReleaseEnsemble, curve_rows
from nanoloop.loop.surrogate_io import write_blob

_FORMAT = 1
# LightGBM settings the fit chooses among (by group validation); "default" is the
# benchmark's gradient-boosting baseline made monotone in time.
TREE_SETTINGS = {
    "default": {"learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 20, "lambda_l2": 1.0, "num_boost_round": 400},
    "smooth": {"learning_rate": 0.05, "num_leaves": 7, "min_data_in_leaf": 40, "lambda_l2": 3.0, "num_boost_round": 400, "feature_fraction": 0.7},
}


def _lightgbm():
    import lightgbm

    return lightgbm


class BlendedRelease(RegressorMixin, BaseEstimator):
    """Deep ensemble blended with monotone gradient-boosted curves (scikit-learn contract).

    Args:
        head, n_members, hidden, epochs, learning_rate, weight_decay, bootstrap, clip_inputs:
            settings of the :class:`ReleaseEnsemble` part (``n_members`` is also the number of tree models).
        network_weights: candidate weights of the network part, chosen by group validation.
        tree_settings: names in :data:`TREE_SETTINGS` to choose among.
        n_folds: group folds of the validation inside ``fit``.
        min_groups: fewest curves (groups) to validate on; below, ``default_network_weight`` is used.
        default_network_weight: network weight without validation.
        calibrate: rescale the spread so the 90 % interval covers 90 % of the held-out points.
        n_jobs: threads of the tree models.
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
        network_weights: tuple = (0.2, 0.35, 0.5, 0.65, 0.8, 1.0),
        tree_settings: tuple = ("default", "smooth"),
        n_folds: int = 3,
        min_groups: int = 10,
        default_network_weight: float = 0.5,
        calibrate: bool = True,
        n_jobs: int = 1,
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
        self.network_weights = network_weights
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
        weights = [float(w) for w in self.network_weights]
        if not weights or any(not (0.0 <= w <= 1.0) for w in weights + [float(self.default_network_weight)]):
            raise InputError("network weights must lie in [0, 1]")
        unknown = [s for s in self.tree_settings if s not in TREE_SETTINGS]
        if not self.tree_settings or unknown:
            raise InputError(f"tree_settings must be among {sorted(TREE_SETTINGS)}, got {list(self.tree_settings)}")
        if int(self.n_folds) < 2 or int(self.n_members) < 1:
            raise InputError("n_folds must be at least 2 and n_members at least 1")

    def _network(self, seed: int) -> ReleaseEnsemble:
        return ReleaseEnsemble(
            head=self.head, n_members=self.n_members, hidden=self.hidden, epochs=self.epochs, learning_rate=self.learning_rate,
            weight_decay=self.weight_decay, bootstrap=self.bootstrap, clip_inputs=self.clip_inputs, random_state=seed, device=self.device,
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
                "force_row_wise": True, "num_threads": int(self.n_jobs), "verbose": -1,
            }
            data = lgb.Dataset(X[keep], y[keep], weight=counts[keep], params={"verbose": -1})
            boosters.append(lgb.train(config, data, num_boost_round=rounds))
        return boosters

    @staticmethod
    def _tree_members(boosters, X) -> np.ndarray:
        return np.clip(np.stack([b.predict(X) for b in boosters]), 0.0, 1.0)

    @staticmethod
    def _network_parts(network: ReleaseEnsemble, X) -> tuple[np.ndarray, np.ndarray]:
        """The network's members (M, n) and its noise std (n,), uncalibrated."""
        members = network.predict_members(X)
        _, std = network.predict(X, return_std=True)
        noise2 = (std / network.std_scale_) ** 2 - members.var(axis=0)
        return members, np.sqrt(np.maximum(noise2, 0.0))

    # -- fitting ------------------------------------------------------------------------
    def fit(self, X, y, groups=None):
        """Choose the weight and tree settings by group validation, then train both parts on every row.

        Args:
            X: (n_rows, n_features + 1), time in hours last.
            y: (n_rows,) cumulative fraction released.
            groups: (n_rows,) curve or drug-polymer group ids; defaults to unique feature rows.

        Returns:
            self.
        """
        self._check_params()
        started = time.perf_counter()
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if X.ndim != 2 or X.shape[1] < 2 or len(X) != len(y) or len(X) == 0:
            raise InputError(f"X must have shape (n_rows, n_features + 1) matching y; got {X.shape} and {y.shape}")
        if not np.all(np.isfinite(X)) or not np.all(np.isfinite(y)):
            raise InputError("X and y must be finite (no NaN or inf)")
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
        if n_groups >= int(self.min_groups):
            weight, setting, scale = self._validate(X, y, group_index, seed)
        else:
            weight, setting, scale = float(self.default_network_weight), self.tree_settings[0], None
        self.network_weight_, self.tree_setting_ = weight, setting
        self.network_ = self._network(seed).fit(X, y, groups=group_index)
        self.trees_ = self._fit_trees(X, y, group_index, setting, seed) if weight < 1.0 else []
        self.std_scale_ = float(scale) if scale is not None else float(self.network_.std_scale_)
        self.n_epochs_ = self.network_.n_epochs_
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _validate(self, X, y, group_index, seed) -> tuple[float, str, float | None]:
        """Out-of-fold predictions by group folds -> (network weight, tree setting, std scale)."""
        n_groups = int(group_index.max()) + 1
        fold_of_group = np.random.default_rng(seed + 7).permutation(n_groups) % int(self.n_folds)
        fold = fold_of_group[group_index]
        weights = np.array(sorted({float(w) for w in self.network_weights}))
        net = np.zeros((int(self.n_members), len(y)))
        noise = np.zeros(len(y))
        trees = {s: np.zeros((int(self.n_members), len(y))) for s in self.tree_settings}
        for k in range(int(self.n_folds)):
            held = fold == k
            if not held.any() or held.all():
                continue
            train = ~held
            _, inner = np.unique(group_index[train], return_inverse=True)
            network = self._network(seed + 31 * (k + 1)).fit(X[train], y[train], groups=inner)
            net[:, held], noise[held] = self._network_parts(network, X[held])
            if weights.min() < 1.0:
                for s in self.tree_settings:
                    trees[s][:, held] = self._tree_members(self._fit_trees(X[train], y[train], inner, s, seed + 31 * (k + 1)), X[held])
        best = None
        for s in self.tree_settings:
            for w in weights:
                mean = (w * net + (1 - w) * trees[s]).mean(axis=0)
                mae = float(np.mean(np.abs(y - mean)))
                self.validation_[f"{s}/w={w:.2f}"] = mae
                if best is None or mae < best[0] - 1e-9:
                    best = (mae, float(w), s)
        _, w, s = best
        members = w * net + (1 - w) * trees[s]
        total = np.sqrt(members.var(axis=0) + noise**2)
        z = np.abs(y - members.mean(axis=0)) / np.maximum(total, 1e-6)
        scale = float(np.clip(np.quantile(z, 0.90) / Z90, 0.25, 10.0)) if (self.calibrate and len(z) >= 20) else None
        return w, s, scale

    # -- prediction -----------------------------------------------------------------------
    def predict_members(self, X) -> np.ndarray:
        """Each member's release fraction, shape (n_members, n_rows)."""
        check_is_fitted(self, "network_")
        X = self._rows(X)
        members = self.network_.predict_members(X)
        if self.trees_:
            w = self.network_weight_
            members = w * members + (1 - w) * self._tree_members(self.trees_, X)
        return members

    def predict(self, X, return_std: bool = False):
        """Mean release fraction (n_rows,); with ``return_std`` also the calibrated predictive std (members + noise)."""
        check_is_fitted(self, "network_")
        X = self._rows(X)
        net, noise = self._network_parts(self.network_, X)
        members = net
        if self.trees_:
            w = self.network_weight_
            members = w * net + (1 - w) * self._tree_members(self.trees_, X)
        mean = members.mean(axis=0)
        if not return_std:
            return mean
        return mean, np.sqrt(members.var(axis=0) + noise**2) * self.std_scale_

    def predict_curves(self, features, times_hours) -> np.ndarray:
        """Member curves for formulations: features (n, d), times (T,) -> fraction (n_members, n, T)."""
        check_is_fitted(self, "network_")
        times = np.asarray(times_hours, dtype=np.float64).reshape(-1)
        curves = self.network_.predict_curves(features, times)
        if not self.trees_:
            return curves
        features = np.asarray(features, dtype=np.float64)
        trees = self._tree_members(self.trees_, curve_rows(features, times).astype(np.float64)).reshape(len(self.trees_), len(features), len(times))
        w = self.network_weight_
        return w * curves + (1 - w) * trees

    def _rows(self, X) -> np.ndarray:
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
        curves = self.network_.curve_tensor(features, times_hours)
        if not self.trees_:
            return curves
        x = features.detach().cpu().numpy().astype(np.float64)
        times = times_hours.detach().cpu().numpy().astype(np.float64).reshape(-1)
        trees = self._tree_members(self.trees_, curve_rows(x, times).astype(np.float64)).reshape(len(self.trees_), len(x), len(times))
        w = self.network_weight_
        return w * curves + (1 - w) * torch.as_tensor(trees, dtype=curves.dtype, device=curves.device)

    # -- persistence ------------------------------------------------------------------------
    def save(self, path, metadata: dict | None = None) -> None:
        """Write the model to ``path`` (file path or binary buffer); trees as LightGBM text, never pickled."""
        check_is_fitted(self, "network_")
        network = io.BytesIO()
        self.network_.save(network)
        meta = {
            "kind": "blend", "format": _FORMAT, "params": {k: list(v) if isinstance(v, tuple) else v for k, v in self.get_params().items()},
            "n_features_in": self.n_features_in_, "network_weight": self.network_weight_, "tree_setting": self.tree_setting_,
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
    def _from_blob(cls, blob: dict, meta: dict, device: str | None) -> "BlendedRelease":
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["params"].items()}
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
        model.network_weight_, model.tree_setting_ = meta["network_weight"], meta["tree_setting"]
        model.std_scale_, model.validation_ = meta["std_scale"], meta["validation"]
        model.n_epochs_, model.fit_seconds_ = meta.get("n_epochs"), meta.get("fit_seconds")
        return model


def load_release_model(path, device: str | None = None):
    """Read a saved :class:`BlendedRelease` or :class:`ReleaseEnsemble`; returns (model, user metadata)."""
    raw = path.read() if hasattr(path, "read") else open(path, "rb").read()
    try:
        blob = torch.load(io.BytesIO(raw), weights_only=True, map_location="cpu")
        meta = json.loads(blob["meta_json"])
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user error
        raise InputError(f"not a saved release model: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
    if meta.get("kind") == "blend":
        return BlendedRelease._from_blob(blob, meta, device), meta.get("user", {})
    return ReleaseEnsemble.load(io.BytesIO(raw), device=device)


def build_release_model(settings, random_state: int, n_members: int | None = None):
    """The campaign's surrogate from its ``[surrogate]`` settings (``model = "blend"`` or ``"ensemble"``)."""
    members = settings.members if n_members is None else n_members
    if getattr(settings, "model", "ensemble") == "blend":
        return BlendedRelease(head=settings.head, n_members=members, hidden=settings.hidden, epochs=settings.epochs,
                              learning_rate=settings.learning_rate, weight_decay=settings.weight_decay, random_state=random_state)
    return ReleaseEnsemble(head=settings.head, n_members=members, hidden=settings.hidden, epochs=settings.epochs,
                           learning_rate=settings.learning_rate, weight_decay=settings.weight_decay, random_state=random_state)
