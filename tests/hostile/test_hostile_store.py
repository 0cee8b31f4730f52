"""Damaged, read-only or full stores, and a changed config: named in one line; views keep working on the rest."""

from __future__ import annotations

import errno
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nanoloop.flows.cli import main
from nanoloop.loop.store import ledger as ledger_module
from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.config import default_config
from nanoloop.loop.errors import InputError
from nanoloop.loop.store.ledger import Ledger


@pytest.fixture
def measured_store(campaign_store):
    """The session's small campaign (tests/conftest.py); the tests damage copies of it."""
    return campaign_store[0]


def _damage(path, how: str) -> None:
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    elif how == "garbage":
        path.write_bytes(b"this is not parquet at all" * 10)
    elif how == "foreign":
        pq.write_table(pa.table({"sample": ["a"], "value": [1.0]}), path)
    elif how == "empty":
        path.write_bytes(b"")


@pytest.mark.parametrize("how", ["truncated", "garbage", "foreign", "empty"])
def test_damaged_part_is_named_views_go_on_and_doctor_quarantines(how, measured_store, tmp_path, capsys):
    import shutil

    store = tmp_path / "store"
    shutil.copytree(measured_store, store)
    part = sorted((store / "curves").glob("part-*.parquet"))[0]
    _damage(part, how)

    assert main(["status", str(store)]) == 0  # the rest is shown
    captured = capsys.readouterr()
    assert part.name in captured.err and "doctor" in captured.err and "Traceback" not in captured.err
    assert main(["report", str(store), "--out", str(tmp_path / "r.html")]) == 0
    assert part.name in capsys.readouterr().err and part.name in (tmp_path / "r.html").read_text()

    with pytest.raises(InputError, match=part.name):  # a run that writes refuses, naming the file
        Campaign.open(str(store)).models.training_data()

    assert main(["doctor", str(store)]) == 1
    assert part.name in capsys.readouterr().out and part.exists()
    assert main(["doctor", str(store), "--repair"]) == 0
    out = capsys.readouterr().out
    assert "quarantined" in out and not part.exists()
    moved = store / "quarantine" / "curves" / part.name
    assert moved.exists() and "because" in (moved.parent / (part.name + ".note.txt")).read_text()
    assert main(["doctor", str(store)]) == 0
    Campaign.open(str(store)).models.training_data()  # usable again


def test_doctor_finds_inconsistent_events_and_crash_leftovers(measured_store, tmp_path, capsys):
    import shutil

    store = tmp_path / "store"
    shutil.copytree(measured_store, store)
    ledger = Ledger(store)
    ledger.append("events", [{"event_id": "x1", "formulation_id": "Fghost", "campaign": "damaged", "round": 0, "status": "measured",
                              "reason": "", "time": pd.Timestamp.now(tz="UTC")}])
    (store / "events" / ".deadbeef.tmp").write_bytes(b"half a part")
    assert main(["doctor", str(store)]) == 1
    out = capsys.readouterr().out
    assert "Fghost" in out and ".deadbeef.tmp" in out
    main(["doctor", str(store), "--repair"])
    assert not (store / "events" / ".deadbeef.tmp").exists()


@pytest.mark.parametrize("code, words", [(errno.EROFS, "read-only"), (errno.ENOSPC, "disk is full"), (errno.EACCES, "permission denied")])
def test_unwritable_store_is_one_line_naming_the_path(code, words, tmp_path, capsys, monkeypatch):
    real_open = open

    def failing_open(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path / "store")) and "w" in (args[0] if args else kwargs.get("mode", "r")):
            raise OSError(code, errno.errorcode[code], str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(ledger_module, "open", failing_open, raising=False)
    assert main(["demo", str(tmp_path / "store"), "--rounds", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err and str(tmp_path / "store") in err, err
    assert not list((tmp_path / "store").rglob("*.json")) and not list((tmp_path / "store").rglob("*.parquet"))


def test_changed_design_space_needs_amend(tmp_path, capsys):
    store = tmp_path / "store"
    config = default_config().model_copy(update={"name": "amended", "batch_size": 2})
    Campaign(config, Ledger(store))
    original = (store / "blobs" / "campaign.json").read_text()
    space = dict(config.space)
    space["particle_size_nm"] = space["particle_size_nm"].model_copy(update={"max": 900.0})
    changed = config.model_copy(update={"space": space})
    with pytest.raises(InputError, match="different space.*--amend"):
        Campaign(changed, Ledger(store))
    assert (store / "blobs" / "campaign.json").read_text() == original
    Campaign(changed, Ledger(store), amend=True)
    assert json.loads((store / "blobs" / "campaign.json").read_text())["space"]["particle_size_nm"]["max"] == 900.0
    kept = list((store / "blobs" / "config-history").glob("campaign-*.json"))
    assert len(kept) == 1 and kept[0].read_text() == original
    events = Ledger(store).read("events")
    assert events["status"].tolist() == ["config-amended"] and "space" in events["reason"].iloc[0]


def test_changed_space_from_the_command_line_is_refused(tmp_path, capsys):
    from hostile_helpers import config_text

    first, second = tmp_path / "a.toml", tmp_path / "b.toml"
    first.write_text(config_text("cli-amend"))
    second.write_text(config_text("cli-amend").replace("max = 0.4", "max = 0.3"))
    store = tmp_path / "store"
    from nanoloop.loop.config import load_config

    Campaign(load_config(first), Ledger(store))
    before = (store / "blobs" / "campaign.json").read_text()
    assert main(["run", str(second), str(store), "--auto-approve"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--amend" in err and len(err.splitlines()) == 1
    assert (store / "blobs" / "campaign.json").read_text() == before


def test_dashboard_names_the_damaged_part_and_shows_the_rest(measured_store, tmp_path):
    import shutil

    from nanoloop.dashboard.app import create_app

    store = tmp_path / "store"
    shutil.copytree(measured_store, store)
    part = sorted((store / "kinetics").glob("part-*.parquet"))[0]
    _damage(part, "garbage")
    client = create_app(str(store)).server.test_client()
    callbacks = client.get("/_dash-dependencies").get_json()
    overview = next(c for c in callbacks if "..problem.children" in c["output"])
    outputs = [{"id": p.split(".")[0], "property": p.split(".")[1]} for p in overview["output"].strip(".").split("...")]
    answer = client.post("/_dash-update-component", json={
        "output": overview["output"], "outputs": outputs, "changedPropIds": ["ledger-version.data"],
        "inputs": [{"id": "ledger-version", "property": "data", "value": "v1"}],
    })
    assert answer.status_code == 200
    body = answer.get_data(as_text=True)
    assert part.name in body and "doctor" in body
    shown = answer.get_json()["response"]
    measured = int((Campaign.open(str(measured_store)).formulations()["status"] == "measured").sum())
    assert measured > 0 and shown["kpi-experiments"]["children"] == str(measured) and shown["problem"]["style"]["display"] == "block"  # the rest is shown


def test_a_store_keeps_its_surrogate_and_a_config_without_one_means_the_blend(tmp_path):
    store = tmp_path / "store"
    config = default_config().model_copy(update={"name": "older"})
    network_alone = config.model_copy(update={"surrogate": config.surrogate.model_copy(update={"model": "ensemble"})})
    Campaign(network_alone, Ledger(store))  # as an earlier nanoloop, whose default was the network alone, stored it
    assert Campaign.open(str(store)).config.surrogate.model == "ensemble"  # reopened from the store: kept
    Campaign(config, Ledger(store))  # rerun from a config that does not say model: the blend, recorded
    assert json.loads((store / "blobs" / "campaign.json").read_text())["surrogate"]["model"] == "blend"
    events = Ledger(store).read("events")
    assert events["status"].tolist() == ["config-changed"] and "surrogate" in events["reason"].iloc[0]
