"""The status vocabulary of a formulation: one enum, its lifecycle, and the groups the campaign asks about.

Every status is an event in the ledger's ``events`` table; a formulation's
status is its latest event (:func:`nanoloop.loop.store.ledger.latest_status`).
"""

from __future__ import annotations

from enum import StrEnum

import pandas as pd


class Status(StrEnum):
    """Where a formulation is in its campaign (a ``str``: ``Status.MEASURED == "measured"``).

    Lifecycle, in the order events of the same instant are read::

        PROPOSED --> APPROVED --> DISPATCHED --> SYNTHESIZED --> DISSOLVING --> MEASURED
           |  |                        |              |               |
           |  +--> REJECTED            +--------------+---------------+--> FAILED
           +-----> EDITED (replaced by an edited copy, itself approved)

    - ``PROPOSED``: stored by a recommender (or an edit), awaiting approval;
    - ``APPROVED``: a person (or auto-approval) accepted it for the lab;
    - ``REJECTED``: a person declined it (the reason is kept); never proposed again;
    - ``EDITED``: a person changed its recipe: the original ends here, the edit is a new formulation;
    - ``DISPATCHED``: sent to synthesis under its id as the idempotency key;
    - ``SYNTHESIZED``: made and characterized;
    - ``DISSOLVING``: in a dissolution test;
    - ``MEASURED``: its release curve is in the ledger (imported formulations start here);
    - ``FAILED``: synthesis or dissolution failed; the reason names the stage (``synthesis: ...``);
    - ``ABANDONED``: given up without a result.
    """

    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    EDITED = "edited"
    DISPATCHED = "dispatched"
    SYNTHESIZED = "synthesized"
    DISSOLVING = "dissolving"
    MEASURED = "measured"
    FAILED = "failed"
    ABANDONED = "abandoned"


#: statuses that end a formulation's life: a round is settled when all its formulations have one
TERMINAL = (Status.MEASURED, Status.FAILED, Status.REJECTED, Status.ABANDONED, Status.EDITED)
#: in the lab: sent to synthesis and not yet measured or failed
IN_FLIGHT = (Status.DISPATCHED, Status.SYNTHESIZED, Status.DISSOLVING)
#: made or about to be made: the acquisition treats them like picks of the batch (for diversity)
PENDING = (Status.APPROVED, *IN_FLIGHT)
#: approved at some point (a round's "approved" count)
ACCEPTED = (*PENDING, Status.MEASURED, Status.FAILED)
#: events about the campaign itself, stored with an empty formulation id
CAMPAIGN_EVENTS = ("config-changed", "config-amended")

#: the order in which events stamped with the same time are read (the lifecycle's)
ORDER = {status: i for i, status in enumerate(Status)}


def status_of(ids: pd.Series, latest: pd.Series) -> pd.Series:
    """Each formulation's status: its latest event (``latest``, indexed by id), ``proposed`` before it has one.

    Args:
        ids: formulation ids, any index (the result keeps it).
        latest: :func:`~nanoloop.loop.store.ledger.latest_status` of the ledger.
    """
    return ids.map(latest).astype(object).fillna(Status.PROPOSED)
