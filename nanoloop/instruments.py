"""The plug-in surface for instrument authors: what an instrument implements, receives and returns.

Import from here, never from the core's internals (``nanoloop.loop...``): these
names stay where they are when the internals move, and a change to any of them
is announced in CHANGELOG.md a release ahead, with the old spelling still working.

- :class:`Instrument`: the protocol (``describe``, ``submit``, ``status``, ``collect``,
  ``cancel``, each with a timeout in seconds), and :data:`KINDS` ("synthesis", "dissolution");
- :class:`WorkItem` (what is submitted, with its idempotency key), :class:`JobState`,
  :class:`JobResult`, :class:`Characterization` and :class:`ReleaseCurve` (what comes back);
- the typed errors: :class:`TransientInstrumentError` (retried, with :class:`InstrumentTimeout`)
  and :class:`PermanentInstrumentError` (recorded as failed), both :class:`InstrumentError`;
- :func:`check_instrument`: the check a campaign runs on an instrument before using it.

A plug-in is installed under the entry-point group ``nanoloop.instruments``
(a config then names it by its entry-point name) or named by import path
``package.module:Class`` from a trusted package (README, "Write your own instrument").
"""

from nanoloop.loop.lab.instruments import (
    ENTRY_POINT_GROUP,
    KINDS,
    Characterization,
    Instrument,
    InstrumentError,
    InstrumentTimeout,
    JobResult,
    JobState,
    PermanentInstrumentError,
    ReleaseCurve,
    TransientInstrumentError,
    WorkItem,
    check_instrument,
)

__all__ = [
    "ENTRY_POINT_GROUP", "KINDS", "Characterization", "Instrument", "InstrumentError", "InstrumentTimeout", "JobResult", "JobState",
    "PermanentInstrumentError", "ReleaseCurve", "TransientInstrumentError", "WorkItem", "check_instrument",
]
