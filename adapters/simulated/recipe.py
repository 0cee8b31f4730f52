"""The recipe the simulated lab understands, checked before any work is done.

A recipe is a ``dict`` with the fixed names below (extra keys are ignored).
The ranges are the ones the ground-truth physics is calibrated over; a value
outside them, a missing key or a non-number is a
:class:`~nanoloop.loop.lab.instruments.PermanentInstrumentError` naming the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from nanoloop.loop.lab.instruments import PermanentInstrumentError

POLYMERS: tuple[str, ...] = ("PLGA 50:50", "PLGA 75:25", "PLA", "PCL")

#: name -> (low, high, unit / meaning)
RANGES: dict[str, tuple[float, float, str]] = {
    "polymer_mw_kda": (10.0, 120.0, "kDa, weight-average molecular weight"),
    "drug_logp": (-1.0, 5.0, "octanol/water logP of the drug"),
    "drug_loading_pct": (1.0, 30.0, "% w/w drug in the feed (nominal)"),
    "particle_size_nm": (80.0, 500.0, "nm, nominal diameter the process is set to"),
    "peg_fraction": (0.0, 0.3, "w/w of polymer, PEG surface coating"),
    "ph_responsive_fraction": (0.0, 0.3, "w/w of polymer, pH-responsive excipient"),
    "medium_ph": (5.0, 7.4, "pH of the release medium"),
}

#: peg_fraction + ph_responsive_fraction must not exceed this.
MAX_EXCIPIENT_FRACTION = 0.4

_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Recipe:
    """A validated formulation (units as in :data:`RANGES`)."""

    polymer: str
    polymer_mw_kda: float
    drug_logp: float
    drug_loading_pct: float
    particle_size_nm: float
    peg_fraction: float
    ph_responsive_fraction: float
    medium_ph: float

    @classmethod
    def from_mapping(cls, recipe: Mapping[str, Any], instrument: str, item_key: str = "") -> Recipe:
        """Check a recipe dict and build a :class:`Recipe`.

        Args:
            recipe: design variables by name; unknown extra keys are ignored.
            instrument: name used in error messages.
            item_key: the work item's idempotency key, for error messages.

        Raises:
            PermanentInstrumentError: a key is missing, not a number, or out of range.
        """

        def fail(message: str) -> PermanentInstrumentError:
            where = f"item {item_key!r}: " if item_key else ""
            return PermanentInstrumentError(instrument, where + message, item_key=item_key)

        if not isinstance(recipe, Mapping):
            raise fail(f"recipe must be a mapping, got {type(recipe).__name__}")
        if "polymer" not in recipe:
            raise fail("recipe key 'polymer' is missing")
        polymer = recipe["polymer"]
        if polymer not in POLYMERS:
            raise fail(f"recipe key 'polymer' = {polymer!r} is not one of {list(POLYMERS)}")
        values: dict[str, float] = {}
        for name, (low, high, unit) in RANGES.items():
            if name not in recipe:
                raise fail(f"recipe key {name!r} is missing ({unit})")
            raw = recipe[name]
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                try:
                    value = float(raw)
                except (TypeError, ValueError):
                    raise fail(f"recipe key {name!r} = {raw!r} is not a number") from None
            else:
                value = float(raw)
            if not math.isfinite(value) or value < low - _TOLERANCE or value > high + _TOLERANCE:
                raise fail(f"recipe key {name!r} = {raw!r} is outside [{low:g}, {high:g}] ({unit})")
            values[name] = min(max(value, low), high)
        excipients = values["peg_fraction"] + values["ph_responsive_fraction"]
        if excipients > MAX_EXCIPIENT_FRACTION + _TOLERANCE:
            raise fail(
                f"recipe keys 'peg_fraction' + 'ph_responsive_fraction' = {excipients:g} "
                f"exceed {MAX_EXCIPIENT_FRACTION:g}"
            )
        return cls(polymer=polymer, **values)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}
