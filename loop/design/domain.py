"""How far a formulation lies from the measured data (the out-of-domain flag).

The distance is to the nearest measured formulation in the unit encoding of
the design space (continuous variables scaled to [0, 1] by their bounds,
categorical ones one-hot), as a root-mean-square over the encoding's columns,
so it reads "on average, each variable is this share of its range away". A
formulation farther than :data:`OUTSIDE_DISTANCE` from every measured one is
flagged "outside the measured data": there the surrogate extrapolates and its
interval is a guess, not a calibrated band.

The threshold 0.25 means, for example, every continuous variable a quarter of
its range away from the nearest measurement, or a polymer never measured (its
one-hot block alone gives sqrt(2 / d), 0.43 in the default 11-column space).
In the default space, a random formulation lies beyond it from a Sobol-like
set of 24 measured ones one time in four, and almost never from 100.
"""

from __future__ import annotations

import numpy as np

#: RMS distance in the unit encoding beyond which a formulation is "outside the measured data"
OUTSIDE_DISTANCE = 0.25
OUTSIDE_TEXT = "outside the measured data"


def distance_to_data(encoded, measured_encoded) -> np.ndarray:
    """RMS distance of each formulation to its nearest measured formulation, shape (n,).

    Args:
        encoded: (n, d) unit-encoded formulations.
        measured_encoded: (k, d) unit-encoded measured formulations; with none every distance is inf.
    """
    x = np.asarray(encoded, dtype=np.float64)
    m = np.asarray(measured_encoded, dtype=np.float64).reshape(-1, x.shape[1])
    if len(m) == 0:
        return np.full(len(x), np.inf)
    out = np.empty(len(x))
    for start in range(0, len(x), 4096):  # chunks: candidate pools are large
        block = x[start : start + 4096]
        d2 = (block**2).sum(1)[:, None] + (m**2).sum(1)[None, :] - 2.0 * block @ m.T
        out[start : start + 4096] = np.sqrt(np.maximum(d2.min(axis=1), 0.0) / x.shape[1])
    return out


def is_outside(distance) -> np.ndarray:
    """True where a distance lies beyond :data:`OUTSIDE_DISTANCE`."""
    return np.asarray(distance, dtype=np.float64) > OUTSIDE_DISTANCE
