"""Approval by a person: the round flow pauses; `nanoloop approve` resumes it through Prefect's API."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nanoloop.flows.cli import main
from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.config import example_config_text
from nanoloop.adapters.registry import build_instruments

pytestmark = pytest.mark.slow


def write_config(folder: Path, name: str) -> Path:
    text = example_config_text().replace('name = "demo-sustained-release"', f'name = "{name}"').replace("batch_size = 8", "batch_size = 3")
    path = folder / "campaign.toml"
    path.write_text(text)
    return path


def start_run(config: Path, store: Path, *extra: str) -> subprocess.Popen:
    cli = Path(sys.executable).with_name("nanoloop")
    return subprocess.Popen([str(cli), "run", str(config), str(store), "--rounds", "1", *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy())


def wait_for_pause(store: Path, proc: subprocess.Popen, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not (store / "blobs" / "approval" / "round-0.json").exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "the run never paused for approval"
        time.sleep(0.5)
    time.sleep(3)  # the pause is recorded just before the run enters it


def test_run_without_server_or_auto_approve_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert main(["run", str(write_config(tmp_path, "nosrv")), str(tmp_path / "s")]) == 2
    assert "--auto-approve" in capsys.readouterr().err


def test_pause_then_approve_with_a_rejection_and_an_edit(tmp_path, prefect_server, capsys):
    store = tmp_path / "store"
    proc = start_run(write_config(tmp_path, "approval"), store)
    wait_for_pause(store, proc)
    campaign = Campaign.open(str(store))
    waiting = campaign.awaiting_approval(0)
    assert len(waiting) == 3
    assert main(["status", str(store)]) == 0
    assert "awaiting approval: 3" in capsys.readouterr().out

    rejected, edited = waiting[0], waiting[1]
    assert main(["approve", str(store), "--reject", rejected, "--reason", "solvent not in stock", "--edit", f"{edited}:particle_size_nm=150"]) == 0
    assert "resumed paused flow run" in capsys.readouterr().out
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out

    forms = Campaign.open(str(store)).formulations().set_index("formulation_id")
    assert forms.loc[rejected, "status"] == "rejected"
    assert forms.loc[edited, "status"] == "edited"
    edit = forms[forms["origin"] == f"edit-of:{edited}"]
    assert len(edit) == 1 and json.loads(edit["parameters_json"].iloc[0])["particle_size_nm"] == 150
    assert edit["status"].iloc[0] in ("measured", "failed")
    events = campaign.ledger.read("events")
    assert events.query("formulation_id == @rejected and status == 'rejected'")["reason"].tolist() == ["solvent not in stock"]
    assert events.query("formulation_id == @rejected and status == 'dispatched'").empty  # never made


def test_pause_timeout_leaves_the_batch_awaiting_then_terminal_approval(tmp_path, prefect_server, capsys):
    store = tmp_path / "store"
    config = write_config(tmp_path, "timeout")
    proc = start_run(config, store, "--approval-timeout-s", "2")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "approval timed out" in out
    campaign = Campaign.open(str(store))
    assert len(campaign.awaiting_approval(0)) == 3 and campaign.ledger.read("characterization").empty

    assert main(["approve", str(store)]) == 0
    assert "approved 3 formulations of round 0 in the ledger" in capsys.readouterr().out
    proc = start_run(config, store)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert set(Campaign.open(str(store)).formulations()["status"]) <= {"measured", "failed"}


def test_approve_with_bad_input(tmp_path, capsys):
    from nanoloop.loop.config import default_config
    from nanoloop.loop.store.ledger import Ledger

    campaign = Campaign(default_config().model_copy(update={"name": "bad", "batch_size": 2}), Ledger(tmp_path), build_instruments)
    assert main(["approve", str(tmp_path)]) == 2
    assert "no batch awaits approval" in capsys.readouterr().err
    ids = campaign.propose(0)
    assert main(["approve", str(tmp_path), "--reject", "Fnope"]) == 2
    assert "not awaiting approval" in capsys.readouterr().err
    assert main(["approve", str(tmp_path), "--edit", f"{ids[0]}:particle_size_nm=5000"]) == 2
    assert "particle_size_nm=5000 is outside" in capsys.readouterr().err
    assert campaign.awaiting_approval(0) == sorted(ids) or set(campaign.awaiting_approval(0)) == set(ids)
