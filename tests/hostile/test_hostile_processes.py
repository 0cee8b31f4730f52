"""Nothing gets stuck: silent instruments, SIGTERM and SIGKILL leave no loop and no orphan.

(A run killed mid-write and run again: tests/flows/test_crash_resume.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from hostile_helpers import CLI, config_text, free_port, listening, run_cli
from nanoloop.flows.cli import main
from nanoloop.loop.campaign.campaign import Campaign

pytestmark = pytest.mark.slow

SILENT_LAB = '''
from nanoloop.adapters.simulated.dissolution import SimulatedDissolution
from nanoloop.loop.lab.instruments import JobState


class NeverDone(SimulatedDissolution):
    """Takes every job and never finishes one."""

    def status(self, keys, timeout_s=30.0):
        return {k: JobState.RUNNING for k in keys}

    def collect(self, keys, timeout_s=30.0):
        return []
'''


def _env_without_server() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.pop("NANOLOOP_CRASH_AT", None)
    return env


def test_an_instrument_that_never_finishes_ends_with_a_message(tmp_path, prefect_server):
    (tmp_path / "silent_lab.py").write_text(SILENT_LAB)
    text = config_text("silent").replace('[instruments.dissolution]\nkind = "simulated-dissolution"', '[instruments.dissolution]\nkind = "silent_lab:NeverDone"')
    text = text.replace("[instruments.synthesis]", 'trusted_plugins = ["silent_lab"]\ncollect_wait_s = 2\n[instruments.synthesis]', 1)
    config = tmp_path / "campaign.toml"
    config.write_text(text)
    started = time.monotonic()
    result = run_cli("run", config, tmp_path / "store", "--rounds", "2", "--auto-approve", env={"PYTHONPATH": str(tmp_path)}, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no result came in 2 s" in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 240


def test_sigkill_of_a_run_leaves_no_prefect_server(tmp_path):
    proc = subprocess.Popen([CLI, "demo", str(tmp_path / "S"), "--rounds", "1", "--batch-size", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=_env_without_server())
    port = None
    deadline = time.monotonic() + 180
    for line in proc.stdout:
        if "temporary Prefect server at" in line:
            port = int(line.split("127.0.0.1:")[1].split("/")[0])
            break
        assert time.monotonic() < deadline
    assert port and listening(port)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 15
    while listening(port) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not listening(port), "the temporary Prefect server outlived its run"


def test_sigterm_of_nanoloop_server_stops_the_prefect_server(tmp_path):
    port = free_port()
    proc = subprocess.Popen([CLI, "server", "--port", str(port), "--home", str(tmp_path / "home")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=_env_without_server())
    deadline = time.monotonic() + 180
    while not listening(port):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)
    deadline = time.monotonic() + 10
    while listening(port) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not listening(port), "a child of `nanoloop server` still listens"


def test_paused_run_refuses_a_bad_edit_then_sigterm_ends_it(tmp_path, prefect_server, capsys):
    config = tmp_path / "campaign.toml"
    config.write_text(config_text("paused", batch=2))
    store = tmp_path / "store"
    proc = subprocess.Popen([CLI, "run", str(config), str(store), "--rounds", "1"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
    deadline = time.monotonic() + 120
    while not (store / "blobs" / "approval" / "round-0.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.5)
    time.sleep(3)
    ids = Campaign.open(str(store)).awaiting_approval(0)
    assert main(["approve", str(store), "--edit", f"{ids[0]}:particle_size_nm=900"]) == 2
    err = capsys.readouterr().err.strip()
    assert "particle_size_nm=900 is outside" in err and len(err.splitlines()) == 1
    time.sleep(3)
    assert proc.poll() is None  # not resumed
    assert sorted(Campaign.open(str(store)).awaiting_approval(0)) == sorted(ids)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert time.monotonic() - started < 10 and proc.returncode != 0, out
    assert "Traceback" not in out
