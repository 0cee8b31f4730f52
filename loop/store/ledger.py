"""The campaign ledger: the one source of truth, as append-only Parquet tables.

Layout: ``STORE/<table>/part-<time_ns>-<random>.parquet``. Each part is written
whole under a hidden temporary name in the same folder and moved into place
(then the folder is fsynced), so a reader sees a part entirely or not at all, and
a crash half-way leaves the ledger as it was. Parts are never rewritten. Every
row has a content-derived key; appending a row whose key is already stored is a
no-op, so ingesting the same result twice changes nothing.

Each table reads with ``pandas.read_parquet(STORE / table)``. The store is a
folder path or a pyarrow filesystem URI (``file:///...``, ``s3://bucket/x``).

The tables' schemas, keys and the renames of older parts are in
:mod:`nanoloop.loop.store.schemas`; this module is the one writer and reader
that enforce them. Each :class:`Ledger` reads a part once (parts are never
rewritten) and lists the folder on every read, so reads grow with the parts added.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from nanoloop.loop.errors import InputError
from nanoloop.loop.faults import fault_point
from nanoloop.loop.store.schemas import KEYS, OPTIONAL, RENAMED, SCHEMA_VERSION, SCHEMAS
from nanoloop.loop.store.status import ORDER

def now_utc() -> pd.Timestamp:
    """The time stamp ledger rows carry (UTC)."""
    return pd.Timestamp(datetime.now(timezone.utc))


class LedgerBusy(RuntimeError):
    """Another process holds the campaign's lock."""

def _resolve(location: str | os.PathLike) -> tuple[pafs.FileSystem, str, bool]:
    text = os.fspath(location)
    if "://" in text:
        try:
            fs, path = pafs.FileSystem.from_uri(text)
        except (pa.ArrowInvalid, ValueError, OSError) as err:
            raise InputError(f"store {text!r}: {err}") from None
        return fs, path.rstrip("/"), isinstance(fs, pafs.LocalFileSystem)
    return pafs.LocalFileSystem(), str(Path(text).absolute()), True


def check_location(location: str | os.PathLike) -> None:
    """Refuse a store location that names a file (a store is a folder); nothing is read or created.

    Raises:
        InputError: ``store '...' is a file, not a folder``, or a URI pyarrow cannot resolve.
    """
    fs, root, _ = _resolve(location)
    _folder_info(fs, root, os.fspath(location))


def _folder_info(fs: pafs.FileSystem, root: str, location: str) -> pafs.FileInfo:
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.File:
        raise InputError(f"store {location!r} is a file, not a folder")
    return info


@dataclass
class Ledger:
    """A campaign store on a local folder or a pyarrow filesystem.

    Args:
        location: folder path or filesystem URI; created when missing.
        create: create the folder if it does not exist (False: it must exist).
    """

    location: str

    def __init__(self, location: str | os.PathLike, create: bool = True, tolerant: bool = False):
        """Args:
            tolerant: skip a part that cannot be read (noted in ``unreadable``) instead of refusing; for
                read-only views (status, report, dashboard), never for a run that writes.
        """
        self.location = os.fspath(location)
        self.fs, self.root, self.local = _resolve(location)
        self.tolerant = tolerant
        self.unreadable: dict[str, str] = {}
        #: table -> {(path, size, mtime_ns): the part as read}: parts are never rewritten, so each is read once
        self._parts: dict[str, dict[tuple, pa.Table]] = {}
        info = _folder_info(self.fs, self.root, self.location)
        if info.type == pafs.FileType.NotFound:
            if not create:
                raise InputError(f"store {self.location!r} does not exist")
            with storage_errors(self.root):
                self.fs.create_dir(self.root, recursive=True)

    def _dir(self, table: str) -> str:
        if table not in SCHEMAS:
            raise KeyError(f"unknown ledger table {table!r}")
        return f"{self.root}/{table}"

    def _part_infos(self, table: str) -> list[pafs.FileInfo]:
        """The table's part files as listed (path, size, modification time), in path order; reads no part."""
        selector = pafs.FileSelector(self._dir(table), allow_not_found=True)
        return sorted(
            (
                info
                for info in self.fs.get_file_info(selector)
                if info.type == pafs.FileType.File
                and info.base_name.endswith(".parquet")
                and not info.base_name.startswith((".", "_"))
            ),
            key=lambda info: info.path,
        )

    def read(self, table: str) -> pd.DataFrame:
        """Every row of a table (empty frame with the right columns when none).

        The folder is listed on every call and only parts this ledger has not read
        yet are read (parts are never rewritten; a removed part, e.g. one
        ``doctor`` quarantined, drops out). The frame is new on each call, so
        callers may change it.
        """
        schema = SCHEMAS[table]
        known = self._parts.get(table, {})
        current: dict[tuple, pa.Table] = {}
        for info in self._part_infos(table):
            key = (info.path, info.size, info.mtime_ns)
            part = known.get(key)
            if part is None:
                try:
                    part = self.read_part(info.path, table)
                except InputError as err:
                    if not self.tolerant:
                        raise InputError(f"{err}; run `nanoloop doctor {self.location}` (with --repair to quarantine it)") from None
                    self.unreadable[info.path] = str(err)
                    continue
            current[key] = part
        self._parts[table] = current
        if not current:
            return schema.empty_table().to_pandas()
        return pa.concat_tables(list(current.values())).to_pandas()

    def read_part(self, path: str, table: str) -> pa.Table:
        """One part, read from storage and checked against the table's schema; InputError names the file when it cannot be used."""
        schema = SCHEMAS[table]
        try:
            with self.fs.open_input_file(path) as handle:
                part = pq.ParquetFile(handle).read()  # a third of pq.read_table's time on small parts
        except (pa.ArrowException, OSError) as err:
            raise InputError(f"{path}: unreadable ledger part (truncated or not Parquet: {str(err).splitlines()[0]})") from None
        renames = RENAMED.get(table, {})
        if any(n in renames for n in part.column_names):
            part = part.rename_columns([renames.get(n, n) for n in part.column_names])
        missing = [n for n in schema.names if n not in part.column_names and n not in OPTIONAL.get(table, ())]
        if missing:
            raise InputError(f"{path}: not a part of the {table!r} table (lacks column(s) {missing})")
        try:
            return _conform(part, schema)
        except (pa.ArrowException, ValueError) as err:
            raise InputError(f"{path}: not a part of the {table!r} table ({str(err).splitlines()[0]})") from None

    def part_paths(self, table: str) -> list[str]:
        """The table's part files, in order."""
        return [info.path for info in self._part_infos(table)]

    def parts_summary(self) -> tuple[tuple[str, int, int], ...]:
        """(table, part count, latest modification time in ns) of every table; lists folders, reads no part.

        Parts are only ever added (or quarantined), so an equal summary means no table changed.
        """
        summary = []
        for table in SCHEMAS:
            infos = self._part_infos(table)
            summary.append((table, len(infos), max((info.mtime_ns or 0 for info in infos), default=0)))
        return tuple(summary)

    def append(self, table: str, rows: pd.DataFrame | list[dict]) -> int:
        """Append rows whose keys are not stored yet; returns how many were written.

        The rows are checked against the table's schema before anything is
        written; a missing column or a wrong type raises and writes nothing.
        """
        frame = pd.DataFrame(rows) if not isinstance(rows, pd.DataFrame) else rows
        if frame.empty:
            return 0
        schema = SCHEMAS[table]
        optional = [n for n in OPTIONAL.get(table, ()) if n not in frame.columns]
        if optional:
            frame = frame.assign(**{n: None for n in optional})
        missing = [n for n in schema.names if n not in frame.columns]
        if missing:
            raise ValueError(f"ledger table {table!r}: rows lack column(s) {missing}")
        keys = list(KEYS[table])
        frame = frame.drop_duplicates(subset=keys)
        stored = self.read(table)[keys]
        if not stored.empty:
            known = pd.MultiIndex.from_frame(stored)
            frame = frame[~pd.MultiIndex.from_frame(frame[keys]).isin(known)]
        if frame.empty:
            return 0
        try:
            arrow = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as err:
            raise ValueError(f"ledger table {table!r}: {err}") from None
        arrow = arrow.replace_schema_metadata({"nanoloop.schema_version": SCHEMA_VERSION})
        self._write_part(table, arrow)
        return len(frame)

    def _write_part(self, table: str, arrow: pa.Table) -> None:
        name = f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
        self._atomic_write(f"{self._dir(table)}/{name}", lambda handle: pq.write_table(arrow, handle), fault=f"ledger-write:{table}")

    def write_blob(self, name: str, data: bytes) -> None:
        """Store a file (config, model weights) under ``STORE/blobs/name``, atomically."""
        self._atomic_write(f"{self.root}/blobs/{name}", lambda handle: handle.write(data))

    def _atomic_write(self, path: str, write, fault: str = "") -> None:
        """Write through ``write(handle)`` to a hidden temporary file, then move it to ``path``."""
        folder = path.rsplit("/", 1)[0]
        with storage_errors(folder):
            self.fs.create_dir(folder, recursive=True)
        temporary = f"{folder}/.{uuid.uuid4().hex}.tmp"
        with storage_errors(folder):
            self._write_and_move(temporary, path, folder, write, fault)

    def _write_and_move(self, temporary: str, path: str, folder: str, write, fault: str) -> None:
        try:
            if self.local:
                with open(temporary, "wb") as handle:
                    write(handle)
                    handle.flush()
                    os.fsync(handle.fileno())
                fault_point(fault)
                os.replace(temporary, path)
                _fsync_dir(folder)
            else:
                with self.fs.open_output_stream(temporary) as handle:
                    write(handle)
                self.fs.move(temporary, path)
        finally:
            if self.fs.get_file_info(temporary).type != pafs.FileType.NotFound:
                self.fs.delete_file(temporary)

    def blob_info(self, name: str) -> pafs.FileInfo:
        """What the store holds under ``STORE/blobs/name`` (type, size, modification time); reads nothing."""
        return self.fs.get_file_info(f"{self.root}/blobs/{name}")

    def read_blob(self, name: str) -> bytes | None:
        """The stored file's bytes, or None when there is none."""
        info = self.blob_info(name)
        if info.type != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(info.path) as handle:
            return handle.read()

    @contextmanager
    def lock(self):
        """Hold the campaign's exclusive lock, or raise :class:`LedgerBusy` at once if another process has it.

        A local store keeps its lock file in the store folder; a remote store's
        lock lives under ``~/.nanoloop/locks`` and so guards runs on this host
        only (run one scheduler per remote campaign).
        """
        if self.local:
            path = Path(self.root) / ".lock"
        else:
            folder = Path.home() / ".nanoloop" / "locks"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / (hashlib.sha256(self.location.encode()).hexdigest()[:16] + ".lock")
        with open(path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LedgerBusy(f"store {self.location!r} is being advanced by another run") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def check_writable(self) -> None:
        """Raise InputError (naming the folder and what to do) when the store cannot be written."""
        if not self.local:
            return
        probe = f"{self.root}/.write-probe-{uuid.uuid4().hex}.tmp"
        with storage_errors(self.root):
            with open(probe, "wb") as handle:
                handle.write(b"ok")
            os.remove(probe)

    def temporaries(self, older_than_s: float = 60.0) -> list[str]:
        """Temporary files a crashed write left behind (hidden ``.*.tmp``), older than ``older_than_s``."""
        if not self.local:
            return []
        now, found = time.time(), []
        for folder, _, names in os.walk(self.root):
            for name in names:
                full = os.path.join(folder, name)
                if name.startswith(".") and name.endswith(".tmp") and now - os.path.getmtime(full) > older_than_s:
                    found.append(full)
        return sorted(found)

    def remove_temporaries(self, older_than_s: float = 60.0) -> list[str]:
        """Delete what :meth:`temporaries` finds (call with the lock held); returns the removed paths."""
        removed = []
        for path in self.temporaries(older_than_s):
            try:
                os.remove(path)
                removed.append(path)
            except FileNotFoundError:
                pass
        return removed

    def exists(self) -> bool:
        """True when the store holds at least one formulation."""
        return bool(self._part_infos("formulations"))


def latest_status(ledger: Ledger) -> pd.Series:
    """The latest status of each formulation (index: formulation id)."""
    events = ledger.read("events")
    events = events[events["formulation_id"] != ""]  # campaign-level events (config changes)
    if events.empty:
        return pd.Series(dtype=object)
    events["order"] = events["status"].map(ORDER)
    latest = events.sort_values(["time", "order"]).groupby("formulation_id").tail(1)
    return latest.set_index("formulation_id")["status"]


_STORAGE_ADVICE = {
    errno.EROFS: "the file system is read-only: use a writable store folder",
    errno.EACCES: "permission denied: use a store folder you may write, or fix its permissions",
    errno.EPERM: "permission denied: use a store folder you may write, or fix its permissions",
    errno.ENOSPC: "the disk is full: free space and run again (nothing half-written was kept)",
    errno.EDQUOT: "the disk quota is exceeded: free space and run again (nothing half-written was kept)",
}


def storage_message(err: OSError, where: str = "the store") -> str | None:
    """One line for a read-only, permission or full-disk error (which path, what to do), else None."""
    advice = _STORAGE_ADVICE.get(err.errno)
    for words, code in (("Read-only file system", errno.EROFS), ("Permission denied", errno.EACCES), ("No space left", errno.ENOSPC)):
        if advice is None and words in str(err):  # pyarrow's filesystem errors carry the words, not the errno
            advice = _STORAGE_ADVICE[code]
    return None if advice is None else f"cannot write {err.filename or where}: {advice}"


@contextmanager
def storage_errors(where: str):
    """Turn a read-only, permission or full-disk OSError into an InputError saying which path and what to do."""
    try:
        yield
    except OSError as err:
        message = storage_message(err, where)
        if message is None:
            raise
        raise InputError(message) from None


def _conform(arrow: pa.Table, schema: pa.Schema) -> pa.Table:
    """A part as the current schema (old names already renamed): columns added since filled with nulls."""
    if arrow.schema.equals(schema):  # written under the current schema: nothing to cast
        return arrow.replace_schema_metadata(None)
    columns = [
        arrow.column(f.name).cast(f.type) if f.name in arrow.column_names else pa.nulls(len(arrow), f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
