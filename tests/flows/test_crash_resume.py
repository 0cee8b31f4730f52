"""Crash-safe resume: SIGKILL a real `nanoloop run` at named fault points, run again, and check
that the campaign carries on, nothing measured is lost and nothing is dispatched twice."""

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.config import example_config_text, load_config
from nanoloop.loop.store.ledger import Ledger
from nanoloop.adapters.registry import build_instruments

pytestmark = pytest.mark.slow
PLUGINS = Path(__file__).parent / "plugins"


def write_config(folder: Path, lab: Path) -> Path:
    text = example_config_text().replace("batch_size = 8", "batch_size = 4")
    for role, cls in (("synthesis", "CountingSynthesis"), ("dissolution", "CountingDissolution")):
        text = text.replace(
            f'[instruments.{role}]\nkind = "simulated-{role}"\noptions = {{}}',
            f'[instruments.{role}]\nkind = "counting_lab:{cls}"\noptions = {{ seed = 7, state_dir = "{lab}" }}',
        )
    text = text.replace("[instruments.synthesis]", 'trusted_plugins = ["counting_lab"]\n\n[instruments.synthesis]', 1)
    path = folder / "campaign.toml"
    path.write_text(text)
    return path


def run(config: Path, store: Path, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PLUGINS)}
    env.pop("NANOLOOP_CRASH_AT", None)
    if crash_at:
        env["NANOLOOP_CRASH_AT"] = crash_at
    cli = Path(sys.executable).with_name("nanoloop")
    return subprocess.run([str(cli), "run", str(config), str(store), "--rounds", "1", "--auto-approve"], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same round run without a crash, in-process, without Prefect."""
    folder = tmp_path_factory.mktemp("reference")
    sys.path.insert(0, str(PLUGINS))
    try:
        campaign = Campaign(load_config(write_config(folder, folder / "lab")), Ledger(folder / "store"), build_instruments)
        campaign.run_round(0)
    finally:
        sys.path.remove(str(PLUGINS))
    return campaign


def _sorted_curves(ledger: Ledger) -> pd.DataFrame:
    curves = ledger.read("curves")[["formulation_id", "replicate", "time_hours", "release_pct"]]
    return curves.sort_values(["formulation_id", "replicate", "time_hours"]).reset_index(drop=True)


@pytest.mark.parametrize("point", ["after-proposal", "ledger-write:events", "after-dispatch", "during-ingest", "ledger-write:curves"])
def test_killed_run_resumes_without_loss_or_double_dispatch(point, tmp_path, prefect_server, reference):
    lab, store = tmp_path / "lab", tmp_path / "store"
    lab.mkdir()
    config = write_config(tmp_path, lab)
    crashed = run(config, store, crash_at=point)
    assert crashed.returncode == -9, crashed.stdout + crashed.stderr  # SIGKILL

    resumed = run(config, store)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    campaign = Campaign.open(str(store))
    forms = campaign.formulations()
    assert len(forms) == 4 and set(forms["status"]) <= {"measured", "failed"}
    # the same batch, the same results as a run that never crashed
    assert sorted(forms["formulation_id"]) == sorted(reference.formulations()["formulation_id"])
    pd.testing.assert_frame_equal(_sorted_curves(campaign.ledger), _sorted_curves(reference.ledger))
    # every key reached each instrument once, crash or not
    synthesized = set(campaign.ledger.read("characterization")["formulation_id"])
    for kind, expected in (("synthesis", set(forms["formulation_id"])), ("dissolution", synthesized)):
        log = lab / f"submitted-{kind}.log"
        assert log.exists(), f"the {kind} instrument logged no submission"
        counts = Counter(log.read_text().split())
        assert set(counts) == expected and all(n == 1 for n in counts.values()), (kind, counts)
    # no half-written part is visible: every table still reads whole
    for table in ("formulations", "events", "curves", "characterization"):
        pd.read_parquet(store / table)
