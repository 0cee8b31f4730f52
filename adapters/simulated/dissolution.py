"""The simulated dissolution tester: cumulative release (%) of a batch over time.

One work item = one batch in ``replicates`` vessels at ``temperature_c``,
sampled at ``sampling_times_hours`` (default 1 h .. 28 days). The particle
radius and the actual loading come from ``WorkItem.context["characterization"]``
(the synthesis instrument's measurement, a dict of Characterization fields)
when present; otherwise the batch is drawn exactly as a
:class:`~nanoloop.adapters.simulated.synthesis.SimulatedSynthesis` with the same seed
would have made it.

Noise: each vessel perturbs burst, diffusivity, erosion lag and rate by
log-normal factors (``replicate_cv``; hydrodynamics, sampling); each reading
gets a proportional (``assay_cv``) and an absolute (``assay_sd_pct``, % points)
HPLC error, and with ``outlier_probability`` is an outlier (x 0.6-1.4).
Readings are not clipped: like a real assay, a plateau can read 101 %.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from typing import Any, Mapping, Sequence

import numpy as np

from nanoloop.loop.lab.instruments import RENAMED_FIELDS, Characterization, JobResult, JobState, PermanentInstrumentError, ReleaseCurve, WorkItem
from nanoloop.adapters.simulated import physics
from nanoloop.adapters.simulated.base import (
    STREAM_CHARACTERIZATION,
    STREAM_DISSOLUTION,
    STREAM_RESULT_FAULTS,
    SimulatedInstrument,
)
from nanoloop.adapters.simulated.clock import VirtualClock
from nanoloop.adapters.simulated.faults import Faults
from nanoloop.adapters.simulated.recipe import Recipe
from nanoloop.loop.errors import InputError

DEFAULT_SAMPLING_TIMES_HOURS = (1.0, 4.0, 8.0, 24.0, 48.0, 72.0, 120.0, 168.0, 240.0, 336.0, 504.0, 672.0)


class SimulatedDissolution(SimulatedInstrument):
    """Simulated USP-style dissolution test of nanoparticles (kind "dissolution").

    Args:
        name: instrument name, default "simulated-dissolution".
        seed: seeds noise and faults (int >= 0).
        clock: "instant" (default), "manual", or a shared VirtualClock.
        state_dir: folder to persist jobs and the clock across processes.
        faults: fault knobs (see :mod:`nanoloop.adapters.simulated.faults`).
        sampling_times_hours: increasing positive sampling times, hours; the
            test lasts until the last one.
        replicates: vessels per batch (1..12).
        temperature_c: medium temperature, degrees C (Arrhenius around 37).
        replicate_cv: vessel-to-vessel log-normal spread of the release rates.
        assay_cv: proportional assay error (fraction of the reading).
        assay_sd_pct: absolute assay error, % points.
        outlier_probability: chance that a reading is an outlier.
    """

    kind = "dissolution"

    def __init__(
        self,
        name: str = "simulated-dissolution",
        seed: int = 0,
        clock: str | VirtualClock = "instant",
        state_dir: str | os.PathLike | None = None,
        faults: Mapping[str, Any] | Faults | None = None,
        sampling_times_hours: Sequence[float] = DEFAULT_SAMPLING_TIMES_HOURS,
        replicates: int = 3,
        temperature_c: float = 37.0,
        replicate_cv: float = 0.05,
        assay_cv: float = 0.02,
        assay_sd_pct: float = 0.8,
        outlier_probability: float = 0.01,
    ):
        super().__init__(name=name, seed=seed, clock=clock, state_dir=state_dir, faults=faults)
        try:
            times = tuple(float(t) for t in sampling_times_hours)
        except (TypeError, ValueError):
            raise InputError(f"{name}: option 'sampling_times_hours' must be a list of numbers") from None
        if not times or any(not math.isfinite(t) or t <= 0 for t in times) or any(
            b <= a for a, b in zip(times, times[1:])
        ):
            raise InputError(f"{name}: option 'sampling_times_hours' must be positive and strictly increasing")
        if isinstance(replicates, bool) or not isinstance(replicates, int) or not 1 <= replicates <= 12:
            raise InputError(f"{name}: option 'replicates' must be an integer from 1 to 12, got {replicates!r}")
        checks = {
            "temperature_c": (temperature_c, 4.0, 60.0),
            "replicate_cv": (replicate_cv, 0.0, 1.0),
            "assay_cv": (assay_cv, 0.0, 1.0),
            "assay_sd_pct": (assay_sd_pct, 0.0, 50.0),
            "outlier_probability": (outlier_probability, 0.0, 1.0),
        }
        for option, (value, low, high) in checks.items():
            if not isinstance(value, (int, float)) or not low <= value <= high:
                raise InputError(f"{name}: option {option!r} must be a number in [{low:g}, {high:g}], got {value!r}")
        self.sampling_times_hours = times
        self.replicates = replicates
        self.temperature_c = float(temperature_c)
        self.replicate_cv = float(replicate_cv)
        self.assay_cv = float(assay_cv)
        self.assay_sd_pct = float(assay_sd_pct)
        self.outlier_probability = float(outlier_probability)
        self.duration_h = times[-1]

    def _capabilities(self) -> dict[str, Any]:
        return {
            "sampling_times_hours": list(self.sampling_times_hours),
            "replicates": self.replicates,
            "temperature_c": self.temperature_c,
            "noise": {
                "replicate_cv": self.replicate_cv,
                "assay_cv": self.assay_cv,
                "assay_sd_pct": self.assay_sd_pct,
                "outlier_probability": self.outlier_probability,
            },
        }

    def _check_context(self, item: WorkItem, recipe: Recipe) -> None:
        self._characterization(item, recipe)

    def _characterization(self, item: WorkItem, recipe: Recipe) -> Characterization:
        given = item.context.get("characterization") if isinstance(item.context, Mapping) else None
        if given is None:
            return physics.characterize(recipe, self.rng(STREAM_CHARACTERIZATION, item.key))
        if isinstance(given, Characterization):
            given = given.to_dict()
        if not isinstance(given, Mapping):
            raise PermanentInstrumentError(
                self.name, f"item {item.key!r}: context['characterization'] must be a dict", item_key=item.key
            )
        limits = {"size_nm": (1.0, 10_000.0), "actual_drug_loading_pct": (0.0, 100.0)}
        values = {}
        for field, (low, high) in limits.items():
            old = next((o for o, new in RENAMED_FIELDS.items() if new == field), None)
            value = given.get(field, given.get(old) if old else None)
            try:
                values[field] = float(value) if not isinstance(value, (bool, str)) else math.nan
            except (TypeError, ValueError):
                values[field] = math.nan
            if not low <= values[field] <= high:
                raise PermanentInstrumentError(
                    self.name,
                    f"item {item.key!r}: context['characterization'][{field!r}] = {value!r} "
                    f"is missing or outside [{low:g}, {high:g}]",
                    item_key=item.key,
                )
        mean = physics.expected_characterization(recipe)
        return replace(mean, size_nm=values["size_nm"], actual_drug_loading_pct=values["actual_drug_loading_pct"])

    def _run(self, item: WorkItem, recipe: Recipe, start_h: float) -> JobResult:
        char = self._characterization(item, recipe)
        base = physics.release_parameters(recipe, char.size_nm, char.actual_drug_loading_pct, self.temperature_c)
        times = np.asarray(self.sampling_times_hours)
        rng = self.rng(STREAM_DISSOLUTION, item.key)
        drift = 1.0 + self.faults.drift_pct_per_day / 100.0 * (start_h + times) / 24.0
        curves = []
        for replicate in range(1, self.replicates + 1):
            z = rng.normal(size=4)
            cv = self.replicate_cv
            vessel = replace(
                base,
                burst=min(base.burst * math.exp(cv * z[0]), 0.95),
                diffusivity_cm2_s=base.diffusivity_cm2_s * math.exp(2.0 * cv * z[1]),
                erosion_lag_h=base.erosion_lag_h * math.exp(cv * z[2]),
                erosion_rate_per_h=base.erosion_rate_per_h * math.exp(cv * z[3]),
            )
            true_pct = 100.0 * physics.release_fraction(vessel, times)
            proportional, absolute = rng.normal(size=(2, times.size))
            is_outlier = rng.random(times.size) < self.outlier_probability
            outlier_factor = rng.uniform(0.6, 1.4, size=times.size)
            reading = true_pct * (1.0 + self.assay_cv * proportional) + self.assay_sd_pct * absolute
            reading = np.where(is_outlier, reading * outlier_factor, reading) * drift
            curves.append(ReleaseCurve(replicate, tuple(times.tolist()), tuple(np.round(reading, 2).tolist())))
        return JobResult(key=item.key, state=JobState.DONE, curves=self._with_faults(item.key, curves))

    def _with_faults(self, key: str, curves: list[ReleaseCurve]) -> tuple[ReleaseCurve, ...]:
        f = self.faults
        rng = self.rng(STREAM_RESULT_FAULTS, key)
        n_t = len(self.sampling_times_hours)
        garbage, partial, over = rng.random(3)
        partial_rep, over_rep = rng.integers(0, len(curves), size=2)
        keep = int(rng.integers(2, max(n_t, 3)))
        over_factor = rng.uniform(1.15, 1.4)
        nan_mask = rng.random((len(curves), n_t)) < f.nan_reading
        if garbage < f.garbage:
            self.faults_injected.append((key, "garbage"))
            return (
                ReleaseCurve(0, (672.0, -1.0, 4.0, 4.0), tuple(rng.uniform(-1e3, 1e6, size=3).round(1).tolist())),
                ReleaseCurve(0, (), (float(rng.uniform(1e3, 1e9)),)),
            )
        out = list(curves)
        if over < f.over_100:
            self.faults_injected.append((key, "over_100"))
            c = out[over_rep]
            out[over_rep] = replace(c, release_pct=tuple(round(r * over_factor, 2) for r in c.release_pct))
        if nan_mask.any():
            self.faults_injected.append((key, "nan_reading"))
            out = [
                replace(c, release_pct=tuple(math.nan if m else r for r, m in zip(c.release_pct, row)))
                for c, row in zip(out, nan_mask)
            ]
        if partial < f.partial_curve:
            self.faults_injected.append((key, "partial_curve"))
            c = out[partial_rep]
            out[partial_rep] = replace(c, times_hours=c.times_hours[:keep], release_pct=c.release_pct[:keep])
        return tuple(out)
