"""Campaign configuration: a TOML file, validated on load with errors that name the bad key."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nanoloop.loop.errors import InputError
from nanoloop.loop.lab.instruments import RENAMED_FIELDS, Characterization
from nanoloop.loop.design.space import Categorical, Continuous, DesignSpace, LinearConstraint
from nanoloop.loop.design.settings import AcquisitionConfig
from nanoloop.loop.design.target import TargetProfile


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VariableConfig(_Strict):
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None
    value: float | str | None = None  # fixed for this campaign (a number within min/max, or one of the categories)

    @field_validator("value", mode="before")
    @classmethod
    def _not_bool(cls, value):
        if isinstance(value, bool):
            raise ValueError("a fixed value must be a number or a category")
        return value

    @model_validator(mode="after")
    def _one_kind(self):
        if self.categories is not None:
            if self.min is not None or self.max is not None:
                raise ValueError("give either categories or min/max, not both")
            if self.value is not None and self.value not in self.categories:
                raise ValueError(f"value {self.value!r} is not one of the categories {self.categories}")
        elif self.min is None or self.max is None:
            raise ValueError("a continuous variable needs min and max" + (
                " (also when fixed: they are the scale the model encodes it on)" if self.value is not None else ""))
        elif self.min >= self.max:
            raise ValueError(f"min ({self.min:g}) must be below max ({self.max:g})")
        elif self.value is not None:
            if isinstance(self.value, str):
                raise ValueError(f"value {self.value!r} of a continuous variable must be a number")
            if not (self.min <= self.value <= self.max):
                raise ValueError(f"value {self.value:g} is outside [min, max] = [{self.min:g}, {self.max:g}]")
        return self


class ConstraintConfig(_Strict):
    coefficients: dict[str, float]
    max: float


class InstrumentConfig(_Strict):
    kind: str
    options: dict[str, Any] = Field(default_factory=dict)


class InstrumentsConfig(_Strict):
    synthesis: InstrumentConfig = InstrumentConfig(kind="simulated-synthesis")
    dissolution: InstrumentConfig = InstrumentConfig(kind="simulated-dissolution")
    timeout_s: float = Field(30.0, gt=0, le=3600)
    # top-level packages whose "package.module:Class" paths this config may load (their code runs)
    trusted_plugins: list[str] = Field(default_factory=list)
    # seconds a run waits for results before it leaves the rest in flight (a run that got none stops with a message)
    collect_wait_s: float = Field(60.0, gt=0, le=86400)


class SurrogateConfig(_Strict):
    model: Literal["ensemble", "blend"] = "blend"  # blend: the network + monotone gradient boosting where validation says so (loop/models/blend.py); ensemble: the network alone
    head: Literal["hybrid", "freeform"] = "hybrid"
    members: int = Field(5, ge=2, le=64)
    epochs: int = Field(400, ge=10, le=20000)
    hidden: int = Field(64, ge=4, le=1024)
    learning_rate: float = Field(3e-3, gt=0, le=1)
    weight_decay: float = Field(1e-4, ge=0, le=1)


class PriorConfig(_Strict):
    """Earlier measurements that inform this campaign's model (never proposed, never counted as its experiments)."""

    stores: list[str] = Field(default_factory=list)  # ledgers of earlier campaigns (folders or URIs)
    files: list[str] = Field(default_factory=list)  # spreadsheets read as `nanoloop import` reads them
    fill: dict[str, float | str] = Field(default_factory=dict)  # a value for each of this campaign's variables a prior lacks
    map: dict[str, str] = Field(default_factory=dict)  # files: "Header in the file" = "variable", as `nanoloop import --map`
    map_file: str | None = None  # files: a mapping file, as `nanoloop import --map-file`
    use: Literal["auto", "joint", "fine-tune", "none"] = "auto"  # auto: chosen each round by cross-validation on this campaign's data


class GoalConfig(_Strict):
    kind: Literal["f2", "rmse"] = "f2"
    weight: float = Field(1.0, gt=0)
    worst: float | None = None  # desirability 0 here (default: f2 0, rmse 30 % points)
    best: float | None = None  # desirability 1 here (default: f2 100, rmse 0)
    time_weights: list[float] | None = None  # rmse only: one weight per target time

    @model_validator(mode="after")
    def _check(self):
        if self.time_weights is not None:
            if self.kind != "rmse":
                raise ValueError("time_weights apply to the rmse goal only")
            w = np.asarray(self.time_weights, dtype=float)
            if len(w) == 0 or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
                raise ValueError("time_weights must be non-negative numbers with a positive sum")
        if self.worst is not None and self.best is not None and self.worst == self.best:
            raise ValueError("worst and best must differ")
        return self


class PropertyConstraintConfig(_Strict):
    property: Literal[Characterization.fields() + ("burst_pct",)]
    min: float | None = None
    max: float | None = None
    at_hours: float = Field(24.0, gt=0)  # burst_pct: release read from the curve at this time

    @field_validator("property", mode="before")
    @classmethod
    def _renamed(cls, value):
        return RENAMED_FIELDS.get(value, value)  # a config stored before the measured loading was renamed

    @model_validator(mode="after")
    def _check(self):
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"min ({self.min:g}) must be below max ({self.max:g})")
        return self


class ObjectiveConfig(_Strict):
    """What to maximise: f2 (default) and/or weighted RMSE to the target, and constraints on the made batch."""

    goals: list[GoalConfig] = Field(default_factory=lambda: [GoalConfig()], min_length=1)
    constraints: list[PropertyConstraintConfig] = Field(default_factory=list)


APPARATUS = ("USP 1", "USP 2", "USP 4", "dialysis", "sample-and-separate")


class DissolutionMethodConfig(_Strict):
    """How release is measured: stored with every curve and shown with each formulation.

    ``apparatus``: USP 1 (basket), USP 2 (paddle), USP 4 (flow-through cell),
    dialysis (bag or cassette) or sample-and-separate (centrifugation or filtration).
    """

    apparatus: Literal[APPARATUS] = "sample-and-separate"
    medium: str = Field("PBS pH 7.4", min_length=1, max_length=200)
    volume_ml: float = Field(50.0, gt=0, le=10_000)
    temperature_c: float = Field(37.0, ge=4, le=60)
    sampling_times_hours: list[float] | None = None  # when given, the times release is sampled at (else the instrument's)

    @field_validator("sampling_times_hours")
    @classmethod
    def _times(cls, times):
        if times is not None:
            t = np.asarray(times, dtype=float)
            if len(t) < 3 or not np.all(np.isfinite(t)) or np.any(t <= 0) or np.any(np.diff(t) <= 0):
                raise ValueError(f"sampling_times_hours must be at least 3 positive, strictly increasing hours, got {times}")
        return times


class CampaignConfig(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    seed: int = 0
    rounds: int = Field(3, ge=1, le=1000)
    batch_size: int = Field(8, ge=1, le=384)
    max_failed_pct: float = Field(50.0, ge=0, le=100)
    target: TargetProfile
    space: dict[str, VariableConfig] = Field(min_length=1)
    constraints: list[ConstraintConfig] = Field(default_factory=list)
    instruments: InstrumentsConfig = InstrumentsConfig()
    surrogate: SurrogateConfig = SurrogateConfig()
    acquisition: AcquisitionConfig = AcquisitionConfig()
    objective: ObjectiveConfig = ObjectiveConfig()
    dissolution_method: DissolutionMethodConfig = DissolutionMethodConfig()
    prior: PriorConfig = PriorConfig()

    @field_validator("space")
    @classmethod
    def _names(cls, space):
        for name in space:
            if not name.isidentifier():
                raise ValueError(f"variable name {name!r} must be an identifier")
        return space

    def design_space(self) -> DesignSpace:
        """The validated :class:`DesignSpace` this config describes."""
        variables = [
            Categorical(name, tuple(v.categories), v.value) if v.categories is not None
            else Continuous(name, v.min, v.max, None if v.value is None else float(v.value))
            for name, v in self.space.items()
        ]
        constraints = [LinearConstraint(dict(c.coefficients), c.max) for c in self.constraints]
        return DesignSpace(tuple(variables), tuple(constraints))


def _one_line(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    value = first.get("input")
    shown = "" if isinstance(value, dict) or first["type"] == "missing" else f" (got {value!r})"
    more = f" [+{len(err.errors()) - 1} more]" if len(err.errors()) > 1 else ""
    return f"{source}: {where}: {message}{shown}{more}"


def parse_config(data: dict, source: str = "config") -> CampaignConfig:
    """Validate a config mapping; raises :class:`InputError` with one line naming the bad key."""
    try:
        config = CampaignConfig.model_validate(data)
        config.design_space()
    except ValidationError as err:
        raise InputError(_one_line(err, source)) from None
    except InputError as err:
        raise InputError(f"{source}: {err}") from None
    return config


def load_config(path: str | Path) -> CampaignConfig:
    """Read and validate a TOML campaign config."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a config file (give the path of a .toml file)") from None
    except PermissionError:
        raise InputError(f"{path}: cannot read the config file (permission denied)") from None
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason}); save the config as UTF-8") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read the config file ({err.strerror or err})") from None
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{path}: not valid TOML: {err}") from None
    config = parse_config(data, source=str(path))
    return _prior_paths_from(config, path.parent)


def _prior_paths_from(config: CampaignConfig, folder: Path) -> CampaignConfig:
    """Prior stores and files given as relative paths are relative to the config file's folder."""
    def resolve(location: str) -> str:
        return location if "://" in location or Path(location).is_absolute() else str((folder / location).resolve())

    prior = config.prior
    if not prior.stores and not prior.files:
        return config
    return config.model_copy(update={"prior": prior.model_copy(update={
        "stores": [resolve(s) for s in prior.stores], "files": [resolve(f) for f in prior.files],
        "map_file": resolve(prior.map_file) if prior.map_file else None})})


#: the commented example configs that ship with nanoloop (``nanoloop init DIR --example NAME``)
EXAMPLES = {"demo": "demo.toml", "warm-start": "warm_start.toml"}


def example_config_text(name: str = "demo") -> str:
    """A commented example config that ships with nanoloop: ``demo`` (the demo campaign) or
    ``warm-start`` (the demo with the drug's logP and the release medium's pH fixed)."""
    if name not in EXAMPLES:
        raise InputError(f"no example config {name!r}; the examples are {sorted(EXAMPLES)}")
    return resources.files("nanoloop.loop").joinpath(f"examples/{EXAMPLES[name]}").read_text()


def default_config() -> CampaignConfig:
    """The embedded demo campaign."""
    return parse_config(tomllib.loads(example_config_text()), source="demo.toml")
