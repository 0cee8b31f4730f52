"""A model of characterization: particle size, PDI, encapsulation efficiency ... from the recipe.

Characterization constraints of the objective (size 80-200 nm, efficiency
>= 60 %, ...) enter the acquisition as a probability of feasibility, predicted
by this model from the campaign's own characterization table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtr

from nanoloop.loop.errors import InputError
from nanoloop.loop.lab.instruments import Characterization


_TRANSFORMS = {  # property -> (forward, inverse): fitted on a scale where errors are roughly normal
    "size_nm": (np.log, np.exp),
    "encapsulation_efficiency_pct": (lambda v: np.log(np.clip(v, 0.5, 99.5) / (100 - np.clip(v, 0.5, 99.5))), lambda z: 100 / (1 + np.exp(-z))),
    "pdi": (np.log, np.exp),
}


class PropertyModel:
    """A bagged tree ensemble predicting characterization properties from unit-encoded formulations.

    Each property is fitted on a scale where it is roughly normal (log size and
    PDI, logit efficiency); the spread over trees plus the out-of-bag residual
    gives the uncertainty behind the probability of feasibility.

    Args:
        properties: which properties to model (columns of the characterization table).
        n_trees: trees in the ensemble.
        random_state: seed.
    """

    def __init__(self, properties=Characterization.fields(), n_trees: int = 48, random_state: int = 0):
        unknown = set(properties) - set(Characterization.fields())
        if unknown:
            raise InputError(f"unknown characterization properties {sorted(unknown)}")
        self.properties = tuple(properties)
        self.n_trees = n_trees
        self.random_state = random_state

    def fit(self, encoded: np.ndarray, table: pd.DataFrame) -> "PropertyModel":
        """Fit on formulations (n, d) and their measured properties (n rows, one column per property)."""
        from sklearn.ensemble import ExtraTreesRegressor

        encoded = np.asarray(encoded, dtype=np.float32)
        y = np.column_stack([self._forward(p, table[p].to_numpy(float)) for p in self.properties])
        ok = np.all(np.isfinite(y), axis=1)
        if ok.sum() < 3:
            raise InputError(f"a characterization model needs at least 3 characterized formulations, got {int(ok.sum())}")
        encoded, y = encoded[ok], y[ok]
        self.n_train_ = len(y)
        target = y[:, 0] if y.shape[1] == 1 else y
        self.forest_ = ExtraTreesRegressor(
            n_estimators=self.n_trees, min_samples_leaf=2, bootstrap=True, oob_score=len(y) >= 8,
            random_state=self.random_state, n_jobs=1,
        ).fit(encoded, target)
        if len(y) >= 8:
            oob = self.forest_.oob_prediction_.reshape(len(y), -1)
            fine = np.all(np.isfinite(oob), axis=1)
            resid = (y[fine] - oob[fine]) if fine.sum() >= 3 else y - y.mean(axis=0)
            self.residual_std_ = np.sqrt(np.mean(resid**2, axis=0))
        else:
            self.residual_std_ = y.std(axis=0) + 1e-6
        return self

    @staticmethod
    def _forward(name: str, values: np.ndarray) -> np.ndarray:
        forward = _TRANSFORMS.get(name, (lambda v: v, None))[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            return forward(np.asarray(values, dtype=float))

    def predict(self, encoded: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Property -> (mean, std) on the fitting scale (log size, logit EE, ...), each shape (n,)."""
        encoded = np.asarray(encoded, dtype=np.float32)
        per_tree = np.stack([tree.predict(encoded).reshape(len(encoded), -1) for tree in self.forest_.estimators_])  # (trees, n, P)
        mean, spread = per_tree.mean(axis=0), per_tree.std(axis=0)
        std = np.sqrt(spread**2 + self.residual_std_**2)
        return {p: (mean[:, j], std[:, j]) for j, p in enumerate(self.properties)}

    def predict_values(self, encoded: np.ndarray) -> dict[str, np.ndarray]:
        """Property -> median prediction in its own unit (nm, %, mV), shape (n,)."""
        out = {}
        for p, (mean, _) in self.predict(encoded).items():
            inverse = _TRANSFORMS.get(p, (None, lambda v: v))[1]
            out[p] = inverse(mean)
        return out

    def probability(self, encoded: np.ndarray, constraints) -> np.ndarray:
        """P(every constraint holds), treating properties as independent, shape (n,)."""
        predicted = self.predict(encoded)
        p = np.ones(len(encoded))
        for c in constraints:
            if c.name not in predicted:
                raise InputError(f"the characterization model has no {c.name!r}")
            mean, std = predicted[c.name]
            bounds = [None if b is None else float(self._forward(c.name, np.array([b]))[0]) for b in (c.min, c.max)]
            low, high = (b if b is not None and np.isfinite(b) else None for b in bounds)  # log(0): no bound
            if low is None and high is None:
                continue
            upper = ndtr((high - mean) / std) if high is not None else 1.0
            lower = ndtr((low - mean) / std) if low is not None else 0.0
            p = p * np.clip(upper - lower, 0.0, 1.0)
        return p


def fit_property_model(encoded: np.ndarray, values: pd.DataFrame, properties, seed: int = 0) -> PropertyModel | None:
    """Fit a :class:`PropertyModel` on characterized formulations; None with fewer than 3.

    Args:
        encoded: unit encoding of each characterized formulation, shape (n, d).
        values: their mean measured properties, one row per formulation (same order), one column per property.
        properties: which properties to model.
        seed: seed of the trees.
    """
    if len(values) < 3:
        return None
    return PropertyModel(properties, random_state=seed).fit(encoded, values.reset_index(drop=True))
