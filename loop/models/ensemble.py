"""The release-curve surrogate: a torch deep ensemble behind the scikit-learn estimator contract.

Rows are (formulation features, time): ``X`` has shape (n_rows, n_features + 1)
with the time in hours in the last column, and ``y`` is the cumulative fraction
released, shape (n_rows,). Every member maps the features to the parameters of
a release curve, so predictions are monotone in time and bounded in [0, 1] by
construction:

``head="hybrid"`` (a two-phase Weibull law a scientist can read: a fast burst /
diffusion phase and a slow erosion phase, optionally with a bounded free-form
residual) or ``head="freeform"`` (a monotone basis of Weibull CDFs); see
:mod:`nanoloop.loop.models.heads`.

Each member also predicts a noise level, trained with a heteroscedastic
likelihood (beta-NLL, Gaussian or Laplace), so ``predict(X, return_std=True)``
gives the total spread (members + noise), rescaled by a factor fitted on
held-out curves when ``calibrate=True``. Members differ by their initial
weights, their validation curves and (``bootstrap=True``) a bootstrap draw of
training curves. Inputs are standardized inside ``fit`` on the training rows.
Training (:mod:`nanoloop.loop.models.ensemble_training`) is full-batch AdamW with
early stopping per member on its held-out curves; it runs on CUDA when
available (``device="auto"``) and is reproducible under ``random_state`` on
CPU. Saving and loading: :mod:`nanoloop.loop.models.ensemble_io`.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from nanoloop.loop.models.heads import CurveHead, EnsembleMLP, freeform_taus_hours, n_outputs
from nanoloop.loop.models.ensemble_training import fit_std_scale, member_weights, train_members, training_tensors
from nanoloop.loop.errors import InputError
from nanoloop.loop.models.ensemble_io import combine_members, load_ensemble, save_ensemble

_LIKELIHOODS = ("beta-nll", "gaussian", "laplace")


def training_rows(X, y) -> tuple[np.ndarray, np.ndarray]:
    """Checked training rows as float64: X (n_rows, n_features + 1) with the time in hours last, y (n_rows,) release fraction.

    A column vector ``y`` is flattened. Raises InputError for complex values, a wrong shape, no rows, or values
    that are not finite.
    """
    X, y = np.asarray(X), np.asarray(y)
    if np.iscomplexobj(X) or np.iscomplexobj(y):
        raise InputError("complex values in X or y; features, times and release must be real numbers")
    X, y = X.astype(np.float64), y.astype(np.float64).reshape(-1)
    if X.ndim != 2 or X.shape[1] < 2:
        raise InputError(f"X must have shape (n_rows, n_features + 1 time column), got {X.shape}")
    if len(X) != len(y):
        raise InputError(f"X has {len(X)} rows but y has {len(y)}")
    if len(X) == 0:
        raise InputError("X has no rows")
    if not np.all(np.isfinite(X)) or not np.all(np.isfinite(y)):
        raise InputError("X and y must be finite (no NaN or inf)")
    return X, y


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

    def curve_head(self) -> CurveHead:
        """The fitted curve head: the release law (or basis) with the time scales of the training rows."""
        return CurveHead(self.head, self.residual, self.time_center_hours_, self.freeform_taus_hours_)

    # -- fitting -----------------------------------------------------------------
    def torch_device(self) -> torch.device:
        """The torch device the ``device`` setting names ("auto": CUDA when available); InputError if CUDA is asked for and absent."""
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise InputError("device='cuda' but no CUDA device is available")
        return torch.device(self.device)

    @staticmethod
    def _split(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Checked rows (:func:`training_rows`) -> features (n_rows, n_features) and times in hours (n_rows,), float32."""
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
        self.freeform_taus_hours_ = freeform_taus_hours(times)

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
        X, y = training_rows(X, y)
        features, times = self._split(X)
        started = time.perf_counter()
        self.n_features_in_ = X.shape[1]
        self._fit_scaling(features, times)
        train_w, val_w, use_validation = member_weights(self, features, groups, sample_weight)
        device = self.torch_device()
        with torch.random.fork_rng(devices=[]):  # dropout draws from the global generator: leave the caller's alone
            torch.manual_seed(int(self.random_state))
            generator = torch.Generator().manual_seed(int(self.random_state))
            net = EnsembleMLP(self.n_members, features.shape[1], self.hidden, self.n_layers, n_outputs(self.head, self.residual), self.dropout, generator).to(device)
            data = training_tensors(self, features, times, y, device)
            self.n_epochs_ = train_members(self, net, data, train_w, val_w, use_validation, self.epochs, self.learning_rate, self.weight_decay)
        self.net_ = net.eval()
        self.std_scale_ = 1.0
        if self.calibrate and use_validation:
            self.std_scale_ = fit_std_scale(self, data, val_w > 0)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def fine_tune(self, X, y, groups=None, *, epochs: int = 150, learning_rate: float | None = None, anchor_strength: float = 1e-3,
                  random_state: int | None = None) -> "ReleaseEnsemble":
        """A copy fine-tuned on new curves, starting from these weights; this model is left unchanged.

        Every member starts from its fitted weights and keeps the fitted input
        scaling and time scales; training pulls towards the fitted weights
        (``anchor_strength * ||w - w0||^2``, L2-SP) instead of decaying them.
        With 8 or more new curves each member early-stops on its own held-out
        curves and the interval is recalibrated on them; with fewer it runs
        ``epochs`` and keeps the fitted calibration.

        Args:
            X: (n_rows, n_features + 1) new rows, time in hours last; the same feature columns.
            y: (n_rows,) release fraction.
            groups: (n_rows,) curve ids (validation split when there are 8 or more curves).
            epochs: maximum fine-tuning epochs.
            learning_rate: defaults to a third of the training rate.
            anchor_strength: weight of the squared distance to the fitted weights.
            random_state: seed of the validation split; defaults to this model's.

        Returns:
            the fine-tuned ensemble (``fine_tuned_`` records what was done).
        """
        check_is_fitted(self, "net_")
        X, y = training_rows(X, y)
        if X.shape[1] != self.n_features_in_:
            raise InputError(f"fine-tuning rows need {self.n_features_in_} columns (features + time), got shape {X.shape}")
        if epochs < 1 or anchor_strength < 0:
            raise InputError("epochs must be at least 1 and anchor_strength not negative")
        started = time.perf_counter()
        model = copy.deepcopy(self)
        if random_state is not None:
            model.random_state = random_state
        features, times = model._split(X)
        train_w, val_w, use_validation = member_weights(model, features, groups)
        data = training_tensors(model, features, times, y, next(model.net_.parameters()).device)
        anchor = [p.detach().clone() for p in model.net_.parameters()]
        rate = learning_rate if learning_rate is not None else self.learning_rate / 3
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(model.random_state))
            ran = train_members(model, model.net_, data, train_w, val_w, use_validation, epochs, rate, 0.0, anchor=anchor, anchor_strength=anchor_strength)
        recalibrated = bool(model.calibrate and use_validation)
        if recalibrated:
            model.std_scale_ = fit_std_scale(model, data, val_w > 0)
        model.n_epochs_ = ran
        model.fit_seconds_ = time.perf_counter() - started
        model.fine_tuned_ = {"n_rows": int(len(y)), "epochs": int(ran), "learning_rate": float(rate),
                             "anchor_strength": float(anchor_strength), "recalibrated": recalibrated}
        return model

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
            return self.curve_head().curve(raw, t).cpu().numpy().astype(np.float64)

    def _members_and_noise_variance(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Each member's release fraction (n_members, n_rows) and the members' mean noise variance (n_rows,), one pass."""
        X = self._rows(X)
        with torch.no_grad():
            raw = self._raw(X[:, :-1])
            t = torch.as_tensor(X[:, -1], device=raw.device)
            members = self.curve_head().curve(raw, t).cpu().numpy().astype(np.float64)
            noise = CurveHead.noise_std(raw).cpu().numpy().astype(np.float64)
        return members, (noise**2).mean(axis=0)

    def predict_noise(self, X) -> np.ndarray:
        """Std of the noise the members predict (root mean of their noise variances), uncalibrated, shape (n_rows,).

        The spread the members' disagreement does not explain: ``predict(X, return_std=True)``'s std is
        ``sqrt(predict_members(X).var(axis=0) + predict_noise(X)**2) * std_scale_``.
        """
        return np.sqrt(self._members_and_noise_variance(X)[1])

    def predict(self, X, return_std: bool = False):
        """Mean release fraction, shape (n_rows,); with ``return_std`` also the predictive std (members + noise, calibrated)."""
        members, noise_variance = self._members_and_noise_variance(X)
        mean = members.mean(axis=0)
        if not return_std:
            return mean
        std = np.sqrt(members.var(axis=0) + noise_variance) * self.std_scale_
        return mean, std

    def predict_curves(self, features, times_hours) -> np.ndarray:
        """Member curves for formulations: features (n, d), times (T,) -> fraction (n_members, n, T)."""
        times = np.asarray(times_hours, dtype=np.float32).reshape(-1)
        with torch.no_grad():
            raw = self._raw(features)
            t = torch.as_tensor(times, device=raw.device).expand(raw.shape[1], -1)
            return self.curve_head().curve(raw, t).cpu().numpy().astype(np.float64)

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
        return self.curve_head().curve(raw, t)

    def curve_parameters(self, features) -> dict[str, np.ndarray]:
        """Hybrid head only: each member's release-law parameters, arrays of shape (n_members, n)."""
        if self.head != "hybrid":
            raise InputError("curve parameters are defined for the hybrid head only")
        with torch.no_grad():
            raw = self._raw(features)
            params = self.curve_head().law_parameters(raw)
            if self.residual > 0:
                params["residual_weight"] = self.curve_head().residual_weight(raw)
        return {k: v.cpu().numpy().astype(np.float64) for k, v in params.items()}

    # -- persistence (loop/models/ensemble_io.py) ------------------------------------------
    def save(self, path, metadata: dict | None = None) -> None:
        """Write weights and metadata to ``path`` (a file path or a binary buffer; loadable with weights_only=True)."""
        save_ensemble(self, path, metadata)

    @classmethod
    def load(cls, path, device: str | None = None) -> tuple["ReleaseEnsemble", dict]:
        """Read a saved ensemble (never unpickles arbitrary objects); returns (model, user metadata).

        Args:
            path: file path or binary buffer written by :meth:`save`.
            device: override the saved device setting ("auto", "cpu", "cuda").
        """
        return load_ensemble(cls, path, device)

    @classmethod
    def from_members(cls, parts: list["ReleaseEnsemble"]) -> "ReleaseEnsemble":
        """One ensemble from ensembles fitted separately on the same data (e.g. in parallel workers).

        Their networks are stacked member-wise; the feature scaling must agree
        (it does when they saw the same training rows). The spread scale is the
        median of theirs.
        """
        return combine_members(cls, parts)
