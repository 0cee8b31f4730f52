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

With ``residual > 0`` the hybrid law is mixed with a free-form monotone curve
of weight at most ``residual``: still monotone and bounded, the law stays the
readable part and the residual absorbs shapes the law cannot make.

Each member also predicts a noise level, trained with a heteroscedastic
likelihood (beta-NLL, Gaussian or Laplace), so ``predict(X, return_std=True)``
gives the total spread (members + noise), rescaled by a factor fitted on
held-out curves when ``calibrate=True``. Members differ by their initial
weights, their validation curves and (``bootstrap=True``) a bootstrap draw of
training curves. Inputs are standardized inside ``fit`` on the training rows.
Training is full-batch AdamW with early stopping per member on its held-out
curves; it runs on CUDA when available (``device="auto"``) and is reproducible
under ``random_state`` on CPU.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import pickle
import time

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from nanoloop.loop.errors import InputError

_HYBRID_PARAMS = ("fast_fraction", "tau_fast_hours", "shape_fast", "tau_slow_hours", "shape_slow", "plateau")
_SHAPE_MIN, _SHAPE_MAX = 0.3, 4.0
_FREEFORM_SHAPES = (0.7, 1.5, 3.0)
_N_BASIS_TAUS = 10
_LIKELIHOODS = ("beta-nll", "gaussian", "laplace")
Z90 = 1.6448536  # half-width of a central 90 % normal interval, in standard deviations
_SMALL_WORK = 20_000_000  # members x rows x hidden below which CPU training runs on one thread
_FORMAT = 2  # layout of saved files: 2 = noise output last for every head


@contextlib.contextmanager
def _training_threads(device: torch.device, work: int):
    """One CPU thread for small problems (restored afterwards).

    Full-batch steps on a few thousand rows are tiny: a second thread buys
    little, and on a busy machine the threads' synchronisation makes training
    10-30x slower (measured on 2 shared cores).
    """
    if device.type != "cpu" or work > _SMALL_WORK or torch.get_num_threads() == 1:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
        """x: (n, d) shared by the members, or (M, n, d) one input per member."""
        h = x if x.dim() == 3 else x.unsqueeze(0).expand(self.weights[0].shape[0], -1, -1)
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
        dropout: dropout rate in the hidden layers (training only).
        epochs: maximum full-batch training epochs.
        learning_rate: AdamW learning rate.
        weight_decay: AdamW weight decay.
        validation_fraction: share of curves (groups) each member holds out for early stopping
            and calibration; no validation with fewer than 8 groups.
        patience: epochs without validation improvement before a member stops.
        calibrate: fit a scale on held-out curves so the 90 % interval covers 90 %.
        residual: hybrid head only: largest weight (0 to <1) of the free-form monotone
            residual mixed into the law; 0 keeps the pure law.
        likelihood: "beta-nll" (Gaussian, beta = 0.5), "gaussian" or "laplace" (median-seeking).
        bootstrap: train each member on a bootstrap draw of the training curves.
        input_noise: std of Gaussian noise added to each formulation's standardized inputs in training
            (smooths the map from features to curves on small data); 0 for none.
        clip_inputs: clamp standardized inputs to the training range at prediction, so the
            network never extrapolates beyond the features it has seen.
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
        residual: float = 0.0,
        likelihood: str = "beta-nll",
        bootstrap: bool = False,
        input_noise: float = 0.0,
        clip_inputs: bool = False,
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
        self.residual = residual
        self.likelihood = likelihood
        self.bootstrap = bootstrap
        self.input_noise = input_noise
        self.clip_inputs = clip_inputs
        self.random_state = random_state
        self.device = device

    def _check_params(self) -> None:
        if self.head not in ("hybrid", "freeform"):
            raise InputError(f"head must be 'hybrid' or 'freeform', got {self.head!r}")
        if self.likelihood not in _LIKELIHOODS:
            raise InputError(f"likelihood must be one of {_LIKELIHOODS}, got {self.likelihood!r}")
        if not (0.0 <= self.residual < 1.0):
            raise InputError(f"residual must lie in [0, 1), got {self.residual}")
        if int(self.n_members) < 1 or int(self.epochs) < 1 or int(self.hidden) < 1 or int(self.n_layers) < 1:
            raise InputError("n_members, epochs, hidden and n_layers must be at least 1")
        if not (self.input_noise >= 0.0):
            raise InputError(f"input_noise must be 0 or more, got {self.input_noise}")
        if not (0.0 <= self.dropout < 1.0) or not (0.0 <= self.validation_fraction < 1.0):
            raise InputError("dropout and validation_fraction must lie in [0, 1)")
        if self.device not in ("auto", "cpu", "cuda"):
            raise InputError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")

    # -- the curve head ----------------------------------------------------------
    def _n_outputs(self) -> int:
        n_basis = _N_BASIS_TAUS * len(_FREEFORM_SHAPES)
        if self.head == "hybrid":
            return len(_HYBRID_PARAMS) + (1 + n_basis if self.residual > 0 else 0) + 1
        return 1 + n_basis + 1

    def _basis(self, t: torch.Tensor) -> torch.Tensor:
        """Weibull-CDF basis: t (1, n, T) hours -> (1, n, T, K)."""
        taus = torch.as_tensor(self.freeform_taus_hours_, dtype=t.dtype, device=t.device)
        shapes = torch.as_tensor(_FREEFORM_SHAPES, dtype=t.dtype, device=t.device)
        tau = taus.repeat(len(_FREEFORM_SHAPES))
        shape = shapes.repeat_interleave(len(taus))
        return _weibull_cdf(t[..., None], tau, shape)

    def _curve(self, raw: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Release fraction. raw: (M, n, k) network outputs; t: (n,) or (n, T) hours -> (M, n) or (M, n, T)."""
        squeeze = t.dim() == 1
        t = t.reshape(1, t.shape[0], -1)
        if self.head == "hybrid":
            p = self._hybrid_params(raw)
            fast = _weibull_cdf(t, p["tau_fast_hours"][..., None], p["shape_fast"][..., None])
            slow = _weibull_cdf(t, p["tau_slow_hours"][..., None], p["shape_slow"][..., None])
            w = p["fast_fraction"][..., None]
            shape = w * fast + (1 - w) * slow
            if self.residual > 0:
                n_law = len(_HYBRID_PARAMS)
                weight = (self.residual * torch.sigmoid(raw[..., n_law] - 2.0))[..., None]
                mix = (torch.softmax(raw[..., n_law + 1 : -1], dim=-1)[:, :, None, :] * self._basis(t)).sum(-1)
                shape = (1 - weight) * shape + weight * mix
            curve = p["plateau"][..., None] * shape
        else:
            weights = torch.softmax(raw[..., 1:-1], dim=-1)[:, :, None, :]  # (M, n, 1, K)
            curve = torch.sigmoid(raw[..., 0] + 3.0)[..., None] * (weights * self._basis(t)).sum(-1)
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
        if self.device == "cuda" and not torch.cuda.is_available():
            raise InputError("device='cuda' but no CUDA device is available")
        return torch.device(self.device)

    def _split(self, X: np.ndarray, y: np.ndarray):
        if X.ndim != 2 or X.shape[1] < 2:
            raise InputError(f"X must have shape (n_rows, n_features + 1 time column), got {X.shape}")
        if len(X) != len(y):
            raise InputError(f"X has {len(X)} rows but y has {len(y)}")
        if len(X) == 0:
            raise InputError("X has no rows")
        if not np.all(np.isfinite(X)) or not np.all(np.isfinite(y)):
            raise InputError("X and y must be finite (no NaN or inf)")
        return X[:, :-1].astype(np.float32), X[:, -1].astype(np.float32)

    def _fit_scaling(self, features: np.ndarray, times: np.ndarray) -> None:
        """Input standardization and the time scales of the heads, from the training rows only."""
        self.x_mean_ = features.mean(axis=0)
        scale = features.std(axis=0)
        self.x_scale_ = np.where(scale > 1e-8, scale, 1.0).astype(np.float32)
        scaled = (features - self.x_mean_) / self.x_scale_
        self.x_low_, self.x_high_ = scaled.min(axis=0).astype(np.float32), scaled.max(axis=0).astype(np.float32)
        positive = times[times > 0]
        self.time_center_hours_ = float(np.exp(np.mean(np.log(positive)))) if len(positive) else 24.0
        lo = float(positive.min()) if len(positive) else 1.0
        hi = float(positive.max()) if len(positive) else 100.0
        self.freeform_taus_hours_ = np.geomspace(lo / 3, hi * 3, _N_BASIS_TAUS).astype(np.float32)

    def _member_weights(self, features: np.ndarray, groups, sample_weight=None) -> tuple[np.ndarray, np.ndarray, bool]:
        """Per-member row weights for training and validation, each (M, n), and whether there is validation.

        Each member holds out its own share of the groups (curves): consecutive
        slices of one random order, so the members' validation curves do not
        overlap while there are enough groups and every curve validates some
        member (inner validation chose this over independent random draws:
        MAE 0.139 vs 0.143 on the Bannigan benchmark). With ``bootstrap`` a
        member trains on a draw with replacement of the rest.
        """
        if groups is None:
            _, groups = np.unique(features, axis=0, return_inverse=True)
        groups = np.asarray(groups).reshape(-1)
        if len(groups) != len(features):
            raise InputError(f"groups has {len(groups)} entries but X has {len(features)} rows")
        _, group_index = np.unique(groups, return_inverse=True)
        n_groups = int(group_index.max()) + 1
        rng = np.random.default_rng(self.random_state)
        use_validation = self.validation_fraction > 0 and n_groups >= 8
        val_groups = np.zeros((self.n_members, n_groups), dtype=bool)
        counts = np.ones((self.n_members, n_groups))
        n_val = max(1, int(round(self.validation_fraction * n_groups)))
        order = rng.permutation(n_groups)  # consecutive slices: disjoint while members x n_val <= groups
        for m in range(self.n_members):
            if use_validation:
                val_groups[m, np.take(order, np.arange(m * n_val, (m + 1) * n_val), mode="wrap")] = True
            if self.bootstrap:
                pool = np.flatnonzero(~val_groups[m])
                counts[m] = np.bincount(rng.choice(pool, len(pool), replace=True), minlength=n_groups)
        train_w = (counts * ~val_groups)[:, group_index]
        val_w = val_groups[:, group_index].astype(np.float64)
        if sample_weight is not None:
            weight = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
            if len(weight) != len(features) or not np.all(np.isfinite(weight)) or np.any(weight < 0) or weight.sum() <= 0:
                raise InputError("sample_weight must hold one finite, non-negative weight per row, not all zero")
            train_w, val_w = train_w * weight, val_w * weight
        return train_w, val_w, use_validation

    def fit(self, X, y, groups=None, sample_weight=None):
        """Train every member.

        Args:
            X: (n_rows, n_features + 1), time in hours last.
            y: (n_rows,) cumulative fraction released.
            groups: (n_rows,) curve ids for the validation split; defaults to unique feature rows.
            sample_weight: (n_rows,) optional weights of the rows in the training and validation losses.

        Returns:
            self.
        """
        self._check_params()
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        features, times = self._split(X, y)
        started = time.perf_counter()
        self.n_features_in_ = X.shape[1]
        self._fit_scaling(features, times)
        train_w, val_w, use_validation = self._member_weights(features, groups, sample_weight)
        device = self._device()
        with torch.random.fork_rng(devices=[]):  # dropout draws from the global generator: leave the caller's alone
            torch.manual_seed(int(self.random_state))
            generator = torch.Generator().manual_seed(int(self.random_state))
            net = _EnsembleMLP(self.n_members, features.shape[1], self.hidden, self.n_layers, self._n_outputs(), self.dropout, generator).to(device)
            data = self._tensors(features, times, y, device)
            self.n_epochs_ = self._train(net, data, train_w, val_w, use_validation, self.epochs, self.learning_rate, self.weight_decay)
        self.net_ = net.eval()
        self.std_scale_ = 1.0
        if self.calibrate and use_validation:
            self.std_scale_ = self._fit_std_scale(data, val_w > 0)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _tensors(self, features, times, y, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training tensors: the distinct formulations' scaled features, each row's formulation index, times, release.

        The network sees a formulation once (time enters only the head), so a
        curve of 36 points costs one forward pass, not 36.
        """
        unique, row_index = np.unique(features, axis=0, return_inverse=True)
        xs = torch.as_tensor((unique - self.x_mean_) / self.x_scale_, dtype=torch.float32, device=device)
        index = torch.as_tensor(row_index.reshape(-1), dtype=torch.int64, device=device)
        return xs, index, torch.as_tensor(np.array(times), dtype=torch.float32, device=device), torch.as_tensor(np.array(y), dtype=torch.float32, device=device)

    def _train(self, net, data, train_w, val_w, use_validation: bool, epochs: int, learning_rate: float, weight_decay: float, anchor=None, anchor_strength: float = 0.0) -> int:
        """Full-batch AdamW with per-member early stopping; restores each member's best weights.

        ``anchor`` (a list of tensors shaped like the parameters) adds
        ``anchor_strength * ||w - anchor||^2`` to each member's loss: fine-tuning
        that stays near pretrained weights (L2-SP).

        Returns the number of epochs run.
        """
        device = data[0].device
        train_w = torch.as_tensor(train_w, dtype=torch.float32, device=device)
        val_w = torch.as_tensor(val_w, dtype=torch.float32, device=device)
        with _training_threads(device, train_w.shape[0] * train_w.shape[1] * self.hidden):
            return self._train_loop(net, data, train_w, val_w, use_validation, epochs, learning_rate, weight_decay, anchor, anchor_strength)

    def _train_loop(self, net, data, train_w, val_w, use_validation, epochs, learning_rate, weight_decay, anchor, anchor_strength) -> int:
        xs, index, ts, ys = data
        device = xs.device
        optimizer = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=weight_decay)
        n_members = train_w.shape[0]
        best_loss = torch.full((n_members,), float("inf"), device=device)
        best_state = [p.detach().clone() for p in net.parameters()]
        since_best = torch.zeros(n_members, dtype=torch.int64, device=device)
        train_norm = train_w.sum(1).clamp(min=1e-9)
        val_norm = val_w.sum(1).clamp(min=1e-9)
        ran = 0
        for epoch in range(int(epochs)):
            net.train()
            optimizer.zero_grad()
            inputs = xs
            if self.input_noise > 0:
                inputs = xs.unsqueeze(0) + self.input_noise * torch.randn((n_members, *xs.shape), device=device)
            per_point = self._loss(net(inputs)[:, index], ts, ys)  # (M, n)
            loss = ((per_point * train_w).sum(1) / train_norm).sum()
            if anchor is not None and anchor_strength > 0:
                loss = loss + anchor_strength * sum(((p - a) ** 2).sum() for p, a in zip(net.parameters(), anchor))
            loss.backward()
            optimizer.step()
            ran = epoch + 1
            if not use_validation:
                continue
            net.eval()
            with torch.no_grad():
                val = (self._loss(net(xs)[:, index], ts, ys) * val_w).sum(1) / val_norm
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
        net.eval()
        return ran

    def _loss(self, raw: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-point negative log-likelihood of the chosen kind, shape (M, n)."""
        mean = self._curve(raw, t)
        std = self._noise_std(raw)
        if self.likelihood == "laplace":
            b = std / math.sqrt(2.0)
            return torch.abs(y - mean) / b + torch.log(b)
        nll = 0.5 * ((y - mean) / std) ** 2 + torch.log(std)
        return nll * std.detach() if self.likelihood == "beta-nll" else nll

    def _fit_std_scale(self, data, val_mask: np.ndarray) -> float:
        """Scale making 90 % of each member's held-out points fall inside its 90 % interval."""
        xs, index, ts, ys = data
        with torch.no_grad():
            raw = self.net_(xs)[:, index]
            mean = self._curve(raw, ts).cpu().numpy()
            noise = self._noise_std(raw).cpu().numpy()
        y = ys.cpu().numpy()
        spread = mean.std(axis=0)
        z = []
        for m in range(mean.shape[0]):
            held = val_mask[m]
            total = np.sqrt(spread[held] ** 2 + noise[m, held] ** 2)
            z.append(np.abs(y[held] - mean[m, held]) / np.maximum(total, 1e-6))
        z = np.concatenate(z)
        if len(z) < 20:
            return 1.0
        return float(np.clip(np.quantile(z, 0.90) / Z90, 0.25, 10.0))

    def recalibrate(self, X, y, coverage: float = 0.90):
        """Refit the std scale on held-out rows so the central ``coverage`` interval covers that share.

        Args:
            X: (n_rows, n_features + 1) held-out rows, time in hours last (never training rows).
            y: (n_rows,) measured release fraction.

        Returns:
            self, with ``std_scale_`` replaced.
        """
        from statistics import NormalDist

        check_is_fitted(self, "net_")
        if not (0.0 < coverage < 1.0):
            raise InputError(f"coverage must lie in (0, 1), got {coverage}")
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        mean, std = self.predict(X, return_std=True)
        if len(y) != len(mean):
            raise InputError(f"X has {len(mean)} rows but y has {len(y)}")
        if len(y) < 10:
            raise InputError(f"recalibration needs at least 10 held-out points, got {len(y)}")
        z = np.abs(y - mean) / np.maximum(std / self.std_scale_, 1e-9)
        self.std_scale_ = float(np.clip(np.quantile(z, coverage) / NormalDist().inv_cdf(0.5 + coverage / 2), 0.05, 20.0))
        return self

    # -- prediction ---------------------------------------------------------------
    def _raw(self, features: np.ndarray) -> torch.Tensor:
        check_is_fitted(self, "net_")
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.n_features_in_ - 1:
            raise InputError(f"expected {self.n_features_in_ - 1} feature columns, got shape {features.shape}")
        if not np.all(np.isfinite(features)):
            raise InputError("features must be finite (no NaN or inf)")
        xs = torch.as_tensor((features - self.x_mean_) / self.x_scale_, device=next(self.net_.parameters()).device)
        return self.net_(self._clip(xs))

    def _clip(self, xs: torch.Tensor) -> torch.Tensor:
        """Standardized inputs clamped to the training range when ``clip_inputs``."""
        if not self.clip_inputs:
            return xs
        low = torch.as_tensor(self.x_low_, device=xs.device, dtype=xs.dtype)
        high = torch.as_tensor(self.x_high_, device=xs.device, dtype=xs.dtype)
        return torch.maximum(torch.minimum(xs, high), low)

    def _rows(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2:
            raise InputError(f"X must have shape (n_rows, n_features + 1 time column), got {X.shape}")
        return X

    def predict_members(self, X) -> np.ndarray:
        """Each member's release fraction, shape (n_members, n_rows)."""
        X = self._rows(X)
        with torch.no_grad():
            raw = self._raw(X[:, :-1])
            t = torch.as_tensor(X[:, -1], device=raw.device)
            return self._curve(raw, t).cpu().numpy().astype(np.float64)

    def predict(self, X, return_std: bool = False):
        """Mean release fraction, shape (n_rows,); with ``return_std`` also the predictive std (members + noise, calibrated)."""
        X = self._rows(X)
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
        times = np.asarray(times_hours, dtype=np.float32).reshape(-1)
        with torch.no_grad():
            raw = self._raw(features)
            t = torch.as_tensor(times, device=raw.device).expand(raw.shape[1], -1)
            return self._curve(raw, t).cpu().numpy().astype(np.float64)

    def curve_tensor(self, features: torch.Tensor, times_hours: torch.Tensor) -> torch.Tensor:
        """Differentiable member curves (for attributions): features (n, d) unscaled, times (T,) hours -> (M, n, T).

        Runs in evaluation mode on the model's device; gradients flow to ``features``.
        """
        check_is_fitted(self, "net_")
        device = next(self.net_.parameters()).device
        mean = torch.as_tensor(self.x_mean_, device=device)
        scale = torch.as_tensor(self.x_scale_, device=device)
        raw = self.net_(self._clip((features.to(device) - mean) / scale))
        t = times_hours.to(device=device, dtype=raw.dtype).reshape(1, -1).expand(raw.shape[1], -1)
        return self._curve(raw, t)

    def curve_parameters(self, features) -> dict[str, np.ndarray]:
        """Hybrid head only: each member's release-law parameters, arrays of shape (n_members, n)."""
        if self.head != "hybrid":
            raise InputError("curve parameters are defined for the hybrid head only")
        with torch.no_grad():
            raw = self._raw(features)
            params = self._hybrid_params(raw)
            if self.residual > 0:
                params["residual_weight"] = self.residual * torch.sigmoid(raw[..., len(_HYBRID_PARAMS)] - 2.0)
        return {k: v.cpu().numpy().astype(np.float64) for k, v in params.items()}

    # -- persistence --------------------------------------------------------------
    def save(self, path, metadata: dict | None = None) -> None:
        """Write weights and metadata to ``path`` (a file path or a binary buffer; loadable with weights_only=True)."""
        check_is_fitted(self, "net_")
        meta = {
            "format": _FORMAT,
            "params": self.get_params(),
            "n_features_in": self.n_features_in_,
            "time_center_hours": self.time_center_hours_,
            "std_scale": self.std_scale_,
            "n_epochs": getattr(self, "n_epochs_", None),
            "fit_seconds": getattr(self, "fit_seconds_", None),
            "torch_version": torch.__version__,
            "user": metadata or {},
        }
        blob = {
            "meta_json": json.dumps(meta),
            "state": {k: v.cpu() for k, v in self.net_.state_dict().items()},
            "x_mean": torch.as_tensor(self.x_mean_),
            "x_scale": torch.as_tensor(self.x_scale_),
            "x_low": torch.as_tensor(self.x_low_),
            "x_high": torch.as_tensor(self.x_high_),
            "freeform_taus_hours": torch.as_tensor(self.freeform_taus_hours_),
        }
        buffer = io.BytesIO()
        torch.save(blob, buffer)
        if hasattr(path, "write"):
            path.write(buffer.getvalue())
            return
        with open(path, "wb") as handle:
            handle.write(buffer.getvalue())

    @classmethod
    def load(cls, path, device: str | None = None) -> tuple["ReleaseEnsemble", dict]:
        """Read a saved ensemble (never unpickles arbitrary objects); returns (model, user metadata).

        Args:
            path: file path or binary buffer written by :meth:`save`.
            device: override the saved device setting ("auto", "cpu", "cuda").
        """
        try:
            blob = torch.load(path, weights_only=True, map_location="cpu")
            meta = json.loads(blob["meta_json"])
        except (OSError, RuntimeError, KeyError, ValueError, TypeError, EOFError, pickle.UnpicklingError) as err:
            raise InputError(f"not a saved ReleaseEnsemble: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
        params = dict(meta["params"])
        known = set(cls().get_params())
        unknown = sorted(set(params) - known)
        if unknown or meta.get("format", 1) > _FORMAT:
            raise InputError(f"model saved by a newer nanoloop (unknown settings {unknown}); upgrade to load it")
        if meta.get("format", 1) < 2 and params.get("head") == "freeform":
            raise InputError("free-form model saved in the format-1 layout; retrain it")
        if device is not None:
            params["device"] = device
        model = cls(**params)
        model.n_features_in_ = meta["n_features_in"]
        model.time_center_hours_ = meta["time_center_hours"]
        model.std_scale_ = meta["std_scale"]
        model.n_epochs_ = meta.get("n_epochs")
        model.fit_seconds_ = meta.get("fit_seconds")
        model.x_mean_ = blob["x_mean"].numpy()
        model.x_scale_ = blob["x_scale"].numpy()
        infinite = np.full_like(model.x_mean_, np.inf)
        model.x_low_ = blob["x_low"].numpy() if "x_low" in blob else -infinite
        model.x_high_ = blob["x_high"].numpy() if "x_high" in blob else infinite
        model.freeform_taus_hours_ = blob["freeform_taus_hours"].numpy()
        net = _EnsembleMLP(model.n_members, model.n_features_in_ - 1, model.hidden, model.n_layers, model._n_outputs(), model.dropout, torch.Generator())
        net.load_state_dict(blob["state"])
        model.net_ = net.to(model._device()).eval()
        return model, meta["user"]

    @classmethod
    def from_members(cls, parts: list["ReleaseEnsemble"]) -> "ReleaseEnsemble":
        """One ensemble from ensembles fitted separately on the same data (e.g. in parallel workers).

        Their networks are stacked member-wise; the feature scaling must agree
        (it does when they saw the same training rows). The spread scale is the
        median of theirs.
        """
        if not parts:
            raise InputError("no fitted ensembles to combine")
        first = parts[0]
        for part in parts[1:]:
            if not (np.allclose(part.x_mean_, first.x_mean_) and np.allclose(part.x_scale_, first.x_scale_)):
                raise InputError("ensembles fitted on different data cannot be combined")
        model = cls(**{**first.get_params(), "n_members": sum(p.n_members for p in parts)})
        for name in ("n_features_in_", "time_center_hours_", "x_mean_", "x_scale_", "x_low_", "x_high_", "freeform_taus_hours_", "n_epochs_"):
            setattr(model, name, getattr(first, name))
        model.std_scale_ = float(np.median([p.std_scale_ for p in parts]))
        model.fit_seconds_ = float(sum(p.fit_seconds_ for p in parts))
        net = _EnsembleMLP(model.n_members, model.n_features_in_ - 1, model.hidden, model.n_layers, model._n_outputs(), model.dropout, torch.Generator())
        with torch.no_grad():
            for name, tensor in net.state_dict().items():
                tensor.copy_(torch.cat([p.net_.state_dict()[name].cpu() for p in parts], dim=0))
        model.net_ = net.to(model._device()).eval()
        return model


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
