"""What every release model promises, and the z value of its 90 % intervals.

The :class:`ReleaseModel` protocol is written out with the models' seam (see the
module's later revision); :data:`Z90` is the one place the 90 % interval's
half-width in standard deviations is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

#: half-width of a central 90 % normal interval, in standard deviations (1.6449)
Z90 = NormalDist().inv_cdf(0.95)


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
    model: object
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
