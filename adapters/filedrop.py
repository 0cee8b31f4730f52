"""File-drop adapter: talk to a real instrument through folders of CSV files.

Many lab instruments (dissolution testers, synthesis robots) read a worklist
from a folder and export results to another. Folders under ``root``::

    outbox/      worklists for the instrument software to pick up (and remove)
    sent/        our copy of every worklist and cancel list: the record of what was submitted
    inbox/       result files the instrument exports
    archive/     result files ingested, renamed <sha256[:12]>-<name>; never changed
    quarantine/  result files that failed validation, each with <name>.reason.txt

``submit`` writes ``worklist-<digest>.csv`` (one row per vessel: the key, the
vessel number, the recipe) to a temporary name and ``os.replace``-s it into
``sent/`` and then ``outbox/``. ``status`` and ``collect`` first ingest the
inbox: a ``.csv`` file is read only once its size and modification time stayed
the same for ``settle_s`` seconds (two looks, within a call or across calls);
dot-files and names ending in ``.part``, ``.tmp``, ``.partial``, ``.crdownload``
or ``~`` are being written and are left alone. A valid file moves to
``archive/`` (ingested exactly once; ``collect`` reports its sha256 as
``raw_checksum``); an invalid one moves to ``quarantine/`` with the reason
beside it. Nothing is ever deleted. A file whose key already has results, a
key this adapter never submitted, or a byte-identical copy of an archived file
is quarantined too: a person decides.

The CSV layouts are documented in :mod:`nanoloop.adapters.filedrop_layout`;
a dissolution tester's own export layouts (``layout = "wide"`` or
``"uv-absorbance"`` with a calibration line and the dose) in
:mod:`nanoloop.adapters.filedrop_exports`.

States: results archived -> DONE or FAILED; cancelled -> CANCELLED; the
worklist still in ``outbox/`` -> QUEUED; submitted -> RUNNING; else UNKNOWN.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

from nanoloop.adapters.filedrop_exports import UvCalibration, parse_wide
from nanoloop.adapters.filedrop_layout import (
    DISSOLUTION_COLUMNS,
    PARSERS,
    SYNTHESIS_COLUMNS,
    LayoutError,
    worklist_csv,
    worklist_keys,
)
from nanoloop.loop.lab.instruments import InstrumentTimeout, JobResult, JobState, PermanentInstrumentError, WorkItem
from nanoloop.loop.errors import InputError

WRITING_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload", "~")
FOLDERS = ("outbox", "sent", "inbox", "archive", "quarantine")


def _write_atomic(folder: Path, name: str, text: str) -> Path:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, folder / name)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return folder / name


class FileDropInstrument:
    """An instrument reached through worklist and result folders.

    Args:
        root: folder holding outbox/, sent/, inbox/, archive/, quarantine/ (created if missing).
        name: instrument name used in errors, default "file-drop".
        kind: "dissolution" (default) or "synthesis"; picks the result layout.
        settle_s: seconds a result file must stay unchanged before it is read.
        vendor: free text for ``describe``.
        outbox, inbox: optional overrides of those two folders (e.g. a network share).
        seed: accepted so one campaign options table fits every instrument; a
            real instrument has no seed, so it is only reported by ``describe``.
        layout: result layout of a dissolution tester: "long" (default, one
            row per reading), "wide" (one vessel per column) or "uv-absorbance".
        calibration: for "uv-absorbance": {slope, intercept, max_absorbance},
            absorbance = slope * concentration (mg/mL) + intercept.
        dose_mg: for "uv-absorbance": drug in each vessel, mg.
        medium_volume_ml: for "uv-absorbance": release medium per vessel, mL.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        name: str = "file-drop",
        kind: str = "dissolution",
        settle_s: float = 2.0,
        vendor: str = "",
        outbox: str | os.PathLike | None = None,
        inbox: str | os.PathLike | None = None,
        seed: int | None = None,
        layout: str = "long",
        calibration: Mapping[str, float] | None = None,
        dose_mg: float | None = None,
        medium_volume_ml: float | None = None,
    ):
        if kind not in PARSERS:
            raise InputError(f"{name}: option 'kind' must be one of {sorted(PARSERS)}, got {kind!r}")
        if not isinstance(settle_s, (int, float)) or not settle_s >= 0:
            raise InputError(f"{name}: option 'settle_s' must be a number of seconds >= 0, got {settle_s!r}")
        layouts = ("long", "wide", "uv-absorbance") if kind == "dissolution" else ("long",)
        if layout not in layouts:
            raise InputError(f"{name}: option 'layout' must be one of {list(layouts)} for a {kind} instrument, got {layout!r}")
        uv_options = {"calibration": calibration, "dose_mg": dose_mg, "medium_volume_ml": medium_volume_ml}
        if layout != "uv-absorbance" and any(v is not None for v in uv_options.values()):
            raise InputError(f"{name}: options {[k for k, v in uv_options.items() if v is not None]} need layout 'uv-absorbance'")
        self.layout = layout
        self.calibration = UvCalibration.from_options(calibration, dose_mg, medium_volume_ml, name) if layout == "uv-absorbance" else None
        self._parse = {"long": PARSERS[kind], "wide": parse_wide}.get(layout) or self.calibration.parse
        self.name = name
        self.kind = kind
        self.settle_s = float(settle_s)
        self.vendor = vendor
        self.seed = seed
        root = Path(root)
        self.folders = {f: root / f for f in FOLDERS}
        if outbox is not None:
            self.folders["outbox"] = Path(outbox)
        if inbox is not None:
            self.folders["inbox"] = Path(inbox)
        for folder in self.folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        self._seen: dict[str, tuple[int, int, float]] = {}  # inbox name -> (size, mtime_ns, first seen)
        self._archive_cache: dict[str, dict[str, JobResult]] = {}  # archived name -> results by key

    # --- the Instrument protocol --------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Name, kind, vendor, folders and the result layout."""
        return {
            "name": self.name,
            "kind": self.kind,
            "vendor": self.vendor or "file-drop (any instrument that reads worklists and exports CSV)",
            "folders": {k: str(v) for k, v in self.folders.items()},
            "settle_s": self.settle_s,
            "seed": self.seed,
            "layout": self.layout,
            "result_columns": list(DISSOLUTION_COLUMNS if self.kind == "dissolution" else SYNTHESIS_COLUMNS)
            if self.layout == "long" else self.layout,
            "calibration": None if self.calibration is None else self.calibration.__dict__,
        }

    def submit(self, items: list[WorkItem], timeout_s: float = 30.0) -> None:
        """Write one worklist with the items whose keys were never submitted."""
        deadline = self._deadline("submit", timeout_s)
        known = self._submitted_keys()
        rows: dict[str, dict[str, Any]] = {}
        for item in items:
            if not isinstance(item, WorkItem) or not isinstance(item.key, str) or not item.key:
                raise PermanentInstrumentError(self.name, f"expected a WorkItem with a non-empty key, got {item!r}")
            if not isinstance(item.recipe, Mapping) or not item.recipe:
                raise PermanentInstrumentError(self.name, f"item {item.key!r}: empty recipe", item_key=item.key)
            if "," in item.key or "\n" in item.key:
                raise PermanentInstrumentError(
                    self.name, f"item {item.key!r}: keys may not contain commas or newlines", item_key=item.key
                )
            if item.key not in known:
                rows.setdefault(item.key, item.recipe)
        if not rows:
            return
        text = worklist_csv(list(rows.items()))
        name = f"worklist-{hashlib.sha256(text.encode()).hexdigest()[:16]}.csv"
        _write_atomic(self.folders["sent"], name, text)
        _write_atomic(self.folders["outbox"], name, text)
        self._check(deadline, "submit")

    def status(self, keys: list[str], timeout_s: float = 30.0) -> dict[str, JobState]:
        """State of each key, after ingesting settled inbox files."""
        deadline = self._deadline("status", timeout_s)
        results = self._ingest(deadline)
        cancelled = self._listed_keys(self.folders["sent"], "cancel-")
        queued = self._listed_keys(self.folders["outbox"], "worklist-")
        submitted = self._submitted_keys()
        states = {}
        for key in keys:
            if key in results:
                states[key] = results[key].state
            elif key in cancelled:
                states[key] = JobState.CANCELLED
            elif key in queued:
                states[key] = JobState.QUEUED
            elif key in submitted:
                states[key] = JobState.RUNNING
            else:
                states[key] = JobState.UNKNOWN
        self._check(deadline, "status")
        return states

    def collect(self, keys: list[str], timeout_s: float = 30.0) -> list[JobResult]:
        """Results (DONE or FAILED) of the keys that have an archived result file."""
        deadline = self._deadline("collect", timeout_s)
        results = self._ingest(deadline)
        out = [results[k] for k in dict.fromkeys(keys) if k in results]
        self._check(deadline, "collect")
        return out

    def cancel(self, keys: list[str], timeout_s: float = 30.0) -> None:
        """Write a cancel list for the submitted keys that have no results yet."""
        deadline = self._deadline("cancel", timeout_s)
        results = self._ingest(deadline)
        submitted = self._submitted_keys()
        todo = sorted(k for k in set(keys) if k in submitted and k not in results)
        if todo:
            text = "key\n" + "".join(f"{k}\n" for k in todo)
            name = f"cancel-{hashlib.sha256(text.encode()).hexdigest()[:16]}.csv"
            _write_atomic(self.folders["sent"], name, text)
            _write_atomic(self.folders["outbox"], name, text)
        self._check(deadline, "cancel")

    # --- ingest ----------------------------------------------------------------------
    def _ingest(self, deadline: float) -> dict[str, JobResult]:
        """Move settled inbox files to archive/ or quarantine/; return all archived results by key."""
        results = self._archived_results()
        ready = self._settled_files(deadline)
        submitted = self._submitted_keys() if ready else set()
        for path in ready:
            if time.monotonic() > deadline:
                break  # the rest waits for the next call
            self._ingest_one(path, results, submitted)
        return results

    def _settled_files(self, deadline: float) -> list[Path]:
        inbox = self.folders["inbox"]
        now = time.monotonic()
        waiting: dict[str, Path] = {}
        ready: list[Path] = []
        candidates = [
            p
            for p in sorted(inbox.iterdir())
            if p.is_file() and not p.name.startswith(".") and not p.name.lower().endswith(WRITING_SUFFIXES)
        ]
        for gone in set(self._seen) - {p.name for p in candidates}:
            del self._seen[gone]
        for path in candidates:
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            signature = (st.st_size, st.st_mtime_ns)
            seen = self._seen.get(path.name)
            if seen is not None and seen[:2] == signature and now - seen[2] >= self.settle_s:
                ready.append(path)
            else:
                if seen is None or seen[:2] != signature:
                    self._seen[path.name] = (*signature, now)
                waiting[path.name] = path
        if waiting:
            first_ready = min(self._seen[n][2] for n in waiting) + self.settle_s
            pause = first_ready - time.monotonic()
            if pause > 0 and time.monotonic() + pause < deadline - 0.05:
                time.sleep(pause)
            now = time.monotonic()
            for name, path in waiting.items():
                try:
                    st = path.stat()
                except FileNotFoundError:
                    self._seen.pop(name, None)
                    continue
                seen = self._seen[name]
                if seen[:2] == (st.st_size, st.st_mtime_ns) and now - seen[2] >= self.settle_s:
                    ready.append(path)
                elif seen[:2] != (st.st_size, st.st_mtime_ns):
                    self._seen[name] = (st.st_size, st.st_mtime_ns, now)
        return sorted(ready, key=lambda p: (self._seen[p.name][2], p.name))

    def _ingest_one(self, path: Path, results: dict[str, JobResult], submitted: set[str]) -> None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # another process took it
            self._seen.pop(path.name, None)
            return
        if len(data) != self._seen[path.name][0]:
            return  # changed since it settled: look again next call
        checksum = hashlib.sha256(data).hexdigest()
        archived_name = f"{checksum[:12]}-{path.name}"
        try:
            if not path.name.lower().endswith(".csv"):
                raise LayoutError("not a .csv file")
            twins = sorted(self.folders["archive"].glob(f"{checksum[:12]}-*"))
            if twins:
                raise LayoutError(f"identical to archived file {twins[0].name}: already ingested")
            parsed = self._parse(data, checksum)
            unknown = [k for k in parsed.results if k not in submitted]
            if unknown:
                raise LayoutError(f"key(s) {unknown[:5]} were never submitted through this adapter")
            again = [k for k in parsed.results if k in results]
            if again:
                source = results[again[0]].raw_checksum[:12]
                raise LayoutError(f"key(s) {again[:5]} already have results (archived file {source}-...)")
        except LayoutError as exc:
            self._quarantine(path, str(exc))
            return
        try:
            os.replace(path, self.folders["archive"] / archived_name)
        except FileNotFoundError:
            self._seen.pop(path.name, None)
            return
        self._seen.pop(path.name, None)
        self._archive_cache[archived_name] = parsed.results
        results.update(parsed.results)

    def _quarantine(self, path: Path, reason: str) -> None:
        folder = self.folders["quarantine"]
        name = path.name
        if (folder / name).exists():
            name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{name}"
        _write_atomic(folder, f"{name}.reason.txt", f"{path.name}: {reason}\n")
        try:
            os.replace(path, folder / name)
        except FileNotFoundError:
            pass
        self._seen.pop(path.name, None)

    def _archived_results(self) -> dict[str, JobResult]:
        results: dict[str, JobResult] = {}
        for path in sorted(self.folders["archive"].iterdir(), key=lambda p: (p.stat().st_mtime_ns, p.name)):
            if not path.is_file() or path.name.startswith("."):
                continue
            if path.name not in self._archive_cache:
                data = path.read_bytes()
                try:
                    parsed = self._parse(data, hashlib.sha256(data).hexdigest())
                except LayoutError as exc:
                    raise PermanentInstrumentError(self.name, f"archived file {path} is unreadable: {exc}") from None
                self._archive_cache[path.name] = parsed.results
            for key, result in self._archive_cache[path.name].items():
                results.setdefault(key, result)
        return results

    # --- records ---------------------------------------------------------------------
    def _listed_keys(self, folder: Path, prefix: str) -> set[str]:
        keys: set[str] = set()
        for path in folder.glob(f"{prefix}*.csv"):
            try:
                keys.update(worklist_keys(path.read_text()))
            except FileNotFoundError:  # picked up by the instrument meanwhile
                continue
        return keys

    def _submitted_keys(self) -> set[str]:
        return self._listed_keys(self.folders["sent"], "worklist-") | self._listed_keys(
            self.folders["outbox"], "worklist-"
        )

    def _deadline(self, op: str, timeout_s: float) -> float:
        if not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
            raise InputError(f"{self.name}: {op} timeout_s must be a positive number of seconds, got {timeout_s!r}")
        return time.monotonic() + timeout_s

    def _check(self, deadline: float, op: str) -> None:
        if time.monotonic() > deadline:
            raise InstrumentTimeout(self.name, f"{op} did not finish within its timeout (slow folder?)")
