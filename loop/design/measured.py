"""This campaign's measured formulations, as the recommenders and the cold-start decisions see them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nanoloop.loop.design.space import DesignSpace


@dataclass(frozen=True)
class Measured:
    """Measured formulations (imported ones included), in the order of the formulations table.

    Attributes:
        ids: formulation ids, length n.
        rounds: the round of each (-1: imported from the lab's files), shape (n,).
        encoded: unit encoding of each recipe, shape (n, d).
        curves: mean measured curve of each (Series: time in hours -> release %), length n.
    """

    ids: tuple[str, ...]
    rounds: np.ndarray
    encoded: np.ndarray
    curves: tuple[pd.Series, ...]

    @classmethod
    def of(cls, formulations: pd.DataFrame, mean_curves: dict[str, pd.Series], space: DesignSpace) -> "Measured":
        """The formulations (the ledger's table) that have a mean curve in ``mean_curves`` (id -> Series)."""
        frame = formulations[formulations["formulation_id"].isin(list(mean_curves))].drop_duplicates("formulation_id")
        encoded = space.encode(space.recipes(frame)) if len(frame) else np.empty((0, len(space.feature_names)), np.float32)
        ids = tuple(frame["formulation_id"])
        return cls(ids, frame["round"].to_numpy(int), encoded, tuple(mean_curves[f] for f in ids))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def by_id(self) -> dict[str, pd.Series]:
        """id -> mean curve (hours -> %)."""
        return dict(zip(self.ids, self.curves))

    def release_at(self, times_hours) -> np.ndarray:
        """Mean release (%) of each formulation interpolated at ``times_hours``, shape (n, T)."""
        times = np.asarray(times_hours, float)
        if not len(self):
            return np.empty((0, len(times)))
        return np.array([np.interp(times, c.index.to_numpy(float), c.to_numpy(float)) for c in self.curves])

    def where(self, keep) -> "Measured":
        """The formulations where the boolean mask ``keep`` (n,) is true, in the same order."""
        keep = np.asarray(keep, bool)
        return Measured(tuple(np.asarray(self.ids, dtype=object)[keep]), self.rounds[keep], self.encoded[keep],
                        tuple(c for c, k in zip(self.curves, keep) if k))
