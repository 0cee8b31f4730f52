"""What comes back from the lab: polling instruments until results arrive, and the replicates that pass the plausibility checks.

The campaign's ingest policy (:mod:`nanoloop.loop.campaign.lab_steps`) decides what to do with the rest.
"""

from __future__ import annotations

import time
from dataclasses import replace

from nanoloop.loop.lab.plausibility import result_problems


def usable_curves(result) -> tuple[list, list[str]]:
    """The replicates that pass the plausibility checks, and what was wrong with the others."""
    kept, notes = [], []
    for curve in result.curves:
        problems = [str(p) for p in result_problems(replace(result, curves=(curve,), characterization=None)) if p.kind != "nan_reading"]
        if problems:
            notes.append(f"dropped {'; '.join(problems)}")
        else:
            kept.append(curve)
    return kept, notes


def wait_and_collect(instrument, ids: list[str], wait_s: float, timeout_s: float, poll_s: float = 0.05):
    """Collect what finishes within ``wait_s``; the rest stays in flight for the next poll.

    A result delivered twice is taken once.
    """
    if not ids:
        return []
    deadline = time.monotonic() + wait_s
    results, pending = {}, set(ids)
    while pending:
        for result in instrument.collect(sorted(pending), timeout_s=timeout_s):
            if result.key in pending:
                results[result.key] = result
                pending.discard(result.key)
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(poll_s)
    return [results[k] for k in ids if k in results]
