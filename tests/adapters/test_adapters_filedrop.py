"""The file-drop adapter, with result files written by a separate process."""

import csv
import hashlib
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from nanoloop.adapters.filedrop import FileDropInstrument
from nanoloop.loop.lab.instruments import Instrument, JobState, PermanentInstrumentError, WorkItem

RECIPE = dict(polymer="PLGA 50:50", polymer_mw_kda=30, drug_logp=2.0, drug_loading_pct=10,
              particle_size_nm=200, peg_fraction=0.1, ph_responsive_fraction=0.0, medium_ph=7.4)
TIMES = (1, 24, 72, 168)


def result_rows(keys, replicates=2):
    lines = ["key,replicate,time_hours,dissolved_pct"]
    for key in keys:
        for rep in range(1, replicates + 1):
            lines += [f"{key},{rep},{t},{min(5 + 0.4 * t, 100):.2f}" for t in TIMES]
    return "\n".join(lines) + "\n"


WRITER = textwrap.dedent("""
    import sys, time
    path, pause = sys.argv[1], float(sys.argv[2])
    lines = sys.stdin.buffer.read().splitlines(keepends=True)
    with open(path, "wb") as fh:
        for i, line in enumerate(lines):
            fh.write(line)
            fh.flush()
            if i == 0:
                print("started", flush=True)
            time.sleep(pause)
    print("finished", flush=True)
""")


def start_writer(path, content, pause_s):
    """A separate process writing ``content`` (str or bytes) line by line into ``path``."""
    data = content.encode() if isinstance(content, str) else content
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(pause_s)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    proc.stdin.write(data)
    proc.stdin.close()
    assert proc.stdout.readline().strip() == b"started"
    return proc


def write_by_subprocess(path, content):
    finish(start_writer(path, content, 0.0))


def finish(proc):
    assert proc.stdout.read().strip() == b"finished"
    proc.stdout.close()
    assert proc.wait(timeout=30) == 0


@pytest.fixture
def lab(tmp_path):
    inst = FileDropInstrument(tmp_path / "lab", settle_s=0.2)
    inst.submit([WorkItem("F-1", RECIPE), WorkItem("F-2", dict(RECIPE, medium_ph=6.0))])
    return inst


def pick_up_worklists(inst):
    """What the instrument software does: take the worklists out of the outbox."""
    for path in inst.folders["outbox"].glob("worklist-*.csv"):
        path.unlink()


def names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_conforms_to_the_protocol(tmp_path):
    inst = FileDropInstrument(tmp_path, kind="synthesis")
    assert isinstance(inst, Instrument) and inst.kind == "synthesis"
    assert inst.describe()["result_columns"][0] == "key"
    assert inst.status(["nope"]) == {"nope": JobState.UNKNOWN}


def test_submit_writes_one_worklist_atomically_and_is_idempotent(lab):
    (worklist,) = lab.folders["outbox"].iterdir()
    rows = list(csv.DictReader(worklist.read_text().splitlines()))
    assert [(r["key"], r["vessel"], r["medium_ph"]) for r in rows] == [("F-1", "1", "7.4"), ("F-2", "2", "6.0")]
    assert names(lab.folders["sent"]) == [worklist.name]
    lab.submit([WorkItem("F-1", RECIPE)])
    assert len(names(lab.folders["outbox"])) == 1 and not any(n.endswith(".part") for n in names(worklist.parent))
    assert lab.status(["F-1", "F-9"]) == {"F-1": JobState.QUEUED, "F-9": JobState.UNKNOWN}
    pick_up_worklists(lab)
    assert lab.status(["F-1"]) == {"F-1": JobState.RUNNING}
    with pytest.raises(PermanentInstrumentError):
        lab.submit([WorkItem("a,b", RECIPE)])


def test_a_file_still_being_written_is_not_read_until_it_settles(lab):
    pick_up_worklists(lab)
    target = lab.folders["inbox"] / "run-001.csv"
    writer = start_writer(target, result_rows(["F-1", "F-2"]), pause_s=0.05)
    assert lab.collect(["F-1", "F-2"], timeout_s=5) == []  # it grew between the two looks
    assert names(lab.folders["inbox"]) == ["run-001.csv"] and names(lab.folders["quarantine"]) == []
    finish(writer)
    expected = hashlib.sha256(target.read_bytes()).hexdigest()
    got = lab.collect(["F-1", "F-2"], timeout_s=5)
    assert [r.key for r in got] == ["F-1", "F-2"]
    assert all(r.state is JobState.DONE and r.raw_checksum == expected for r in got)
    assert [c.times_hours for c in got[0].curves] == [(1, 24, 72, 168)] * 2
    assert names(lab.folders["inbox"]) == [] and names(lab.folders["archive"]) == [f"{expected[:12]}-run-001.csv"]
    assert lab.status(["F-1"]) == {"F-1": JobState.DONE}


def test_temporary_names_are_left_alone_until_renamed(lab):
    part = lab.folders["inbox"] / "run-002.csv.part"
    write_by_subprocess(part, result_rows(["F-1"]))
    time.sleep(0.25)
    assert lab.collect(["F-1"]) == [] and part.exists()
    part.rename(lab.folders["inbox"] / "run-002.csv")
    assert [r.key for r in lab.collect(["F-1"])] == ["F-1"]


def test_a_settled_file_seen_in_an_earlier_call_is_read_without_waiting(lab):
    write_by_subprocess(lab.folders["inbox"] / "r.csv", result_rows(["F-2"]))
    assert lab.status(["F-2"], timeout_s=0.1)["F-2"] is not JobState.DONE  # no time to wait for it
    time.sleep(0.25)
    started = time.monotonic()
    assert lab.status(["F-2"], timeout_s=5) == {"F-2": JobState.DONE}
    assert time.monotonic() - started < 0.15


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"key,replicate,time_hours\nF-1,1,24\n", "missing column"),
        (result_rows(["F-1"]).replace("14.60", "400").encode(), "outside"),
        (result_rows(["F-1"]).replace("F-1,1,72", "F-1,1,24").encode(), "twice"),
        (result_rows(["F-1"]).replace(",1,24,", ",x,24,").encode(), "replicate"),
        (b"\xff\xfe\x00garbage\x00", "UTF-8"),
        (result_rows(["F-7"]).encode(), "never submitted"),
        (b"key,replicate,time_hours,dissolved_pct\n", "no data rows"),
    ],
)
def test_bad_files_go_to_quarantine_with_the_reason(lab, content, reason):
    write_by_subprocess(lab.folders["inbox"] / "bad.csv", content)
    time.sleep(0.25)
    assert lab.collect(["F-1", "F-7"]) == []
    assert names(lab.folders["quarantine"]) == ["bad.csv", "bad.csv.reason.txt"]
    assert reason in (lab.folders["quarantine"] / "bad.csv.reason.txt").read_text()
    assert names(lab.folders["inbox"]) == [] and lab.status(["F-1"]) == {"F-1": JobState.QUEUED}


def test_a_file_is_never_ingested_twice(lab):
    text = result_rows(["F-1"])
    write_by_subprocess(lab.folders["inbox"] / "a.csv", text)
    time.sleep(0.25)
    first = lab.collect(["F-1"])
    write_by_subprocess(lab.folders["inbox"] / "a.csv", text)  # the instrument exports it again
    write_by_subprocess(lab.folders["inbox"] / "b.csv", text.replace("5.40", "6.00"))  # same key, other data
    time.sleep(0.25)
    assert lab.collect(["F-1"]) == first
    assert len(names(lab.folders["archive"])) == 1
    reasons = {p.name: p.read_text() for p in lab.folders["quarantine"].glob("*.reason.txt")}
    assert "already ingested" in reasons["a.csv.reason.txt"]
    assert "already have results" in reasons["b.csv.reason.txt"]
    again = FileDropInstrument(lab.folders["inbox"].parent, settle_s=0.2)  # a restarted process
    assert again.collect(["F-1"]) == first


def test_failure_reason_marks_the_key_failed(lab):
    text = "key,replicate,time_hours,dissolved_pct,failure_reason\nF-2,,,,vessel 2 leaked\n"
    write_by_subprocess(lab.folders["inbox"] / "f.csv", text)
    time.sleep(0.25)
    (result,) = lab.collect(["F-2"])
    assert result.state is JobState.FAILED and result.reason == "vessel 2 leaked"


def test_synthesis_layout(tmp_path):
    inst = FileDropInstrument(tmp_path, kind="synthesis", settle_s=0.0)
    inst.submit([WorkItem("F-1", RECIPE)])
    write_by_subprocess(
        inst.folders["inbox"] / "dls.csv",
        "key,size_nm,pdi,zeta_mv,encapsulation_efficiency_pct,drug_loading_pct\nF-1,212.5,0.11,-24.0,81.0,8.2\n",
    )
    (result,) = inst.collect(["F-1"])
    assert result.characterization.size_nm == 212.5 and result.characterization.zeta_mv == -24.0


def test_cancel_writes_a_cancel_list(lab):
    lab.cancel(["F-2", "F-9"])
    (cancel,) = lab.folders["outbox"].glob("cancel-*.csv")
    assert cancel.read_text() == "key\nF-2\n"
    assert lab.status(["F-1", "F-2"]) == {"F-1": JobState.QUEUED, "F-2": JobState.CANCELLED}


def test_outbox_and_inbox_may_live_elsewhere(tmp_path):
    inst = FileDropInstrument(tmp_path / "lab", outbox=tmp_path / "share" / "in", inbox=tmp_path / "share" / "out")
    inst.submit([WorkItem("F-1", RECIPE)])
    assert len(list((tmp_path / "share" / "in").glob("worklist-*.csv"))) == 1
    shutil.rmtree(tmp_path / "share" / "in")
    (tmp_path / "share" / "in").mkdir()
    assert inst.status(["F-1"]) == {"F-1": JobState.RUNNING}
