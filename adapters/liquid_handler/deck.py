"""The deck and the transfers, run through PyLabRobot.

Layout (a Hamilton STARlet deck, built from PyLabRobot's labware definitions):
a 1000 µL tip carrier (5 racks, 480 tips) on rail 1, 60 mL troughs for the
stocks on 1-rail trough carriers from rail 8, and one 96 deep-well plate
(2 mL, Eppendorf) per run on a plate carrier on rail 20. Each transfer takes a
fresh tip, aspirates from the stock's trough (in equal parts no larger than
the pipette maximum) and dispenses into the formulation's well; tips go to the
trash.

``run_transfers`` drives whichever backend it is given: the tests and the
default use ``LiquidHandlerChatterboxBackend`` (no hardware; it prints every
operation, which is kept as the run's backend log, and PyLabRobot's volume
trackers check every aspiration against what is in the trough and the tip).
For a real robot pass ``STARBackend()`` (Hamilton) or build the same labware on
another deck, see README "Connecting real instruments".
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
from dataclasses import dataclass, field

from pylabrobot.liquid_handling import LiquidHandler
from pylabrobot.liquid_handling.backends.backend import LiquidHandlerBackend
from pylabrobot.liquid_handling.backends.chatterbox import LiquidHandlerChatterboxBackend
from pylabrobot.resources import (
    PLT_CAR_L5AC_A00,
    STARLetDeck,
    TIP_CAR_480_A00,
    Trough_CAR_5R60_A00,
    eppendorf_96_wellplate_2000ul_vb,
    hamilton_1_trough_60mL_Vb,
    hamilton_96_tiprack_1000uL,
)
from pylabrobot.resources import volume_tracker, tip_tracker

TROUGH_ML = 60.0
WELL_UL = 2000.0
TIPS_ON_DECK = 480
FIRST_TROUGH_RAIL = 8
PLATE_RAIL = 20


@dataclass(frozen=True)
class Transfer:
    """One line of the worklist: a stock into a well, in aspirations no larger than the pipette maximum."""

    step: int
    key: str
    well: str
    stock: str
    volume_ul: float
    parts_ul: tuple[float, ...]


@dataclass
class RunLog:
    """What the robot did: volume dispensed per (well, stock) as its backend reported, and its printout."""

    dispensed_ul: dict[tuple[str, str], float] = field(default_factory=dict)
    well_volume_ul: dict[str, float] = field(default_factory=dict)
    backend_log: str = ""


class RecordingChatterbox(LiquidHandlerChatterboxBackend):
    """PyLabRobot's chatterbox backend (one channel) that also records each dispense."""

    def __init__(self):
        super().__init__(num_channels=1)
        self.dispenses: list[tuple[str, float]] = []

    async def dispense(self, ops, use_channels, **backend_kwargs):
        self.dispenses += [(op.resource.name, float(op.volume)) for op in ops]
        await super().dispense(ops, use_channels, **backend_kwargs)


def build_deck(stock_names: list[str], plate_name: str = "plate") -> STARLetDeck:
    """The deck with tips, one trough per stock (in the given order) and an empty 96 deep-well plate."""
    deck = STARLetDeck()
    tips = TIP_CAR_480_A00("tip_carrier")
    for i in range(len(tips.sites)):
        tips[i] = hamilton_96_tiprack_1000uL(f"tips_{i + 1}")
    deck.assign_child_resource(tips, rails=1)
    rail, carrier = FIRST_TROUGH_RAIL, None
    for i, name in enumerate(stock_names):
        if carrier is None or all(site.resource is not None for site in carrier.sites.values()):
            carrier = Trough_CAR_5R60_A00(f"trough_carrier_{rail}")
            deck.assign_child_resource(carrier, rails=rail)
            rail += 1
        site = next(k for k, s in carrier.sites.items() if s.resource is None)
        carrier[site] = hamilton_1_trough_60mL_Vb(name)
    plates = PLT_CAR_L5AC_A00("plate_carrier")
    plates[0] = eppendorf_96_wellplate_2000ul_vb(plate_name)
    deck.assign_child_resource(plates, rails=PLATE_RAIL)
    return deck


def run_transfers(
    transfers: list[Transfer], levels_ul: dict[str, float], backend: LiquidHandlerBackend | None = None
) -> RunLog:
    """Run the worklist on a fresh plate; ``levels_ul`` is what each stock trough holds before the run.

    Raises:
        pylabrobot errors (e.g. TooLittleLiquidError) if the robot cannot do a step;
        the planner's checks make that a bug, not a formulation failure.
    """
    backend = backend or RecordingChatterbox()
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop in this thread: the usual case
        return asyncio.run(_run(transfers, levels_ul, backend))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # called from async code: run on a thread of its own
        return pool.submit(asyncio.run, _run(transfers, levels_ul, backend)).result()


async def _run(transfers: list[Transfer], levels_ul: dict[str, float], backend: LiquidHandlerBackend) -> RunLog:
    tracking = volume_tracker.does_volume_tracking(), tip_tracker.does_tip_tracking()
    volume_tracker.set_volume_tracking(True)
    tip_tracker.set_tip_tracking(True)
    printout = io.StringIO()
    log = RunLog()
    try:
        deck = build_deck(list(levels_ul))
        handler = LiquidHandler(backend=backend, deck=deck)
        plate = deck.get_resource("plate")
        tips = [spot for i in range(5) for spot in deck.get_resource(f"tips_{i + 1}").get_all_items()]
        with contextlib.redirect_stdout(printout):
            await handler.setup()
            for name, volume in levels_ul.items():
                deck.get_resource(name).tracker.set_volume(volume)
            for transfer, tip in zip(transfers, tips):
                trough, well = deck.get_resource(transfer.stock), plate.get_well(transfer.well)
                await handler.pick_up_tips([tip])
                for part in transfer.parts_ul:
                    await handler.aspirate([trough], vols=[part])
                    await handler.dispense([well], vols=[part])
                await handler.discard_tips()
            await handler.stop()
        for transfer in transfers:
            log.well_volume_ul[transfer.well] = round(plate.get_well(transfer.well).tracker.get_used_volume(), 2)
        if isinstance(backend, RecordingChatterbox):
            well_of = {plate.get_well(t.well).name: t.well for t in transfers}
            # dispenses come in worklist order: pair each with its transfer
            parts = [(t.well, t.stock) for t in transfers for _ in t.parts_ul]
            for (resource, volume), (well, stock) in zip(backend.dispenses, parts):
                assert well_of[resource] == well, (resource, well)
                log.dispensed_ul[(well, stock)] = round(log.dispensed_ul.get((well, stock), 0.0) + volume, 2)
    finally:
        volume_tracker.set_volume_tracking(tracking[0])
        tip_tracker.set_tip_tracking(tracking[1])
        log.backend_log = printout.getvalue()
    return log
