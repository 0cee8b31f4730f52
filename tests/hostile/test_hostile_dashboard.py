"""The dashboard's approve buttons need the approval token: a POST to Dash's callback endpoint without it changes nothing."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from hostile_helpers import CLI, assert_one_line_error, free_port, run_cli
from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.config import default_config
from nanoloop.loop.store.ledger import Ledger

pytestmark = pytest.mark.slow
TOKEN = "dr-lee:s3cret-approval-token"


def _request(url: str, body: dict | None = None, secret: str | None = None):
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["Authorization"] = "Basic " + base64.b64encode(f"anyone:{secret}".encode()).decode()
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _approve_payload(base: str, secret: str, ids: list[str]) -> dict:
    _, raw = _request(f"{base}/_dash-dependencies", secret=secret)
    callback = next(c for c in json.loads(raw) if any(i["id"] == "approve-button" for i in c["inputs"]))
    outputs = [{"id": part.split(".")[0], "property": part.split(".")[1]} for part in callback["output"].strip(".").split("...")]
    return {
        "output": callback["output"], "outputs": outputs, "changedPropIds": ["approve-button.n_clicks"],
        "inputs": [{"id": "approve-button", "property": "n_clicks", "value": 1}, {"id": "reject-all-button", "property": "n_clicks", "value": 0}],
        "state": [{"id": "reject-select", "property": "value", "value": []},
                  {"id": "reject-select", "property": "options", "value": [{"label": i, "value": i} for i in ids]},
                  {"id": "reject-reason", "property": "value", "value": ""},
                  {"id": "edit-text", "property": "value", "value": ""}],
    }


def test_callback_without_token_changes_nothing_and_with_it_records_who(tmp_path):
    store = tmp_path / "store"
    campaign = Campaign(default_config().model_copy(update={"name": "guarded", "batch_size": 2}), Ledger(store))
    from nanoloop.adapters.registry import build_instruments

    ids = Campaign(campaign.config, Ledger(store), build_instruments).propose(0)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["NANOLOOP_DASHBOARD_TOKEN"] = TOKEN
    proc = subprocess.Popen([CLI, "dashboard", str(store), "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                status, _ = _request(f"{base}/", secret="s3cret-approval-token")
                if status == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.5)
        payload = _approve_payload(base, "s3cret-approval-token", ids)
        for secret in (None, "wrong-token-123"):
            status, _ = _request(f"{base}/_dash-update-component", payload, secret=secret)
            assert status == 401
        assert sorted(campaign.awaiting_approval(0)) == sorted(ids)  # nothing changed
        status, body = _request(f"{base}/_dash-update-component", payload, secret="s3cret-approval-token")
        assert status == 200, body
        events = Ledger(store).read("events").query("status == 'approved'")
        assert len(events) == 2 and set(events["reason"]) == {"approved by dr-lee"}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_binding_beyond_loopback_needs_a_token(tmp_path):
    env = {"NANOLOOP_DASHBOARD_TOKEN": ""}
    result = run_cli("dashboard", tmp_path, "--host", "0.0.0.0", "--port", free_port(), env=env, timeout=60)
    assert_one_line_error(result, "0.0.0.0", "token")
