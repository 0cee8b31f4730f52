"""The design space: formulation variables with bounds and categories, and linear constraints.

A formulation is a plain ``dict`` (variable name -> value). A batch of them is a
``pandas.DataFrame`` with one column per variable. The surrogate and the
acquisition see the *unit encoding*: continuous variables scaled to [0, 1] by
their bounds, categorical ones one-hot.

A variable may be *fixed* for a campaign (``value=``): a property of the drug or
a condition of the release test rather than a design choice. It keeps its
column in the encoding (so data where it varied still teach the model its
effect), but sampling, decoding and validation hold it at its value; the
*designed* variables are the rest.
"""

from __future__ import annotations

import math

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from nanoloop.loop.errors import InputError


@dataclass(frozen=True)
class Continuous:
    """A real-valued variable; the unit lives in its name (``particle_size_nm``)."""

    name: str
    low: float
    high: float
    value: float | None = None  # fixed for this campaign; the bounds stay the scale the model encodes it on

    def __post_init__(self):
        if not np.isfinite(self.low) or not np.isfinite(self.high):
            raise InputError(f"space.{self.name}: bounds must be finite numbers")
        if self.low >= self.high:
            raise InputError(f"space.{self.name}: min ({self.low}) must be below max ({self.high})")
        if self.value is not None:
            if isinstance(self.value, bool) or not isinstance(self.value, (int, float, np.number)) or not np.isfinite(self.value):
                raise InputError(f"space.{self.name}.value: a fixed value must be a finite number, got {self.value!r}")
            if not (self.low <= self.value <= self.high):
                raise InputError(f"space.{self.name}.value: {self.value:g} is outside [min, max] = [{self.low:g}, {self.high:g}]")


@dataclass(frozen=True)
class Categorical:
    """A variable taking one of a few named values (e.g. the polymer)."""

    name: str
    categories: tuple[str, ...]
    value: str | None = None  # fixed for this campaign: one of the categories

    def __post_init__(self):
        if len(self.categories) < 1 or len(set(self.categories)) != len(self.categories):
            raise InputError(f"space.{self.name}: categories must be distinct and not empty")
        if self.value is not None and self.value not in self.categories:
            raise InputError(f"space.{self.name}.value: {self.value!r} is not one of the categories {list(self.categories)}")


@dataclass(frozen=True)
class LinearConstraint:
    """sum(coefficient * variable) <= max_total, e.g. excipient fractions summing to at most 0.4."""

    coefficients: dict[str, float]
    max_total: float

    def describe(self) -> str:
        terms = " + ".join(f"{c:g}*{n}" if c != 1 else n for n, c in self.coefficients.items())
        return f"{terms} <= {self.max_total:g}"


Variable = Continuous | Categorical


@dataclass(frozen=True)
class DesignSpace:
    """Variables and constraints; validates, samples and encodes formulations."""

    variables: tuple[Variable, ...]
    constraints: tuple[LinearConstraint, ...] = field(default_factory=tuple)

    def __post_init__(self):
        names = [v.name for v in self.variables]
        if len(set(names)) != len(names):
            raise InputError("space: variable names must be unique")
        if not names:
            raise InputError("space: at least one variable is needed")
        if not self.designed:
            raise InputError("space: every variable is fixed; at least one must be designed (no value)")
        for c in self.constraints:
            for name in c.coefficients:
                var = self.by_name.get(name)
                if var is None:
                    raise InputError(f"constraint {c.describe()}: unknown variable {name!r}")
                if not isinstance(var, Continuous):
                    raise InputError(f"constraint {c.describe()}: {name!r} is not continuous")
            values = [*c.coefficients.values(), c.max_total]
            if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
                raise InputError(f"constraint {c.describe()}: coefficients and max must be finite numbers")
            smallest = sum(min(k * self._low(n), k * self._high(n)) for n, k in c.coefficients.items())
            if smallest > c.max_total:
                raise InputError(f"constraint {c.describe()} can never hold: its smallest value within the variables' bounds "
                                 f"(and fixed values) is {smallest:g}")

    def _low(self, name: str) -> float:
        v = self.by_name[name]
        return v.low if v.value is None else v.value

    def _high(self, name: str) -> float:
        v = self.by_name[name]
        return v.high if v.value is None else v.value

    @property
    def by_name(self) -> dict[str, Variable]:
        return {v.name: v for v in self.variables}

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.variables]

    @property
    def fixed(self) -> dict:
        """Variables fixed for this campaign: name -> value (a float, or a category)."""
        return {v.name: v.value for v in self.variables if v.value is not None}

    @property
    def designed(self) -> list[str]:
        """Names of the variables the recommender chooses (all but the fixed ones)."""
        return [v.name for v in self.variables if v.value is None]

    @property
    def feature_names(self) -> list[str]:
        """Names of the unit-encoding columns (one-hot columns read ``polymer=PLA``)."""
        out = []
        for v in self.variables:
            if isinstance(v, Categorical):
                out += [f"{v.name}={c}" for c in v.categories]
            else:
                out.append(v.name)
        return out

    # -- checking ---------------------------------------------------------------
    def validate(self, formulation: dict, *, check_fixed: bool = True) -> dict:
        """Return the formulation with floats for continuous values, or raise naming the problem.

        A fixed variable must hold its value (to a relative 1e-6, as after a file
        round trip; the exact value is returned). ``check_fixed=False`` accepts other values within the
        bounds: a what-if question to the model, never a proposal.
        """
        unknown = set(formulation) - set(self.names)
        if unknown:
            raise InputError(f"formulation: unknown variable(s) {sorted(unknown)}")
        out = {}
        for v in self.variables:
            if v.name not in formulation:
                raise InputError(f"formulation: missing variable {v.name!r}")
            value = formulation[v.name]
            if isinstance(v, Categorical):
                if value not in v.categories:
                    raise InputError(f"formulation: {v.name}={value!r} is not one of {list(v.categories)}")
                out[v.name] = str(value)
                if check_fixed and v.value is not None and out[v.name] != v.value:
                    raise InputError(f"formulation: {v.name} is fixed at {v.value!r} for this campaign, got {value!r}")
            else:
                try:
                    value = float(value)
                except (TypeError, ValueError):
                    raise InputError(f"formulation: {v.name}={value!r} is not a number") from None
                if not (v.low <= value <= v.high):
                    raise InputError(f"formulation: {v.name}={value:g} is outside [{v.low:g}, {v.high:g}]")
                if check_fixed and v.value is not None:
                    if not math.isclose(value, v.value, rel_tol=1e-6, abs_tol=1e-9 * (v.high - v.low)):
                        raise InputError(f"formulation: {v.name} is fixed at {v.value:g} for this campaign, got {value:g}")
                    value = float(v.value)
                out[v.name] = value
        for c in self.constraints:
            total = sum(coef * out[n] for n, coef in c.coefficients.items())
            if total > c.max_total + 1e-9:
                raise InputError(f"formulation: constraint {c.describe()} violated ({total:g})")
        return out

    def outside_reasons(self, recipe: dict) -> list[str]:
        """Why a recipe lies outside the space: bounds, fixed values and linear constraints, in words; [] when inside.

        The recipe has every variable, with numbers for the continuous ones (e.g. a
        lab's earlier formulation read from a file). An unknown category is not "outside":
        it cannot be encoded, and the reader refuses it as a bad row. A value other than a
        fixed variable's is outside this campaign's space, yet it still teaches the model.
        """
        reasons = []
        for v in self.variables:
            if isinstance(v, Continuous):
                value = float(recipe[v.name])
                if not v.low <= value <= v.high:
                    reasons.append(f"{v.name} = {value:g} is outside [{v.low:g}, {v.high:g}]")
                elif v.value is not None and not math.isclose(value, v.value, rel_tol=1e-6, abs_tol=1e-9 * (v.high - v.low)):
                    reasons.append(f"{v.name} = {value:g}, fixed at {v.value:g} in this campaign")
            elif v.value is not None and str(recipe[v.name]) != v.value:
                reasons.append(f"{v.name} = {recipe[v.name]!r}, fixed at {v.value!r} in this campaign")
        for c in self.constraints:
            total = sum(coef * float(recipe[n]) for n, coef in c.coefficients.items())
            if total > c.max_total + 1e-9:
                reasons.append(f"constraint {c.describe()} is not met ({total:g})")
        return reasons

    def feasible(self, frame: pd.DataFrame) -> np.ndarray:
        """Boolean mask, shape (n,): rows that satisfy every constraint."""
        ok = np.ones(len(frame), dtype=bool)
        for c in self.constraints:
            total = sum(coef * frame[n].to_numpy(float) for n, coef in c.coefficients.items())
            ok &= total <= c.max_total + 1e-9
        return ok

    # -- sampling ---------------------------------------------------------------
    def from_unit_cube(self, u: np.ndarray) -> pd.DataFrame:
        """Map points of [0, 1]^n_variables (one column per variable) to formulations; fixed variables take their value."""
        columns = {}
        for j, v in enumerate(self.variables):
            if v.value is not None:
                columns[v.name] = np.full(len(u), v.value, dtype=object if isinstance(v, Categorical) else float)
            elif isinstance(v, Categorical):
                idx = np.minimum((u[:, j] * len(v.categories)).astype(int), len(v.categories) - 1)
                columns[v.name] = np.asarray(v.categories, dtype=object)[idx]
            else:
                columns[v.name] = v.low + u[:, j] * (v.high - v.low)
        return pd.DataFrame(columns)

    def sample(self, n: int, seed: int, scramble: bool = True) -> pd.DataFrame:
        """A space-filling (scrambled Sobol) sample of ``n`` feasible formulations.

        Infeasible Sobol points are dropped and the sequence continued, so the
        result keeps its low discrepancy within the feasible region. The Sobol
        sequence runs over the designed variables only (space-filling in them);
        fixed variables take their value.
        """
        designed = [j for j, v in enumerate(self.variables) if v.value is None]
        from scipy.stats import qmc  # scipy.stats takes half a second to import: only when a design is sampled

        sobol = qmc.Sobol(d=len(designed), scramble=scramble, seed=seed)
        kept: list[pd.DataFrame] = []
        have = 0
        for _ in range(64):
            m = int(2 ** np.ceil(np.log2(max(2 * (n - have), 2))))
            u = np.zeros((m, len(self.variables)))
            u[:, designed] = sobol.random(m)
            frame = self.from_unit_cube(u)
            frame = frame[self.feasible(frame)]
            kept.append(frame)
            have += len(frame)
            if have >= n:
                break
        else:
            raise InputError("space: constraints leave (almost) no feasible formulation")
        return pd.concat(kept, ignore_index=True).iloc[:n].reset_index(drop=True)

    # -- encoding ---------------------------------------------------------------
    def recipes(self, formulations: pd.DataFrame) -> pd.DataFrame:
        """The design variables of stored formulations (their ``parameters_json``), one column per variable, in this space's order."""
        return recipes_table(formulations)[self.names]

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """Unit encoding, shape (n, len(feature_names)), float32."""
        blocks = []
        for v in self.variables:
            if isinstance(v, Categorical):
                values = frame[v.name].to_numpy()
                blocks.append(np.stack([values == c for c in v.categories], axis=1).astype(np.float32))
            else:
                x = (frame[v.name].to_numpy(float) - v.low) / (v.high - v.low)
                blocks.append(x[:, None].astype(np.float32))
        return np.concatenate(blocks, axis=1)

    def fixed_encoding(self) -> tuple[np.ndarray, np.ndarray]:
        """Encoding columns of the fixed variables and their values there: (columns (k,), values (k,))."""
        columns, values, j = [], [], 0
        for v in self.variables:
            width = len(v.categories) if isinstance(v, Categorical) else 1
            if v.value is not None:
                columns += range(j, j + width)
                if isinstance(v, Categorical):
                    values += [float(c == v.value) for c in v.categories]
                else:
                    values.append((v.value - v.low) / (v.high - v.low))
            j += width
        return np.asarray(columns, dtype=int), np.asarray(values, dtype=float)

    def decode(self, encoded: np.ndarray) -> pd.DataFrame:
        """Inverse of :meth:`encode` (one-hot blocks decoded by argmax, continuous clipped, fixed variables at their value)."""
        columns, j = {}, 0
        for v in self.variables:
            if v.value is not None:
                columns[v.name] = np.full(len(encoded), v.value, dtype=object if isinstance(v, Categorical) else float)
                j += len(v.categories) if isinstance(v, Categorical) else 1
            elif isinstance(v, Categorical):
                block = encoded[:, j : j + len(v.categories)]
                columns[v.name] = np.asarray(v.categories, dtype=object)[block.argmax(axis=1)]
                j += len(v.categories)
            else:
                columns[v.name] = v.low + np.clip(encoded[:, j], 0, 1) * (v.high - v.low)
                j += 1
        return pd.DataFrame(columns)


def formulation_id(campaign: str, formulation: dict) -> str:
    """Content hash of a formulation within a campaign: the same recipe gets the same id.

    Continuous values are rounded to 6 significant digits so a value that went
    through a file round trip keeps its id.
    """
    canonical = {k: (float(f"{v:.6g}") if isinstance(v, (float, np.floating)) else v) for k, v in formulation.items()}
    text = json.dumps([campaign, canonical], sort_keys=True, default=str)
    return "F" + hashlib.sha256(text.encode()).hexdigest()[:15]


def recipe_json(recipe: dict) -> str:
    """A recipe as the ledger stores it (the formulations table's ``parameters_json``: sorted keys)."""
    return json.dumps(recipe, sort_keys=True)


def recipe_of(text: str) -> dict:
    """The recipe stored as ``parameters_json`` (variable name -> value)."""
    return json.loads(text)


def recipes_table(formulations: pd.DataFrame) -> pd.DataFrame:
    """The recipes of stored formulations: one column per variable, the index of ``formulations``."""
    return pd.DataFrame([recipe_of(p) for p in formulations["parameters_json"]], index=formulations.index)


def fixed_text(fixed: dict) -> str:
    """``drug_logp = 2.1, medium_ph = 7.4``: fixed variables (name -> value) as one line."""
    return ", ".join(f"{n} = {v:g}" if isinstance(v, (int, float)) else f"{n} = {v}" for n, v in fixed.items())


def fixed_label(name: str, fixed: dict) -> str:
    """``drug_logp (fixed)`` for a variable held for this campaign (a name in ``fixed``), else the name itself."""
    return f"{name} (fixed)" if name in fixed else str(name)
