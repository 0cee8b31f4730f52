"""The lab steps of a round: dispatch to synthesis and dissolution, recover lost jobs, ingest what comes back.

The methods of :class:`~nanoloop.loop.campaign.campaign.Campaign` that talk to
the instruments (a mixin: they use the campaign's ledger, instruments and
status events). Each step reads the ledger first and does only what is missing,
so a step run twice, or after a crash, dispatches nothing twice.
"""

from __future__ import annotations

import numpy as np

from nanoloop.loop.faults import fault_point
from nanoloop.loop.lab.collect import usable_curves, wait_and_collect
from nanoloop.loop.lab.instruments import Characterization, JobState, PermanentInstrumentError, WorkItem
from nanoloop.loop.lab.plausibility import result_problems
from nanoloop.loop.design.space import recipe_of
from nanoloop.loop.store.measurements import kinetics_row, measured_scores
from nanoloop.loop.store.status import Status


class LabSteps:
    """Dispatching, collecting and ingesting (part of :class:`~nanoloop.loop.campaign.campaign.Campaign`)."""

    def _work_items(self, ids: list[str], with_characterization: bool = False):
        frame = self.ledger.read("formulations").set_index("formulation_id")
        chars = self.ledger.read("characterization").set_index("formulation_id") if with_characterization else None
        items = []
        for fid in ids:
            context = {}
            if chars is not None and fid in chars.index:
                context["characterization"] = chars.loc[fid, list(Characterization.fields())].to_dict()
            items.append(WorkItem(key=fid, recipe=recipe_of(frame.loc[fid, "parameters_json"]), context=context))
        return items

    def dispatch_synthesis(self, round_: int) -> list[str]:
        """Send approved formulations to synthesis (the idempotency key is the formulation id).

        A recipe the instrument refuses for good is marked failed with its reason.
        """
        ids = self.formulation_ids(round_, Status.APPROVED)
        sent = self._submit_once(self.instruments["synthesis"], self._work_items(ids), round_)
        self.record(sent, Status.DISPATCHED, round_)
        return sent

    def _submit_once(self, instrument, items, round_: int) -> list[str]:
        """Submit only what the instrument does not know yet; returns the keys it has taken.

        After a crash between a submit and its ledger record, the rerun finds
        the items known to the instrument and polls them instead of sending
        them again. An item refused permanently is recorded as failed and the
        rest of the batch is sent without it.
        """
        if not items:
            return []
        known = instrument.status([item.key for item in items], timeout_s=self.timeout_s)
        fresh = [item for item in items if known.get(item.key, JobState.UNKNOWN) == JobState.UNKNOWN]
        while fresh:
            try:
                instrument.submit(fresh, timeout_s=self.timeout_s)
                break
            except PermanentInstrumentError as err:
                if err.item_key not in {item.key for item in fresh}:
                    raise
                self.record([err.item_key], Status.FAILED, round_, f"{instrument.kind}: {err}")
                fresh = [item for item in fresh if item.key != err.item_key]
        fault_point("after-dispatch")
        failed = set(self.states().pipe(lambda s: s[s == Status.FAILED]).index)
        return [item.key for item in items if item.key not in failed]

    def recover_lost_jobs(self, round_: int, kind: str) -> list[str]:
        """Resubmit in-flight jobs the instrument no longer knows (e.g. it restarted after a crash); returns the ids failed.

        Each lost job is submitted again under the same idempotency key (so an
        instrument that does know it does nothing twice); one still unknown
        after that is marked failed with the reason, so no run waits for it forever.
        """
        status = Status.DISPATCHED if kind == "synthesis" else Status.DISSOLVING
        ids = self.formulation_ids(round_, status)
        if not ids:
            return []
        instrument = self.instruments[kind]
        known = instrument.status(ids, timeout_s=self.timeout_s)
        lost = [k for k in ids if known.get(k, JobState.UNKNOWN) == JobState.UNKNOWN]
        if not lost:
            return []
        items = self._work_items(lost, with_characterization=kind == "dissolution")
        try:
            instrument.submit(items, timeout_s=self.timeout_s)
        except PermanentInstrumentError as err:
            if err.item_key not in lost:
                raise
            self.record([err.item_key], Status.FAILED, round_, f"{kind}: {err}")
        known = instrument.status(lost, timeout_s=self.timeout_s)
        gone = [k for k in lost if known.get(k, JobState.UNKNOWN) == JobState.UNKNOWN]
        for fid in gone:
            self.record([fid], Status.FAILED, round_, f"{kind}: the instrument no longer knows this job and did not take it again")
        return gone

    def collect_synthesis(self, round_: int, wait_s: float | None = None) -> dict[str, list[str]]:
        """Poll synthesis for dispatched formulations; store characterization, or the failure reason.

        A result that fails the plausibility checks (NaN or absurd values) is
        recorded as a failed synthesis with the problems found.
        """
        self.recover_lost_jobs(round_, "synthesis")
        ids = self.formulation_ids(round_, Status.DISPATCHED)
        instrument = self.instruments["synthesis"]
        done, failed = [], {}
        for r in wait_and_collect(instrument, ids, self._wait(wait_s), self.timeout_s):
            problems = [str(p) for p in result_problems(r)]
            if r.state != JobState.DONE or problems or r.characterization is None:
                failed[r.key] = f"synthesis: {r.reason or '; '.join(problems) or r.state.value}"
            else:
                done.append(r)
        self.ledger.append("characterization", [
            {"formulation_id": r.key, **r.characterization.__dict__, "instrument": instrument.name, "raw_checksum": r.raw_checksum} for r in done
        ])
        self.record([r.key for r in done], Status.SYNTHESIZED, round_)
        for fid, reason in failed.items():
            self.record([fid], Status.FAILED, round_, reason)
        return {"synthesized": [r.key for r in done], "failed": list(failed)}

    def _wait(self, wait_s: float | None) -> float:
        return self.config.instruments.collect_wait_s if wait_s is None else wait_s

    def dispatch_dissolution(self, round_: int) -> list[str]:
        """Start a dissolution test for each synthesized formulation."""
        ids = self.formulation_ids(round_, Status.SYNTHESIZED)
        sent = self._submit_once(self.instruments["dissolution"], self._work_items(ids, with_characterization=True), round_)
        self.record(sent, Status.DISSOLVING, round_)
        return sent

    def collect_dissolution(self, round_: int, wait_s: float | None = None) -> dict[str, list[str]]:
        """Ingest finished release curves (and their kinetic summary); failed tests are recorded.

        Policy for bad readings: NaN readings are dropped; a replicate with an
        implausible reading (above 110 % or below -5 %), or with broken times,
        is dropped whole and the reason kept on the ``measured`` event; a test
        with no usable replicate is failed.
        """
        self.recover_lost_jobs(round_, "dissolution")
        ids = self.formulation_ids(round_, Status.DISSOLVING)
        instrument = self.instruments["dissolution"]
        method = self.config.dissolution_method
        method_columns = {"apparatus": method.apparatus, "medium": method.medium, "volume_ml": method.volume_ml, "temperature_c": method.temperature_c}
        measured, failed, curve_rows, kinetics_rows = {}, [], [], []
        for r in wait_and_collect(instrument, ids, self._wait(wait_s), self.timeout_s):
            curves, notes = usable_curves(r)
            if r.state == JobState.DONE and r.reason:  # what the instrument dropped or flagged itself
                notes.insert(0, r.reason)
            rows = [
                {"formulation_id": r.key, "replicate": c.replicate, "time_hours": float(t), "release_pct": float(v), "instrument": instrument.name,
                 "raw_checksum": r.raw_checksum, **method_columns}
                for c in curves for t, v in zip(c.times_hours, c.release_pct)
                if np.isfinite(t) and np.isfinite(v)
            ]
            if r.state != JobState.DONE or not rows:
                failed.append(r.key)
                self.record([r.key], Status.FAILED, round_, f"dissolution: {r.reason or '; '.join(notes) or 'no valid readings'}")
                continue
            curve_rows += rows
            kinetics_rows.append(kinetics_row(r.key, rows))
            measured[r.key] = "; ".join(notes)
        # one append per table, whatever the batch size; a crash in between is resumed by collecting again
        self.ledger.append("curves", curve_rows)
        fault_point("during-ingest")
        self.ledger.append("kinetics", kinetics_rows)
        scores = measured_scores(self.ledger, self.config, curve_rows)
        for reason in dict.fromkeys(measured.values()):
            self.record([fid for fid, r in measured.items() if r == reason], "measured", round_, reason, measured=scores)
        return {"measured": list(measured), "failed": failed}
