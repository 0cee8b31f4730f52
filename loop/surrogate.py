"""The release-curve surrogate: a torch deep ensemble behind the scikit-learn estimator contract.

Rows are (formulation features, time): ``X`` has shape (n_rows, n_features + 1)
with the time in hours in the last column, and ``y`` is the cumulative fraction
released, shape (n_rows,). Every member maps the features to the parameters of
a release curve, so predictions are monotone in time and bounded in [0, 1] by
construction:

- ``head="hybrid"``: a two-phase Weibull law,
  F(t) = Fmax * [w * (1 - exp(-(t/tau_fast)^b_fast)) + (1 - w) * (1 - exp(-(t/tau_slow)^b_slow))],
  a fast (burst / diffusion) phase and a slow (erosion) phase a scientist can read;
- ``head="freeform"``: F(t) = Fmax * sum_k a_k * B_k(t) over a fixed basis of
  Weibull CDFs B_k spanning the observed time range, with softmax weights a_k.

Each member also predicts a noise level, trained with a Gaussian likelihood, so
``predict(X, return_std=True)`` gives the total spread (members + noise),
rescaled by a factor fitted on held-out curves when ``calibrate=True``.
"""

from __future__ import annotations

import io
import json
import math
import time

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from loop.errors import InputError

_HYBRID_PARAMS = ("fast_fraction", "tau_fast_hours", "shape_fast", "tau_slow_hours", "shape_slow", "plateau")
_SHAPE_MIN, _SHAPE_MAX = 0.3, 4.0
_FREEFORM_SHAPES = (0.7, 1.5, 3.0)


class _EnsembleMLP(nn.Module):
    """M independent MLPs evaluated together with batched matrix products.

    Input (n, d) -> output (M, n, k).
    """

    def __init__(self, n_members: int, n_in: int, hidden: int, n_layers: int, n_out: int, dropout: float, generator):
        super().__init__()
        sizes = [n_in] + [hidden] * n_layers + [n_out]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(a)
            w = (torch.rand(n_members, a, b, generator=generator) * 2 - 1) * bound
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(n_members, 1, b)))
        with torch.no_grad():  # start the output layer small: curves begin near the prior
            self.weights[-1].mul_(0.1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.unsqueeze(0).expand(self.weights[0].shape[0], -1, -1)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < len(self.weights) - 1:
                h = self.dropout(torch.nn.functional.silu(h))
        return h


def _weibull_cdf(t: torch.Tensor, tau: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    ratio = torch.clamp(t, min=0.0) / tau
    return -torch.expm1(-torch.pow(ratio + 1e-12, shape))


class ReleaseEnsemble(RegressorMixin, BaseEstimator):
    """Deep ensemble predicting cumulative release (fraction) at any time.

    Args:
        head: "hybrid" (two-phase Weibull law) or "freeform" (monotone basis).
        n_members: ensemble size.
        hidden: width of the hidden layers.
        n_layers: number of hidden layers.
        dropout: dropout rate in the hidden layers.
        epochs: maximum full-batch training epochs.
        learning_rate: Adam learning rate.
        weight_decay: AdamW weight decay.
        validation_fraction: share of curves (groups) each member holds out for early stopping.
        patience: epochs without validation improvement before a member stops.
        calibrate: fit a scale on held-out curves so the 90 % interval covers 90 %.
        random_state: seed; results are reproducible on CPU.
        device: "auto" (CUDA when available), "cpu" or "cuda".
    """

    def __init__(
        self,
        head: str = "hybrid",
        n_members: int = 5,
        hidden: int = 64,
        n_layers: int = 2,
        dropout: float = 0.0,
        epochs: int = 400,
        learning_rate: float = 3e-3,
        weight_decay: float = 1e-4,
        validation_fraction: float = 0.15,
        patience: int = 60,
        calibrate: bool = True,
        random_state: int = 0,
        device: str = "auto",
    ):
        self.head = head
        self.n_members = n_members
        self.hidden = hidden
        self.n_layers = n_layers
        self.dropout = dropout
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.calibrate = calibrate
        self.random_state = random_state
        self.device = device

    # -- the curve head ----------------------------------------------------------
    def _n_outputs(self) -> int:
        if self.head == "hybrid":
            return len(_HYBRID_PARAMS) + 1
        return len(self.freeform_taus_hours_) * len(_FREEFORM_SHAPES) + 2

    def _curve(self, raw: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Release fraction. raw: (M, n, k) network outputs; t: (n,) or (n, T) hours -> (M, n) or (M, n, T)."""
        squeeze = t.dim() == 1
        t = t.reshape(1, t.shape[0], -1)
        if self.head == "hybrid":
            p = self._hybrid_params(raw)
            fast = _weibull_cdf(t, p["tau_fast_hours"][..., None], p["shape_fast"][..., None])
            slow = _weibull_cdf(t, p["tau_slow_hours"][..., None], p["shape_slow"][..., None])
            w = p["fast_fraction"][..., None]
            curve = p["plateau"][..., None] * (w * fast + (1 - w) * slow)
        else:
            taus = torch.as_tensor(self.freeform_taus_hours_, dtype=t.dtype, device=t.device)
            shapes = torch.as_tensor(_FREEFORM_SHAPES, dtype=t.dtype, device=t.device)
            tau = taus.repeat(len(_FREEFORM_SHAPES))
            shape = shapes.repeat_interleave(len(taus))
            basis = _weibull_cdf(t[..., None], tau, shape)  # (1, n, T, K)
            weights = torch.softmax(raw[..., 2:], dim=-1)[:, :, None, :]  # (M, n, 1, K)
            curve = torch.sigmoid(raw[..., 1] + 3.0)[..., None] * (weights * basis).sum(-1)
        return curve[..., 0] if squeeze else curve

    def _hybrid_params(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:
        log_center = math.log(self.time_center_hours_)
        tau_fast = torch.exp(log_center - 2.0 + 2.0 * torch.tanh(raw[..., 1] / 2.0) * 2.5)
        return {
            "fast_fraction": torch.sigmoid(raw[..., 0] - 1.0),
            "tau_fast_hours": tau_fast,
            "shape_fast": _SHAPE_MIN + (_SHAPE_MAX - _SHAPE_MIN) * torch.sigmoid(raw[..., 2] - 1.0),
            "tau_slow_hours": tau_fast * (1.0 + torch.exp(raw[..., 3] + 2.0)),
            "shape_slow": _SHAPE_MIN + (_SHAPE_MAX - _SHAPE_MIN) * torch.sigmoid(raw[..., 4] - 1.0),
            "plateau": torch.sigmoid(raw[..., 5] + 3.0),
        }

    def _noise_std(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.softplus(raw[..., -1] - 3.0) + 0.005

    # -- fitting -----------------------------------------------------------------
    def _device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def _split(self, X: np.ndarray, y: np.ndarray):
        if X.ndim != 2 or X.shape[1] < 2:
            raise InputError(f"X must have shape (n_rows, n_features + 1 time column), got {X.shape}")
        if len(X) != len(y):
            raise InputError(f"X has {len(X)} rows but y has {len(y)}")
        if not np.all(np.isfinite(X)) or not np.all(np.isfinite(y)):
            raise InputError("X and y must be finite (no NaN or inf)")
        return X[:, :-1].astype(np.float32), X[:, -1].astype(np.float32)

    def fit(self, X, y, groups=None):
        """Train every member.

        Args:
            X: (n_rows, n_features + 1), time in hours last.
            y: (n_rows,) cumulative fraction released.
            groups: (n_rows,) curve ids for the validation split; defaults to unique feature rows.
        """
        if self.head not in ("hybrid", "freeform"):
            raise InputError(f"head must be 'hybrid' or 'freeform', got {self.head!r}")
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        features, times = self._split(X, y)
        started = time.perf_counter()
        self.n_features_in_ = X.shape[1]
        self.x_mean_ = features.mean(axis=0)
        scale = features.std(axis=0)
        self.x_scale_ = np.where(scale > 1e-8, scale, 1.0).astype(np.float32)
        positive = times[times > 0]
        self.time_center_hours_ = float(np.exp(np.mean(np.log(positive)))) if len(positive) else 24.0
        lo = float(positive.min()) if len(positive) else 1.0
        hi = float(positive.max()) if len(positive) else 100.0
        self.freeform_taus_hours_ = np.geomspace(lo / 3, hi * 3, 10).astype(np.float32)

        if groups is None:
            _, groups = np.unique(features, axis=0, return_inverse=True)
        _, group_index = np.unique(np.asarray(groups), return_inverse=True)
        n_groups = int(group_index.max()) + 1
        rng = np.random.default_rng(self.random_state)
        use_validation = self.validation_fraction > 0 and n_groups >= 8
        val_groups = np.zeros((self.n_members, n_groups), dtype=bool)
        if use_validation:
            n_val = max(1, int(round(self.validation_fraction * n_groups)))
            for m in range(self.n_members):
                val_groups[m, rng.choice(n_groups, n_val, replace=False)] = True
        val_mask = val_groups[:, group_index]  # (M, n)

        device = self._device()
        generator = torch.Generator().manual_seed(int(self.random_state))
        net = _EnsembleMLP(self.n_members, features.shape[1], self.hidden, self.n_layers, self._n_outputs(), self.dropout, generator)
        net.to(device)
        xs = torch.as_tensor((features - self.x_mean_) / self.x_scale_, device=device)
        ts = torch.as_tensor(times, device=device)
        ys = torch.as_tensor(y, dtype=torch.float32, device=device)
        train_w = torch.as_tensor(~val_mask, dtype=torch.float32, device=device)
        val_w = torch.as_tensor(val_mask, dtype=torch.float32, device=device)
        optimizer = torch.optim.AdamW(net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)

        best_loss = torch.full((self.n_members,), float("inf"), device=device)
        best_state = [p.detach().clone() for p in net.parameters()]
        since_best = torch.zeros(self.n_members, dtype=torch.int64, device=device)
        torch.manual_seed(int(self.random_state))
        self.n_epochs_ = 0
        for epoch in range(self.epochs):
            net.train()
            optimizer.zero_grad()
            raw = net(xs)
            per_point = self._nll(raw, ts, ys)  # (M, n)
            loss = ((per_point * train_w).sum(1) / train_w.sum(1).clamp(min=1)).sum()
            loss.backward()
            optimizer.step()
            self.n_epochs_ = epoch + 1
            if not use_validation:
                continue
            net.eval()
            with torch.no_grad():
                val = (self._nll(net(xs), ts, ys) * val_w).sum(1) / val_w.sum(1).clamp(min=1)
                improved = val < best_loss - 1e-5
                best_loss = torch.where(improved, val, best_loss)
                since_best = torch.where(improved, torch.zeros_like(since_best), since_best + 1)
                for saved, p in zip(best_state, net.parameters()):
                    saved[improved] = p.detach()[improved]
            if bool((since_best > self.patience).all()):
                break
        if use_validation:
            with torch.no_grad():
                for saved, p in zip(best_state, net.parameters()):
                    p.copy_(saved)
        self.net_ = net.eval()
        self.std_scale_ = 1.0
        if self.calibrate and use_validation:
            self.std_scale_ = self._fit_std_scale(xs, ts, y, val_mask)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _nll(self, raw: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-point beta-NLL (beta = 0.5), shape (M, n)."""
        mean = self._curve(raw, t)
        std = self._noise_std(raw)
        nll = 0.5 * ((y - mean) / std) ** 2 + torch.log(std)
        return nll * std.detach()

    def _fit_std_scale(self, xs, ts, y, val_mask) -> float:
        """Scale making 90 % of each member's held-out points fall inside its 90 % interval."""
        with torch.no_grad():
            raw = self.net_(xs)
            mean = self._curve(raw, ts).cpu().numpy()
            noise = self._noise_std(raw).cpu().numpy()
        spread = mean.std(axis=0)
        z = []
        for m in range(self.n_members):
            held = val_mask[m]
            total = np.sqrt(spread[held] ** 2 + noise[m, held] ** 2)
            z.append(np.abs(y[held] - mean[m, held]) / np.maximum(total, 1e-6))
        z = np.concatenate(z)
        if len(z) < 20:
            return 1.0
        return float(np.clip(np.quantile(z, 0.90) / 1.6449, 0.25, 10.0))

    # -- prediction ---------------------------------------------------------------
    def _raw(self, features: np.ndarray) -> torch.Tensor:
        check_is_fitted(self, "net_")
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.n_features_in_ - 1:
            raise InputError(f"expected {self.n_features_in_ - 1} feature columns, got shape {features.shape}")
        xs = torch.as_tensor((features - self.x_mean_) / self.x_scale_, device=next(self.net_.parameters()).device)
        return self.net_(xs)

    def predict_members(self, X) -> np.ndarray:
        """Each member's release fraction, shape (n_members, n_rows)."""
        X = np.asarray(X, dtype=np.float32)
        with torch.no_grad():
            raw = self._raw(X[:, :-1])
            t = torch.as_tensor(X[:, -1], device=raw.device)
            return self._curve(raw, t).cpu().numpy().astype(np.float64)

    def predict(self, X, return_std: bool = False):
        """Mean release fraction, shape (n_rows,); with ``return_std`` also the predictive std."""
        X = np.asarray(X, dtype=np.float32)
        with torch.no_grad():
            raw = self._raw(X[:, :-1])
            t = torch.as_tensor(X[:, -1], device=raw.device)
            members = self._curve(raw, t).cpu().numpy().astype(np.float64)
            noise = self._noise_std(raw).cpu().numpy().astype(np.float64)
        mean = members.mean(axis=0)
        if not return_std:
            return mean
        std = np.sqrt(members.var(axis=0) + (noise**2).mean(axis=0)) * self.std_scale_
        return mean, std

    def predict_curves(self, features, times_hours) -> np.ndarray:
        """Member curves for formulations: features (n, d), times (T,) -> fraction (n_members, n, T)."""
        times = np.asarray(times_hours, dtype=np.float32)
        with torch.no_grad():
            raw = self._raw(features)
            t = torch.as_tensor(times, device=raw.device).expand(raw.shape[1], -1)
            return self._curve(raw, t).cpu().numpy().astype(np.float64)

    def curve_parameters(self, features) -> dict[str, np.ndarray]:
        """Hybrid head only: each member's release-law parameters, arrays of shape (n_members, n)."""
        if self.head != "hybrid":
            raise InputError("curve parameters are defined for the hybrid head only")
        with torch.no_grad():
            params = self._hybrid_params(self._raw(features))
        return {k: v.cpu().numpy().astype(np.float64) for k, v in params.items()}

    # -- persistence --------------------------------------------------------------
    def save(self, path, metadata: dict | None = None) -> None:
        """Write weights and metadata to ``path`` (a torch file loadable with weights_only=True)."""
        check_is_fitted(self, "net_")
        meta = {
            "params": self.get_params(),
            "n_features_in": self.n_features_in_,
            "time_center_hours": self.time_center_hours_,
            "std_scale": self.std_scale_,
            "torch_version": torch.__version__,
            "user": metadata or {},
        }
        blob = {
            "meta_json": json.dumps(meta),
            "state": {k: v.cpu() for k, v in self.net_.state_dict().items()},
            "x_mean": torch.as_tensor(self.x_mean_),
            "x_scale": torch.as_tensor(self.x_scale_),
            "freeform_taus_hours": torch.as_tensor(self.freeform_taus_hours_),
        }
        buffer = io.BytesIO()
        torch.save(blob, buffer)
        with open(path, "wb") as handle:
            handle.write(buffer.getvalue())

    @classmethod
    def load(cls, path) -> tuple["ReleaseEnsemble", dict]:
        """Read a saved ensemble (never unpickles arbitrary objects); returns (model, user metadata)."""
        blob = torch.load(path, weights_only=True, map_location="cpu")
        meta = json.loads(blob["meta_json"])
        model = cls(**meta["params"])
        model.n_features_in_ = meta["n_features_in"]
        model.time_center_hours_ = meta["time_center_hours"]
        model.std_scale_ = meta["std_scale"]
        model.x_mean_ = blob["x_mean"].numpy()
        model.x_scale_ = blob["x_scale"].numpy()
        model.freeform_taus_hours_ = blob["freeform_taus_hours"].numpy()
        net = _EnsembleMLP(model.n_members, model.n_features_in_ - 1, model.hidden, model.n_layers, model._n_outputs(), model.dropout, torch.Generator())
        net.load_state_dict(blob["state"])
        model.net_ = net.to(model._device()).eval()
        return model, meta["user"]


def curve_rows(features: np.ndarray, times_hours) -> np.ndarray:
    """Long-format rows for the estimator: every formulation at every time.

    Args:
        features: (n, d) formulation features.
        times_hours: (T,) times.

    Returns:
        (n * T, d + 1) array, formulation-major, time last.
    """
    features = np.asarray(features, dtype=np.float32)
    times = np.asarray(times_hours, dtype=np.float32)
    repeated = np.repeat(features, len(times), axis=0)
    return np.column_stack([repeated, np.tile(times, len(features))])
