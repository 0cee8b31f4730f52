"""A virtual clock in hours, so a 28-day dissolution test takes milliseconds.

In ``"instant"`` mode an instrument asked about a job that is still running
moves the clock forward to the job's end (the wait happens, virtually, at
once). In ``"manual"`` mode only :meth:`VirtualClock.advance` moves it, so a
test or a demo can watch jobs go from RUNNING to DONE. Two instruments can
share one clock (pass the same object to both).

With a ``path`` the time is kept in a small JSON file, so a new process
carries on from the virtual time the last one reached.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

from nanoloop.loop.errors import InputError

MODES = ("instant", "manual")


class VirtualClock:
    """Virtual time in hours since the lab opened; it only moves forward.

    Args:
        mode: "instant" (jobs finish as soon as asked about) or "manual".
        path: optional JSON file that persists the time across processes.
        start_h: time at creation when no saved time exists, hours.
    """

    def __init__(self, mode: str = "instant", path: str | os.PathLike | None = None, start_h: float = 0.0):
        if mode not in MODES:
            raise InputError(f"clock mode {mode!r} is not one of {list(MODES)}")
        self.mode = mode
        self.path = Path(path) if path is not None else None
        self._now_h = float(start_h)
        if self.path is not None and self.path.exists():
            self._now_h = max(self._now_h, self._read())

    @property
    def instant(self) -> bool:
        return self.mode == "instant"

    def now_h(self) -> float:
        """Current virtual time, hours (re-read from the file when persisted)."""
        if self.path is not None and self.path.exists():
            self._now_h = max(self._now_h, self._read())
        return self._now_h

    def advance(self, hours: float) -> float:
        """Move the clock forward by ``hours`` (>= 0); returns the new time in hours."""
        if not math.isfinite(hours) or hours < 0:
            raise InputError(f"clock: cannot advance by {hours!r} hours (must be a finite number >= 0)")
        return self.advance_to(self.now_h() + hours)

    def advance_to(self, time_h: float) -> float:
        """Move the clock to ``time_h`` if that is later than now; returns the time in hours."""
        now = self.now_h()
        if time_h > now:
            self._now_h = float(time_h)
            self._write()
        return self._now_h

    def _read(self) -> float:
        try:
            return float(json.loads(self.path.read_text())["now_h"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"clock file {self.path} is unreadable: {exc}") from None

    def _write(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, {"now_h": self._now_h})


def write_json_atomic(path: Path, data: object) -> None:
    """Write JSON to a temporary file in the same folder, then ``os.replace`` it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
