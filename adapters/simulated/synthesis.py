"""The simulated synthesis robot: makes a batch of particles and characterizes it.

One work item = one batch by nanoprecipitation / emulsion, then DLS (size,
PDI), electrophoretic light scattering (zeta) and an HPLC assay of the
encapsulated drug (EE, actual loading). A batch fails (JobState.FAILED, with
the reason in words) with a probability that rises outside the process window;
see :func:`nanoloop.adapters.simulated.physics.synthesis_failure`.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from nanoloop.loop.lab.instruments import Characterization, JobResult, JobState, WorkItem
from nanoloop.adapters.simulated import physics
from nanoloop.adapters.simulated.base import (
    STREAM_CHARACTERIZATION,
    STREAM_RESULT_FAULTS,
    STREAM_SYNTHESIS_OUTCOME,
    SimulatedInstrument,
)
from nanoloop.adapters.simulated.clock import VirtualClock
from nanoloop.adapters.simulated.faults import Faults
from nanoloop.adapters.simulated.recipe import Recipe
from nanoloop.loop.errors import InputError


class SimulatedSynthesis(SimulatedInstrument):
    """Simulated synthesis + characterization (kind "synthesis").

    Args:
        name: instrument name, default "simulated-synthesis".
        seed: seeds noise, failures and faults (int >= 0).
        clock: "instant" (default), "manual", or a shared VirtualClock.
        state_dir: folder to persist jobs and the clock across processes.
        faults: fault knobs (see :mod:`nanoloop.adapters.simulated.faults`).
        duration_hours: virtual time one batch takes, hours (default 4).
    """

    kind = "synthesis"

    def __init__(
        self,
        name: str = "simulated-synthesis",
        seed: int = 0,
        clock: str | VirtualClock = "instant",
        state_dir: str | os.PathLike | None = None,
        faults: Mapping[str, Any] | Faults | None = None,
        duration_hours: float = 4.0,
    ):
        super().__init__(name=name, seed=seed, clock=clock, state_dir=state_dir, faults=faults)
        if not isinstance(duration_hours, (int, float)) or not duration_hours >= 0:
            raise InputError(f"{name}: option 'duration_hours' must be a number >= 0, got {duration_hours!r}")
        self.duration_h = float(duration_hours)

    def _run(self, item: WorkItem, recipe: Recipe, start_h: float) -> JobResult:
        probability, reason = physics.synthesis_failure(recipe)
        probability = min(1.0, probability * self.faults.synthesis_failure_multiplier)
        if self.rng(STREAM_SYNTHESIS_OUTCOME, item.key).random() < probability:
            return JobResult(key=item.key, state=JobState.FAILED, reason=reason)
        char = physics.characterize(recipe, self.rng(STREAM_CHARACTERIZATION, item.key))
        return JobResult(key=item.key, state=JobState.DONE, characterization=self._with_faults(item.key, char))

    def _with_faults(self, key: str, char: Characterization) -> Characterization:
        f = self.faults
        if not (f.garbage or f.nan_reading):
            return char
        rng = self.rng(STREAM_RESULT_FAULTS, key)
        garbage, nan_draws = rng.random(), rng.random(5)
        if garbage < f.garbage:
            self.faults_injected.append((key, "garbage"))
            return Characterization(
                size_nm=-1.0, pdi=37.0, zeta_mv=9999.0, encapsulation_efficiency_pct=-12.0, actual_drug_loading_pct=480.0
            )
        values = char.to_dict()
        for name, draw in zip(values, nan_draws):
            if draw < f.nan_reading:
                values[name] = float("nan")
                self.faults_injected.append((key, "nan_reading"))
        return Characterization(**values)


def expected_characterization(recipe: Mapping[str, Any]) -> Characterization:
    """Noise-free characterization of a recipe dict (for demos and benchmarks)."""
    return physics.expected_characterization(Recipe.from_mapping(recipe, "simulated-synthesis"))

