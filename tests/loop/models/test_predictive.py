import numpy as np
import pytest

from nanoloop.loop.config import TargetProfile
from nanoloop.loop.design.domain import OUTSIDE_DISTANCE, distance_to_data, is_outside
from nanoloop.loop.design.objective import Objective
from nanoloop.loop.models.predictive import PredictiveCurves, interval_90, predictive_draws
from nanoloop.loop.models.base import curve_rows

TIMES = np.array([4.0, 24.0, 72.0, 168.0, 336.0])


class TwoMembers:
    """Members that nearly agree, a large noise, and a calibration factor of 2."""

    std_scale_ = 2.0

    def predict_curves(self, features, times_hours):
        t = np.asarray(times_hours, float)
        tau = 20 + 200 * np.asarray(features, float)[:, 0]
        return np.stack([1 - np.exp(-t[None, :] / (tau[:, None] * k)) for k in (0.98, 1.02)])

    def predict(self, rows, return_std=False):
        rows = np.asarray(rows, float)
        members = np.stack([1 - np.exp(-rows[:, -1] / ((20 + 200 * rows[:, 0]) * k)) for k in (0.98, 1.02)])
        mean = members.mean(0)
        std = np.sqrt(members.var(0) + self.predict_noise(rows) ** 2) * self.std_scale_
        return (mean, std) if return_std else mean

    def predict_noise(self, rows):
        return np.full(len(rows), 0.05)


def test_draws_reproduce_the_calibrated_band_and_mean():
    model = TwoMembers()
    features = np.array([[0.3], [0.6]])
    draws = predictive_draws(model, features, TIMES, draws=400, seed=1)
    assert draws.shape == (800, 2, len(TIMES))
    mean, std = model.predict(curve_rows(features, TIMES), return_std=True)
    assert ((draws >= 0) & (draws <= 1)).all()
    # away from the clipping at 0 and 1, the draws have the band's mean and spread
    np.testing.assert_allclose(draws.mean(0)[:, 1:3].reshape(-1), mean.reshape(2, -1)[:, 1:3].reshape(-1), atol=0.02)
    np.testing.assert_allclose(draws.std(0)[:, 1:3].reshape(-1), std.reshape(2, -1)[:, 1:3].reshape(-1), rtol=0.15)


def test_f2_interval_is_wider_than_the_members_alone():
    model = TwoMembers()
    target = TargetProfile(times_hours=TIMES.tolist(), release_pct=[10.0, 40.0, 75.0, 95.0, 99.0])
    features = np.array([[0.3]])
    members_only = Objective(target).samples(model, features)
    honest = Objective(target).samples(PredictiveCurves(model), features)
    assert honest.std[0] > 3 * members_only.std[0]
    lower, upper = interval_90(honest.values)
    assert lower[0] < honest.mean[0] < upper[0]


def test_distance_to_data_and_the_outside_flag():
    measured = np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    near = np.array([[0.0, 0.0, 1.0], [0.9, 1.0, 0.0], [0.5, 0.5, 0.5]])
    d = distance_to_data(near, measured)
    assert d[0] == pytest.approx(0.0) and d[1] == pytest.approx(0.1 / np.sqrt(3))
    assert d[2] == pytest.approx(np.sqrt(0.75 / 3))
    assert list(is_outside(d)) == [False, False, True] and OUTSIDE_DISTANCE == 0.25
    assert np.isinf(distance_to_data(near, np.empty((0, 3)))).all()
