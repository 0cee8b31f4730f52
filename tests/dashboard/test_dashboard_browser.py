"""The dashboard in a real browser: headless Chromium (Debian's, /usr/bin/chromium) driven by Playwright.

One dashboard process (the registered ``dashboard`` command) is started on a free
port over a store that does not exist yet; the test then puts the small campaign
there, checks the numbers and plots of every view, approves the waiting batch
with the button (which runs ``nanoloop approve``), finishes that round in the
lab, and sees the page follow each change without a restart.

Screenshots go to the test's tmp_path; set NANOLOOP_SCREENSHOTS=DIR to copy them
there as well (the README's docs/screenshots/dashboard.png was made so).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from nanoloop.adapters.registry import build_instruments
from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.campaign.evaluation import campaign_status
from nanoloop.loop.store.ledger import Ledger

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [pytest.mark.slow,  # a dashboard process and a browser
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (`make test` installs it: apt-get install chromium)")]

LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SERVE = """
import argparse, sys
from nanoloop.flows import cli_dashboard
parser = argparse.ArgumentParser(prog="nanoloop")
cli_dashboard.register(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.handler(args))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dashboard(tmp_path):
    """(url, store) of a dashboard process serving a store that does not exist yet; stopped by its PID."""
    store = tmp_path / "ledger"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}  # no Prefect server: the ledger takes approvals
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    log = open(tmp_path / "dashboard.log", "w")
    proc = subprocess.Popen([sys.executable, "-c", SERVE, "dashboard", str(store), "--port", str(port), "--poll-s", "1"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the dashboard did not start: {(tmp_path / 'dashboard.log').read_text()}")
        time.sleep(0.3)
    yield url, store
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1300, "height": 1000})
        finally:
            browser.close()


def _text(page, selector: str) -> str:
    return page.inner_text(selector).strip()


def _wait_text(page, selector: str, expected: str, timeout_s: float = 20.0) -> None:
    """Wait until the element's text equals ``expected`` (the page polls the ledger every second)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            text = _text(page, selector)
        except Exception:  # the element is being replaced by a callback
            text = None
        if text == expected:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{selector}: {text!r} after {timeout_s} s, expected {expected!r}")
        time.sleep(0.2)


def _shot(page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    folder = os.environ.get("NANOLOOP_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / path.name)


def _status(store: Path, config) -> dict:
    return campaign_status(Ledger(store, create=False), config.target, config.name)


def test_dashboard_in_a_browser(dashboard, page, campaign_store, tmp_path):
    url, store = dashboard
    template, config = campaign_store

    # A store that does not exist yet: a clear message, and the page waits for it.
    page.goto(url)
    page.wait_for_selector("#problem-text", timeout=30_000)
    assert "does not exist" in _text(page, "#problem-text")
    assert "Traceback" not in page.content()
    _shot(page, tmp_path, "dashboard-missing-store")

    # The campaign appears: the key numbers are campaign_status's, and the plots are drawn.
    shutil.copytree(template, tmp_path / "copying")
    os.rename(tmp_path / "copying", store)  # appears whole, as a ledger's parts do
    status = _status(store, config)
    _wait_text(page, "#kpi-rounds", str(len(status["rounds"])))
    assert _text(page, "#kpi-best-f2") == f"{status['best']['f2']:.1f}"
    assert status["best"]["formulation_id"] in _text(page, "#kpi-best-f2-note")
    assert _text(page, "#kpi-experiments") == str(sum(r["measured"] for r in status["rounds"]))
    assert _text(page, "#kpi-awaiting") == str(len(status["awaiting_approval"])) == "4"
    assert not page.is_visible("#problem")
    width = page.evaluate("document.querySelector('#fig-best-f2 svg.main-svg').getBoundingClientRect().width")
    assert width > 1000  # drawn across the page, though the views were hidden while the store was missing
    page.wait_for_selector("#fig-best-f2 svg.main-svg")
    page.wait_for_selector("#fig-model-quality svg.main-svg")
    page.wait_for_selector("#fig-best-f2 .scatterlayer .trace")
    assert "Best objective" in page.inner_text("#fig-best-f2")
    assert "prospective error" in page.inner_text("#fig-model-quality")
    assert page.locator("#rounds-table-body tbody tr").count() == 3
    _shot(page, tmp_path, "dashboard")

    # A round's batch: predicted bands against measured curves, one panel per formulation.
    page.click("#tab-batch")
    page.wait_for_selector("#fig-batch svg.main-svg")
    _wait_text_contains(page, "#fig-batch", f"Round 1: 4 formulations, {status['rounds'][1]['measured']} measured")
    assert page.locator("#fig-batch .cartesianlayer .subplot").count() == 4
    _shot(page, tmp_path, "dashboard-round")

    # One formulation: the best one by default, with characterization and kinetics.
    page.click("#tab-formulation")
    page.wait_for_selector("#formulation-kinetics")
    best = status["best"]["formulation_id"]
    assert best in page.inner_text("#fig-formulation")
    assert "size_nm" in _text(page, "#formulation-characterization")
    kinetics = Ledger(store, create=False).read("kinetics").set_index("formulation_id").loc[best]
    assert kinetics["best_model"] in _text(page, "#formulation-kinetics")
    _shot(page, tmp_path, "dashboard-formulation")

    # Feature importance: bars when the campaign stored explanations, else a plain sentence saying there are none.
    page.click("#tab-importance")
    page.wait_for_selector("#fig-importance svg.main-svg")
    if Ledger(store, create=False).read("explanations").empty:
        assert "No feature importance" in _text(page, "#importance-note")
    else:
        page.wait_for_selector("#fig-importance .barlayer .trace")

    # The Insights tab has its own address; its five plots are drawn.
    page.goto(url + "#insights")
    page.wait_for_selector("#fig-parity .scatterlayer .trace", timeout=30_000)
    assert "tab--selected" in (page.get_attribute("#tab-insights", "class") or "")
    for graph, words in (("parity", "Parity"), ("learning", "Learning curve"), ("coverage", "Design-space coverage"),
                         ("failures", "Where failures happen"), ("characterization", "Characterization against release")):
        page.wait_for_selector(f"#fig-{graph} svg.main-svg")
        _wait_text_contains(page, f"#fig-{graph}", words)
    page.wait_for_selector("#fig-coverage .parcoords")
    failed = status["rounds"][0]["failed"] + status["rounds"][1]["failed"]
    assert page.locator("#fig-failures .scatterlayer .trace").count() == 1 + len(Ledger(store, create=False).read("events").query("status == 'failed'")["reason"].unique())
    assert failed >= 1
    _shot(page, tmp_path, "dashboard-insights")

    # Approvals: the review (one column per formulation), predicted curves, an edit previewed, one rejected with a reason.
    page.click("#tab-approvals")
    page.wait_for_function("window.location.hash === '#approvals'", timeout=20_000)  # the address follows the tab
    page.wait_for_selector("#pending-table", timeout=30_000)
    assert page.locator("#pending-table th.formulation-column").count() == 4
    table = _text(page, "#pending-table")
    for row in ("particle_size_nm", "predicted f2", "90 % interval", "release at 24 h (%), target 20", "chosen to", "nearest measured", "failure risk"):
        assert row in table
    fits = page.evaluate("(() => { const t = document.querySelector('#approval-table'); return t.scrollWidth <= t.clientWidth; })()")
    assert fits  # no cut-off columns
    page.wait_for_selector("#fig-approval .scatterlayer .trace")
    edited = status["awaiting_approval"][1]
    page.fill("#edit-text", f"{edited}:particle_size_nm=900")
    page.click("#preview-button")
    page.wait_for_selector("#edit-problem", timeout=30_000)
    assert "particle_size_nm=900 is outside [80, 500]" in _text(page, "#edit-problem")
    page.fill("#edit-text", f"{edited}:particle_size_nm=420")
    page.click("#preview-button")
    page.wait_for_selector(".edit-ok", timeout=60_000)
    assert f"{edited} (edited): predicted f2" in _text(page, ".edit-ok")
    assert page.locator("#pending-table th.formulation-column").count() == 5  # the edit beside the original, re-predicted
    rejected = status["awaiting_approval"][0]
    page.locator("#reject-select label", has_text=rejected).click()
    page.fill("#reject-reason", "too large for the syringe filter")
    _shot(page, tmp_path, "dashboard-approvals")
    page.click("#approve-button")
    page.wait_for_selector("#approval-result", timeout=240_000)  # `nanoloop approve` starts a Python with torch and Prefect: slow on a busy machine
    message = _text(page, "#approval-message")
    assert _text(page, "#approval-result").startswith("✔"), message
    assert "No Prefect server is" in message
    _wait_text(page, "#kpi-awaiting", "0")
    after = _status(store, config)
    round2 = after["rounds"][2]
    assert (round2["approved"], round2["rejected"], after["awaiting_approval"]) == (3, 1, [])
    events = Ledger(store, create=False).read("events")
    assert events.loc[(events["formulation_id"] == rejected) & (events["status"] == "rejected"), "reason"].tolist() == ["too large for the syringe filter"]
    forms = Ledger(store, create=False).read("formulations").set_index("formulation_id")
    edit = forms[forms["origin"] == f"edit-of:{edited}"]
    assert len(edit) == 1 and '"particle_size_nm": 420' in edit["parameters_json"].iloc[0]
    assert edit["predicted_objective"].iloc[0] != forms.loc[edited, "predicted_objective"]  # its own prediction
    page.wait_for_selector("#no-pending")
    _shot(page, tmp_path, "dashboard-approved")

    # The lab finishes round 2: the page shows it without a restart.
    campaign = Campaign(config, Ledger(store), build_instruments)
    campaign.dispatch_synthesis(2)
    campaign.collect_synthesis(2)
    campaign.dispatch_dissolution(2)
    campaign.collect_dissolution(2)
    final = _status(store, config)
    page.click("#tab-overview")
    _wait_text(page, "#kpi-experiments", str(sum(r["measured"] for r in final["rounds"])))
    assert _text(page, "#kpi-best-f2") == f"{final['best']['f2']:.1f}"
    assert _text(page, "#kpi-rounds-note") == f"{sum(1 for r in final['rounds'] if r['measured'] > 0)} with results"


def _wait_text_contains(page, selector: str, part: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while part not in page.inner_text(selector):
        if time.monotonic() > deadline:
            raise AssertionError(f"{selector} does not show {part!r}: {page.inner_text(selector)!r}")
        time.sleep(0.2)
