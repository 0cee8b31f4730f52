"""The liquid handler that makes the batch: volumes from the stock table, checks before anything runs,
transfers through PyLabRobot's chatterbox backend, the worklist and plate map as the raw record."""

import csv
import hashlib
import io
import json
from pathlib import Path

import pytest

from nanoloop.adapters.liquid_handler.instrument import LiquidHandlerSynthesis
from nanoloop.adapters.registry import build_instruments, load_instrument
from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.config import example_config_text, load_config
from nanoloop.loop.errors import InputError
from nanoloop.loop.lab.instruments import JobState, PermanentInstrumentError, WorkItem
from nanoloop.loop.store.ledger import Ledger

from lab_recipes import RECIPE

STOCKS = [
    {"name": "PLGA5050-20k", "role": "polymer", "polymer": "PLGA 50:50", "mw_kda": 20, "mg_per_ml": 50, "volume_ml": 40},
    {"name": "PLGA5050-60k", "role": "polymer", "polymer": "PLGA 50:50", "mw_kda": 60, "mg_per_ml": 50, "volume_ml": 40},
    {"name": "drug", "role": "drug", "mg_per_ml": 10, "volume_ml": 20, "dead_volume_ml": 1.0},
    {"name": "PEG", "role": "peg", "mg_per_ml": 10, "volume_ml": 20},
    {"name": "pH excipient", "role": "excipient", "mg_per_ml": 20, "volume_ml": 20},
    {"name": "acetone", "role": "solvent", "volume_ml": 50},
    {"name": "water", "role": "antisolvent", "volume_ml": 50},
]
# polymer_mg 5; organic phase 400 µL; antisolvent 1500 µL; pipette 10-1000 µL (the defaults)
A = dict(RECIPE, polymer_mw_kda=30, drug_loading_pct=10, peg_fraction=0.1, ph_responsive_fraction=0.0)
B = dict(RECIPE, polymer_mw_kda=60, drug_loading_pct=20, peg_fraction=0.0, ph_responsive_fraction=0.2)
# Hand-computed, µL. A: 30 kDa = 75 % of 20k + 25 % of 60k (by mass): 3.75 mg -> 75, 1.25 mg -> 25;
# PEG 0.5 mg -> 50; drug 10/90 * 5.5 mg = 0.6111 mg -> 61.1; acetone 400 - 211.1 = 188.9; water 1500.
EXPECTED_A = {"acetone": 188.9, "PLGA5050-20k": 75.0, "PLGA5050-60k": 25.0, "drug": 61.1, "PEG": 50.0, "water": 1500.0}
# B: 60 kDa stock alone, 5 mg -> 100; excipient 1 mg at 20 mg/mL -> 50; drug 20/80 * 6 mg = 1.5 mg -> 150;
# acetone 400 - 300 = 100; water 1500.
EXPECTED_B = {"acetone": 100.0, "PLGA5050-60k": 100.0, "drug": 150.0, "pH excipient": 50.0, "water": 1500.0}


def handler(tmp_path, **options) -> LiquidHandlerSynthesis:
    return load_instrument("liquid-handler-synthesis", {"state_dir": str(tmp_path / "lh"), "stocks": STOCKS, **options},
                           expected_kind="synthesis")


def read_csv(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_dispensed_volumes_per_well_match_hand_computed_values(tmp_path):
    lh = handler(tmp_path)
    lh.submit([WorkItem("F-A", A), WorkItem("F-B", B)], timeout_s=30)
    run = lh.last_run
    # what PyLabRobot's backend dispensed, per well and stock
    assert {stock: v for (well, stock), v in run.dispensed_ul.items() if well == "A1"} == EXPECTED_A
    assert {stock: v for (well, stock), v in run.dispensed_ul.items() if well == "B1"} == EXPECTED_B
    # what its volume tracker holds in each well: the organic phase plus the antisolvent
    assert run.well_volume_ul == {"A1": 1900.0, "B1": 1900.0}
    # 1500 µL of water is two aspirations with a 1000 µL pipette
    (record,) = (tmp_path / "lh" / "runs").iterdir()
    worklist = read_csv(record / "worklist.csv")
    assert [r["aspirations_ul"] for r in worklist if r["stock"] == "water"] == ["750 750", "750 750"]
    assert [r["stock"] for r in worklist if r["formulation"] == "F-A"][0] == "acetone"  # organic phase first
    assert [r["stock"] for r in worklist if r["formulation"] == "F-A"][-1] == "water"  # antisolvent last
    assert {(r["well"], r["stock"]): float(r["volume_ul"]) for r in worklist} == run.dispensed_ul
    # stocks drawn down by exactly the batch
    assert lh.levels_ul["drug"] == pytest.approx(20_000 - 61.1 - 150.0)
    assert lh.levels_ul["water"] == pytest.approx(50_000 - 3000)


def test_the_raw_record_and_its_checksum(tmp_path):
    lh = handler(tmp_path)
    lh.submit([WorkItem("F-A", A)], timeout_s=30)
    (result,) = lh.collect(["F-A"], timeout_s=5)
    assert result.state is JobState.DONE and result.characterization is not None
    record = tmp_path / "lh" / "runs" / result.raw_checksum[:16]
    sums = (record / "SHA256SUMS").read_bytes()
    assert hashlib.sha256(sums).hexdigest() == result.raw_checksum
    for line in sums.decode().splitlines():  # sha256sum -c format
        digest, name = line.split("  ")
        assert hashlib.sha256((record / name).read_bytes()).hexdigest() == digest
    (row,) = read_csv(record / "plate_map.csv")
    assert row["well"] == "A1" and row["status"] == "made" and float(row["in_well_ul"]) == 1900.0
    assert "Dispensing" in (record / "backend.log").read_text()


def test_unbuildable_formulations_fail_alone_with_the_reason_before_anything_runs(tmp_path):
    low_drug = [dict(s, volume_ml=1.2) if s["name"] == "drug" else s for s in STOCKS]
    lh = handler(tmp_path, stocks=low_drug)
    tiny_peg = dict(A, peg_fraction=0.01)  # 0.05 mg of PEG = 5 µL < 10 µL minimum
    too_heavy = dict(A, polymer_mw_kda=100)  # no stock above 60 kDa
    items = [WorkItem("F-A", A), WorkItem("F-peg", tiny_peg), WorkItem("F-mw", too_heavy), WorkItem("F-B", B)]
    lh.submit(items, timeout_s=30)
    results = {r.key: r for r in lh.collect([i.key for i in items], timeout_s=5)}
    assert results["F-A"].state is JobState.DONE
    assert results["F-peg"].state is JobState.FAILED and "5 µL of stock 'PEG' is below the pipette minimum" in results["F-peg"].reason
    assert results["F-mw"].state is JobState.FAILED and "bracket 100 kDa" in results["F-mw"].reason
    # the drug stock (1.2 mL, 1.0 mL dead volume) holds 200 µL usable: after F-A (61.1) only 138.9 are left for F-B's 150
    assert results["F-B"].state is JobState.FAILED and "stock 'drug' runs out: needs 150.0 µL, 138.9 µL usable left" in results["F-B"].reason
    # only F-A went to the robot
    assert {well for well, _ in lh.last_run.dispensed_ul} == {"A1"}
    assert lh.levels_ul["drug"] == pytest.approx(1200 - 61.1)
    (record,) = (tmp_path / "lh" / "runs").iterdir()
    status = {r["formulation"]: r["status"] for r in read_csv(record / "plate_map.csv")}
    assert status == {"F-A": "made", "F-peg": "not made", "F-mw": "not made", "F-B": "not made"}


def test_a_key_is_made_once_across_restarts_and_stock_levels_persist(tmp_path):
    lh = handler(tmp_path)
    lh.submit([WorkItem("F-A", A)], timeout_s=30)
    again = handler(tmp_path)  # a new process
    again.submit([WorkItem("F-A", A)], timeout_s=30)
    assert again.last_run is None and len(list((tmp_path / "lh" / "runs").iterdir())) == 1
    assert again.status(["F-A", "F-x"]) == {"F-A": JobState.DONE, "F-x": JobState.UNKNOWN}
    assert again.levels_ul == lh.levels_ul
    with pytest.raises(PermanentInstrumentError, match="different recipe") as err:
        again.submit([WorkItem("F-A", B)], timeout_s=30)
    assert err.value.item_key == "F-A"
    refilled = handler(tmp_path, stocks=[dict(s, volume_ml=30) if s["name"] == "water" else s for s in STOCKS])
    assert refilled.levels_ul["water"] == 30_000 and refilled.levels_ul["drug"] == lh.levels_ul["drug"]


def test_a_subclass_swaps_in_another_backend(tmp_path):
    """README: a real robot is a subclass whose backend() returns e.g. STARBackend()."""
    from nanoloop.adapters.liquid_handler.deck import RecordingChatterbox

    class CountingBackend(RecordingChatterbox):
        setups = 0

        async def setup(self):
            CountingBackend.setups += 1
            await super().setup()

    class MyRobot(LiquidHandlerSynthesis):
        def backend(self):
            return CountingBackend()

    robot = MyRobot(state_dir=tmp_path / "robot", stocks=STOCKS)
    robot.submit([WorkItem("F-A", A)], timeout_s=30)
    assert CountingBackend.setups == 1 and robot.status(["F-A"]) == {"F-A": JobState.DONE}


def test_a_recipe_outside_the_design_space_is_refused_before_anything_runs(tmp_path):
    lh = handler(tmp_path)
    with pytest.raises(PermanentInstrumentError) as err:
        lh.submit([WorkItem("F-A", A), WorkItem("F-bad", dict(A, drug_loading_pct=80))], timeout_s=30)
    assert err.value.item_key == "F-bad" and lh.last_run is None


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda s: s[:-1], ["antisolvent"]),
        (lambda s: [*s, dict(s[0])], ["PLGA5050-20k", "twice"]),
        (lambda s: [dict(s[0], mg_per_ml=-5), *s[1:]], ["stocks'[1]", "mg_per_ml"]),
        (lambda s: [*s[:2], dict(s[2], colour="red"), *s[3:]], ["[3]", "colour"]),
        (lambda s: [dict(s[0], volume_ml=500), *s[1:]], ["60 mL trough"]),
    ],
)
def test_a_bad_stock_table_is_a_one_line_input_error(tmp_path, edit, words):
    with pytest.raises(InputError) as err:
        handler(tmp_path, stocks=edit(STOCKS))
    assert all(w in str(err.value) for w in words) and "\n" not in str(err.value)
    with pytest.raises(InputError, match="pipette_min_ul"):
        handler(tmp_path, pipette_min_ul=2000)


def campaign_config(folder: Path) -> Path:
    """The example config with the liquid handler named in [instruments.synthesis] and a full stock table."""
    polymers = ["PLGA 50:50", "PLGA 75:25", "PLA", "PCL"]
    rows = [f'  {{ name = "{p} {mw} kDa", role = "polymer", polymer = "{p}", mw_kda = {mw}, mg_per_ml = 50, volume_ml = 30 }},'
            for p in polymers for mw in (10, 120)]
    rows += ['  { name = "drug", role = "drug", mg_per_ml = 20, volume_ml = 30 },',
             '  { name = "PEG-PLGA", role = "peg", mg_per_ml = 20, volume_ml = 30 },',
             '  { name = "pH excipient", role = "excipient", mg_per_ml = 20, volume_ml = 30 },',
             '  { name = "acetone", role = "solvent", volume_ml = 55 },',
             '  { name = "water", role = "antisolvent", volume_ml = 55 },']
    section = ('[instruments.synthesis]\nkind = "liquid-handler-synthesis"\n'
               f'[instruments.synthesis.options]\nstate_dir = "{folder / "lh"}"\npolymer_mg = 5.0\n'
               'pipette_min_ul = 1.0\npipette_max_ul = 1000.0\nstocks = [\n' + "\n".join(rows) + "\n]\n")
    text = example_config_text().replace("batch_size = 8", "batch_size = 4")
    text = text.replace('[instruments.synthesis]\nkind = "simulated-synthesis"\noptions = {}\n', section)
    path = folder / "campaign.toml"
    path.write_text(text)
    return path


def test_a_campaign_config_names_the_liquid_handler_and_a_round_runs(tmp_path):
    config = load_config(campaign_config(tmp_path))
    assert type(build_instruments(config)["synthesis"]) is LiquidHandlerSynthesis
    campaign = Campaign(config, Ledger(tmp_path / "store"), build_instruments)
    campaign.run_round(0)
    forms = campaign.formulations()
    assert len(forms) == 4 and set(forms["status"]) <= {"measured", "failed"}
    jobs = json.loads((tmp_path / "lh" / "jobs.json").read_text())
    assert set(jobs) == set(forms["formulation_id"])
    chars = campaign.ledger.read("characterization")
    assert len(chars) >= 1 and set(chars["instrument"]) == {"liquid-handler-synthesis"}
    for checksum in chars["raw_checksum"]:
        assert (tmp_path / "lh" / "runs" / checksum[:16] / "worklist.csv").exists()
