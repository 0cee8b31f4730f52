"""Transfer learning: pretrain on one set of curves, fine-tune on a few curves of a shifted one."""

from types import SimpleNamespace

import numpy as np
import pytest

from nanoloop.loop.errors import InputError
from nanoloop.loop.surrogate import curve_rows
from nanoloop.loop.transfer import check_same_features, pretrain, pretrain_from_campaign

TIMES = np.array([2, 8, 24, 72, 168, 336, 672.0])


def _curves(features, slower):
    tau = (5 + 300 * features[:, 0]) * slower
    return 1 - np.exp(-((TIMES / tau[:, None]) ** (0.6 + 0.8 * features[:, 1:2])))


@pytest.fixture(scope="module")
def pretrained():
    rng = np.random.default_rng(0)
    features = rng.uniform(0, 1, (60, 3))
    groups = np.repeat(np.arange(60), len(TIMES))
    return pretrain(curve_rows(features, TIMES), _curves(features, 1.0).reshape(-1), groups, n_members=3, epochs=300, hidden=32, random_state=0)


def test_fine_tuning_adapts_and_leaves_the_source_model_alone(pretrained):
    rng = np.random.default_rng(1)
    small, held = rng.uniform(0, 1, (6, 3)), rng.uniform(0, 1, (30, 3))
    y_small, y_held = _curves(small, 3.0).reshape(-1), _curves(held, 3.0).reshape(-1)  # the new polymer releases 3x slower
    X_held = curve_rows(held, TIMES)
    before = pretrained.predict(X_held)
    tuned = pretrained.fine_tune(curve_rows(small, TIMES), y_small, groups=np.repeat(np.arange(6), len(TIMES)), epochs=150)
    np.testing.assert_array_equal(pretrained.predict(X_held), before)  # a copy was tuned
    assert np.mean(np.abs(tuned.predict(X_held) - y_held)) < 0.7 * np.mean(np.abs(before - y_held))
    curves = tuned.predict_curves(held, TIMES)
    assert (np.diff(curves, axis=-1) >= -1e-7).all() and (curves >= 0).all() and (curves <= 1).all()
    assert tuned.fine_tuned_["n_rows"] == len(y_small) and not tuned.fine_tuned_["recalibrated"]
    np.testing.assert_array_equal(tuned.x_mean_, pretrained.x_mean_)  # pretrained scaling kept


def test_fine_tune_is_reproducible_and_checks_shapes(pretrained):
    rng = np.random.default_rng(2)
    small = rng.uniform(0, 1, (4, 3))
    X, y = curve_rows(small, TIMES), _curves(small, 2.0).reshape(-1)
    a = pretrained.fine_tune(X, y, epochs=20).predict(X)
    b = pretrained.fine_tune(X, y, epochs=20).predict(X)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    with pytest.raises(InputError, match="columns"):
        pretrained.fine_tune(X[:, 1:], y)
    with pytest.raises(InputError, match="epochs"):
        pretrained.fine_tune(X, y, epochs=0)


def test_feature_names_must_match():
    check_same_features(["a", "b"], ["a", "b"])
    with pytest.raises(InputError, match=r"missing in source: \['c'\]"):
        check_same_features(["a", "b"], ["a", "c"])
    with pytest.raises(InputError, match="different order"):
        check_same_features(["a", "b"], ["b", "a"])


def test_pretrain_from_campaign():
    rng = np.random.default_rng(3)
    features = rng.uniform(0, 1, (10, 3))
    X, y = curve_rows(features, TIMES), _curves(features, 1.0).reshape(-1)
    campaign = SimpleNamespace(
        training_data=lambda: (X, y, np.repeat(np.arange(10), len(TIMES)), 10),
        space=SimpleNamespace(feature_names=["a", "b", "c"]), config=SimpleNamespace(name="earlier"),
    )
    model, names = pretrain_from_campaign(campaign, n_members=2, epochs=20, hidden=8)
    assert names == ["a", "b", "c"] and model.n_features_in_ == 4
    empty = SimpleNamespace(training_data=lambda: (np.empty((0, 4)), np.empty(0), np.empty(0), 0), config=SimpleNamespace(name="new"))
    with pytest.raises(InputError, match="no measured curves"):
        pretrain_from_campaign(empty)
