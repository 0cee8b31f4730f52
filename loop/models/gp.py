"""The Gaussian process on formulations, built and fitted in one place (the residual GP and the curve GP use it).

A Matérn 5/2 kernel with one length scale per feature, times a signal
variance, plus a white-noise term, fitted on the target standardised by hand
(mean 0, std 1): the optimiser starts from that kernel and, by default, once more
from a random one (``[acquisition] gp_restarts``). Bounds are often hit with few
formulations, so scikit-learn's ConvergenceWarning is silenced.
"""

from __future__ import annotations

import warnings

import numpy as np


def fit_standardised_gp(X: np.ndarray, y: np.ndarray, seed: int, kernel=None, restarts: int = 1):
    """A GP fitted on ``y`` standardised by hand.

    Args:
        X: (n, n_features) encoded formulations.
        y: (n,) target in any unit (e.g. release in %).
        seed: seed of the optimiser's restarts.
        kernel: a kernel fitted before (e.g. another GP's ``kernel_``), used as it is, without the optimiser;
            None: the Matérn kernel above, optimised.
        restarts: optimisations from random kernels after the one from the initial kernel (0: that one only).

    Returns:
        (gp, centre, scale): the fitted ``GaussianProcessRegressor`` predicts ``(y - centre) / scale``, so in
        ``y``'s unit a prediction is ``centre + scale * gp.predict(X)``; ``scale`` is the std of ``y`` (1 when
        ``y`` is constant).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    centre, scale = float(np.mean(y)), float(np.std(y)) or 1.0
    if kernel is None:
        kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(np.full(X.shape[1], 0.5), (1e-2, 1e2), nu=2.5) + WhiteKernel(0.1, (1e-4, 1e1))
        gp = GaussianProcessRegressor(kernel, normalize_y=False, n_restarts_optimizer=restarts, random_state=seed)
    else:
        gp = GaussianProcessRegressor(kernel, normalize_y=False, optimizer=None)
    with warnings.catch_warnings():  # hyperparameters at a bound are expected with few formulations
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit(X, (y - centre) / scale)
    return gp, centre, scale
