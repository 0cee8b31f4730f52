"""The stock-solution table and the volumes each formulation needs, checked before anything runs.

Per formulation (one well), with ``polymer_mg`` of polymer:

- PEG: ``peg_fraction * polymer_mg``; pH-responsive excipient: ``ph_responsive_fraction * polymer_mg``;
- drug: ``drug_loading_pct`` is % w/w of all solids, so
  ``drug_mg = L / (100 - L) * (polymer_mg + peg_mg + excipient_mg)``;
- polymer: the stock(s) of the recipe's polymer. A stock within
  ``mw_tolerance_kda`` of ``polymer_mw_kda`` is used alone; otherwise the two
  stocks that bracket it are blended by mass so the blend's weight-average
  molecular weight is the target (``w_high = (M - M_low) / (M_high - M_low)``);
- volume of a stock (µL) = mass (mg) / concentration (mg/mL) * 1000;
- solvent tops the organic phase up to ``organic_volume_ul``; the antisolvent
  (``antisolvent_volume_ul``) is added last.

A formulation is unbuildable (with the reason) when: no polymer stock brackets
its molecular weight; the organic stocks alone exceed ``organic_volume_ul``; a
volume to dispense is below the pipette minimum; or a stock would run below
its dead volume (stocks are drawn in batch order; an unbuildable formulation
draws nothing). Volumes above the pipette maximum are split into equal aspirations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from nanoloop.loop.errors import InputError

ROLES = ("polymer", "drug", "peg", "excipient", "solvent", "antisolvent")
#: order in which a well is filled: the organic phase, then the antisolvent
FILL_ORDER = ("solvent", "polymer", "drug", "peg", "excipient", "antisolvent")


@dataclass(frozen=True)
class Stock:
    """One stock solution on the deck.

    Attributes:
        name: label on the container (unique).
        role: polymer, drug, peg, excipient, solvent or antisolvent.
        volume_ml: volume loaded on the deck, mL.
        mg_per_ml: concentration (not for solvent / antisolvent).
        polymer: for a polymer stock, one of the design space's polymers.
        mw_kda: for a polymer stock, its weight-average molecular weight.
        dead_volume_ml: volume the pipette cannot reach, mL.
    """

    name: str
    role: str
    volume_ml: float
    mg_per_ml: float = 0.0
    polymer: str = ""
    mw_kda: float = 0.0
    dead_volume_ml: float = 0.0


@dataclass(frozen=True)
class Settings:
    """How a formulation is made (options of the liquid-handler instrument)."""

    polymer_mg: float = 5.0
    organic_volume_ul: float = 400.0
    antisolvent_volume_ul: float = 1500.0
    pipette_min_ul: float = 10.0
    pipette_max_ul: float = 1000.0
    mw_tolerance_kda: float = 0.5


@dataclass
class Plan:
    """What one formulation needs: (stock name, volume µL) in fill order, or why it cannot be made."""

    key: str
    transfers: list[tuple[str, float]] = field(default_factory=list)
    reason: str = ""

    @property
    def buildable(self) -> bool:
        return not self.reason

    def total_ul(self) -> float:
        return round(sum(v for _, v in self.transfers), 1)


def parse_stocks(rows: Any, where: str = "stocks") -> list[Stock]:
    """Check the stock table from the config; InputError names the row and the problem."""
    if not isinstance(rows, list) or not rows:
        raise InputError(f"{where}: must be a non-empty list of stock tables")
    stocks: list[Stock] = []
    for i, row in enumerate(rows, start=1):
        at = f"{where}[{i}]"
        if not isinstance(row, Mapping):
            raise InputError(f"{at}: must be a table like {{ name = ..., role = ..., volume_ml = ... }}")
        unknown = set(row) - set(Stock.__dataclass_fields__)
        if unknown:
            raise InputError(f"{at}: unknown key(s) {sorted(unknown)}")
        name, role = row.get("name"), row.get("role")
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"{at}: 'name' must be a non-empty string")
        if role not in ROLES:
            raise InputError(f"{at} ({name}): 'role' = {role!r} must be one of {list(ROLES)}")
        numbers = {}
        for key in ("volume_ml", "mg_per_ml", "mw_kda", "dead_volume_ml"):
            value = row.get(key, 0.0)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise InputError(f"{at} ({name}): {key!r} = {value!r} must be a number >= 0")
            numbers[key] = float(value)
        if numbers["volume_ml"] <= numbers["dead_volume_ml"]:
            raise InputError(f"{at} ({name}): 'volume_ml' must exceed 'dead_volume_ml'")
        if role not in ("solvent", "antisolvent") and numbers["mg_per_ml"] <= 0:
            raise InputError(f"{at} ({name}): a {role} stock needs 'mg_per_ml' > 0")
        polymer = row.get("polymer", "")
        if role == "polymer" and (not isinstance(polymer, str) or not polymer or numbers["mw_kda"] <= 0):
            raise InputError(f"{at} ({name}): a polymer stock needs 'polymer' (its name) and 'mw_kda' > 0")
        stocks.append(Stock(name=name, role=role, polymer=polymer if role == "polymer" else "", **numbers))
    names = [s.name for s in stocks]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"{where}: stock name(s) {twice} appear twice")
    for role in ROLES:
        if role != "polymer" and sum(s.role == role for s in stocks) > 1:
            raise InputError(f"{where}: give one {role} stock, found {sum(s.role == role for s in stocks)}")
    missing = [r for r in ROLES if not any(s.role == r for s in stocks)]
    if missing:
        raise InputError(f"{where}: no stock for role(s) {missing}")
    return stocks


def _polymer_masses(recipe: Mapping[str, Any], stocks: list[Stock], polymer_mg: float, tolerance: float) -> dict[str, float]:
    """Mass (mg) of each polymer stock for the recipe's polymer and molecular weight; ValueError says why not."""
    polymer, target = recipe["polymer"], float(recipe["polymer_mw_kda"])
    candidates = sorted((s for s in stocks if s.role == "polymer" and s.polymer == polymer), key=lambda s: s.mw_kda)
    if not candidates:
        raise ValueError(f"no stock of polymer {polymer!r}")
    close = min(candidates, key=lambda s: abs(s.mw_kda - target))
    if abs(close.mw_kda - target) <= tolerance:
        return {close.name: polymer_mg}
    low = [s for s in candidates if s.mw_kda < target]
    high = [s for s in candidates if s.mw_kda > target]
    if not low or not high:
        have = ", ".join(f"{s.mw_kda:g}" for s in candidates)
        raise ValueError(f"no {polymer} stocks bracket {target:g} kDa (stocks at {have} kDa)")
    lo, hi = low[-1], high[0]
    w_high = (target - lo.mw_kda) / (hi.mw_kda - lo.mw_kda)
    return {lo.name: (1 - w_high) * polymer_mg, hi.name: w_high * polymer_mg}


def plan_formulation(key: str, recipe: Mapping[str, Any], stocks: list[Stock], settings: Settings) -> Plan:
    """The transfers that make one formulation, or a Plan with the reason it cannot be made."""
    by_role = {s.role: s for s in stocks if s.role != "polymer"}
    try:
        poly = _polymer_masses(recipe, stocks, settings.polymer_mg, settings.mw_tolerance_kda)
        peg_mg = float(recipe["peg_fraction"]) * settings.polymer_mg
        excipient_mg = float(recipe["ph_responsive_fraction"]) * settings.polymer_mg
        loading = float(recipe["drug_loading_pct"])
    except KeyError as exc:
        return Plan(key, reason=f"recipe has no {exc.args[0]!r}")
    except (TypeError, ValueError) as exc:
        return Plan(key, reason=str(exc))
    if not 0 <= loading < 100:
        return Plan(key, reason=f"drug_loading_pct = {loading:g} must be in [0, 100)")
    drug_mg = loading / (100 - loading) * (settings.polymer_mg + peg_mg + excipient_mg)
    by_stock: dict[str, float] = {}
    for name, mg in poly.items():
        by_stock[name] = mg / next(s for s in stocks if s.name == name).mg_per_ml * 1000
    for role, mg in (("drug", drug_mg), ("peg", peg_mg), ("excipient", excipient_mg)):
        if mg > 0:
            by_stock[by_role[role].name] = mg / by_role[role].mg_per_ml * 1000
    organic = sum(by_stock.values())
    if organic > settings.organic_volume_ul + 1e-9:
        return Plan(key, reason=f"the stocks need {organic:.1f} µL, more than the organic phase of "
                                f"{settings.organic_volume_ul:g} µL (use more concentrated stocks)")
    by_stock[by_role["solvent"].name] = settings.organic_volume_ul - organic
    by_stock[by_role["antisolvent"].name] = settings.antisolvent_volume_ul
    role_of = {s.name: s.role for s in stocks}
    transfers = sorted(
        ((name, round(v, 1)) for name, v in by_stock.items() if round(v, 1) > 0),
        key=lambda t: FILL_ORDER.index(role_of[t[0]]),
    )
    for name, volume in transfers:
        if volume < settings.pipette_min_ul:
            return Plan(key, transfers, reason=f"{volume:g} µL of stock {name!r} is below the pipette minimum "
                                                f"of {settings.pipette_min_ul:g} µL")
    return Plan(key, transfers)


def plan_batch(
    items: list[tuple[str, Mapping[str, Any]]], stocks: list[Stock], levels_ul: dict[str, float], settings: Settings
) -> list[Plan]:
    """Plans for a batch in order; a formulation a stock cannot supply any more is unbuildable.

    Args:
        items: (key, recipe) per formulation.
        levels_ul: volume left in each stock, µL (updated for the buildable plans).
    """
    dead = {s.name: s.dead_volume_ml * 1000 for s in stocks}
    plans = []
    for key, recipe in items:
        plan = plan_formulation(key, recipe, stocks, settings)
        if plan.buildable:
            need: dict[str, float] = {}
            for name, volume in plan.transfers:
                need[name] = need.get(name, 0.0) + volume
            short = [(n, v) for n, v in need.items() if levels_ul[n] - v < dead[n] - 1e-9]
            if short:
                name, volume = short[0]
                plan.reason = (f"stock {name!r} runs out: needs {volume:.1f} µL, "
                               f"{max(levels_ul[name] - dead[name], 0):.1f} µL usable left")
            else:
                for name, volume in need.items():
                    levels_ul[name] -= volume
        plans.append(plan)
    return plans


def aspirations(volume_ul: float, settings: Settings) -> list[float]:
    """Split a volume into equal aspirations no larger than the pipette maximum."""
    n = max(1, math.ceil(volume_ul / settings.pipette_max_ul - 1e-9))
    part = round(volume_ul / n, 2)
    return [part] * (n - 1) + [round(volume_ul - part * (n - 1), 2)]
