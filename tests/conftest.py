"""Test-session setup: Prefect offline and quiet under a temporary home, one
Prefect server for the whole session (started on a free loopback port, stopped by PID),
and the small campaign that the dashboard and review tests read (made once per session)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

_HOME = tempfile.mkdtemp(prefix="nanoloop-prefect-home-")
os.environ.update(
    {
        "PREFECT_HOME": _HOME,
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        "MPLBACKEND": "Agg",
    }
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def prefect_server():
    """The API URL of a Prefect server shared by the session (PREFECT_API_URL if already set)."""
    existing = os.environ.get("PREFECT_API_URL")
    if existing:
        yield existing
        return
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    log = open(Path(_HOME) / "server.log", "w")
    prefect = Path(sys.executable).with_name("prefect")
    proc = subprocess.Popen([str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"Prefect server did not start; see {log.name}")
        time.sleep(0.5)
    os.environ["PREFECT_API_URL"] = url
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def small_campaign_config():
    """4 formulations a batch, a shrunk surrogate, candidate search and GP fit: the tests read what a campaign stores, not how good it is."""
    from nanoloop.loop.config import default_config

    config = default_config()
    return config.model_copy(update={
        "name": "dash", "batch_size": 4,
        "surrogate": config.surrogate.model_copy(update={"members": 3, "epochs": 60, "hidden": 32}),
        "acquisition": config.acquisition.model_copy(update={"pool_size": 256, "refine_starts": 2, "refine_steps": 2, "gp_restarts": 0}),
    })


@pytest.fixture(scope="session")
def campaign_store(tmp_path_factory):
    """(path, config) of a small campaign's ledger, made without Prefect: two measured rounds of 4 (with failed
    syntheses) and a third batch awaiting approval. Read it only: copy it (shutil.copytree) to change it."""
    from nanoloop.adapters.registry import build_instruments
    from nanoloop.loop.campaign.campaign import Campaign
    from nanoloop.loop.store.ledger import Ledger

    store = tmp_path_factory.mktemp("small-campaign") / "ledger"
    config = small_campaign_config()
    campaign = Campaign(config, Ledger(store), build_instruments)
    for r in range(2):
        campaign.run_round(r)
    campaign.propose(2)  # leaves a batch awaiting approval
    return store, config


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_HOME, ignore_errors=True)
