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
from nanoloop.loop.campaign.evaluation import campaign_status
from nanoloop.loop.store.ledger import Ledger


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
    assert f"run <code>nanoloop explain {html.escape(str(store))} --compute</code>" in _section(report, "What drives release")
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
    # an old store: magnitudes only; the report keeps the bars and says, in one line, how to add the signed effects
    section = _section(report, "What drives release")
    hint = [line for line in section.splitlines() if "No signed effects stored" in line]
    assert len(hint) == 1 and f"run <code>nanoloop explain {html.escape(str(store))} --compute</code>" in hint[0]
    assert 'class="data signed"' not in section and "Partial dependence at" not in section


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


@pytest.mark.parametrize("argv", [["dashboard", "S", "--port", "0"], ["dashboard", "S", "--port", "70000"], ["dashboard", "S", "--poll-s", "0"]])
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


# -- what drives release: signed effects, partial dependence, fixed variables ------------------------
SIGNED = {  # feature -> (size at 24 h, 168 h, 672 h in pct points, signed min->max change or None, per-category detail)
    "peg_fraction": ((0.5, 1.5, 2.5), 2.0, None),
    "drug_logp": ((1.0, 2.0, 3.0), -4.0, None),
    "polymer": ((0.2, 0.3, 0.4), None, "PLA +0.3, PCL -0.2"),
    "particle_size_nm": ((0.06, 0.05, 0.04), 0.05, None),  # under 0.1 over its range: no direction
}
TIMES = (168.0, 24.0, 672.0)  # stored out of order; as text "168" sorts before "24"


def _section(report: str, title: str) -> str:
    start = report.index(f"<h2>{title}</h2>")
    end = report.find("<h2>", start + 4)
    return report[start:end if end > 0 else len(report)]


def _explained_copy(campaign_store, tmp_path, fixed: dict | None = None):
    """A copy of the small campaign with round 1 explained: magnitudes, signed effects (SIGNED) and partial dependence.

    ``fixed``: variables the copy's config fixes, as ``nanoloop run --amend`` stores them.
    """
    import shutil

    from nanoloop.adapters.registry import build_instruments
    from nanoloop.loop.campaign.campaign import Campaign
    from nanoloop.loop.explain.effects import shapley_method

    store = tmp_path / "ledger"
    shutil.copytree(campaign_store[0], store)
    if fixed:
        config = campaign_store[1]
        space = {name: (v.model_copy(update={"value": fixed[name]}) if name in fixed else v) for name, v in config.space.items()}
        Campaign(config.model_copy(update={"space": space}), Ledger(store), build_instruments, amend=True)
    ledger = Ledger(store)
    version = ledger.read("models").query("round == 1")["model_version"].iloc[-1]
    rows = [{"model_version": version, "round": 1, "feature": f, "importance": sizes[0], "method": "permutation_mae_pct"}
            for f, (sizes, _, _) in SIGNED.items()]
    for t in TIMES:
        k = sorted(TIMES).index(t)
        rows += [{"model_version": version, "round": 1, "feature": f, "importance": sizes[k], "method": shapley_method(t), "time_hours": t,
                  "effect_pct": float("nan") if change is None else change, "effect_detail": detail}
                 for f, (sizes, change, detail) in SIGNED.items()]
    ledger.append("explanations", rows)
    ledger.append("partial_dependence", [
        {"model_version": version, "round": 1, "variable": v, "time_hours": t, "value": x, "release_pct": 40 + sign * 5 * x,
         "low_pct": 35 + sign * 5 * x, "high_pct": 45 + sign * 5 * x}
        for v, sign in (("peg_fraction", 1), ("drug_logp", -1)) for t in TIMES for x in (0.0, 0.5, 1.0)])
    return store


def _report_of(store, tmp_path) -> str:
    out = tmp_path / "report.html"
    args = parse(["report", str(store), "--out", str(out)])
    assert args.handler(args) == 0
    return out.read_text(encoding="utf-8")


def _signed_rows(section: str) -> tuple[list[str], list[list[tuple[str, str]]]]:
    """(header, rows of (cell text, cell style)) of the report's signed-effects table."""
    table = section[section.index('<table class="data signed">'):]
    table = table[:table.index("</table>")]
    header = [html.unescape(h) for h in re.findall(r"<th>(.*?)</th>", table)]
    rows = [[(html.unescape(text), style) for style, text in re.findall(r'<td(?: class="\w+")?(?: style="([^"]*)")?[^>]*>(.*?)</td>', row)]
            for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>", 1)[1])]
    return header, rows


def test_report_shows_signed_effects_by_size_in_time_order_with_partial_dependence(campaign_store, tmp_path):
    from nanoloop.dashboard.signed_effects import DIRECTION

    report = _report_of(_explained_copy(campaign_store, tmp_path), tmp_path)
    section = _section(report, "What drives release")
    header, rows = _signed_rows(section)
    assert header == ["variable", "@24h", "@168h", "@672h", "min->max @672h"]  # times in numeric order
    assert [r[0][0] for r in rows] == ["drug_logp", "peg_fraction", "polymer", "particle_size_nm"]  # largest size first
    green, red, grey = (f"color:{DIRECTION[s][0]}" for s in ("+", "-", ""))
    by_name = {r[0][0]: r[1:] for r in rows}
    assert by_name["drug_logp"] == [("-1.00", red), ("-2.00", red), ("-3.00", red), ("-4.0", "")]
    assert by_name["peg_fraction"] == [("+0.50", green), ("+1.50", green), ("+2.50", green), ("+2.0", "")]
    assert by_name["polymer"] == [("0.20", grey), ("0.30", grey), ("0.40", grey), ("PLA +0.3, PCL -0.2", "")]
    assert [c[1] for c in by_name["particle_size_nm"][:3]] == [grey] * 3
    for words in ("+ more speeds release", "- more slows release", "categorical / no clear direction"):  # the dashboard's legend
        assert html.escape(words) in section
    figure = section[:section.index('<table class="data signed">')]
    assert figure.index("release at 24 h") < figure.index("release at 168 h") < figure.index("release at 672 h")
    assert "<h3>Partial dependence at 24 h</h3>" in section and "band (5-95 % of ensemble members)" in section
    curves = section[section.index("<h3>Partial dependence at 24 h</h3>"):]
    assert "drug_logp" in curves and "peg_fraction" in curves and "polymer_mw_kda" not in curves  # only the stored variables
    assert "Feature importance, round 1" in section  # the magnitudes stay, below
    assert "No signed effects stored" not in report and "explanations table is empty" not in report
    scripts = re.findall(r"<script\b[^>]*>", report, flags=re.IGNORECASE)
    assert not any("src=" in s.lower() for s in scripts)  # still self-contained


def test_report_marks_fixed_variables(campaign_store, tmp_path):
    store = _explained_copy(campaign_store, tmp_path, fixed={"drug_logp": 2.1})
    report = _report_of(store, tmp_path)
    assert "Fixed for this campaign (not designed; marked <i>(fixed)</i> below): drug_logp = 2.1." in report
    _, rows = _signed_rows(_section(report, "What drives release"))
    assert [r[0][0] for r in rows] == ["drug_logp (fixed)", "peg_fraction", "polymer", "particle_size_nm"]
    made = _section(report, "Formulations made")
    made = made[made.index("<table"):]
    header = re.findall(r"<th>(.*?)</th>", made[:made.index("</table>")])
    assert "drug_logp (fixed)" in header and "drug_logp" not in header and "peg_fraction" in header
    awaiting = _section(report, "Awaiting approval")
    assert "drug_logp (fixed)" in re.findall(r"<th>(.*?)</th>", awaiting)
    assert "peg_fraction (fixed)" not in report and "polymer (fixed)" not in report
