import io

import numpy as np
import pytest
import torch
from sklearn.base import clone

from nanoloop.loop.models.blend import BlendedRelease, blend_by_time
from nanoloop.loop.models.build import build_release_model, load_release_model
from nanoloop.loop.config import SurrogateConfig, default_config
from nanoloop.loop.errors import InputError
from nanoloop.loop.models.base import Z90
from nanoloop.loop.models.base import curve_rows
from nanoloop.loop.models.ensemble import ReleaseEnsemble

TIMES = np.array([1, 4, 8, 24, 48, 72, 120, 168, 240, 336, 504, 672.0])


def _data(n, seed):
    rng = np.random.default_rng(seed)
    features = rng.uniform(0, 1, (n, 3))
    tau = np.exp(2 + 5 * features[:, 0])[:, None]
    shape = (0.5 + 1.5 * features[:, 1])[:, None]
    # a step in the burst: a tree's kind of structure, which the blend should pick up
    burst = np.where(features[:, 2] > 0.5, 0.35, 0.0)[:, None]
    curves = burst + (1 - burst) * (1 - np.exp(-((TIMES / tau) ** shape)))
    return features, curves


@pytest.fixture(scope="module")
def fitted():
    features, curves = _data(40, 0)
    noisy = curves + np.random.default_rng(1).normal(0, 0.02, curves.shape)
    groups = np.repeat(np.arange(40), len(TIMES))
    # a wider grid than the default (network alone or trees-then-network), so that both parts are in the fit
    model = BlendedRelease(n_members=3, epochs=200, hidden=32, random_state=0, early_network_weights=(0.2, 0.5, 1.0),
                           late_network_weights=(0.2, 1.0), tree_settings=("default", "smooth"))
    return model.fit(curve_rows(features, TIMES), noisy.reshape(-1), groups)


def test_members_are_monotone_bounded_and_blend_both_parts(fitted):
    assert 0.0 <= fitted.network_weight_early_ <= 1.0 and 0.0 <= fitted.network_weight_late_ <= 1.0
    assert fitted.split_hours_ == np.median(TIMES)  # the median time of the training rows
    assert fitted.validation_, "the weights were chosen on held-out groups"
    chosen = f"{fitted.tree_setting_}/w={fitted.network_weight_early_:.2f},{fitted.network_weight_late_:.2f}"
    assert len(fitted.validation_) == 12 and min(fitted.validation_.values()) == pytest.approx(fitted.validation_[chosen])
    assert fitted.trees_, "this data's step in the burst is the trees' kind of structure"
    features, _ = _data(10, 5)
    far = np.vstack([features, features * 3 - 1])  # also far outside the training range
    members = fitted.predict_curves(far, TIMES)
    assert members.shape == (3, 20, len(TIMES))
    assert (members >= 0).all() and (members <= 1).all()
    assert (np.diff(members, axis=-1) >= -1e-9).all()  # cumulative release never decreases
    mean, std = fitted.predict(curve_rows(far, TIMES), return_std=True)
    np.testing.assert_allclose(mean, members.mean(axis=0).reshape(-1), atol=1e-6)
    assert (std > 0).all()


def test_learns_held_out_curves_with_calibrated_intervals(fitted):
    features, curves = _data(30, 9)
    mean, std = fitted.predict(curve_rows(features, TIMES), return_std=True)
    error = np.abs(mean - curves.reshape(-1))
    assert error.mean() < 0.5 * np.abs(curves - curves.mean(axis=0)).mean()
    coverage = np.mean(error <= Z90 * std)
    assert 0.75 <= coverage <= 1.0


def test_save_load_gives_the_same_predictions(fitted, tmp_path):
    features, _ = _data(6, 3)
    rows = curve_rows(features, TIMES)
    path = tmp_path / "blend.pt"
    fitted.save(path, metadata={"campaign": "x"})
    loaded, meta = load_release_model(path)
    assert isinstance(loaded, BlendedRelease) and meta == {"campaign": "x"}
    np.testing.assert_allclose(loaded.predict(rows, return_std=True), fitted.predict(rows, return_std=True), atol=1e-6)
    assert (loaded.network_weight_early_, loaded.network_weight_late_) == (fitted.network_weight_early_, fitted.network_weight_late_)


def test_a_model_saved_with_one_weight_still_loads(fitted, tmp_path):
    """Format 1 (one network weight at every time) reads as equal weights before and after the split."""
    import json

    import torch

    path = tmp_path / "blend.pt"
    fitted.save(path)
    blob = torch.load(path, weights_only=True)
    meta = json.loads(blob["meta_json"])
    for key in ("network_weight_early", "network_weight_late", "split_hours"):
        meta.pop(key)
    params = {k: v for k, v in meta["params"].items() if not k.endswith("_network_weights")}
    blob["meta_json"] = json.dumps({**meta, "format": 1, "network_weight": 0.35, "params": {**params, "network_weights": [0.2, 0.35, 1.0]}})
    torch.save(blob, path)
    old, _ = load_release_model(path)
    assert old.early_network_weights == old.late_network_weights == (0.2, 0.35, 1.0)
    features, _ = _data(4, 8)
    net = fitted.network_.predict_curves(features, TIMES)
    trees = np.clip(np.stack([b.predict(curve_rows(features, TIMES)) for b in fitted.trees_]), 0, 1).reshape(net.shape)
    np.testing.assert_allclose(old.predict_curves(features, TIMES), 0.35 * net + 0.65 * trees, atol=1e-6)


def test_blending_by_time_keeps_curves_monotone_and_bounded():
    rng = np.random.default_rng(0)
    net = np.cumsum(rng.uniform(0, 0.2, (50, len(TIMES))), axis=1)
    trees = np.cumsum(rng.uniform(0, 0.2, (50, len(TIMES))), axis=1)
    split = 5  # TIMES[5] is the split time
    late = TIMES > TIMES[split]
    for w_early, w_late in [(0.2, 1.0), (1.0, 0.2), (0.5, 0.5), (0.0, 1.0)]:
        blended = blend_by_time(net, trees, net[:, split:split + 1], trees[:, split:split + 1], late, w_early, w_late)
        assert (np.diff(blended, axis=1) >= -1e-12).all() and blended.min() >= 0 and blended.max() <= 1
        np.testing.assert_allclose(blended[:, : split + 1], np.clip(w_early * net + (1 - w_early) * trees, 0, 1)[:, : split + 1])
    same = blend_by_time(net, trees, net[:, split:split + 1], trees[:, split:split + 1], late, 0.35, 0.35)
    np.testing.assert_allclose(same, np.clip(0.35 * net + 0.65 * trees, 0, 1))  # equal weights: the plain convex blend


def test_loader_reads_a_plain_ensemble_and_rejects_junk(tmp_path):
    features, curves = _data(5, 1)
    plain = ReleaseEnsemble(n_members=2, epochs=10).fit(curve_rows(features, TIMES), curves.reshape(-1))
    buffer = io.BytesIO()
    plain.save(buffer)
    buffer.seek(0)
    loaded, _ = load_release_model(buffer)
    assert isinstance(loaded, ReleaseEnsemble)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(InputError, match="not a saved release model"):
        load_release_model(junk)


def test_few_curves_use_the_network_alone_by_default():
    features, curves = _data(6, 4)
    model = BlendedRelease(n_members=2, epochs=30, hidden=16).fit(curve_rows(features, TIMES), curves.reshape(-1))
    assert model.trees_ == [] and model.validation_ == {}
    np.testing.assert_allclose(model.predict_curves(features, TIMES), model.network_.predict_curves(features, TIMES))
    plain = ReleaseEnsemble(n_members=2, epochs=30, hidden=16, random_state=0).fit(curve_rows(features, TIMES), curves.reshape(-1))
    np.testing.assert_allclose(model.predict_curves(features, TIMES), plain.predict_curves(features, TIMES), atol=1e-6)  # = model "ensemble"


def test_few_curves_use_the_default_weight_and_contract():
    features, curves = _data(4, 2)
    model = BlendedRelease(n_members=2, epochs=30, hidden=16, default_network_weight=0.5)
    assert clone(model).get_params()["n_members"] == 2
    model.fit(curve_rows(features, TIMES), curves.reshape(-1))
    assert (model.network_weight_early_, model.network_weight_late_) == (0.5, 0.5) and model.validation_ == {}
    assert model.predict(curve_rows(features, TIMES)).shape == (4 * len(TIMES),)
    with pytest.raises(InputError, match="shape"):
        model.predict(np.ones((3, 2)))
    with pytest.raises(InputError, match="network weights"):
        BlendedRelease(early_network_weights=(1.5,)).fit(curve_rows(features, TIMES), curves.reshape(-1))


def test_campaign_default_is_the_blend_and_the_network_alone_an_option():
    settings = default_config().surrogate
    assert settings.model == "blend" and SurrogateConfig().model == "blend"  # the demo config and a config that does not say
    assert isinstance(build_release_model(settings, 0), BlendedRelease)
    assert isinstance(build_release_model(settings.model_copy(update={"model": "ensemble"}), 0), ReleaseEnsemble)
    with pytest.raises(InputError, match="model must be one of"):  # no silent fallback to either model
        build_release_model(settings.model_copy(update={"model": "forest"}), 0)


def test_trees_then_network_needs_the_trees_only_up_to_the_split(fitted):
    """With the network's weight 1 after the split, skipping the trees there changes nothing."""
    import copy

    model = copy.copy(fitted)
    model.network_weight_early_, model.network_weight_late_ = 0.2, 1.0
    features, _ = _data(5, 11)
    grid = np.append(TIMES, model.split_hours_)
    net = model.network_.predict_curves(features, grid)
    trees = np.clip(np.stack([b.predict(curve_rows(features, grid)) for b in model.trees_]), 0, 1).reshape(net.shape)
    expected = blend_by_time(net[..., :-1], trees[..., :-1], net[..., -1:], trees[..., -1:], TIMES > model.split_hours_, 0.2, 1.0)
    np.testing.assert_allclose(model.predict_curves(features, TIMES), expected, atol=1e-9)
    np.testing.assert_allclose(model.predict(curve_rows(features, TIMES)), expected.mean(axis=0).reshape(-1), atol=1e-6)


def test_parallel_fits_give_the_same_model():
    features, curves = _data(14, 6)
    rows, y = curve_rows(features, TIMES), curves.reshape(-1)
    settings = dict(n_members=2, epochs=40, hidden=16, random_state=3, early_network_weights=(0.2, 1.0), late_network_weights=(0.2, 1.0))
    torch.manual_seed(123)
    one = BlendedRelease(n_jobs=1, **settings).fit(rows, y)
    state = torch.random.get_rng_state()
    two = BlendedRelease(n_jobs=2, **settings).fit(rows, y)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's random state is left alone
    assert one.validation_ == two.validation_
    np.testing.assert_array_equal(one.predict_curves(features, TIMES), two.predict_curves(features, TIMES))
