"""Scheduled campaigns against the session's Prefect server: `nanoloop schedule`, a deployment from
deployments/prefect.yaml run by a process worker, and two runs at once."""

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from nanoloop.loop.campaign.campaign import Campaign
from test_crash_resume import PLUGINS, write_config  # noqa: E402

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _env(**extra):
    return {**os.environ, "PYTHONPATH": str(PLUGINS), **extra}


def _settled(store: Path) -> set:
    return set(Campaign.open(str(store)).formulations()["status"])


def test_two_runs_at_once_never_dispatch_twice(tmp_path, prefect_server):
    lab = tmp_path / "lab"
    lab.mkdir()
    config, store = write_config(tmp_path, lab), tmp_path / "store"
    command = [str(BIN / "nanoloop"), "run", str(config), str(store), "--rounds", "1", "--auto-approve"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env()) for _ in range(2)]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    assert _settled(store) <= {"measured", "failed"} and len(Campaign.open(str(store)).formulations()) == 4
    for kind in ("synthesis", "dissolution"):
        counts = Counter((lab / f"submitted-{kind}.log").read_text().split())
        assert counts and all(n == 1 for n in counts.values()), counts


def _wait_for_deployment(name: str, proc: subprocess.Popen, timeout_s: float = 120):
    from prefect import get_client

    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while True:
            try:
                return client.read_deployment_by_name(name)
            except Exception:
                assert proc is None or proc.poll() is None, proc.stdout.read() if proc else ""
                assert time.monotonic() < deadline, f"deployment {name} never appeared"
                time.sleep(1)


def test_schedule_runs_a_round_on_demand(tmp_path, prefect_server):
    from prefect.deployments import run_deployment

    lab = tmp_path / "lab"
    lab.mkdir()
    config, store = write_config(tmp_path, lab), tmp_path / "store"
    schedule = subprocess.Popen([str(BIN / "nanoloop"), "schedule", str(config), str(store), "--cron", "0 8 * * *", "--auto-approve"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env())
    try:
        deployment = _wait_for_deployment("nanoloop-round/demo-sustained-release-rounds", schedule)
        assert deployment.schedules and deployment.schedules[0].schedule.cron == "0 8 * * *"
        run = run_deployment("nanoloop-round/demo-sustained-release-rounds", timeout=240)
        assert run.state.is_completed(), run.state
    finally:
        schedule.terminate()
        schedule.wait(timeout=30)
    assert _settled(store) <= {"measured", "failed"}


def test_deployment_from_prefect_yaml_on_a_process_worker(tmp_path, prefect_server):
    from prefect.deployments import run_deployment

    lab = tmp_path / "lab"
    lab.mkdir()
    config, store = write_config(tmp_path, lab), tmp_path / "store"
    env = _env(NANOLOOP_ROOT=str(ROOT), NANOLOOP_STORE=str(store), NANOLOOP_CONFIG=str(config))
    prefect = str(BIN / "prefect")
    subprocess.run([prefect, "work-pool", "create", "nanoloop", "--type", "process", "--overwrite"], check=True, env=env, cwd=ROOT, capture_output=True)
    deployed = subprocess.run([prefect, "--no-prompt", "deploy", "--prefect-file", "deployments/prefect.yaml", "--all"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    deployment = _wait_for_deployment("nanoloop-round/daily-round", None)
    assert deployment.parameters["store"] == str(store) and deployment.parameters["auto_approve"] is False

    run = run_deployment("nanoloop-round/daily-round", parameters={"auto_approve": True}, timeout=0)
    worker = subprocess.run([prefect, "worker", "start", "--pool", "nanoloop", "--run-once"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert worker.returncode == 0, worker.stdout[-3000:] + worker.stderr[-3000:]
    from prefect import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run.id).state
    assert state.is_completed(), state
    assert _settled(store) <= {"measured", "failed"}
