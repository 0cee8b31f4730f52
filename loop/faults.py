"""Named fault points: where a crash-safety test may crash the process.

Points: ``after-proposal``, ``after-dispatch``, ``during-ingest``, ``during-import``
(an import's formulations stored, its curves not yet), and
``ledger-write:<table>`` (a part file written but not yet moved into place).
Unarmed, a fault point costs two dictionary look-ups.

Two ways to crash at a point:

- a real crash: set ``NANOLOOP_CRASH_AT`` to the point's name and the process
  kills itself with SIGKILL when it gets there (no cleanup, no flush);
- in this process (no interpreter to start, no Prefect): code run inside
  ``with crash_at(point, *folders):`` raises :class:`SimulatedCrash` at the point.
  It is a ``BaseException`` that nanoloop never catches, so nothing after the
  point runs but ``finally`` blocks and context managers on the way out (a
  ledger write deletes its half-written part there; a lock is released, as at a
  process's death). The ``with`` block ends there, and whatever the way out
  changed in ``folders`` is undone: they hold exactly the files the process had
  left at the point, as a killed process leaves them (e.g. the part's hidden
  temporary file, never moved into place). Files are kept by hard links, so a
  folder is restored to its files as they were named, not as they were written
  to afterwards (nanoloop never rewrites a file in place).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path

POINTS = ("after-proposal", "after-dispatch", "during-ingest", "during-import", "ledger-write:<table>")


class SimulatedCrash(BaseException):
    """Raised at the fault point armed by :func:`crash_at` (never caught by nanoloop)."""


_armed: dict = {}  # point -> {"folders": [Path], "kept": [(path, hard link)] once reached, else None}


def fault_point(name: str) -> None:
    """Crash here if ``name`` is armed by :func:`crash_at` (raise) or by ``NANOLOOP_CRASH_AT`` (SIGKILL)."""
    crash = _armed.get(name)
    if crash is not None and crash["kept"] is None:
        crash["kept"] = _keep(crash["folders"])
        raise SimulatedCrash(name)
    if os.environ.get("NANOLOOP_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


@contextmanager
def crash_at(point: str, *folders):
    """Crash in this process at the first ``point`` reached inside the block; ``folders`` are left as a killed process leaves them.

    Raises:
        AssertionError: the block ended without reaching ``point`` (e.g. the point moved).
    """
    crash = _armed[point] = {"folders": [Path(f) for f in folders], "kept": None}
    try:
        yield
    except SimulatedCrash as raised:
        if str(raised) != point:
            raise
    finally:
        del _armed[point]
        if crash["kept"] is not None:
            _restore(crash["folders"], crash["kept"])
    if crash["kept"] is None:
        raise AssertionError(f"fault point {point!r} was never reached")


def _keep(folders: list[Path]) -> list[tuple[Path, Path]]:
    """A hard link to every file under ``folders`` (in a hidden folder beside each), to restore after the way out."""
    kept = []
    for folder in folders:
        files = [p for p in sorted(folder.rglob("*")) if p.is_file()]
        if files:
            links = Path(tempfile.mkdtemp(prefix=f".{folder.name}-crash-", dir=folder.parent))
            for i, path in enumerate(files):
                os.link(path, links / str(i))
                kept.append((path, links / str(i)))
    return kept


def _restore(folders: list[Path], kept: list[tuple[Path, Path]]) -> None:
    """Put ``folders`` back to the kept files: remove files made on the way out, bring back those removed or replaced."""
    names = {path for path, _ in kept}
    for folder in folders:
        for path in [p for p in folder.rglob("*") if p.is_file() and p not in names]:
            path.unlink()
    for path, link in kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(link, path)
    for links in {link.parent for _, link in kept}:
        shutil.rmtree(links)
