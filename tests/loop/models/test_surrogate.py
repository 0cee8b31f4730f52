import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from nanoloop.loop.models.ensemble_training import member_weights
from nanoloop.loop.errors import InputError
from nanoloop.loop.models.base import Z90
from nanoloop.loop.models.base import curve_rows
from nanoloop.loop.models.blend import BlendedRelease
from nanoloop.loop.models.ensemble import ReleaseEnsemble

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


@pytest.mark.parametrize("model", [ReleaseEnsemble, BlendedRelease])
def test_complex_input_is_refused_not_cast(model):
    X = np.ones((4, 3), dtype=complex)
    with pytest.raises(InputError, match="complex"):
        model(n_members=2, epochs=5).fit(X, np.ones(4))
    with pytest.raises(InputError, match="complex"):
        model(n_members=2, epochs=5).fit(X.real, np.ones(4) + 1j)


_WORDING = "bad input raises InputError (a ValueError) whose one-line message names the expected layout, not scikit-learn's wording"
#: scikit-learn checks that do not apply to a release-curve estimator, and why (all others must pass)
SKIPPED_CHECKS = {
    "check_complex_data": _WORDING,
    "check_estimators_empty_data_messages": _WORDING,
    "check_fit2d_1feature": _WORDING + " (one column is the time alone: no formulation features)",
    "check_fit2d_predict1d": _WORDING,
    "check_requires_y_none": _WORDING,
    "check_n_features_in_after_fitting": _WORDING,
    "check_estimator_sparse_tag": _WORDING + " (sparse input is refused, without the word 'sparse')",
    "check_estimator_sparse_array": _WORDING + " (sparse input is refused, without the word 'sparse')",
    "check_estimator_sparse_matrix": _WORDING + " (sparse input is refused, without the word 'sparse')",
    "check_supervised_y_2d": "a column-vector y is flattened silently, without a DataConversionWarning",
    "check_regressors_train": "predictions are release fractions bounded in [0, 1] by the curve head, and the check's "
                              "targets are not, so its R^2 > 0.5 cannot hold",
    "check_sample_weight_equivalence_on_dense_data": "each member validates on its own held-out curves (groups of rows), so "
                                                     "repeating rows changes the split and the early stopping, not only the weights",
}


# The blend fails the same checks for the same reasons (its fit takes no sample_weight, so the sample-weight check is
# not run on it). The checks' data have more distinct rows than min_groups: its group validation runs and fits trees.
@parametrize_with_checks([ReleaseEnsemble(n_members=2, epochs=5, hidden=8, device="cpu"),
                          BlendedRelease(n_members=2, epochs=5, hidden=8, n_jobs=1, device="cpu")],
                         expected_failed_checks=lambda estimator: SKIPPED_CHECKS, xfail_strict=True)
def test_sklearn_estimator_checks(estimator, check):
    """scikit-learn's own estimator checks: cloning, fitted attributes, pickling, idempotent fit, dtypes, NaN refusal ..."""
    check(estimator)


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


@pytest.mark.parametrize("params", [
    {"residual": 0.3},
    {"likelihood": "laplace", "bootstrap": True},
    {"likelihood": "gaussian", "input_noise": 0.2, "clip_inputs": True, "dropout": 0.1},
    {"head": "freeform", "bootstrap": True, "clip_inputs": True},
])
def test_options_keep_curves_monotone_bounded_and_reproducible(params):
    features, curves = _data(12, 4)
    X, y = curve_rows(features, TIMES), curves.reshape(-1)
    groups = np.repeat(np.arange(12), len(TIMES))
    a = ReleaseEnsemble(n_members=3, epochs=40, hidden=16, random_state=1, **params).fit(X, y, groups)
    b = ReleaseEnsemble(n_members=3, epochs=40, hidden=16, random_state=1, **params).fit(X, y, groups)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-5, atol=1e-6)
    members = a.predict_curves(features * 3 - 1, TIMES)  # also far outside the training range
    assert (members >= 0).all() and (members <= 1).all()
    assert (np.diff(members, axis=-1) >= -1e-7).all()


def test_seeded_fit_leaves_the_global_torch_generator_alone():
    import torch

    features, curves = _data(4, 1)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ReleaseEnsemble(n_members=2, epochs=5, dropout=0.2).fit(curve_rows(features, TIMES), curves.reshape(-1))
    assert torch.equal(torch.rand(3), expected)


def test_sample_weight_and_groups_are_checked():
    features, curves = _data(10, 6)
    X, y = curve_rows(features, TIMES), curves.reshape(-1)
    weight = np.where(np.arange(len(y)) < 60, 1.0, 0.0)
    ReleaseEnsemble(n_members=2, epochs=10).fit(X, y, sample_weight=weight)
    with pytest.raises(InputError, match="sample_weight"):
        ReleaseEnsemble(n_members=2, epochs=10).fit(X, y, sample_weight=-weight)
    with pytest.raises(InputError, match="groups"):
        ReleaseEnsemble(n_members=2, epochs=10).fit(X, y, groups=np.arange(5))
    for bad, match in [({"likelihood": "cauchy"}, "likelihood"), ({"residual": 1.0}, "residual"), ({"device": "tpu"}, "device"), ({"input_noise": -1}, "input_noise")]:
        with pytest.raises(InputError, match=match):
            ReleaseEnsemble(n_members=2, epochs=10, **bad).fit(X, y)


def test_clip_inputs_flattens_extrapolation(fitted):
    features, _ = _data(3, 7)
    model = clone(fitted).set_params(clip_inputs=True, n_members=2, epochs=30)
    data, curves = _data(40, 0)
    model.fit(curve_rows(data, TIMES), curves.reshape(-1))
    far = features.copy()
    far[:, 0] = 50.0  # far above the training range [0, 1]
    edge = features.copy()
    edge[:, 0] = data[:, 0].max()
    np.testing.assert_allclose(model.predict_curves(far, TIMES), model.predict_curves(edge, TIMES), atol=1e-6)


def test_recalibrate_hits_the_requested_coverage(fitted):
    features, curves = _data(30, 11)
    X, y = curve_rows(features, TIMES), (curves + np.random.default_rng(2).normal(0, 0.05, curves.shape)).reshape(-1)
    model = ReleaseEnsemble.load(_roundtrip(fitted))[0]
    model.recalibrate(X, y)
    mean, std = model.predict(X, return_std=True)
    assert abs(np.mean(np.abs(y - mean) <= Z90 * std) - 0.90) < 0.02
    with pytest.raises(InputError, match="at least 10"):
        model.recalibrate(X[:5], y[:5])


def _roundtrip(model):
    import io

    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    return buffer


def test_curve_tensor_is_differentiable_and_matches_predict(fitted):
    import torch

    features, _ = _data(4, 8)
    x = torch.as_tensor(features, dtype=torch.float32).requires_grad_(True)
    curves = fitted.curve_tensor(x, torch.as_tensor([24.0, 168.0]))
    assert curves.shape == (4, 4, 2)
    np.testing.assert_allclose(curves.detach().numpy(), fitted.predict_curves(features, [24.0, 168.0]), rtol=1e-5, atol=1e-6)
    curves.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_load_refuses_unknown_settings(tmp_path, fitted):
    import json

    import torch

    path = tmp_path / "m.pt"
    fitted.save(path)
    blob = torch.load(path, weights_only=True)
    meta = json.loads(blob["meta_json"])
    meta["params"]["quantum"] = True
    blob["meta_json"] = json.dumps(meta)
    torch.save(blob, path)
    with pytest.raises(InputError, match="newer nanoloop"):
        ReleaseEnsemble.load(path)
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(InputError, match="not a saved ReleaseEnsemble"):
        ReleaseEnsemble.load(tmp_path / "junk.pt")
    loaded, _ = ReleaseEnsemble.load(_roundtrip(fitted), device="cpu")
    assert loaded.get_params()["device"] == "cpu"


def test_members_validate_on_disjoint_curves():
    model = ReleaseEnsemble(n_members=4, validation_fraction=0.2, bootstrap=True, random_state=3)
    features = np.repeat(np.arange(20.0)[:, None], 3, axis=0)
    train_w, val_w, used = member_weights(model, features, np.repeat(np.arange(20), 3))
    assert used and val_w.shape == (4, 60)
    held = val_w > 0
    assert (held.sum(axis=0) <= 1).all() and held.sum() == 4 * 4 * 3  # 4 curves each, no curve twice
    assert (train_w[held] == 0).all()  # a member never trains on its validation curves


def test_cuda_request_without_cuda_is_an_input_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    features, curves = _data(3, 0)
    with pytest.raises(InputError, match="no CUDA"):
        ReleaseEnsemble(device="cuda", epochs=2).fit(curve_rows(features, TIMES), curves.reshape(-1))
