"""What every release model promises, and the z value of its 90 % intervals.

:class:`ReleaseModel` is what the campaign, design, explanations, CLI and
dashboard use of a release model; the deep ensemble
(:class:`~nanoloop.loop.models.ensemble.ReleaseEnsemble`) and the blend
(:class:`~nanoloop.loop.models.blend.BlendedRelease`) implement it. A saved
model of either kind is read back with
:func:`~nanoloop.loop.models.build.load_release_model`. :data:`Z90` is the one
place the 90 % interval's half-width in standard deviations is written.

This module imports neither torch nor a model, so code that only names the
protocol does not load torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import torch

#: half-width of a central 90 % normal interval, in standard deviations (1.6449)
Z90 = NormalDist().inv_cdf(0.95)


@runtime_checkable
class ReleaseModel(Protocol):
    """A fitted model of cumulative release (a fraction, 0 to 1) at any time, with an ensemble of member curves.

    Rows ``X`` have shape (n_rows, n_features + 1): a formulation's encoded
    features, then the time in hours in the last column. Formulations alone
    (``features``) have shape (n, n_features). Every member curve is
    non-decreasing in time and lies in [0, 1].

    The predictive spread is ``sqrt(members' variance + noise**2) * std_scale_``:
    the members' disagreement plus the noise they do not explain
    (:meth:`predict_noise`), scaled by the calibration factor.

    Attributes:
        n_features_in_: columns of ``X`` the model was fitted on (features + time).
        x_mean_: (n_features,) mean of the training features (the baseline of attributions).
        std_scale_: calibration factor of the predictive spread (1: uncalibrated).
        n_epochs_: training epochs of the network (None when not recorded).
        fit_seconds_: wall time of the fit in seconds (None when not recorded).
    """

    n_features_in_: int
    x_mean_: np.ndarray
    std_scale_: float
    n_epochs_: int | None
    fit_seconds_: float | None

    def fit(self, X, y, groups=None) -> ReleaseModel:
        """Fit on rows ``X`` (n_rows, n_features + 1) and release ``y`` (n_rows,); ``groups`` (n_rows,) are curve ids."""
        ...

    def predict(self, X, return_std: bool = False):
        """Mean release (n_rows,); with ``return_std`` also the calibrated predictive std (n_rows,)."""
        ...

    def predict_members(self, X) -> np.ndarray:
        """Each member's release at rows ``X``, shape (n_members, n_rows)."""
        ...

    def predict_noise(self, X) -> np.ndarray:
        """Std of the noise the members do not explain at rows ``X``, uncalibrated (before ``std_scale_``), shape (n_rows,)."""
        ...

    def predict_curves(self, features, times_hours) -> np.ndarray:
        """Member curves of formulations (n, n_features) at times (T,) in hours, shape (n_members, n, T)."""
        ...

    def curve_tensor(self, features: torch.Tensor, times_hours: torch.Tensor) -> torch.Tensor:
        """As :meth:`predict_curves`, as a torch tensor (n_members, n, T) differentiable in ``features``."""
        ...

    def save(self, path, metadata: dict | None = None) -> None:
        """Write the model and the user's ``metadata`` to a file path or a binary buffer."""
        ...


@dataclass
class TrainedModel:
    """A campaign's fitted release model and the version it is stored under in the ledger.

    Attributes:
        version: e.g. ``M003-1a2b3c4d5e`` (round, then a hash of the training data and settings).
        model: the fitted model (a ReleaseEnsemble or a BlendedRelease).
        n_formulations: measured formulations of the campaign it was trained on.
        prior_use: how the ``[prior]`` trained it (use, reason, held-out errors, notes); None without a prior.
    """

    version: str
    model: ReleaseModel
    n_formulations: int
    prior_use: dict | None = None


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
