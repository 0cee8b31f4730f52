import numpy as np
import pytest

from loop.acquisition import AcquisitionSettings, ObjectiveModel, choose_batch
from loop.config import TargetProfile
from loop.modal_compat import BayesianOptimizer

TARGET = TargetProfile(times_hours=[24, 72, 168, 336, 672], release_pct=[20, 40, 65, 80, 95])


class TwoMemberModel:
    """Curves set by the first feature: member curves agree near x0 = 0.5 and split apart elsewhere."""

    def predict_curves(self, features, times_hours):
        x = np.asarray(features)[:, 0]
        t = np.asarray(times_hours)
        centre = np.array(TARGET.release_pct) / 100
        a = np.clip(centre + (x[:, None] - 0.5), 0, 1)
        b = np.clip(centre + 2 * (x[:, None] - 0.5), 0, 1)
        return np.stack([a, b])[:, :, : len(t)]


def test_modal_teach_works_with_current_sklearn():
    from sklearn.gaussian_process import GaussianProcessRegressor

    rng = np.random.default_rng(0)
    X = rng.uniform(size=(5, 2))
    optimizer = BayesianOptimizer(estimator=GaussianProcessRegressor(), X_training=X, y_training=X.sum(1))
    optimizer.teach(np.array([[0.9, 0.9]]), np.array([1.8]))  # fails without loop.modal_compat
    assert optimizer.y_max == pytest.approx(1.8)


def test_objective_model_reports_mean_and_spread():
    pool = np.linspace(0, 1, 11)[:, None]
    mean, std = ObjectiveModel(TwoMemberModel(), TARGET).predict(pool, return_std=True)
    assert np.argmax(mean) == 5 and mean[5] == pytest.approx(100.0)
    assert std[5] < 1e-6 < std[0]


@pytest.mark.parametrize("strategy", ["ei", "ucb", "pi", "max_std", "thompson", "random"])
def test_every_strategy_returns_distinct_picks(strategy):
    pool = np.random.default_rng(1).uniform(size=(300, 3))
    batch = choose_batch(TwoMemberModel(), TARGET, pool, 8, incumbent_f2=40.0, settings=AcquisitionSettings(strategy=strategy))
    assert len(batch.indices) == len(set(batch.indices.tolist())) == 8
    assert batch.objective_mean.shape == (8,)


def test_ei_picks_the_best_and_spreads_the_batch():
    pool = np.random.default_rng(2).uniform(size=(400, 3))
    diverse = choose_batch(TwoMemberModel(), TARGET, pool, 6, 40.0, AcquisitionSettings("ei", diversity_length=0.3))
    top_k = choose_batch(TwoMemberModel(), TARGET, pool, 6, 40.0, AcquisitionSettings("ei", diversity_length=0.0))
    best = np.argmin(np.abs(pool[:, 0] - 0.5))
    assert diverse.indices[0] == top_k.indices[0] == best

    def spread(idx):
        picked = pool[idx]
        return np.mean([np.linalg.norm(a - b) for i, a in enumerate(picked) for b in picked[i + 1 :]])

    assert spread(diverse.indices) > 1.5 * spread(top_k.indices)


def test_unknown_strategy():
    with pytest.raises(ValueError, match="unknown acquisition strategy"):
        AcquisitionSettings("magic")
