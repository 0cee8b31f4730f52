"""Named fault points: where a crash-safety test may kill the process.

Set ``NANOLOOP_CRASH_AT`` to a point's name and the process kills itself with
SIGKILL when it gets there (no cleanup, no flush: a real crash). Unset, a
fault point costs one dictionary look-up.

Points: ``after-proposal``, ``after-dispatch``, ``during-ingest``, ``during-import``
(an import's formulations stored, its curves not yet), and
``ledger-write:<table>`` (a part file written but not yet moved into place).
"""

from __future__ import annotations

import os
import signal

POINTS = ("after-proposal", "after-dispatch", "during-ingest", "during-import", "ledger-write:<table>")


def fault_point(name: str) -> None:
    """Kill this process with SIGKILL if ``NANOLOOP_CRASH_AT`` equals ``name``."""
    if os.environ.get("NANOLOOP_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
