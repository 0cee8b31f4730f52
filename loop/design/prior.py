"""Earlier measurements as a prior: the ``[prior]`` stores and files, aligned to this campaign's variables.

A prior's formulations are read in this campaign's unit encoding. Variables are
matched by name: a prior variable this campaign does not have is dropped, a
variable of this campaign the prior lacks takes the value ``[prior] fill`` gives
(an error naming it otherwise), and a prior formulation whose category this
campaign does not know is left out. Each of those decisions is one line in
:attr:`PriorData.notes`, which the round's provenance and ``nanoloop status`` show.

Prior formulations train the model (how: :mod:`nanoloop.loop.design.cold_start` decides
by evidence); they are never proposed and never counted as this campaign's experiments.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from nanoloop.loop.errors import InputError
from nanoloop.loop.design.space import Categorical, DesignSpace


@dataclass(frozen=True)
class PriorData:
    """Measured release of earlier formulations in this campaign's encoding.

    Attributes:
        encoded: unit encoding of each prior formulation, shape (n, d).
        curves: mean measured curve of each (Series: hours -> %), in the order of ``encoded``.
        replicates: every measured point: columns ``row`` (index into ``encoded``), ``time_hours``, ``release_pct``.
        sources: where each formulation came from (store or file), in the order of ``encoded``.
        notes: what was dropped, filled or left out, one line each.
    """

    encoded: np.ndarray
    curves: tuple[pd.Series, ...]
    replicates: pd.DataFrame
    sources: tuple[str, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return len(self.encoded)

    @property
    def digest(self) -> str:
        """A content hash (part of the model version, so a changed prior retrains)."""
        h = hashlib.sha256(np.ascontiguousarray(self.encoded, dtype=np.float32).tobytes())
        h.update(self.replicates[["row", "time_hours", "release_pct"]].to_numpy(float).tobytes())
        return h.hexdigest()[:12]

    def training_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows (features + time hours), release fraction and groups, as the surrogate is trained on."""
        rows = self.replicates["row"].to_numpy(int)
        X = np.column_stack([self.encoded[rows], self.replicates["time_hours"].to_numpy(np.float32)]).astype(np.float32)
        y = np.clip(self.replicates["release_pct"].to_numpy(float) / 100.0, 0.0, 1.2)
        return X, y, np.array([f"prior:{r}" for r in rows])

    def at_times(self, times_hours) -> np.ndarray:
        """Mean release (%) of each prior formulation interpolated at ``times_hours``, shape (n, T)."""
        times = np.asarray(times_hours, float)
        return np.array([np.interp(times, c.index.to_numpy(float), c.to_numpy(float)) for c in self.curves]).reshape(len(self), len(times))


def aligned_prior(sources: list[tuple[str, pd.DataFrame, pd.DataFrame, dict[str, pd.Series]]], space: DesignSpace, fill: dict) -> PriorData:
    """Earlier measurements in this campaign's encoding.

    Args:
        sources: per store or file: (name, recipes indexed by formulation id, its measured points with columns
            ``formulation_id``, ``time_hours``, ``release_pct``, the mean curve of each formulation id).
        space: this campaign's design space.
        fill: value of each variable of this campaign a source lacks (``[prior] fill``).

    Raises:
        InputError: a variable a source lacks without a fill value, or no measured curve in any source.
    """
    encoded, curves, points, names, notes = [], [], [], [], []
    for source, recipes, curve_rows, means in sources:
        if recipes.empty:
            notes.append(f"prior {source}: no measured formulations")
            continue
        recipes, said = _aligned(source, recipes, space, fill)
        notes += said
        for key, recipe in recipes.iterrows():
            measured = curve_rows[curve_rows["formulation_id"] == key]
            if measured.empty:
                continue
            row = len(encoded)
            encoded.append(space.encode(recipe.to_frame().T)[0])
            curves.append(means[key])
            points.append(measured.assign(row=row)[["row", "time_hours", "release_pct"]])
            names.append(source)
    if not encoded:
        raise InputError(f"prior: {', '.join(s[0] for s in sources)} hold no measured release curves")
    notes.append(f"prior: {len(encoded)} measured formulations from {len(sources)} source(s)")
    return PriorData(np.array(encoded, dtype=np.float32), tuple(curves), pd.concat(points, ignore_index=True), tuple(names), tuple(notes))


def _aligned(source: str, recipes: pd.DataFrame, space: DesignSpace, fill: dict) -> tuple[pd.DataFrame, list[str]]:
    """The recipes with exactly this space's variables, and a line for each decision taken."""
    notes = []
    dropped = [c for c in recipes.columns if c not in space.names]
    if dropped:
        notes.append(f"prior {source}: variables not in this campaign dropped: {', '.join(dropped)}")
    for name in space.names:
        if name in recipes.columns and recipes[name].notna().all():
            continue
        if name not in fill:
            raise InputError(f"prior {source}: has no values of variable {name!r}; give [prior] fill = {{ {name} = ... }} "
                             "(the value it had there)")
        recipes = recipes.assign(**{name: recipes[name].fillna(fill[name]) if name in recipes.columns else fill[name]})
        notes.append(f"prior {source}: {name} missing, filled with {fill[name]!r}")
    recipes = recipes[space.names]
    for v in space.variables:
        if isinstance(v, Categorical):
            known = recipes[v.name].isin(v.categories)
            if not known.all():
                notes.append(f"prior {source}: {int((~known).sum())} formulation(s) left out: {v.name} "
                             f"{sorted(set(recipes.loc[~known, v.name].astype(str)))} not among this campaign's categories")
                recipes = recipes[known]
        else:
            values = pd.to_numeric(recipes[v.name], errors="coerce")
            if values.isna().any():
                raise InputError(f"prior {source}: variable {v.name!r} has non-numeric values")
            recipes = recipes.assign(**{v.name: values})
    return recipes, notes
