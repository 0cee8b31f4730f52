import numpy as np
import pytest

from nanoloop.loop.models.gp import fit_standardised_gp


def _release_pct(n, seed):
    X = np.random.default_rng(seed).uniform(0, 1, (n, 2))
    return X, 20 + 60 * X[:, 0] ** 2 + 10 * X[:, 1]


def test_predictions_in_the_targets_unit_follow_the_measurements():
    X, y = _release_pct(25, 0)
    gp, centre, scale = fit_standardised_gp(X, y, seed=0)
    assert centre == pytest.approx(y.mean()) and scale == pytest.approx(y.std())
    X_new, y_new = _release_pct(10, 1)
    predicted = centre + scale * gp.predict(X_new)
    assert np.abs(predicted - y_new).mean() < 0.1 * np.abs(y_new - y.mean()).mean()


def test_a_given_kernel_is_used_as_it_is():
    """Cross-validation folds reuse the kernel fitted on all data: no optimiser, same hyperparameters."""
    X, y = _release_pct(20, 2)
    fitted, centre, scale = fit_standardised_gp(X, y, seed=0)
    again, centre_again, scale_again = fit_standardised_gp(X, y, seed=5, kernel=fitted.kernel_)
    np.testing.assert_array_equal(again.kernel_.theta, fitted.kernel_.theta)
    np.testing.assert_allclose(centre_again + scale_again * again.predict(X), centre + scale * fitted.predict(X), rtol=1e-10)
    fold, _, _ = fit_standardised_gp(X[:10], y[:10], seed=0, kernel=fitted.kernel_)
    np.testing.assert_array_equal(fold.kernel_.theta, fitted.kernel_.theta)


def test_reproducible_under_a_seed_and_a_constant_target_is_not_scaled():
    X, y = _release_pct(15, 3)
    a, b = fit_standardised_gp(X, y, seed=4)[0], fit_standardised_gp(X, y, seed=4)[0]
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    gp, centre, scale = fit_standardised_gp(X, np.full(15, 42.0), seed=0)
    assert (centre, scale) == (42.0, 1.0)
    np.testing.assert_allclose(centre + scale * gp.predict(X), 42.0, atol=1e-6)


def test_restarts_zero_optimises_once_from_the_initial_kernel():
    """``[acquisition] gp_restarts = 0``: one optimisation from the initial kernel, so the seed plays no part; the
    default (1) adds one from a random kernel and keeps the better, never a worse fit than that one optimisation."""
    X, y = _release_pct(20, 5)
    once = [fit_standardised_gp(X, y, seed=s, restarts=0)[0] for s in (0, 1)]
    assert once[0].n_restarts_optimizer == 0
    np.testing.assert_array_equal(once[0].kernel_.theta, once[1].kernel_.theta)
    default = fit_standardised_gp(X, y, seed=0)[0]
    assert default.n_restarts_optimizer == 1
    assert default.log_marginal_likelihood_value_ >= once[0].log_marginal_likelihood_value_ - 1e-9
