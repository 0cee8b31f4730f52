"""Hostile input to `nanoloop kinetics fit`: one row per bad file, so the next probe adds a row.

Each row: a file name and content, extra arguments, the exit code, a phrase of
the message, and the stream it is on. Exit 2 must be one line on stderr
("nanoloop: error: ..."); exit 0 says what it did per curve.
"""

import pytest

from nanoloop.flows.cli import main

CASES = [
    # id, file name, content, extra args, exit code, phrase, stream
    ("decimal-commas-in-a-comma-file", "c.csv", "time,release\n1,5,09\n2,10,5\n4,20,1\n", [], 2,
     "c.csv line 2: 3 fields ('1,5,09') but the header has 2 (time, release); decimal commas in a "
     "comma-separated file?", "err"),
    ("a-line-with-too-few-fields", "c.csv", "time,release\n1,5\n2\n4,20\n", [], 2,
     "c.csv line 3: 1 fields ('2') but the header has 2", "err"),
    ("ambiguous-separators", "c.csv", "time;release,pct\n1;2,5\n2;4,5\n", [], 2,
     "ambiguous separators: both ',' and ';' split every line", "err"),
    ("no-separator", "c.csv", "time release\n1 2\n", [], 2, "no separator found in the header", "err"),
    ("semicolons-with-decimal-commas-are-read", "c.csv", "time;release\n1;5,09\n2;10,5\n4;20,1\n8;35,2\n", [], 0,
     "semicolon-separated, decimal commas", "out"),
    ("release-minus-5-is-flagged", "c.csv", "time,release\n0,-5\n1,10\n2,20\n4,35\n8,50\n", [], 0,
     "flag: 1 point(s) below 0 % kept as measured (lowest -5 % at 0 h)", "out"),
    ("release-minus-5-in-json-notes", "c.csv", "time,release\n0,-5\n1,10\n2,20\n4,35\n8,50\n", ["--json"], 0,
     '"1 point(s) below 0 % kept as measured (lowest -5 % at 0 h)"', "out"),
    ("release-120-is-flagged", "c.csv", "time,release\n1,20\n2,60\n4,100\n8,120\n", [], 0,
     "flag: 1 point(s) above 100 % kept as measured (highest 120 % at 8 h)", "out"),
    ("release-153-skips-that-curve", "c.csv", "curve,time,release\nA,1,20\nA,2,60\nA,4,153\nB,1,10\nB,2,20\nB,4,40\n",
     [], 0, "skipped: curve 'A' in c.csv: release 153 % is outside the accepted -10 to 150 %", "out"),
    ("release-153-warning-count", "c.csv", "curve,time,release\nA,1,20\nA,2,60\nA,4,153\nB,1,10\nB,2,20\nB,4,40\n",
     [], 0, "nanoloop: warning: 1 curve(s) skipped", "err"),
    ("release-153-strict-refuses", "c.csv", "curve,time,release\nA,1,20\nA,2,60\nA,4,153\nB,1,10\nB,2,20\nB,4,40\n",
     ["--strict"], 2, "curve 'A' in c.csv: release 153 % is outside the accepted -10 to 150 %", "err"),
    ("release-minus-15-only-curve-refused", "c.csv", "time,release\n0,-15\n1,10\n2,20\n", [], 2,
     "release -15 % is outside the accepted -10 to 150 %", "err"),
    ("decreasing-cumulative-release-is-flagged", "c.csv", "time,release\n1,20\n2,40\n4,30\n8,50\n", [], 0,
     "flag: cumulative release falls 1 time(s) by more than 2 % (most: 10 % from 2 h to 4 h)", "out"),
    ("all-nan-curve-skipped", "c.csv", "curve,time,release\nA,1,\nA,2,\nB,1,10\nB,2,20\nB,4,40\n", [], 0,
     "skipped: curve 'A' in c.csv: time or release is missing or not a number on line 2, line 3 (no usable point)",
     "out"),
    ("only-a-single-point", "c.csv", "time,release\n1,10\n", [], 2, "has a single point", "err"),
    ("empty-file", "c.csv", "", [], 2, "c.csv: empty file", "err"),
    ("header-only", "c.csv", "time,release\n", [], 2, "no data rows", "err"),
    ("old-excel", "c.xls", "not really excel", [], 2, "old .xls workbooks are not read", "err"),
    ("broken-xlsx", "c.xlsx", "not a zip", [], 2, "not a readable .xlsx workbook", "err"),
    ("time-unit-contradicts-the-header", "c.csv", "Time (min),release\n30,10\n60,25\n", ["--time-unit", "h"], 2,
     "the time column 'Time (min)' is in min but --time-unit h was given", "err"),
    ("minutes-in-the-header-are-converted", "c.csv", "Time (min),release\n30,10\n60,25\n120,40\n", [], 0,
     "time in min from the header 'Time (min)', converted to h", "out"),
    ("no-time-column", "c.csv", "hours,release\n1,10\n2,20\n", [], 2, "no time column (columns: hours, release)", "err"),
]


@pytest.mark.parametrize("name, content, args, code, phrase, stream", [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_hostile_curve_file(tmp_path, capsys, name, content, args, code, phrase, stream):
    path = tmp_path / name
    path.write_text(content)
    assert main(["kinetics", "fit", str(path), "--top", "1", *args]) == code
    captured = capsys.readouterr()
    assert phrase in (captured.out if stream == "out" else captured.err)
    if code == 2:
        assert captured.out == ""
        assert captured.err.startswith("nanoloop: error: ") and len(captured.err.strip().splitlines()) == 1
