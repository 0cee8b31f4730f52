"""What both release models promise (models.base.ReleaseModel): the protocol, the noise behind the spread, saving and loading."""

import io
import subprocess
import sys

import numpy as np
import pytest

from nanoloop.loop.models.base import ReleaseModel
from nanoloop.loop.models.blend import BlendedRelease
from nanoloop.loop.models.build import load_release_model
from nanoloop.loop.models.base import curve_rows
from nanoloop.loop.models.ensemble import ReleaseEnsemble

TIMES = np.array([1, 4, 8, 24, 48, 72, 120, 168, 240, 336, 504, 672.0])


def _data(n, seed):
    rng = np.random.default_rng(seed)
    features = rng.uniform(0, 1, (n, 3))
    tau = np.exp(2 + 5 * features[:, 0])[:, None]
    burst = np.where(features[:, 2] > 0.5, 0.3, 0.0)[:, None]
    curves = burst + (1 - burst) * (1 - np.exp(-TIMES / tau))
    return features, curves + np.random.default_rng(seed + 1).normal(0, 0.02, curves.shape)


def _unfitted():
    # 12 curves: the blend validates (10 or more groups); weights below 1 keep its trees in the members
    return {
        "ensemble": ReleaseEnsemble(n_members=3, epochs=60, hidden=16, random_state=1),
        "blend": BlendedRelease(n_members=2, epochs=30, hidden=16, n_jobs=1, random_state=2, early_network_weights=(0.2, 0.5),
                                late_network_weights=(0.5,)),
    }


@pytest.fixture(scope="module", params=["ensemble", "blend"])
def fitted(request):
    features, curves = _data(12, 0)
    model = _unfitted()[request.param]
    return model.fit(curve_rows(features, TIMES), curves.reshape(-1), np.repeat(np.arange(12), len(TIMES)))


def test_both_models_are_release_models_once_fitted(fitted):
    assert isinstance(fitted, ReleaseModel)
    assert not isinstance(type(fitted)(**fitted.get_params()), ReleaseModel)  # unfitted: no fitted attributes yet
    if isinstance(fitted, BlendedRelease):
        assert fitted.trees_, "the blend's members mix trees and network here"


def test_spread_is_members_plus_noise_times_the_calibration(fitted):
    rows = curve_rows(_data(5, 7)[0], TIMES)
    mean, std = fitted.predict(rows, return_std=True)
    members, noise = fitted.predict_members(rows), fitted.predict_noise(rows)
    assert noise.shape == mean.shape == (len(rows),) and (noise > 0).all()
    np.testing.assert_allclose(std, np.sqrt(members.var(axis=0) + noise**2) * fitted.std_scale_, rtol=1e-12)
    np.testing.assert_allclose(mean, members.mean(axis=0), rtol=1e-12)


def test_noise_is_what_inverting_the_spread_gave(fitted):
    """predict_noise replaced recovering the noise from predict's std: the numbers are the same."""
    rows = curve_rows(_data(5, 8)[0], TIMES)
    _, std = fitted.predict(rows, return_std=True)
    inverted = np.sqrt(np.maximum((std / fitted.std_scale_) ** 2 - fitted.predict_members(rows).var(axis=0), 0.0))
    np.testing.assert_allclose(fitted.predict_noise(rows), inverted, rtol=1e-9)


def test_a_saved_model_loads_back_with_the_same_predictions(fitted):
    rows = curve_rows(_data(4, 9)[0], TIMES)
    buffer = io.BytesIO()
    fitted.save(buffer, metadata={"campaign": "x"})
    buffer.seek(0)
    loaded, meta = load_release_model(buffer)
    assert type(loaded) is type(fitted) and isinstance(loaded, ReleaseModel) and meta == {"campaign": "x"}
    for a, b in zip(loaded.predict(rows, return_std=True), fitted.predict(rows, return_std=True)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(loaded.predict_noise(rows), fitted.predict_noise(rows), rtol=1e-6)


def test_naming_the_protocol_does_not_load_torch():
    code = "import sys, nanoloop.loop.models.base; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
