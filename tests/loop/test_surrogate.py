import numpy as np
import pytest
from sklearn.base import clone

from loop.errors import InputError
from loop.surrogate import ReleaseEnsemble, curve_rows

TIMES = np.array([1, 4, 8, 24, 48, 72, 120, 168, 240, 336, 504, 672.0])


def _data(n, seed):
    rng = np.random.default_rng(seed)
    features = rng.uniform(0, 1, (n, 3))
    tau = np.exp(2 + 5 * features[:, 0])[:, None]
    shape = (0.5 + 1.5 * features[:, 1])[:, None]
    burst = 0.3 * features[:, 2][:, None]
    curves = burst + (1 - burst) * (1 - np.exp(-((TIMES / tau) ** shape)))
    return features, curves


@pytest.fixture(scope="module")
def fitted():
    features, curves = _data(40, 0)
    noisy = curves + np.random.default_rng(1).normal(0, 0.02, curves.shape)
    groups = np.repeat(np.arange(40), len(TIMES))
    return ReleaseEnsemble(n_members=4, epochs=300, random_state=0).fit(curve_rows(features, TIMES), noisy.reshape(-1), groups)


def test_shapes_spread_and_bounds(fitted):
    features, curves = _data(10, 5)
    mean, std = fitted.predict(curve_rows(features, TIMES), return_std=True)
    assert mean.shape == std.shape == (10 * len(TIMES),)
    assert (std > 0).all()
    members = fitted.predict_curves(features, TIMES)
    assert members.shape == (4, 10, len(TIMES))
    assert members.std(axis=0).mean() > 1e-4  # members disagree
    assert (members >= 0).all() and (members <= 1).all()
    assert (np.diff(members, axis=-1) >= -1e-7).all()  # cumulative release never decreases


def test_learns_held_out_curves(fitted):
    features, curves = _data(20, 9)
    mean = fitted.predict(curve_rows(features, TIMES)).reshape(curves.shape)
    baseline = np.abs(curves - curves.mean(axis=0)).mean()
    assert np.abs(mean - curves).mean() < 0.5 * baseline


@pytest.mark.parametrize("head", ["hybrid", "freeform"])
def test_fits_a_tiny_set_and_is_reproducible(head):
    features, curves = _data(3, 2)
    X, y = curve_rows(features, TIMES), curves.reshape(-1)
    a = ReleaseEnsemble(head=head, n_members=3, epochs=60, random_state=4).fit(X, y)
    b = ReleaseEnsemble(head=head, n_members=3, epochs=60, random_state=4).fit(X, y)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-5, atol=1e-6)
    assert np.isfinite(a.predict(X)).all()


def test_sklearn_contract():
    model = ReleaseEnsemble(n_members=3, epochs=20)
    assert clone(model).get_params()["n_members"] == 3
    assert model.set_params(head="freeform").head == "freeform"
    assert not hasattr(model, "net_")  # nothing fitted in __init__


def test_save_and_load(tmp_path, fitted):
    features, _ = _data(5, 3)
    path = tmp_path / "model.pt"
    fitted.save(path, metadata={"feature_names": ["a", "b", "c"]})
    loaded, meta = ReleaseEnsemble.load(path)
    assert meta["feature_names"] == ["a", "b", "c"]
    np.testing.assert_allclose(loaded.predict(curve_rows(features, TIMES)), fitted.predict(curve_rows(features, TIMES)), rtol=1e-6)


def test_bad_input():
    with pytest.raises(InputError, match="finite"):
        ReleaseEnsemble(epochs=5).fit(np.array([[0.1, np.nan], [0.2, 1.0]]), np.array([0.1, 0.2]))
    with pytest.raises(InputError, match="rows"):
        ReleaseEnsemble(epochs=5).fit(np.ones((3, 2)), np.ones(2))
    with pytest.raises(InputError, match="head"):
        ReleaseEnsemble(head="magic", epochs=5).fit(np.ones((3, 2)), np.ones(3))
