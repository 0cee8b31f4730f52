"""The approval form in the Prefect UI, served by ``nanoloop server`` on a port other than 4200.

A real browser (Debian's chromium, headless, driven by Playwright) opens the
paused round in the Prefect UI, rejects one formulation with a reason through
the form, submits, and the round goes on without it. Slow (a Prefect server of
its own, a campaign run): 1-4 minutes depending on the machine's load.

Screenshots go to the test's tmp_path; set NANOLOOP_SCREENSHOTS=DIR to copy them there too.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from nanoloop.loop.config import example_config_text
from nanoloop.loop.store.ledger import Ledger, latest_status

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")]
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
NANOLOOP = [sys.executable, "-m", "nanoloop.flows.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process started here in its own session, with everything it started (its process group)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    else:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # a child left behind by the finished parent
        except ProcessLookupError:
            pass


def _wait(what: str, check, timeout_s: float, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout_s:.0f} s" + (f"; log:\n{log.read_text()[-3000:]}" if log else ""))
        time.sleep(0.5)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _shot(page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path))
    folder = os.environ.get("NANOLOOP_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / path.name)


@pytest.fixture
def server(tmp_path):
    """The API URL of ``nanoloop server --port P`` (P free, not 4200), stopped with its Prefect child at the end."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_URL", "PREFECT_UI_API_URL", "PREFECT_SERVER_UI_API_URL"))}
    env["PREFECT_API_URL"] = "http://127.0.0.1:4200/api"  # a stale URL in the shell: the server's UI must not follow it
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([*NANOLOOP, "server", "--port", str(port), "--home", str(tmp_path / "prefect-home")],
                                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    try:
        _wait("the Prefect server answers", lambda: _healthy(f"{api}/health"), 300, proc, log)
        yield api
    finally:
        _stop(proc)


def test_reject_one_in_the_prefect_ui_form_on_a_non_default_port(server, tmp_path):
    from playwright.sync_api import sync_playwright

    api = server
    port = int(api.split(":")[2].split("/")[0])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ui-settings", timeout=10) as response:
        assert json.load(response)["api_url"] == api  # the UI calls the API on the chosen port

    config = tmp_path / "campaign.toml"
    config.write_text(example_config_text().replace('name = "demo-sustained-release"', 'name = "ui-form"')
                      .replace("batch_size = 8 ", "batch_size = 3 ").replace("rounds = 3 ", "rounds = 1 "))
    store = tmp_path / "ledger"
    log = tmp_path / "run.log"
    env = {**os.environ, "PREFECT_API_URL": api}
    with open(log, "w") as out:
        run = subprocess.Popen([*NANOLOOP, "run", str(config), str(store), "--rounds", "1", "--approval-timeout-s", "900"],
                               stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        record = store / "blobs" / "approval" / "round-0.json"
        _wait("the round pauses for approval", record.exists, 300, run, log)
        flow_run_id = json.loads(record.read_text())["flow_run_id"]
        waiting = sorted(latest_status(Ledger(store, create=False)).loc[lambda s: s == "proposed"].index)
        assert len(waiting) == 3
        rejected = waiting[0]

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"http://127.0.0.1:{port}/runs/flow-run/{flow_run_id}")
                page.get_by_role("button", name="Resume").click(timeout=120_000)
                body = page.locator(".p-modal__body")
                body.locator("table").first.wait_for(timeout=60_000)
                assert "Round 0: 3 formulations await approval" in body.inner_text()
                for fid in waiting:
                    assert fid in body.inner_text()
                # every table of the batch fits the dialog: no cut-off columns in a 1400 px window
                widths = body.evaluate("b => [...b.querySelectorAll('table')].map(t => [t.scrollWidth, t.parentElement.clientWidth])")
                assert widths and all(scroll <= room for scroll, room in widths), widths
                assert "particle_size_nm" in body.inner_text()
                page.get_by_role("button", name="Add item").click()
                body.locator("textarea").nth(0).fill(rejected)
                body.locator("textarea").nth(1).fill("solvent not in stock")
                _shot(page, tmp_path, "prefect-approval-form")
                page.get_by_role("button", name="Submit").click()
                _wait("the run finishes", lambda: run.poll() is not None, 600, None, log)
            finally:
                browser.close()
        assert run.returncode == 0, log.read_text()[-3000:]
        ledger = Ledger(store, create=False)
        states = latest_status(ledger)
        assert states[rejected] == "rejected"
        events = ledger.read("events")
        assert events.loc[(events["formulation_id"] == rejected) & (events["status"] == "rejected"), "reason"].tolist() == ["solvent not in stock"]
        others = [fid for fid in waiting if fid != rejected]
        assert all(states[fid] in ("measured", "failed") for fid in others)  # the round went on without it
        assert rejected not in set(ledger.read("curves")["formulation_id"])
        assert "round 0: approved 2, rejected 1" in " ".join(log.read_text().split())
    finally:
        _stop(run)
