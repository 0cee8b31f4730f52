"""``nanoloop report`` and the command-line checks of ``nanoloop dashboard``."""

from __future__ import annotations

import argparse
import html
import re
import socket

import pytest

from nanoloop.dashboard.report import write_report
from nanoloop.flows import cli_dashboard
from nanoloop.loop.errors import InputError
from nanoloop.loop.evaluation import campaign_status
from nanoloop.loop.ledger import Ledger


def parse(argv):
    parser = argparse.ArgumentParser(prog="nanoloop")
    cli_dashboard.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def report(campaign_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "sub" / "report.html"
    args = parse(["report", str(campaign_store[0]), "--out", str(out)])
    assert args.handler(args) == 0
    return out.read_text(encoding="utf-8")


def test_report_is_self_contained(report):
    scripts = re.findall(r"<script\b[^>]*>", report, flags=re.IGNORECASE)
    assert scripts and not any("src=" in s.lower() for s in scripts)  # plotly.js inline, nothing fetched
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "", report, flags=re.IGNORECASE | re.DOTALL)  # the page, less the code
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", markup, flags=re.IGNORECASE)  # no stylesheet, image or font fetched
    assert "@import" not in markup
    assert "cdn.plot.ly" not in markup
    assert len(report) > 1_000_000  # plotly.js itself (about 4.6 MB) is inside
    assert report.count("Plotly.newPlot") >= 6  # best f2, model quality, three rounds, best formulation


def test_report_shows_the_campaigns_numbers(report, campaign_store):
    store, config = campaign_store
    status = campaign_status(Ledger(store, create=False), config.target, config.name)
    assert '<meta charset="utf-8">' in report
    assert f"{status['best']['f2']:.1f}" in report and status["best"]["formulation_id"] in report
    for fid in status["awaiting_approval"]:
        assert fid in report
    assert Ledger(store, create=False).read("explanations").empty  # the small campaign computes none
    assert "explanations table is empty" in report and "Feature importance, round" not in report
    assert "Round 2: 4 formulations await approval" in report


def test_report_shows_stored_feature_importance(campaign_store, tmp_path):
    import shutil

    store = tmp_path / "ledger"
    shutil.copytree(campaign_store[0], store)
    ledger = Ledger(store, create=False)
    version = ledger.read("models")["model_version"].iloc[-1]
    ledger.append("explanations", [{"model_version": version, "round": 1, "feature": f, "importance": v, "method": "permutation"}
                                   for f, v in (("particle_size_nm", 0.7), ("drug_loading_pct", 0.2))])
    out = tmp_path / "report.html"
    args = parse(["report", str(store), "--out", str(out)])
    assert args.handler(args) == 0
    report = out.read_text(encoding="utf-8")
    assert "Feature importance, round 1" in report and "explanations table is empty" not in report


def test_report_of_a_missing_or_empty_store_is_an_input_error(tmp_path, capsys):
    args = parse(["report", str(tmp_path / "nothing"), "--out", str(tmp_path / "r.html")])
    with pytest.raises(InputError, match="does not exist"):
        args.handler(args)
    args = parse(["report", str(tmp_path), "--out", str(tmp_path / "r.html")])
    with pytest.raises(InputError, match="holds no campaign"):
        args.handler(args)
    assert not (tmp_path / "r.html").exists()
    with pytest.raises(InputError, match="is a folder"):
        write_report(tmp_path, tmp_path)


def test_dashboard_refuses_a_file_store_and_a_busy_port(tmp_path):
    (tmp_path / "file").write_text("x")
    args = parse(["dashboard", str(tmp_path / "file")])
    with pytest.raises(InputError, match="is a file"):
        args.handler(args)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        args = parse(["dashboard", str(tmp_path), "--port", str(busy.getsockname()[1])])
        with pytest.raises(InputError, match="is in use"):
            args.handler(args)


@pytest.mark.parametrize("argv", [["dashboard", "S", "--port", "0"], ["dashboard", "S", "--port", "70000"], ["dashboard", "S", "--poll", "0"]])
def test_dashboard_bad_options_are_usage_errors(argv):
    with pytest.raises(SystemExit) as exit_:
        parse(argv)
    assert exit_.value.code == 2


def test_report_has_the_scientists_plots_and_a_formulation_table_with_recipes_and_reasons(report, campaign_store):
    store, config = campaign_store
    for title in ("Parity: predicted before measuring", "Learning curve", "Design-space coverage", "Where failures happen", "Characterization against release"):
        assert title in report
    table = report[report.index("<h2>Formulations made</h2>"):]
    table = table[:table.index("</table>")]
    header = re.findall(r"<th>(.*?)</th>", table)
    assert {"reason", "polymer", "particle_size_nm", "drug_loading_pct", "actual_drug_loading_pct", "f2"} <= set(header)
    failed = Ledger(store, create=False).read("events").query("status == 'failed'")
    assert len(failed) and all(html.escape(reason) in table for reason in failed["reason"])
    assert "<h3>Failures by reason</h3>" in report
