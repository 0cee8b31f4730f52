"""A fake release model for the design tests: the physics is known, so the right answers are too."""

import numpy as np

from nanoloop.loop.config import default_config

_SPACE = default_config().design_space()
SIZE_COL = _SPACE.feature_names.index("particle_size_nm")
PLA_COL = _SPACE.feature_names.index("polymer=PLA")


class SizeModel:
    """Two members: first-order release, time constant set by particle size (slower for PLA); noise 0.01."""

    std_scale_ = 1.0

    def _tau(self, features):
        f = np.asarray(features, float)
        return 10 ** (0.5 + 2.5 * f[:, SIZE_COL]) * (1 + f[:, PLA_COL])

    def predict_curves(self, features, times_hours):
        t = np.asarray(times_hours, float)
        return np.stack([1 - np.exp(-t[None, :] / (self._tau(features)[:, None] * k)) for k in (0.95, 1.05)])

    def predict(self, rows, return_std=False):
        rows = np.asarray(rows, float)
        members = np.stack([1 - np.exp(-rows[:, -1] / (self._tau(rows[:, :-1]) * k)) for k in (0.95, 1.05)])
        mean, std = members.mean(0), np.sqrt(members.var(0) + self.predict_noise(rows) ** 2)
        return (mean, std) if return_std else mean

    def predict_noise(self, rows):
        return np.full(len(rows), 0.01)
