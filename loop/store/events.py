"""Writing status events: the one way a formulation's status changes in the ledger."""

from __future__ import annotations

import hashlib

import numpy as np

from nanoloop.loop.store.ledger import Ledger, now_utc
from nanoloop.loop.store.status import Status


def event_id(formulation_id: str, status: str) -> str:
    """The event's key: a formulation reaches a status once (recording it again changes nothing)."""
    return hashlib.sha256(f"{formulation_id}|{status}".encode()).hexdigest()[:20]


def record_events(ledger: Ledger, campaign: str, ids, status: Status, round_: int, reason: str = "",
                  measured: dict[str, tuple[float, float]] | None = None) -> int:
    """Append a ``status`` event of ``round_`` for each formulation id (a status already recorded is not repeated).

    Args:
        measured: id -> (objective, f2 to the target) of its mean measured curve, stored on ``measured`` events.

    Returns:
        The number of events written.
    """
    now, measured = now_utc(), measured or {}
    rows = [
        {"event_id": event_id(fid, status), "formulation_id": fid, "campaign": campaign, "round": round_, "status": str(status),
         "reason": reason, "time": now, "measured_objective": measured.get(fid, (np.nan, np.nan))[0],
         "measured_f2": measured.get(fid, (np.nan, np.nan))[1]}
        for fid in ids
    ]
    return ledger.append("events", rows)
