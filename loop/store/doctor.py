"""``nanoloop doctor``: check every part of a store and the event log's consistency; quarantine what cannot be read.

Checks: each part of each table reads and matches its table's schema; every
event names a stored formulation and a known status; every formulation has
events; no temporary files of a crashed write are left. With ``repair``
(the campaign's lock held, so no run is writing), unreadable parts move to
``STORE/quarantine/<table>/`` with a note beside each saying why and when,
and temporary files are removed. Rows in a quarantined part are lost to the
campaign: the note says so, and the file is kept for a person to look at.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone

from nanoloop.loop.errors import InputError
from nanoloop.loop.store.ledger import Ledger, LedgerBusy
from nanoloop.loop.store.schemas import SCHEMAS
from nanoloop.loop.store.stored_config import CONFIG_BLOB, read_stored_config
from nanoloop.loop.store.status import CAMPAIGN_EVENTS, Status



@dataclass
class Checkup:
    """What ``doctor`` found and did."""

    parts: int = 0
    unreadable: dict[str, str] = field(default_factory=dict)  # path -> reason
    inconsistencies: list[str] = field(default_factory=list)
    temporaries: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        left = {p: r for p, r in self.unreadable.items() if p not in self.quarantined}
        return not left and not self.inconsistencies and not [t for t in self.temporaries if t not in self.removed]


def check_store(store: str, repair: bool = False) -> Checkup:
    """Verify every part and the event log of ``store``; with ``repair`` quarantine unreadable parts."""
    ledger = Ledger(store, create=False)
    found = Checkup()
    for table in SCHEMAS:
        for path in ledger.part_paths(table):
            found.parts += 1
            try:
                ledger.read_part(path, table)
            except InputError as err:
                found.unreadable[path] = str(err)
    found.temporaries = ledger.temporaries(older_than_s=0)
    found.inconsistencies += _config_problems(ledger, store)
    if repair and (found.unreadable or found.temporaries):
        try:
            with ledger.lock():
                for path, reason in found.unreadable.items():
                    _quarantine(ledger, path, reason)
                    found.quarantined.append(path)
                found.removed = ledger.remove_temporaries(older_than_s=0)
        except LedgerBusy as busy:
            raise InputError(f"{busy}; repair when no run is going") from None
    found.inconsistencies += _event_problems(Ledger(store, create=False, tolerant=True))
    return found


def _quarantine(ledger: Ledger, path: str, reason: str) -> str:
    table = os.path.basename(os.path.dirname(path))
    folder = os.path.join(ledger.root, "quarantine", table)
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, os.path.basename(path))
    os.replace(path, target)
    with open(target + ".note.txt", "w") as note:
        note.write(f"moved here by `nanoloop doctor --repair` at {datetime.now(timezone.utc).isoformat()}\n"
                   f"from {path}\nbecause: {reason}\nIts rows are no longer part of the campaign.\n")
    return target


def _config_problems(ledger: Ledger, store: str) -> list[str]:
    """The stored campaign config must be there and valid (doctor reports it; it never rewrites it)."""
    if ledger.read_blob(CONFIG_BLOB) is None:
        return [f"{store}/blobs/{CONFIG_BLOB} is missing: the store holds no campaign config"]
    try:
        read_stored_config(ledger)
    except InputError as err:
        return [str(err)]
    return []


def _event_problems(ledger: Ledger) -> list[str]:
    events, forms = ledger.read("events"), ledger.read("formulations")
    problems = []
    known = set(forms["formulation_id"])
    per_formulation = events[events["formulation_id"] != ""]
    orphans = sorted(set(per_formulation["formulation_id"]) - known)
    if orphans:
        problems.append(f"events name {len(orphans)} formulation(s) not in the formulations table: {', '.join(orphans[:5])}")
    strange = sorted(set(events["status"]) - set(Status) - set(CAMPAIGN_EVENTS))
    if strange:
        problems.append(f"events with unknown status(es): {strange}")
    silent = sorted(known - set(per_formulation["formulation_id"]))
    if silent:
        problems.append(f"{len(silent)} formulation(s) have no events: {', '.join(silent[:5])}")
    return problems
