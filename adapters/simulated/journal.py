"""The simulated instrument's job journal: one record per idempotency key.

In memory by default. With a ``state_dir`` every record is also a JSON file
``<state_dir>/jobs/<instrument>/<sha256(key)>.json`` written atomically, and reads go to
disk, so a second process (or a restarted one) sees the same jobs and results.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nanoloop.loop.lab.instruments import JobResult, JobState
from nanoloop.adapters.simulated.clock import write_json_atomic


@dataclass(frozen=True)
class Job:
    """One submitted work item and its (pre-computed) outcome.

    Attributes:
        key: idempotency key.
        recipe: the validated recipe, as a dict.
        start_h, end_h: virtual start and end of the work, hours.
        result: what collect returns once the clock passes ``end_h``.
        cancelled_h: virtual time of cancellation, or None.
    """

    key: str
    recipe: dict[str, Any]
    start_h: float
    end_h: float
    result: JobResult
    cancelled_h: float | None = None

    def state_at(self, now_h: float) -> JobState:
        """The state the instrument reports at virtual time ``now_h`` (hours)."""
        if self.cancelled_h is not None:
            return JobState.CANCELLED
        if now_h < self.end_h:
            return JobState.RUNNING
        return self.result.state

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "recipe": self.recipe,
            "start_h": self.start_h,
            "end_h": self.end_h,
            "result": self.result.to_dict(),
            "cancelled_h": self.cancelled_h,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        return cls(
            key=data["key"],
            recipe=data["recipe"],
            start_h=float(data["start_h"]),
            end_h=float(data["end_h"]),
            result=JobResult.from_dict(data["result"]),
            cancelled_h=None if data.get("cancelled_h") is None else float(data["cancelled_h"]),
        )


def key_digest(key: str) -> str:
    """Stable hex digest of an idempotency key (sha256 of its UTF-8 bytes)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class Journal:
    """Jobs by key, optionally persisted under ``state_dir/jobs/<instrument>``.

    Each instrument has its own folder, so instruments sharing a ``state_dir``
    (and its clock) never see each other's jobs under the same key.
    """

    def __init__(self, state_dir: str | os.PathLike | None = None, instrument: str = ""):
        self._jobs: dict[str, Job] = {}
        self.folder = Path(state_dir) / "jobs" / instrument if state_dir is not None else None
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> Job | None:
        if self.folder is None:
            return self._jobs.get(key)
        path = self.folder / f"{key_digest(key)}.json"
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        job = Job.from_dict(json.loads(text, parse_constant=_nan_only))
        self._jobs[key] = job
        return job

    def put(self, job: Job) -> None:
        self._jobs[job.key] = job
        if self.folder is not None:
            write_json_atomic(self.folder / f"{key_digest(job.key)}.json", job.to_dict())


def _nan_only(name: str) -> float:
    if name == "NaN":
        return math.nan
    raise ValueError(f"unexpected constant {name} in a job file")
