"""The protocol every instrument implements, and the typed errors it raises.

An instrument takes a batch of work items, each with an idempotency key, and
returns one result per key. Submitting a key twice does the work once.
Every call takes a timeout in seconds; a call that runs past it raises
:class:`InstrumentTimeout` naming the instrument.

What callers must tolerate (real instruments do all of these): a call that
times out may or may not have taken effect (submit again: it is idempotent);
``collect`` may deliver the same result more than once; a DONE result may
carry readings that are NaN, above 100 % or otherwise implausible, and must be
checked before it is trusted (see :mod:`nanoloop.loop.lab.plausibility`).

This is a port of the core: :mod:`nanoloop.adapters` implements it (the
simulated lab, file drop, ...), and a campaign is given its instruments.

Results convert to plain JSON-able dicts with ``to_dict`` / ``from_dict``.
"""

from __future__ import annotations

import enum
import inspect
import warnings
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from nanoloop.loop.errors import InputError


class InstrumentError(Exception):
    """Base class of every error an instrument raises."""

    def __init__(self, instrument: str, message: str, *, item_key: str = ""):
        """Args:
            instrument: name of the instrument that raised (appears first in the message).
            message: what went wrong, in words.
            item_key: the work item's idempotency key when the error concerns one item.
        """
        super().__init__(f"{instrument}: {message}")
        self.instrument = instrument
        self.item_key = item_key


class TransientInstrumentError(InstrumentError):
    """The call may succeed if repeated (disconnect, busy, timeout): retry with backoff."""


class InstrumentTimeout(TransientInstrumentError):
    """A call ran past its timeout."""


class PermanentInstrumentError(InstrumentError):
    """The item cannot succeed (bad recipe, failed synthesis): record it as failed."""


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class WorkItem:
    """One recipe sent to an instrument.

    Attributes:
        key: idempotency key (the formulation id); the same key is done once.
        recipe: design variables by name, in the units of the design space.
        context: extra inputs, e.g. the characterization measured upstream.
    """

    key: str
    recipe: dict[str, Any]
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, init=False)
class Characterization:
    """What the synthesis instrument measures on a made batch of particles.

    Attributes:
        size_nm: hydrodynamic diameter, nm.
        pdi: polydispersity index, 0-1.
        zeta_mv: zeta potential, mV.
        encapsulation_efficiency_pct: drug encapsulated, % of the drug used.
        actual_drug_loading_pct: measured drug loading, % w/w (not the recipe's nominal ``drug_loading_pct``).

    The measured loading's old argument name ``drug_loading_pct`` (nanoloop before 0.2.0)
    is accepted until 0.3.0, with a DeprecationWarning.
    """

    size_nm: float
    pdi: float
    zeta_mv: float
    encapsulation_efficiency_pct: float
    actual_drug_loading_pct: float

    def __init__(self, size_nm: float, pdi: float, zeta_mv: float, encapsulation_efficiency_pct: float,
                 actual_drug_loading_pct: float | None = None, **renamed: float):
        unknown = sorted(set(renamed) - set(RENAMED_FIELDS))
        if unknown:
            raise TypeError(f"Characterization() got unexpected keyword argument(s) {unknown}")
        values = {"size_nm": size_nm, "pdi": pdi, "zeta_mv": zeta_mv, "encapsulation_efficiency_pct": encapsulation_efficiency_pct,
                  "actual_drug_loading_pct": actual_drug_loading_pct}
        for old, value in renamed.items():
            new = RENAMED_FIELDS[old]
            if values[new] is not None:
                raise TypeError(f"Characterization(): give {new} or its old name {old}, not both")
            warnings.warn(f"Characterization({old}=...) is deprecated and goes in nanoloop 0.3.0: the argument is {new}",
                          DeprecationWarning, stacklevel=2)
            values[new] = value
        missing = [name for name, value in values.items() if value is None]
        if missing:
            raise TypeError(f"Characterization() missing required argument(s) {missing}")
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        """The measured properties, in order: the one list the ledger, checks and objectives use."""
        return tuple(cls.__dataclass_fields__)

    def to_dict(self) -> dict[str, float]:
        return {k: float(getattr(self, k)) for k in self.fields()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Characterization:
        """Build from a dict with (at least) every field; extra keys are ignored.

        A field's name before the ledger's schema version 2 (see :data:`RENAMED_FIELDS`) is accepted too.
        """
        data = {RENAMED_FIELDS.get(k, k): v for k, v in data.items() if not (k in RENAMED_FIELDS and RENAMED_FIELDS[k] in data)}
        return cls(**{k: float(data[k]) for k in cls.fields()})


#: old name -> name of a characterization field (ledger schema 1 called the measured loading ``drug_loading_pct``,
#: the same name as the recipe's nominal loading)
RENAMED_FIELDS: dict[str, str] = {"drug_loading_pct": "actual_drug_loading_pct"}

#: units of the characterization fields, for tables and exports
CHARACTERIZATION_UNITS: dict[str, str] = {
    "size_nm": "nm", "pdi": "", "zeta_mv": "mV", "encapsulation_efficiency_pct": "%", "actual_drug_loading_pct": "% w/w",
}


#: plausible range of each characterization field (a reading outside is not trusted)
CHARACTERIZATION_RANGES: dict[str, tuple[float, float]] = {
    "size_nm": (1.0, 10_000.0),
    "pdi": (0.0, 1.0),
    "zeta_mv": (-200.0, 200.0),
    "encapsulation_efficiency_pct": (0.0, 100.0),
    "actual_drug_loading_pct": (0.0, 100.0),
}
assert tuple(CHARACTERIZATION_RANGES) == Characterization.fields()


@dataclass(frozen=True)
class ReleaseCurve:
    """One replicate of a dissolution test: cumulative release in % at times in hours."""

    replicate: int
    times_hours: tuple[float, ...]
    release_pct: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "replicate": int(self.replicate),
            "times_hours": [float(t) for t in self.times_hours],
            "release_pct": [float(r) for r in self.release_pct],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReleaseCurve:
        return cls(
            replicate=int(data["replicate"]),
            times_hours=tuple(float(t) for t in data["times_hours"]),
            release_pct=tuple(float(r) for r in data["release_pct"]),
        )


@dataclass(frozen=True)
class JobResult:
    """The outcome of one work item.

    Exactly one of ``characterization`` (synthesis), ``curves`` (dissolution)
    is set when ``state`` is DONE; ``reason`` says why when it is FAILED.
    """

    key: str
    state: JobState
    characterization: Characterization | None = None
    curves: tuple[ReleaseCurve, ...] = ()
    reason: str = ""
    raw_checksum: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (NaN readings stay NaN: write with ``allow_nan=True``)."""
        return {
            "key": self.key,
            "state": self.state.value,
            "characterization": None if self.characterization is None else self.characterization.to_dict(),
            "curves": [c.to_dict() for c in self.curves],
            "reason": self.reason,
            "raw_checksum": self.raw_checksum,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobResult:
        char = data.get("characterization")
        return cls(
            key=str(data["key"]),
            state=JobState(data["state"]),
            characterization=None if char is None else Characterization.from_dict(char),
            curves=tuple(ReleaseCurve.from_dict(c) for c in data.get("curves", ())),
            reason=str(data.get("reason", "")),
            raw_checksum=str(data.get("raw_checksum", "")),
        )


@runtime_checkable
class Instrument(Protocol):
    """What nanoloop needs from any instrument, simulated or real."""

    name: str
    kind: str  # "synthesis" or "dissolution"

    def describe(self) -> dict[str, Any]:
        """Static facts: name, kind, vendor, capabilities (e.g. sampling times in hours)."""

    def submit(self, items: list[WorkItem], timeout_s: float = 30.0) -> None:
        """Queue work; a key already known is ignored (idempotent)."""

    def status(self, keys: list[str], timeout_s: float = 30.0) -> dict[str, JobState]:
        """State of each key; a key never submitted is UNKNOWN."""

    def collect(self, keys: list[str], timeout_s: float = 30.0) -> list[JobResult]:
        """Results of finished keys (DONE or FAILED); unfinished keys are left out."""

    def cancel(self, keys: list[str], timeout_s: float = 30.0) -> None:
        """Stop work on the keys; finished ones are unaffected."""


KINDS = ("synthesis", "dissolution")
#: the entry-point group an installed instrument plug-in registers under (its name is then a config's ``kind``)
ENTRY_POINT_GROUP = "nanoloop.instruments"
#: the protocol's methods; every one but ``describe`` takes ``timeout_s``
METHODS = ("describe", "submit", "status", "collect", "cancel")


def check_methods(target: Any, label: str) -> None:
    """Raise InputError unless ``target`` (an instrument, or its class) has every method, each taking ``timeout_s``."""
    missing = [m for m in METHODS if not callable(getattr(target, m, None))]
    if missing:
        raise InputError(f"{label} does not implement the Instrument protocol: missing {missing}")
    for method in METHODS[1:]:
        try:
            params = inspect.signature(getattr(target, method)).parameters
        except (TypeError, ValueError):
            continue
        if "timeout_s" not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            raise InputError(f"{label}: method {method!r} must accept a 'timeout_s' argument")


def check_instrument(instrument: Any, spec: str = "") -> None:
    """Raise InputError unless ``instrument`` satisfies the Instrument protocol."""
    label = f"instrument {spec!r}" if spec else f"instrument {type(instrument).__name__}"
    check_methods(instrument, label)
    if not isinstance(instrument, Instrument):
        missing = [a for a in ("name", "kind") if not hasattr(instrument, a)]
        raise InputError(f"{label} does not implement the Instrument protocol: missing {missing}")
    if not isinstance(instrument.name, str) or not instrument.name:
        raise InputError(f"{label}: 'name' must be a non-empty string, got {instrument.name!r}")
    if instrument.kind not in KINDS:
        raise InputError(f"{label}: 'kind' must be one of {list(KINDS)}, got {instrument.kind!r}")
