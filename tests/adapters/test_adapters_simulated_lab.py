"""The simulated instruments: protocol, determinism, idempotency, clock, journal."""

import json
import subprocess
import sys
import textwrap

import pytest

from nanoloop.loop.lab.instruments import Instrument, JobResult, JobState, PermanentInstrumentError, WorkItem
from nanoloop.adapters.simulated import SimulatedDissolution, SimulatedSynthesis, VirtualClock
from nanoloop.loop.errors import InputError

from lab_recipes import QUIET, RECIPE  # noqa: E402


def items(n=6, **context):
    return [WorkItem(f"F-{i}", dict(RECIPE, drug_loading_pct=2 + 3 * i), dict(context)) for i in range(n)]


def run(inst, batch):
    inst.submit(batch)
    return {r.key: r for r in inst.collect([it.key for it in batch])}


@pytest.mark.parametrize("cls", [SimulatedSynthesis, SimulatedDissolution])
def test_conforms_to_the_protocol(cls):
    inst = cls()
    assert isinstance(inst, Instrument)
    assert inst.kind in ("synthesis", "dissolution") and inst.name
    facts = inst.describe()
    assert facts["kind"] == inst.kind and facts["name"] == inst.name
    assert inst.status(["never"]) == {"never": JobState.UNKNOWN}
    assert inst.collect(["never"]) == []
    inst.cancel(["never"])  # unknown keys are ignored


def test_dissolution_describes_its_sampling_plan():
    facts = SimulatedDissolution().describe()
    assert facts["sampling_times_hours"] == [1, 4, 8, 24, 48, 72, 120, 168, 240, 336, 504, 672]
    assert facts["replicates"] == 3 and facts["duration_hours"] == 672


@pytest.mark.parametrize("cls", [SimulatedSynthesis, SimulatedDissolution])
def test_same_seed_same_results_across_instances_other_seed_differs(cls):
    a, b, c = run(cls(seed=3), items()), run(cls(seed=3), items()), run(cls(seed=4), items())
    assert a == b
    assert a != c


def test_result_depends_on_the_key_not_on_the_batch_or_order():
    batch = items()
    alone = run(SimulatedDissolution(seed=1), [batch[3]])
    together = run(SimulatedDissolution(seed=1), list(reversed(batch)))
    assert alone["F-3"] == together["F-3"]


def test_a_new_process_resubmitting_a_key_gets_the_identical_result():
    script = textwrap.dedent(f"""
        import json
        from nanoloop.loop.lab.instruments import WorkItem
        from nanoloop.adapters.simulated import SimulatedDissolution
        inst = SimulatedDissolution(seed=11)
        inst.submit([WorkItem("F-x", {RECIPE!r})])
        print(json.dumps(inst.collect(["F-x"])[0].to_dict()))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    theirs = JobResult.from_dict(json.loads(out.stdout))
    ours = run(SimulatedDissolution(seed=11), [WorkItem("F-x", RECIPE)])["F-x"]
    assert theirs == ours


def test_same_key_twice_is_done_once():
    inst = SimulatedSynthesis(seed=2)
    inst.submit([WorkItem("F-1", RECIPE)])
    first = inst.collect(["F-1"])
    inst.submit([WorkItem("F-1", RECIPE), WorkItem("F-1", RECIPE)])
    assert inst.submissions_received == 3 and inst.jobs_run == 1
    assert inst.collect(["F-1"]) == first


def test_same_key_with_another_recipe_is_refused():
    inst = SimulatedSynthesis()
    inst.submit([WorkItem("F-1", RECIPE)])
    with pytest.raises(PermanentInstrumentError, match="different recipe") as err:
        inst.submit([WorkItem("F-1", dict(RECIPE, medium_ph=6.0))])
    assert err.value.item_key == "F-1"


def test_a_bad_recipe_rejects_the_whole_batch_and_names_key_and_item():
    inst = SimulatedDissolution()
    bad = dict(RECIPE, particle_size_nm=1000)
    with pytest.raises(PermanentInstrumentError, match="particle_size_nm") as err:
        inst.submit([WorkItem("good", RECIPE), WorkItem("bad", bad)])
    assert err.value.item_key == "bad" and "bad" in str(err.value)
    assert inst.status(["good"]) == {"good": JobState.UNKNOWN}


def test_bad_characterization_context_is_permanent():
    inst = SimulatedDissolution()
    with pytest.raises(PermanentInstrumentError, match="size_nm"):
        inst.submit([WorkItem("F-1", RECIPE, {"characterization": {"size_nm": float("nan"), "drug_loading_pct": 5}})])


def test_synthesis_characterizes_and_fails_out_of_the_window():
    inst = SimulatedSynthesis(seed=0)
    ok = run(inst, items(8))
    done = [r for r in ok.values() if r.state is JobState.DONE]
    assert len(done) >= 6
    for r in done:
        c = r.characterization
        assert 100 < c.size_nm < 400 and 0 < c.pdi < 0.7 and -40 < c.zeta_mv < 0
        assert 0 < c.encapsulation_efficiency_pct <= 100 and c.actual_drug_loading_pct > 0
    doomed = dict(RECIPE, drug_loading_pct=30, particle_size_nm=80, drug_logp=-1)
    failed = run(inst, [WorkItem(f"D-{i}", doomed) for i in range(5)])
    assert all(r.state is JobState.FAILED and r.reason for r in failed.values())


def test_dissolution_uses_the_measured_characterization():
    inst = SimulatedDissolution(**QUIET)
    small = WorkItem("small", RECIPE, {"characterization": {"size_nm": 120.0, "drug_loading_pct": 8.0}})
    big = WorkItem("big", RECIPE, {"characterization": {"size_nm": 450.0, "drug_loading_pct": 8.0}})
    got = run(inst, [small, big])
    big_pct, small_pct = got["big"].curves[0].release_pct, got["small"].curves[0].release_pct
    assert all(b <= s for b, s in zip(big_pct, small_pct))
    assert big_pct[3] < small_pct[3] - 10  # at 24 h


def test_without_context_dissolution_measures_the_batch_synthesis_would_make():
    synth = run(SimulatedSynthesis(seed=5), [WorkItem("F-1", RECIPE)])["F-1"]
    context = {"characterization": synth.characterization.to_dict()}
    with_context = run(SimulatedDissolution(seed=5), [WorkItem("F-1", RECIPE, context)])["F-1"]
    without = run(SimulatedDissolution(seed=5), [WorkItem("F-1", RECIPE)])["F-1"]
    assert with_context == without


def test_dissolution_curves_have_replicates_and_rise():
    result = run(SimulatedDissolution(seed=1, outlier_probability=0.0), [WorkItem("F-1", RECIPE)])["F-1"]
    assert result.state is JobState.DONE and [c.replicate for c in result.curves] == [1, 2, 3]
    for c in result.curves:
        assert len(c.times_hours) == len(c.release_pct) == 12
        assert c.release_pct[-1] > c.release_pct[0] + 30
    assert len({c.release_pct for c in result.curves}) == 3  # replicate noise


def test_manual_clock_jobs_run_until_the_clock_passes():
    inst = SimulatedDissolution(clock="manual")
    inst.submit([WorkItem("F-1", RECIPE)])
    assert inst.status(["F-1"]) == {"F-1": JobState.RUNNING}
    assert inst.collect(["F-1"]) == []
    inst.advance(671.0)
    assert inst.status(["F-1"])["F-1"] is JobState.RUNNING
    inst.advance(1.0)
    assert inst.status(["F-1"])["F-1"] is JobState.DONE and len(inst.collect(["F-1"])) == 1


def test_instant_clock_waits_virtually():
    synth, tester = SimulatedSynthesis(), SimulatedDissolution()
    synth.submit([WorkItem("F-1", RECIPE)])
    tester.submit([WorkItem("F-1", RECIPE)])
    assert synth.status(["F-1"])["F-1"] in (JobState.DONE, JobState.FAILED)
    assert tester.collect(["F-1"]) and tester.now_h == 672.0 and synth.now_h == 4.0


def test_a_shared_clock_orders_the_lab():
    clock = VirtualClock()
    synth, tester = SimulatedSynthesis(clock=clock), SimulatedDissolution(clock=clock)
    synth.submit([WorkItem("F-1", RECIPE)])
    synth.collect(["F-1"])
    tester.submit([WorkItem("F-1", RECIPE)])
    tester.collect(["F-1"])
    assert clock.now_h() == 4.0 + 672.0


def test_cancel_stops_running_jobs_only():
    inst = SimulatedSynthesis(clock="manual", faults={"synthesis_failure_multiplier": 0})
    inst.submit([WorkItem("done", RECIPE)])
    inst.advance(5)
    inst.submit([WorkItem("running", RECIPE)])
    inst.cancel(["done", "running"])
    assert inst.status(["done", "running"]) == {"done": JobState.DONE, "running": JobState.CANCELLED}
    inst.advance(10)
    assert [r.key for r in inst.collect(["done", "running"])] == ["done"]


def test_state_dir_carries_jobs_and_clock_across_instances(tmp_path):
    first = SimulatedDissolution(seed=9, clock="manual", state_dir=tmp_path)
    first.submit([WorkItem("F-1", RECIPE)])
    second = SimulatedDissolution(seed=9, clock="manual", state_dir=tmp_path)
    assert second.status(["F-1"]) == {"F-1": JobState.RUNNING}
    second.advance(700)
    assert first.now_h == 700.0  # the clock file is shared
    result = first.collect(["F-1"])
    assert result == second.collect(["F-1"]) and len(result) == 1
    second.submit([WorkItem("F-1", RECIPE)])  # known from the journal: not run again
    assert second.jobs_run == 0
    third = SimulatedDissolution(seed=9, state_dir=tmp_path)
    assert third.collect(["F-1"]) == result


@pytest.mark.parametrize(
    "options, word",
    [
        ({"seed": -1}, "seed"),
        ({"clock": "fast"}, "clock"),
        ({"replicates": 0}, "replicates"),
        ({"sampling_times_hours": [4, 1]}, "sampling_times_hours"),
        ({"assay_cv": -0.1}, "assay_cv"),
    ],
)
def test_bad_options_are_input_errors(options, word):
    with pytest.raises(InputError, match=word):
        SimulatedDissolution(**options)


def test_bad_timeout_is_an_input_error():
    with pytest.raises(InputError, match="timeout_s"):
        SimulatedSynthesis().status(["x"], timeout_s=0)


def test_result_round_trips_through_json():
    result = run(SimulatedDissolution(seed=1), [WorkItem("F-1", RECIPE)])["F-1"]
    assert JobResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    synth = run(SimulatedSynthesis(seed=1), [WorkItem("F-2", RECIPE)])["F-2"]
    assert JobResult.from_dict(json.loads(json.dumps(synth.to_dict()))) == synth


def test_characterization_context_accepts_numpy_numbers():
    import numpy as np

    inst = SimulatedDissolution(**QUIET)
    plain = WorkItem("a", RECIPE, {"characterization": {"size_nm": 210.0, "drug_loading_pct": 8.0}})
    numpy = WorkItem("b", RECIPE, {"characterization": {"size_nm": np.float32(210.0), "drug_loading_pct": np.int64(8)}})
    got = run(inst, [plain, numpy])
    assert got["a"].curves == got["b"].curves
