"""The network of :class:`~nanoloop.loop.models.ensemble.ReleaseEnsemble` and the curve heads that read it.

The network maps a formulation's standardized features to a vector of raw
outputs per member; a head turns those into a release curve that is monotone
in time and bounded in [0, 1] by construction, and into a noise level:

- ``hybrid``: a two-phase Weibull law,
  F(t) = Fmax * [w * (1 - exp(-(t/tau_fast)^b_fast)) + (1 - w) * (1 - exp(-(t/tau_slow)^b_slow))],
  optionally mixed with a free-form monotone residual of weight at most ``residual``;
- ``freeform``: F(t) = Fmax * sum_k a_k * B_k(t) over a fixed basis of Weibull
  CDFs B_k spanning the observed time range, with softmax weights a_k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

HYBRID_PARAMS = ("fast_fraction", "tau_fast_hours", "shape_fast", "tau_slow_hours", "shape_slow", "plateau")
_SHAPE_MIN, _SHAPE_MAX = 0.3, 4.0
_FREEFORM_SHAPES = (0.7, 1.5, 3.0)
N_BASIS_TAUS = 10


class EnsembleMLP(nn.Module):
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


def weibull_cdf(t: torch.Tensor, tau: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    ratio = torch.clamp(t, min=0.0) / tau
    return -torch.expm1(-torch.pow(ratio + 1e-12, shape))


def n_outputs(kind: str, residual: float) -> int:
    """Raw outputs per member the head reads (the noise level last)."""
    n_basis = N_BASIS_TAUS * len(_FREEFORM_SHAPES)
    if kind == "hybrid":
        return len(HYBRID_PARAMS) + (1 + n_basis if residual > 0 else 0) + 1
    return 1 + n_basis + 1


def freeform_taus_hours(times_hours: np.ndarray) -> np.ndarray:
    """Time constants of the free-form basis, spanning the observed (positive) times."""
    positive = times_hours[times_hours > 0]
    lo = float(positive.min()) if len(positive) else 1.0
    hi = float(positive.max()) if len(positive) else 100.0
    return np.geomspace(lo / 3, hi * 3, N_BASIS_TAUS).astype(np.float32)


@dataclass(frozen=True)
class CurveHead:
    """Reads release curves, law parameters and noise from the network's raw outputs.

    Attributes:
        kind: "hybrid" or "freeform".
        residual: hybrid only: largest weight of the free-form residual (0: the pure law).
        time_center_hours: geometric mean of the training times (scale of the law's time constants).
        taus_hours: time constants of the free-form basis.
    """

    kind: str
    residual: float
    time_center_hours: float
    taus_hours: np.ndarray

    def basis(self, t: torch.Tensor) -> torch.Tensor:
        """Weibull-CDF basis: t (1, n, T) hours -> (1, n, T, K)."""
        taus = torch.as_tensor(self.taus_hours, dtype=t.dtype, device=t.device)
        shapes = torch.as_tensor(_FREEFORM_SHAPES, dtype=t.dtype, device=t.device)
        tau = taus.repeat(len(_FREEFORM_SHAPES))
        shape = shapes.repeat_interleave(len(taus))
        return weibull_cdf(t[..., None], tau, shape)

    def curve(self, raw: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Release fraction. raw: (M, n, k) network outputs; t: (n,) or (n, T) hours -> (M, n) or (M, n, T)."""
        squeeze = t.dim() == 1
        t = t.reshape(1, t.shape[0], -1)
        if self.kind == "hybrid":
            p = self.law_parameters(raw)
            fast = weibull_cdf(t, p["tau_fast_hours"][..., None], p["shape_fast"][..., None])
            slow = weibull_cdf(t, p["tau_slow_hours"][..., None], p["shape_slow"][..., None])
            w = p["fast_fraction"][..., None]
            shape = w * fast + (1 - w) * slow
            if self.residual > 0:
                n_law = len(HYBRID_PARAMS)
                weight = (self.residual * torch.sigmoid(raw[..., n_law] - 2.0))[..., None]
                mix = (torch.softmax(raw[..., n_law + 1 : -1], dim=-1)[:, :, None, :] * self.basis(t)).sum(-1)
                shape = (1 - weight) * shape + weight * mix
            curve = p["plateau"][..., None] * shape
        else:
            weights = torch.softmax(raw[..., 1:-1], dim=-1)[:, :, None, :]  # (M, n, 1, K)
            curve = torch.sigmoid(raw[..., 0] + 3.0)[..., None] * (weights * self.basis(t)).sum(-1)
        return curve[..., 0] if squeeze else curve

    def law_parameters(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:
        """Hybrid head: the two-phase Weibull law's parameters, each (M, n)."""
        log_center = math.log(self.time_center_hours)
        tau_fast = torch.exp(log_center - 2.0 + 2.0 * torch.tanh(raw[..., 1] / 2.0) * 2.5)
        return {
            "fast_fraction": torch.sigmoid(raw[..., 0] - 1.0),
            "tau_fast_hours": tau_fast,
            "shape_fast": _SHAPE_MIN + (_SHAPE_MAX - _SHAPE_MIN) * torch.sigmoid(raw[..., 2] - 1.0),
            "tau_slow_hours": tau_fast * (1.0 + torch.exp(raw[..., 3] + 2.0)),
            "shape_slow": _SHAPE_MIN + (_SHAPE_MAX - _SHAPE_MIN) * torch.sigmoid(raw[..., 4] - 1.0),
            "plateau": torch.sigmoid(raw[..., 5] + 3.0),
        }

    def residual_weight(self, raw: torch.Tensor) -> torch.Tensor:
        """Hybrid head with a residual: the weight of the free-form part, (M, n)."""
        return self.residual * torch.sigmoid(raw[..., len(HYBRID_PARAMS)] - 2.0)

    @staticmethod
    def noise_std(raw: torch.Tensor) -> torch.Tensor:
        """Each member's predicted noise level (release fraction), (M, n)."""
        return torch.nn.functional.softplus(raw[..., -1] - 3.0) + 0.005
