"""Fault knobs of the simulated lab: how a real instrument misbehaves, on demand.

Pass them as the ``faults`` option (a dict, e.g. a table in the campaign
config). Every fault is drawn from the instrument's seed, so a run with faults
is as reproducible as one without. Default: no faults (physical synthesis
failures still happen; they are chemistry, not faults).

Knobs (probabilities are in [0, 1]):

- ``hang`` (both kinds): probability a call sleeps past its timeout and raises
  InstrumentTimeout; half of these hang after the call took effect (the reply
  was lost), so the caller cannot tell whether a submit went through.
- ``disconnect`` (both): probability a call raises TransientInstrumentError.
- ``garbage`` (both): probability a result is structurally nonsense
  (mismatched lengths, negative times, absurd values).
- ``nan_reading`` (both): probability each reading is NaN.
- ``duplicate`` (both): probability a result is delivered twice by ``collect``.
- ``partial_curve`` (dissolution): probability one replicate stops early.
- ``over_100`` (dissolution): probability one replicate reads 15-40 % high
  (wrong dilution factor), so its plateau lies above 100 %.
- ``drift_pct_per_day`` (dissolution): assay response drift, % of the reading
  per virtual day since the clock started (a reading at virtual time t is
  multiplied by 1 + drift * t / 24 h / 100).
- ``synthesis_failure_multiplier`` (synthesis, default 1): multiplies the
  physical failure probability (0 switches failures off; capped at 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Mapping

from nanoloop.loop.errors import InputError

_PROBABILITIES = ("hang", "disconnect", "garbage", "partial_curve", "nan_reading", "over_100", "duplicate")
_ONLY = {
    "partial_curve": "dissolution",
    "over_100": "dissolution",
    "drift_pct_per_day": "dissolution",
    "synthesis_failure_multiplier": "synthesis",
}


@dataclass(frozen=True)
class Faults:
    """Fault knobs; see the module docstring for their meaning."""

    hang: float = 0.0
    disconnect: float = 0.0
    garbage: float = 0.0
    partial_curve: float = 0.0
    nan_reading: float = 0.0
    over_100: float = 0.0
    duplicate: float = 0.0
    drift_pct_per_day: float = 0.0
    synthesis_failure_multiplier: float = 1.0

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | Faults | None, kind: str, instrument: str) -> Faults:
        """Check a ``faults`` option for an instrument of ``kind``.

        Raises:
            InputError: unknown knob, a knob for the other kind of instrument,
                a probability outside [0, 1], or a non-finite number.
        """
        if options is None:
            return cls()
        if isinstance(options, Faults):
            options = {f.name: getattr(options, f.name) for f in fields(cls) if getattr(options, f.name) != f.default}
        if not isinstance(options, Mapping):
            raise InputError(f"{instrument}: option 'faults' must be a table of knobs, got {type(options).__name__}")
        known = {f.name for f in fields(cls)}
        values: dict[str, float] = {}
        for name, raw in options.items():
            if name not in known:
                raise InputError(f"{instrument}: unknown fault {name!r}; known faults: {sorted(known)}")
            if _ONLY.get(name, kind) != kind:
                raise InputError(f"{instrument}: fault {name!r} applies to {_ONLY[name]} instruments, not {kind}")
            try:
                value = float(raw)
            except (TypeError, ValueError):
                raise InputError(f"{instrument}: fault {name!r} = {raw!r} is not a number") from None
            if not math.isfinite(value):
                raise InputError(f"{instrument}: fault {name!r} must be finite, got {raw!r}")
            if name in _PROBABILITIES and not 0.0 <= value <= 1.0:
                raise InputError(f"{instrument}: fault {name!r} = {raw!r} is a probability and must lie in [0, 1]")
            if name == "synthesis_failure_multiplier" and value < 0:
                raise InputError(f"{instrument}: fault 'synthesis_failure_multiplier' must be >= 0, got {raw!r}")
            values[name] = value
        return cls(**values)

    def active(self) -> dict[str, float]:
        """Knobs that differ from the default, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != f.default}
