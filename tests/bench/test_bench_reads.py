"""The reads benchmark, tiny: its store grows like a campaign, and it prints every figure."""

import importlib.util
from pathlib import Path

import pytest

from nanoloop.dashboard.data import key_numbers, load_snapshot
from nanoloop.loop.campaign.evaluation import campaign_status
from nanoloop.loop.store.ledger import Ledger
from nanoloop.loop.store.stored_config import read_stored_config

_PATH = Path(__file__).resolve().parents[2] / "bench" / "bench_reads.py"
_spec = importlib.util.spec_from_file_location("bench_reads", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_the_store_has_a_campaigns_parts_and_reads_as_one(tmp_path):
    store = tmp_path / "store"
    assert bench.build_store(store, 3) == 10 + 2 * 13  # round 0 has no model, explanations or partial dependence
    ledger = Ledger(store, create=False)
    config = read_stored_config(ledger)
    status = campaign_status(ledger, config.target, config.name)
    assert [r["measured"] for r in status["rounds"]] == [8, 8, 7] and [r["failed"] for r in status["rounds"]] == [0, 0, 1]
    assert status["rounds"][-1]["prospective_mae"] is not None and not status["awaiting_approval"]
    assert key_numbers(load_snapshot(store))["experiments"] == 23


@pytest.mark.slow
def test_bench_prints_each_figure_for_each_store(capsys):
    bench.main(["--rounds", "1", "--repeats", "1"])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "store of 1 rounds, 10 parts, 8 formulations (median of 1, ms):"
    assert [line.strip().rsplit(" ", 1)[0].strip() for line in out[1:]] == [label.strip() for label in bench.FIGURES.values()]
