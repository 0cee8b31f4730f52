"""Model-independent comparison of release profiles: the FDA f1 and f2 factors."""

from __future__ import annotations

import numpy as np


def f2(reference_pct, test_pct) -> np.ndarray:
    """FDA similarity factor f2 between two release profiles on the same time points.

    f2 = 50 * log10(100 / sqrt(1 + mean((R_t - T_t)^2)))

    Args:
        reference_pct: cumulative release in %, shape (..., n_times).
        test_pct: cumulative release in %, broadcastable to the same shape.

    Returns:
        f2 per profile, shape (...); 100 for identical curves, >= 50 means similar.
    """
    reference = np.asarray(reference_pct, dtype=float)
    test = np.asarray(test_pct, dtype=float)
    mean_sq = np.mean((reference - test) ** 2, axis=-1)
    return 50.0 * np.log10(100.0 / np.sqrt(1.0 + mean_sq))
