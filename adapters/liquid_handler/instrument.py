"""Synthesis by a liquid handler: the approved batch is pipetted from stock solutions into a plate.

``submit`` plans every new formulation from the stock table (see
:mod:`nanoloop.adapters.liquid_handler.stocks`), checks pipette limits, stock
levels, wells and tips before anything runs, then runs the transfers through
PyLabRobot (:mod:`nanoloop.adapters.liquid_handler.deck`). An unbuildable
formulation is not made and comes back FAILED with the reason; the rest of the
batch is made.

The raw record of each run lies in ``<state_dir>/runs/<id>/``: ``worklist.csv``
(one row per transfer), ``plate_map.csv`` (one row per formulation: well,
volumes per role, what the robot's volume tracker holds in the well, or why it
was not made), ``backend.log`` (the backend's printout) and ``SHA256SUMS``
(``sha256sum -c`` format). Every result of the run carries the sha256 of
``SHA256SUMS`` as ``raw_checksum``; ``<id>`` is its first 16 characters.

The particles' characterization (size, PDI, zeta, EE, loading) after the
handler made them comes from the simulated lab's synthesis physics
(:class:`~nanoloop.adapters.simulated.SimulatedSynthesis`, ``seed``): this
adapter makes the batch, it does not measure it.

Stock levels are kept in ``<state_dir>/stock_levels.json`` across runs; when a
stock's ``volume_ml`` in the config changes (a refill), its level restarts from it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

from pylabrobot.liquid_handling.backends.backend import LiquidHandlerBackend

from nanoloop.adapters.liquid_handler.deck import (
    TIPS_ON_DECK,
    TROUGH_ML,
    WELL_UL,
    RecordingChatterbox,
    RunLog,
    Transfer,
    run_transfers,
)
from nanoloop.adapters.liquid_handler.stocks import ROLES, Plan, Settings, aspirations, parse_stocks, plan_batch
from nanoloop.adapters.simulated import Recipe, SimulatedSynthesis
from nanoloop.loop.errors import InputError
from nanoloop.loop.lab.instruments import JobResult, JobState, PermanentInstrumentError, WorkItem

WELLS = [f"{row}{col}" for col in range(1, 13) for row in "ABCDEFGH"]  # column-wise, as robots fill plates


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    with os.fdopen(fd, "w", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


class LiquidHandlerSynthesis:
    """A liquid handler (PyLabRobot) that makes each formulation from stock solutions (kind "synthesis").

    Args:
        state_dir: folder for the job journal, stock levels and the raw records of the runs.
        stocks: the stock table: a list of {name, role, volume_ml, mg_per_ml, polymer, mw_kda, dead_volume_ml}.
        polymer_mg: polymer per formulation, mg.
        organic_volume_ul: organic phase per formulation (stocks + solvent), µL.
        antisolvent_volume_ul: antisolvent added to each formulation, µL.
        pipette_min_ul, pipette_max_ul: the pipette's volume range, µL.
        mw_tolerance_kda: a polymer stock this close to the target molecular weight is used alone.
        seed: seed of the simulated characterization.
        name: instrument name.
    """

    kind = "synthesis"

    def __init__(
        self,
        state_dir: str | os.PathLike,
        stocks: list[Mapping[str, Any]],
        polymer_mg: float = 5.0,
        organic_volume_ul: float = 400.0,
        antisolvent_volume_ul: float = 1500.0,
        pipette_min_ul: float = 10.0,
        pipette_max_ul: float = 1000.0,
        mw_tolerance_kda: float = 0.5,
        seed: int = 0,
        name: str = "liquid-handler-synthesis",
    ):
        self.name = name
        numbers = dict(polymer_mg=polymer_mg, organic_volume_ul=organic_volume_ul,
                       antisolvent_volume_ul=antisolvent_volume_ul, pipette_min_ul=pipette_min_ul,
                       pipette_max_ul=pipette_max_ul, mw_tolerance_kda=mw_tolerance_kda)
        for option, value in numbers.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise InputError(f"{name}: option {option!r} must be a number > 0, got {value!r}")
        if pipette_min_ul >= pipette_max_ul:
            raise InputError(f"{name}: 'pipette_min_ul' ({pipette_min_ul:g}) must be below 'pipette_max_ul' ({pipette_max_ul:g})")
        if organic_volume_ul + antisolvent_volume_ul > WELL_UL:
            raise InputError(f"{name}: organic_volume_ul + antisolvent_volume_ul = "
                             f"{organic_volume_ul + antisolvent_volume_ul:g} µL does not fit a {WELL_UL:g} µL well")
        self.settings = Settings(**{k: float(v) for k, v in numbers.items()})
        self.stocks = parse_stocks(stocks, f"{name}: option 'stocks'")
        big = [s.name for s in self.stocks if s.volume_ml > TROUGH_ML]
        if big:
            raise InputError(f"{name}: stock(s) {big} exceed the {TROUGH_ML:g} mL trough")
        self.lab = SimulatedSynthesis(name=name, seed=seed)
        self.seed = seed
        self.state_dir = Path(state_dir)
        (self.state_dir / "runs").mkdir(parents=True, exist_ok=True)
        self._jobs_path = self.state_dir / "jobs.json"
        self._levels_path = self.state_dir / "stock_levels.json"
        self.last_run: RunLog | None = None
        """What the robot did in this process's last run (dispensed volumes per well and stock)."""
        self.jobs: dict[str, dict[str, Any]] = json.loads(self._jobs_path.read_text()) if self._jobs_path.exists() else {}
        saved = json.loads(self._levels_path.read_text()) if self._levels_path.exists() else {}
        self.levels_ul = {
            s.name: saved[s.name]["left_ul"] if s.name in saved and saved[s.name]["loaded_ml"] == s.volume_ml
            else s.volume_ml * 1000
            for s in self.stocks
        }

    # --- the Instrument protocol --------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Name, kind, the liquid handler, settings, stocks and what is left in them."""
        return {
            "name": self.name,
            "kind": self.kind,
            "vendor": "PyLabRobot liquid handler (chatterbox backend); characterization simulated",
            "settings": self.settings.__dict__,
            "stocks": [s.__dict__ for s in self.stocks],
            "stock_left_ul": dict(self.levels_ul),
            "state_dir": str(self.state_dir),
            "seed": self.seed,
        }

    def submit(self, items: list[WorkItem], timeout_s: float = 30.0) -> None:
        """Plan, check and make the formulations whose keys are new; a known key is ignored.

        Raises:
            PermanentInstrumentError: a recipe outside the design space, or a
                known key with a different recipe (nothing of the batch is made).
        """
        self._check_timeout(timeout_s)
        fresh: dict[str, dict[str, Any]] = {}
        for item in items:
            if not isinstance(item, WorkItem) or not isinstance(item.key, str) or not item.key:
                raise PermanentInstrumentError(self.name, f"expected a WorkItem with a non-empty key, got {item!r}")
            recipe = Recipe.from_mapping(item.recipe, self.name, item.key).to_dict()
            known = self.jobs.get(item.key, {}).get("recipe") or fresh.get(item.key)
            if known is not None and known != recipe:
                raise PermanentInstrumentError(self.name, f"item {item.key!r} was already submitted with a different recipe", item_key=item.key)
            if item.key not in self.jobs:
                fresh[item.key] = recipe
        if fresh:
            self._make(fresh)

    def status(self, keys: list[str], timeout_s: float = 30.0) -> dict[str, JobState]:
        self._check_timeout(timeout_s)
        return {k: JobState(self.jobs[k]["result"]["state"]) if k in self.jobs else JobState.UNKNOWN for k in keys}

    def collect(self, keys: list[str], timeout_s: float = 30.0) -> list[JobResult]:
        self._check_timeout(timeout_s)
        return [JobResult.from_dict(self.jobs[k]["result"]) for k in dict.fromkeys(keys) if k in self.jobs]

    def cancel(self, keys: list[str], timeout_s: float = 30.0) -> None:
        """Nothing to stop: a run finishes within ``submit``."""
        self._check_timeout(timeout_s)

    def backend(self) -> LiquidHandlerBackend:
        """The PyLabRobot backend a run drives: the chatterbox (no hardware). Override for a real robot."""
        return RecordingChatterbox()

    # --- a run ---------------------------------------------------------------------
    def _make(self, fresh: dict[str, dict[str, Any]]) -> None:
        levels = dict(self.levels_ul)
        plans = plan_batch(list(fresh.items()), self.stocks, levels, self.settings)
        wells, transfers, tips = iter(WELLS), [], 0
        well_of: dict[str, str] = {}
        for plan in plans:
            if not plan.buildable:
                continue
            well = next(wells, None)
            if well is None or tips + len(plan.transfers) > TIPS_ON_DECK:
                plan.reason = "no free well on the plate (96 per run)" if well is None else "the deck runs out of tips"
                for stock, volume in plan.transfers:
                    levels[stock] += volume
                continue
            well_of[plan.key] = well
            tips += len(plan.transfers)
            for stock, volume in plan.transfers:
                transfers.append(Transfer(len(transfers) + 1, plan.key, well, stock, volume, tuple(aspirations(volume, self.settings))))
        # write ahead: a run cut short is never repeated (its keys come back FAILED "interrupted")
        pending = {"state": JobState.FAILED.value, "reason": "the run was interrupted before it finished; check the plate"}
        for key, recipe in fresh.items():
            self.jobs[key] = {"recipe": recipe, "result": {**pending, "key": key}}
        _write_atomic(self._jobs_path, json.dumps(self.jobs, indent=1))
        log = run_transfers(transfers, dict(self.levels_ul), self.backend()) if transfers else RunLog()
        self.last_run = log
        checksum = self._write_record(plans, well_of, transfers, log)
        for plan in plans:
            if plan.buildable:
                self.lab.submit([WorkItem(plan.key, fresh[plan.key])])
                (made,) = self.lab.collect([plan.key])
                result = JobResult(plan.key, made.state, made.characterization, reason=made.reason, raw_checksum=checksum)
            else:
                result = JobResult(plan.key, JobState.FAILED, reason=f"not made: {plan.reason}", raw_checksum=checksum)
            self.jobs[plan.key] = {"recipe": fresh[plan.key], "run": checksum[:16], "well": well_of.get(plan.key, ""),
                                   "result": result.to_dict()}
        self.levels_ul = levels
        _write_atomic(self._levels_path, json.dumps({s.name: {"loaded_ml": s.volume_ml, "left_ul": round(levels[s.name], 2)} for s in self.stocks}, indent=1))
        _write_atomic(self._jobs_path, json.dumps(self.jobs, indent=1))

    def _write_record(self, plans: list[Plan], well_of: dict[str, str], transfers: list[Transfer], log: RunLog) -> str:
        """Write worklist, plate map, backend log and SHA256SUMS of a run; returns sha256 of SHA256SUMS."""
        role_of = {s.name: s.role for s in self.stocks}
        worklist = _csv(
            ["step", "formulation", "well", "stock", "role", "volume_ul", "aspirations_ul"],
            [[t.step, t.key, t.well, t.stock, role_of[t.stock], f"{t.volume_ul:.1f}", " ".join(f"{p:g}" for p in t.parts_ul)]
             for t in transfers],
        )
        rows = []
        for plan in plans:
            by_role = dict.fromkeys(ROLES, 0.0)
            for stock, volume in plan.transfers:
                by_role[role_of[stock]] += volume
            well = well_of.get(plan.key, "")
            made = plan.buildable and bool(well)
            rows.append([
                well, plan.key, "made" if made else "not made", plan.reason,
                *(f"{by_role[r]:.1f}" for r in ROLES), f"{plan.total_ul():.1f}" if made else "",
                f"{log.well_volume_ul.get(well, 0.0):.1f}" if made else "",
                " ".join(f"{s}={v:g}" for s, v in plan.transfers if role_of[s] == "polymer"),
            ])
        plate_map = _csv(["well", "formulation", "status", "reason", *(f"{r}_ul" for r in ROLES),
                          "planned_total_ul", "in_well_ul", "polymer_stocks_ul"], rows)
        files = {"worklist.csv": worklist, "plate_map.csv": plate_map, "backend.log": log.backend_log}
        sums = "".join(f"{hashlib.sha256(text.encode()).hexdigest()}  {name}\n" for name, text in files.items())
        checksum = hashlib.sha256(sums.encode()).hexdigest()
        folder = self.state_dir / "runs" / checksum[:16]
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in {**files, "SHA256SUMS": sums}.items():
            _write_atomic(folder / name, text)
        return checksum

    def _check_timeout(self, timeout_s: float) -> None:
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
            raise InputError(f"{self.name}: timeout_s must be a positive number of seconds, got {timeout_s!r}")
