"""What the simulated synthesis robot and dissolution tester share.

Idempotency, the virtual clock, the job journal, per-call faults and
deterministic random streams live here; the two instruments only say how
one work item turns into a :class:`~nanoloop.loop.lab.instruments.JobResult`.

Determinism: the noise of a work item comes from
``SeedSequence(seed, spawn_key=(stream, *sha256(key) words))``, so a result
is a pure function of (seed, key, recipe[, context, virtual start time when
drift is on]); a new process re-submitting a key gets the identical result.
Per-call faults (hang, disconnect) come from the seed and the call count.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import numpy as np

from nanoloop.loop.lab.instruments import (
    InstrumentTimeout,
    JobResult,
    JobState,
    PermanentInstrumentError,
    TransientInstrumentError,
    WorkItem,
)
from nanoloop.adapters.simulated.clock import VirtualClock
from nanoloop.adapters.simulated.faults import Faults
from nanoloop.adapters.simulated.journal import Job, Journal, key_digest
from nanoloop.adapters.simulated.recipe import RANGES, Recipe
from nanoloop.loop.errors import InputError

T = TypeVar("T")

# random streams (first word of the spawn key)
STREAM_CHARACTERIZATION = 1
STREAM_SYNTHESIS_OUTCOME = 2
STREAM_DISSOLUTION = 3
STREAM_RESULT_FAULTS = 4
STREAM_DELIVERY = 5
STREAM_CALLS = 6


class SimulatedInstrument:
    """Base of the simulated instruments (not an instrument by itself).

    Args:
        name: instrument name used in errors and ``describe``.
        seed: seeds every random draw (noise, failures, faults).
        clock: "instant" (default), "manual", or a shared :class:`VirtualClock`.
        state_dir: folder for the job journal and the clock; None keeps them in memory.
        faults: fault knobs, see :mod:`nanoloop.adapters.simulated.faults`.
    """

    kind = ""
    duration_h = 0.0

    def __init__(
        self,
        name: str,
        seed: int = 0,
        clock: str | VirtualClock = "instant",
        state_dir: str | os.PathLike | None = None,
        faults: Mapping[str, Any] | Faults | None = None,
    ):
        if not isinstance(name, str) or not name:
            raise InputError("instrument name must be a non-empty string")
        self.name = name
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise InputError(f"{name}: option 'seed' must be an integer >= 0, got {seed!r}")
        self.seed = int(seed)
        self.state_dir = Path(state_dir) if state_dir is not None else None
        if isinstance(clock, VirtualClock):
            self.clock = clock
        elif isinstance(clock, str):
            path = self.state_dir / "clock.json" if self.state_dir is not None else None
            self.clock = VirtualClock(mode=clock, path=path)
        else:
            raise InputError(f"{name}: option 'clock' must be 'instant', 'manual' or a VirtualClock, got {clock!r}")
        self.faults = Faults.from_options(faults, self.kind, name)
        self._journal = Journal(self.state_dir, instrument=self.name)
        self._calls = 0
        self.submissions_received = 0
        """Work items received by ``submit`` in this process, repeats included."""
        self.jobs_run = 0
        """Work items actually run (new keys) by this process."""
        self.faults_injected: list[tuple[str, str]] = []
        """(key or call name, fault) for every fault this process injected."""

    # --- the Instrument protocol --------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Static facts about the instrument (name, kind, vendor, capabilities)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "vendor": "nanoloop simulated lab",
            "model": type(self).__name__,
            "duration_hours": self.duration_h,
            "seed": self.seed,
            "clock": self.clock.mode,
            "state_dir": None if self.state_dir is None else str(self.state_dir),
            "faults": self.faults.active(),
            "recipe": {"polymer": "one of PLGA 50:50, PLGA 75:25, PLA, PCL"}
            | {k: {"min": lo, "max": hi, "unit": unit} for k, (lo, hi, unit) in RANGES.items()},
        } | self._capabilities()

    def submit(self, items: list[WorkItem], timeout_s: float = 30.0) -> None:
        """Queue work; a key already known is ignored, a bad recipe rejects the whole batch.

        Raises:
            PermanentInstrumentError: a recipe (or context) is invalid, or a known
                key arrives with a different recipe; nothing of the batch is queued.
        """
        self._call("submit", timeout_s, lambda: self._submit(items))

    def status(self, keys: list[str], timeout_s: float = 30.0) -> dict[str, JobState]:
        """State of each key at the current virtual time; a key never submitted is UNKNOWN."""
        return self._call("status", timeout_s, lambda: self._status(keys))

    def collect(self, keys: list[str], timeout_s: float = 30.0) -> list[JobResult]:
        """Results of the keys that are DONE or FAILED; others are left out."""
        return self._call("collect", timeout_s, lambda: self._collect(keys))

    def cancel(self, keys: list[str], timeout_s: float = 30.0) -> None:
        """Stop running jobs; finished and unknown keys are unaffected."""
        self._call("cancel", timeout_s, lambda: self._cancel(keys))

    # --- the virtual clock ---------------------------------------------------------
    def advance(self, hours: float) -> float:
        """Move the virtual clock forward; returns the new virtual time in hours."""
        return self.clock.advance(hours)

    @property
    def now_h(self) -> float:
        """Current virtual time, hours."""
        return self.clock.now_h()

    # --- what the subclasses provide -------------------------------------------------
    def _capabilities(self) -> dict[str, Any]:
        return {}

    def _check_context(self, item: WorkItem, recipe: Recipe) -> None:
        """Raise PermanentInstrumentError if the item's context is unusable."""

    def _run(self, item: WorkItem, recipe: Recipe, start_h: float) -> JobResult:
        raise NotImplementedError

    # --- machinery -----------------------------------------------------------------
    def rng(self, stream: int, key: str, *extra: int) -> np.random.Generator:
        """The random generator of one stream for one idempotency key."""
        digest = key_digest(key)
        words = tuple(int(digest[i : i + 8], 16) for i in range(0, 32, 8))
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(stream, *words, *extra)))

    def _call(self, op: str, timeout_s: float, body: Callable[[], T]) -> T:
        if not isinstance(timeout_s, (int, float)) or not math.isfinite(timeout_s) or timeout_s <= 0:
            raise InputError(f"{self.name}: {op} timeout_s must be a positive number of seconds, got {timeout_s!r}")
        self._calls += 1
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(STREAM_CALLS, self._calls)))
        disconnect, hang, hang_after = rng.random(3)
        if disconnect < self.faults.disconnect:
            self.faults_injected.append((op, "disconnect"))
            raise TransientInstrumentError(self.name, f"{op}: connection lost (simulated disconnect)")
        hangs = hang < self.faults.hang
        if hangs:
            self.faults_injected.append((op, "hang"))
        if hangs and hang_after >= 0.5:
            self._hang(op, timeout_s)
        started = time.monotonic()
        out = body()
        if hangs:
            self._hang(op, timeout_s)
        if time.monotonic() - started > timeout_s:
            raise InstrumentTimeout(self.name, f"{op} did not finish within {timeout_s:g} s")
        return out

    def _hang(self, op: str, timeout_s: float) -> None:
        time.sleep(timeout_s)
        raise InstrumentTimeout(self.name, f"{op} did not answer within {timeout_s:g} s (simulated hang)")

    def _submit(self, items: list[WorkItem]) -> None:
        accepted: list[tuple[WorkItem, Recipe]] = []
        seen: dict[str, dict[str, Any]] = {}
        for item in items:
            if not isinstance(item, WorkItem):
                raise PermanentInstrumentError(self.name, f"expected a WorkItem, got {type(item).__name__}")
            if not isinstance(item.key, str) or not item.key:
                raise PermanentInstrumentError(self.name, f"work item key must be a non-empty string, got {item.key!r}")
            recipe = Recipe.from_mapping(item.recipe, self.name, item.key)
            self._check_context(item, recipe)
            previous = self._journal.get(item.key)
            known = previous.recipe if previous is not None else seen.get(item.key)
            if known is not None and known != recipe.to_dict():
                raise PermanentInstrumentError(
                    self.name, f"item {item.key!r} was already submitted with a different recipe", item_key=item.key
                )
            if known is None:
                accepted.append((item, recipe))
                seen[item.key] = recipe.to_dict()
        self.submissions_received += len(items)
        start_h = self.clock.now_h()
        for item, recipe in accepted:
            result = self._run(item, recipe, start_h)
            self._journal.put(Job(item.key, recipe.to_dict(), start_h, start_h + self.duration_h, result))
            self.jobs_run += 1

    def _jobs(self, keys: list[str]) -> dict[str, Job]:
        jobs = {}
        for key in keys:
            job = self._journal.get(key)
            if job is not None:
                jobs[key] = job
        return jobs

    def _now_for(self, jobs: dict[str, Job]) -> float:
        """Current virtual time; in instant mode first wait (virtually) for the running jobs asked about."""
        now = self.clock.now_h()
        if self.clock.instant:
            pending = [j.end_h for j in jobs.values() if j.cancelled_h is None and j.end_h > now]
            if pending:
                now = self.clock.advance_to(max(pending))
        return now

    def _status(self, keys: list[str]) -> dict[str, JobState]:
        jobs = self._jobs(keys)
        now = self._now_for(jobs)
        return {k: jobs[k].state_at(now) if k in jobs else JobState.UNKNOWN for k in keys}

    def _collect(self, keys: list[str]) -> list[JobResult]:
        jobs = self._jobs(keys)
        now = self._now_for(jobs)
        out: list[JobResult] = []
        for key in dict.fromkeys(keys):
            job = jobs.get(key)
            if job is None or job.state_at(now) not in (JobState.DONE, JobState.FAILED):
                continue
            out.append(job.result)
            if self.faults.duplicate and self.rng(STREAM_DELIVERY, key).random() < self.faults.duplicate:
                self.faults_injected.append((key, "duplicate"))
                out.append(job.result)
        return out

    def _cancel(self, keys: list[str]) -> None:
        jobs = self._jobs(keys)
        now = self.clock.now_h()
        for job in jobs.values():
            if job.state_at(now) is JobState.RUNNING:
                self._journal.put(Job(job.key, job.recipe, job.start_h, job.end_h, job.result, cancelled_h=now))
