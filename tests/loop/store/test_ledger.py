import os

import pandas as pd
import pyarrow.parquet as pq
import pytest

from nanoloop.loop.errors import InputError
from nanoloop.loop.store.ledger import Ledger, latest_status


def _curve_rows(fid, n=3):
    return [{"formulation_id": fid, "replicate": 0, "time_hours": float(t), "release_pct": 10.0 * t, "instrument": "sim", "raw_checksum": ""} for t in range(1, n + 1)]


def test_round_trip_and_pandas_readable(tmp_path):
    ledger = Ledger(tmp_path / "store")
    assert ledger.append("curves", _curve_rows("F1")) == 3
    back = ledger.read("curves")
    assert back["release_pct"].tolist() == [10.0, 20.0, 30.0]
    direct = pd.read_parquet(tmp_path / "store" / "curves")
    assert len(direct) == 3
    schema = pq.read_schema(next((tmp_path / "store" / "curves").glob("part-*.parquet")))
    assert schema.metadata[b"nanoloop.schema_version"] == b"2"


def test_same_rows_twice_change_nothing(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.append("curves", _curve_rows("F1"))
    parts = sorted(os.listdir(tmp_path / "curves"))
    assert ledger.append("curves", _curve_rows("F1")) == 0
    assert sorted(os.listdir(tmp_path / "curves")) == parts
    assert ledger.append("curves", _curve_rows("F1", 4)) == 1
    assert len(ledger.read("curves")) == 4


def test_failing_write_leaves_no_partial_file(tmp_path, monkeypatch):
    ledger = Ledger(tmp_path)
    ledger.append("curves", _curve_rows("F1"))
    before = ledger.read("curves")

    def explode(table, handle, *a, **k):
        handle.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr("nanoloop.loop.store.ledger.pq.write_table", explode)
    with pytest.raises(OSError, match="disk full"):
        ledger.append("curves", _curve_rows("F2"))
    monkeypatch.undo()
    assert sorted(p for p in os.listdir(tmp_path / "curves")) == sorted(p for p in os.listdir(tmp_path / "curves") if p.startswith("part-"))
    pd.testing.assert_frame_equal(ledger.read("curves"), before)


def test_bad_rows_write_nothing(tmp_path):
    ledger = Ledger(tmp_path)
    with pytest.raises(ValueError, match="lack column"):
        ledger.append("curves", [{"formulation_id": "F1"}])
    with pytest.raises(ValueError, match="curves"):
        ledger.append("curves", [{**_curve_rows("F1")[0], "release_pct": "lots"}])
    assert not (tmp_path / "curves").exists() or not list((tmp_path / "curves").iterdir())


def test_store_that_is_a_file(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(InputError, match="is a file"):
        Ledger(path)
    with pytest.raises(InputError, match="does not exist"):
        Ledger(tmp_path / "nope", create=False)


def test_uri_store_and_blobs(tmp_path):
    ledger = Ledger(f"file://{tmp_path}/remote")
    ledger.append("curves", _curve_rows("F1"))
    ledger.write_blob("models/m.pt", b"weights")
    again = Ledger(f"file://{tmp_path}/remote")
    assert len(again.read("curves")) == 3
    assert again.read_blob("models/m.pt") == b"weights"
    assert again.read_blob("models/other.pt") is None


def test_latest_status(tmp_path):
    ledger = Ledger(tmp_path)
    t = pd.Timestamp("2026-01-01", tz="UTC")
    rows = [
        {"event_id": "1", "formulation_id": "F1", "campaign": "c", "round": 0, "status": "proposed", "reason": "", "time": t},
        {"event_id": "2", "formulation_id": "F1", "campaign": "c", "round": 0, "status": "approved", "reason": "", "time": t},
        {"event_id": "3", "formulation_id": "F2", "campaign": "c", "round": 0, "status": "proposed", "reason": "", "time": t},
        {"event_id": "4", "formulation_id": "F2", "campaign": "c", "round": 0, "status": "rejected", "reason": "too big", "time": t + pd.Timedelta("1s")},
    ]
    ledger.append("events", rows)
    assert latest_status(ledger).to_dict() == {"F1": "approved", "F2": "rejected"}


def test_a_schema_1_ledger_reads_with_the_measured_loading_renamed(tmp_path):
    """Ledgers written before schema 2 named the measured loading like the recipe's; it reads as actual_drug_loading_pct."""
    import pyarrow as pa

    (tmp_path / "characterization").mkdir()
    (tmp_path / "events").mkdir()
    old = pa.table({"formulation_id": ["F1"], "size_nm": [210.0], "pdi": [0.1], "zeta_mv": [-20.0], "encapsulation_efficiency_pct": [80.0],
                    "drug_loading_pct": [7.5], "instrument": ["sim"], "raw_checksum": [""]})
    pq.write_table(old.replace_schema_metadata({"nanoloop.schema_version": "1"}), tmp_path / "characterization" / "part-00000000000000000001-old.parquet")
    events = pa.table({"event_id": ["e1"], "formulation_id": ["F1"], "campaign": ["c"], "round": pa.array([0], pa.int32()),
                       "status": ["measured"], "reason": [""], "time": pa.array([pd.Timestamp("2026-01-01", tz="UTC")], pa.timestamp("us", tz="UTC"))})
    pq.write_table(events, tmp_path / "events" / "part-00000000000000000001-old.parquet")
    ledger = Ledger(tmp_path)
    chars = ledger.read("characterization")
    assert chars["actual_drug_loading_pct"].tolist() == [7.5] and "drug_loading_pct" not in chars.columns
    read = ledger.read("events")
    assert read["status"].tolist() == ["measured"] and read["measured_objective"].isna().all()
    ledger.append("characterization", [{**chars.iloc[0].to_dict(), "formulation_id": "F2"}])
    assert sorted(ledger.read("characterization")["formulation_id"]) == ["F1", "F2"]


def _count_part_reads(monkeypatch) -> list[str]:
    """Record the path of every part the ledger reads from storage."""
    reads: list[str] = []
    original = Ledger.read_part

    def counting(self, path, table):
        reads.append(path)
        return original(self, path, table)

    monkeypatch.setattr(Ledger, "read_part", counting)
    return reads


def test_a_ledger_reads_each_part_once_and_sees_what_is_appended_later(tmp_path, monkeypatch):
    writer = Ledger(tmp_path)
    for fid in ("F1", "F2", "F3"):
        writer.append("curves", _curve_rows(fid))
    writer.read("curves")  # the writer has read every part, so its next append reads none
    reads = _count_part_reads(monkeypatch)
    reader = Ledger(tmp_path, create=False)
    assert len(reader.read("curves")) == 9 and len(reads) == 3
    assert len(reader.read("curves")) == 9 and len(reads) == 3  # nothing new: no part read again
    writer.append("curves", _curve_rows("F4"))  # another process's append
    assert sorted(set(reader.read("curves")["formulation_id"])) == ["F1", "F2", "F3", "F4"]
    assert len(reads) == 4 and reads[-1] not in reads[:3]  # only the new part was read


def test_changing_a_read_frame_changes_no_later_read(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.append("curves", _curve_rows("F1"))
    first = ledger.read("curves")
    first.loc[0, "release_pct"] = -1.0
    first["formulation_id"] = "changed"
    first["extra"] = 1
    again = ledger.read("curves")
    assert again["release_pct"].tolist() == [10.0, 20.0, 30.0] and set(again["formulation_id"]) == {"F1"}
    assert "extra" not in again.columns


def test_a_removed_part_drops_out_of_the_next_read(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.append("curves", _curve_rows("F1"))
    ledger.append("curves", _curve_rows("F2"))
    assert len(ledger.read("curves")) == 6
    os.remove(ledger.part_paths("curves")[0])  # as `nanoloop doctor --repair` moves a part to quarantine
    assert set(ledger.read("curves")["formulation_id"]) == {"F2"}


def test_a_damaged_part_is_skipped_by_a_view_and_read_once_restored(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.append("curves", _curve_rows("F1"))
    ledger.append("curves", _curve_rows("F2"))
    damaged = ledger.part_paths("curves")[1]
    good = open(damaged, "rb").read()
    open(damaged, "wb").write(b"not parquet")
    viewer = Ledger(tmp_path, tolerant=True)
    assert set(viewer.read("curves")["formulation_id"]) == {"F1"} and damaged in viewer.unreadable
    with pytest.raises(InputError, match="unreadable ledger part.*nanoloop doctor"):
        Ledger(tmp_path).read("curves")
    open(damaged, "wb").write(good)  # restored (e.g. from a backup): read, not remembered as unreadable
    assert set(viewer.read("curves")["formulation_id"]) == {"F1", "F2"}


def test_parts_summary_changes_with_an_append_and_reads_no_part(tmp_path, monkeypatch):
    ledger = Ledger(tmp_path)
    ledger.append("curves", _curve_rows("F1"))
    reads = _count_part_reads(monkeypatch)
    before = ledger.parts_summary()
    assert dict((t, n) for t, n, _ in before) == {**{t: 0 for t, _, _ in before}, "curves": 1}
    assert ledger.parts_summary() == before
    ledger.append("curves", _curve_rows("F2"))
    assert ledger.parts_summary() != before
    assert reads == [ledger.part_paths("curves")[0]]  # only append's duplicate check read a part, not the summaries
