"""Fault points: an in-process crash leaves a store exactly as a process killed at the same point leaves it."""

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from nanoloop.loop.faults import SimulatedCrash, crash_at, fault_point
from nanoloop.loop.store.ledger import Ledger

# one curve part written whole, then a second one crashed between its temporary file and the move into place
WRITE = """
import sys
from nanoloop.loop.store.ledger import Ledger
ledger = Ledger(sys.argv[1])
row = lambda fid: {"formulation_id": fid, "replicate": 0, "time_hours": 24.0, "release_pct": 40.0, "instrument": "t", "raw_checksum": ""}
ledger.append("curves", [row("F1")])
if len(sys.argv) > 2:
    import os
    os.environ["NANOLOOP_CRASH_AT"] = sys.argv[2]
ledger.append("curves", [row("F2")])
"""


def _write(store: Path, crash_at_env: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WRITE, str(store), *([crash_at_env] if crash_at_env else [])],
                          capture_output=True, text=True, timeout=120)


def _layout(store: Path) -> list[tuple[str, str, int]]:
    """(folder, kind of file, size): part and temporary names are random, what they hold is not."""
    def kind(name: str) -> str:
        return "part" if name.startswith("part-") else "temporary" if name.startswith(".") and name.endswith(".tmp") else name
    return sorted((str(p.parent.relative_to(store)), kind(p.name), p.stat().st_size) for p in store.rglob("*") if p.is_file())


def test_an_in_process_crash_leaves_what_a_sigkill_leaves(tmp_path):
    killed = _write(tmp_path / "killed", "ledger-write:curves")
    assert killed.returncode == -9, killed.stderr

    store = tmp_path / "crashed"
    ledger = Ledger(store)
    row = {"formulation_id": "F1", "replicate": 0, "time_hours": 24.0, "release_pct": 40.0, "instrument": "t", "raw_checksum": ""}
    ledger.append("curves", [row])
    with crash_at("ledger-write:curves", store):
        ledger.append("curves", [{**row, "formulation_id": "F2"}])
        raise AssertionError("the crash ends the block")

    assert _layout(store) == _layout(tmp_path / "killed")
    # what both left: the first part in place, the second written whole under a hidden temporary name, unread
    assert list(Ledger(store).read("curves")["formulation_id"]) == ["F1"]
    (temporary,) = (store / "curves").glob(".*.tmp")
    assert list(pq.read_table(temporary).to_pandas()["formulation_id"]) == ["F2"]
    assert not list(tmp_path.glob(".*crash-*")), "the hard links kept during the crash are removed"


def test_what_the_way_out_writes_or_deletes_is_undone(tmp_path):
    (tmp_path / "kept.txt").write_text("before")
    (tmp_path / "old.txt").write_text("old")

    def step():
        try:
            (tmp_path / "sub").mkdir()
            (tmp_path / "sub" / "written.txt").write_text("before the point")
            fault_point("after-dispatch")
            (tmp_path / "never.txt").write_text("after the point")
        finally:  # cleanup that a killed process never runs
            (tmp_path / "old.txt").unlink()
            (tmp_path / "sub" / "written.txt").unlink()
            (tmp_path / "cleanup.txt").write_text("on the way out")
            os.replace(tmp_path / "kept.txt", tmp_path / "moved.txt")

    with crash_at("after-dispatch", tmp_path):
        step()
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == ["kept.txt", "old.txt", "sub/written.txt"]
    assert (tmp_path / "kept.txt").read_text() == "before"


def test_a_crash_is_a_base_exception_no_except_exception_catches_and_happens_once():
    reached = []

    def step():
        try:
            fault_point("during-ingest")
        except Exception:  # what nanoloop's own handlers catch
            reached.append("caught")
        reached.append("after")

    assert issubclass(SimulatedCrash, BaseException) and not issubclass(SimulatedCrash, Exception)
    with crash_at("during-ingest"):
        step()
        step()  # never runs: the crash ended the block
    assert reached == []
    step()  # disarmed once the block ends
    assert reached == ["after"]


def test_a_point_never_reached_fails_the_block():
    with pytest.raises(AssertionError, match="'during-import' was never reached"):
        with crash_at("during-import"):
            fault_point("after-proposal")

