"""Dissolution-tester export layouts through the file-drop adapter: one vessel per column, and UV
absorbance per vessel and time converted with a calibration line and the dose."""

import math

import pytest

from nanoloop.adapters.registry import load_instrument
from nanoloop.loop.errors import InputError
from nanoloop.loop.lab.instruments import JobState, WorkItem

from lab_recipes import RECIPE

# absorbance = 20 AU per mg/mL * c + 0.01; calibrated up to 1.2 AU; 50 mL medium, 5 mg dose:
# released % = (A - 0.01) / 20 * 50 / 5 * 100 = (A - 0.01) * 50
UV = {"layout": "uv-absorbance", "calibration": {"slope": 20.0, "intercept": 0.01, "max_absorbance": 1.2},
      "dose_mg": 5.0, "medium_volume_ml": 50.0}


def make_tester(tmp_path, **options):
    inst = load_instrument("file-drop", {"root": str(tmp_path / "lab"), "settle_s": 0, **options}, expected_kind="dissolution")
    inst.submit([WorkItem("F-1", RECIPE), WorkItem("F-2", RECIPE)], timeout_s=5)
    return inst


def drop(tmp_path, name, text):
    (tmp_path / "lab" / "inbox" / name).write_text(text)


def collect(inst):
    return {r.key: r for r in inst.collect(["F-1", "F-2"], timeout_s=5)}


def test_one_vessel_per_column(tmp_path):
    inst = make_tester(tmp_path, layout="wide")
    drop(tmp_path, "export.csv",
         "key,time_min,Vessel 1,Vessel 2,Vessel 3\n"
         "F-1,60,4.2,4.0,N/A\n"
         "F-1,1440,21.7,22.5,N/A\n"
         "F-1,4320,40.0,,N/A\n"    # vessel 2 missed one sample
         "F-2,60,3.0,failed,\n"
         "F-2,1440,failed,failed,\n")
    results = collect(inst)
    one = results["F-1"]
    assert one.state is JobState.DONE and [c.replicate for c in one.curves] == [1, 2]
    assert one.curves[0].times_hours == (1.0, 24.0, 72.0) and one.curves[0].release_pct == (4.2, 21.7, 40.0)
    assert math.isnan(one.curves[1].release_pct[2])
    assert one.reason == "vessel 3 failed: no readings"
    two = results["F-2"]  # only vessel 1 at 1 h survives
    assert two.state is JobState.DONE and [c.replicate for c in two.curves] == [1]
    assert "vessel 2 failed" in two.reason and "vessel 3 failed" in two.reason
    assert one.raw_checksum == two.raw_checksum != ""


def test_wide_export_with_every_vessel_failed_fails_the_key(tmp_path):
    inst = make_tester(tmp_path, layout="wide")
    drop(tmp_path, "export.csv", "key,time_hours,V1,V2\nF-1,1,NA,NA\nF-1,24,NA,NA\nF-2,1,5,6\n")
    results = collect(inst)
    assert results["F-1"].state is JobState.FAILED and "vessel 1 failed" in results["F-1"].reason
    assert results["F-2"].state is JobState.DONE


def test_uv_absorbance_is_converted_through_the_calibration_line_and_the_dose(tmp_path):
    inst = make_tester(tmp_path, **UV)
    drop(tmp_path, "uv.csv",
         "key,vessel,time_hours,absorbance,failure_reason\n"
         "F-1,1,1,0.12,\n"
         "F-1,1,24,0.56,\n"
         "F-1,1,72,1.45,\n"          # above the calibrated range
         "F-1,2,1,0.10,\n"
         "F-1,2,24,0.50,\n"
         "F-1,3,1,0.11,\n"
         "F-1,3,24,,vessel leaked\n"  # a failed vessel
         "F-2,,,,lamp failure\n")
    results = collect(inst)
    one = results["F-1"]
    assert one.state is JobState.DONE and [c.replicate for c in one.curves] == [1, 2]
    assert one.curves[0].times_hours == (1.0, 24.0, 72.0)
    assert one.curves[0].release_pct[:2] == pytest.approx((5.5, 27.5))  # (0.12 - 0.01) * 50, (0.56 - 0.01) * 50
    assert one.curves[1].release_pct == pytest.approx((4.5, 24.5))
    assert math.isnan(one.curves[0].release_pct[2])  # flagged, not extrapolated
    assert "vessel 1 at 72 h: absorbance 1.45 above the calibrated range (max 1.2), reading dropped" in one.reason
    assert "vessel 3 failed: vessel leaked" in one.reason
    assert results["F-2"].state is JobState.FAILED and results["F-2"].reason == "lamp failure"


def test_a_converted_reading_out_of_range_quarantines_the_file(tmp_path):
    inst = make_tester(tmp_path, **dict(UV, dose_mg=0.5))  # a dose ten times too small: 275 % released
    drop(tmp_path, "uv.csv", "key,vessel,time_hours,absorbance\nF-1,1,24,0.56\n")
    assert collect(inst) == {}
    reason = (tmp_path / "lab" / "quarantine" / "uv.csv.reason.txt").read_text()
    assert "line 2: absorbance = 275 % released is outside [-10, 150]" in reason


@pytest.mark.parametrize(
    "options, words",
    [
        (dict(UV, calibration={"slope": 20.0, "intercept": 0.0}), ["calibration", "max_absorbance"]),
        (dict(UV, dose_mg=0), ["dose_mg", "> 0"]),
        (dict(UV, medium_volume_ml=None), ["medium_volume_ml", "number"]),
        ({"layout": "sideways"}, ["layout", "sideways"]),
        ({"layout": "wide", "dose_mg": 5.0}, ["dose_mg", "uv-absorbance"]),
    ],
)
def test_bad_layout_options_are_one_line_input_errors(tmp_path, options, words):
    with pytest.raises(InputError) as err:
        load_instrument("file-drop", {"root": str(tmp_path), **options})
    assert all(w in str(err.value) for w in words) and "\n" not in str(err.value)


def test_a_flagged_reading_reaches_the_campaign_ledger(tmp_path):
    """The campaign keeps what the tester dropped on the formulation's 'measured' event."""
    from nanoloop.loop.campaign.campaign import Campaign
    from nanoloop.loop.config import example_config_text, load_config
    from nanoloop.loop.store.ledger import Ledger
    from nanoloop.adapters.registry import build_instruments

    root = tmp_path / "tester"
    text = example_config_text().replace("batch_size = 8", "batch_size = 2").replace(
        '[instruments.dissolution]\nkind = "simulated-dissolution"\noptions = {}',
        f'[instruments.dissolution]\nkind = "file-drop"\noptions = {{ root = "{root}", settle_s = 0, layout = "uv-absorbance", '
        'calibration = { slope = 20.0, intercept = 0.01, max_absorbance = 1.2 }, dose_mg = 5.0, medium_volume_ml = 50.0 }',
    )
    (tmp_path / "campaign.toml").write_text(text)
    campaign = Campaign(load_config(tmp_path / "campaign.toml"), Ledger(tmp_path / "store"), build_instruments)
    campaign.propose(0)
    campaign.approve(0)
    campaign.dispatch_synthesis(0)
    made = campaign.collect_synthesis(0)["synthesized"]
    assert made
    campaign.dispatch_dissolution(0)
    lines = ["key,vessel,time_hours,absorbance"]
    for key in made:
        lines += [f"{key},1,1,0.2", f"{key},1,24,0.6", f"{key},1,168,1.5", f"{key},2,1,0.21", f"{key},2,24,0.62"]
    (root / "inbox" / "uv.csv").write_text("\n".join(lines) + "\n")
    assert sorted(campaign.collect_dissolution(0, wait_s=5)["measured"]) == sorted(made)
    events = campaign.ledger.read("events")
    notes = events[(events["formulation_id"] == made[0]) & (events["status"] == "measured")]["reason"].iloc[0]
    assert "vessel 1 at 168 h: absorbance 1.5 above the calibrated range" in notes
