"""Crash-safe resume: a round crashed at a named fault point carries on when run again; nothing measured
is lost, nothing is dispatched twice, and every table still reads whole.

One real crash: a `nanoloop run` that SIGKILLs itself while writing its curves, then run again (slow: two
processes and Prefect). Every fault point also crashes in this process (``crash_at`` of loop/faults.py leaves
the store as a killed process leaves it) and resumes as a fresh process would: the campaign reopened, the
round run again.
"""

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from nanoloop.adapters.registry import build_instruments
from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.config import example_config_text, load_config
from nanoloop.loop.faults import crash_at
from nanoloop.loop.store.doctor import check_store
from nanoloop.loop.store.ledger import Ledger

PLUGINS = Path(__file__).parent / "plugins"
POINTS = ["after-proposal", "ledger-write:events", "after-dispatch", "during-ingest", "ledger-write:curves"]


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


def assert_resumed_like_the_reference(store: Path, lab: Path, reference: Campaign) -> None:
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


@pytest.mark.parametrize("point", POINTS)
def test_a_round_crashed_in_process_resumes_without_loss_or_double_dispatch(point, tmp_path, reference, monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))
    lab, store = tmp_path / "lab", tmp_path / "store"
    lab.mkdir()
    campaign = Campaign(load_config(write_config(tmp_path, lab)), Ledger(store), build_instruments)
    with crash_at(point, store, lab):
        campaign.run_round(0)
    crashed = check_store(str(store))
    assert bool(crashed.temporaries) == point.startswith("ledger-write:")  # a half-written part is left under a hidden name

    Campaign.open(str(store), build_instruments).run_round(0)  # what a new process does
    assert_resumed_like_the_reference(store, lab, reference)
    found = check_store(str(store), repair=True)  # the event log is consistent; `doctor --repair` removes the leftover
    assert not found.unreadable and not found.inconsistencies and found.removed == crashed.temporaries
    assert check_store(str(store)).healthy


@pytest.mark.slow
def test_a_killed_run_resumes_without_loss_or_double_dispatch(tmp_path, prefect_server, reference):
    """`nanoloop run` SIGKILLed between writing its curves' part and moving it into place, then run again."""
    lab, store = tmp_path / "lab", tmp_path / "store"
    lab.mkdir()
    config = write_config(tmp_path, lab)
    crashed = run(config, store, crash_at="ledger-write:curves")
    assert crashed.returncode == -9, crashed.stdout + crashed.stderr  # SIGKILL
    leftovers = list(store.rglob(".*.tmp"))
    assert leftovers  # the crash left its temporary part
    for path in leftovers:  # a run removes temporaries old enough not to be another run's write in progress
        os.utime(path, (time.time() - 3600, time.time() - 3600))

    resumed = run(config, store)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "left by a crashed write" in resumed.stdout + resumed.stderr
    assert not list(store.rglob(".*.tmp")), "the rerun left the crash's temporary files"
    assert_resumed_like_the_reference(store, lab, reference)
