"""One test per fault knob of the simulated lab, plus their validation and determinism."""

import math
import time

import pytest

from nanoloop.loop.lab.plausibility import result_problems
from nanoloop.loop.lab.instruments import InstrumentTimeout, JobState, TransientInstrumentError, WorkItem
from nanoloop.adapters.simulated import DEFAULT_SAMPLING_TIMES_HOURS, SimulatedDissolution, SimulatedSynthesis
from nanoloop.loop.errors import InputError

from lab_recipes import QUIET, RECIPE  # noqa: E402
KEYS = [f"F-{i}" for i in range(10)]


def batch():
    return [WorkItem(k, RECIPE) for k in KEYS]


def results(inst):
    inst.submit(batch())
    return inst.collect(KEYS)


def test_no_faults_by_default():
    got = results(SimulatedDissolution(seed=1, outlier_probability=0.0))
    assert len(got) == 10 and all(result_problems(r, DEFAULT_SAMPLING_TIMES_HOURS) == [] for r in got)


def test_hang_sleeps_past_the_timeout_and_names_the_instrument():
    inst = SimulatedSynthesis(name="robot-1", faults={"hang": 1.0})
    started = time.monotonic()
    with pytest.raises(InstrumentTimeout, match="robot-1") as err:
        inst.status(["x"], timeout_s=0.05)
    assert time.monotonic() - started >= 0.05
    assert isinstance(err.value, TransientInstrumentError) and err.value.instrument == "robot-1"


def test_a_hung_submit_is_safe_to_repeat():
    inst = SimulatedSynthesis(seed=3, faults={"hang": 0.6})
    tries = 0
    while True:
        tries += 1
        try:
            inst.submit([WorkItem("F-1", RECIPE)], timeout_s=0.01)
            break
        except InstrumentTimeout:
            assert tries < 50
    assert inst.jobs_run == 1 and inst.submissions_received >= 1


def test_disconnect_is_transient_and_deterministic():
    always = SimulatedDissolution(faults={"disconnect": 1.0})
    with pytest.raises(TransientInstrumentError, match="connection lost"):
        always.submit(batch())

    def pattern(seed):
        inst = SimulatedDissolution(seed=seed, faults={"disconnect": 0.3})
        outcome = []
        for _ in range(30):
            try:
                inst.status(["x"])
                outcome.append("ok")
            except TransientInstrumentError:
                outcome.append("lost")
        return outcome

    assert pattern(1) == pattern(1)
    assert 3 <= pattern(1).count("lost") <= 18


def test_garbage_is_caught_by_the_checks():
    got = results(SimulatedDissolution(seed=2, faults={"garbage": 1.0}))
    assert all(result_problems(r) for r in got)
    synth = SimulatedSynthesis(seed=2, faults={"garbage": 1.0, "synthesis_failure_multiplier": 0})
    assert all(result_problems(r) for r in results(synth))


def test_partial_curve_drops_the_tail_of_one_replicate():
    inst = SimulatedDissolution(seed=2, faults={"partial_curve": 1.0})
    for r in results(inst):
        lengths = sorted(len(c.times_hours) for c in r.curves)
        assert lengths[0] < 12 and lengths[1:] == [12, 12]
        assert any(p.kind == "partial" for p in result_problems(r, DEFAULT_SAMPLING_TIMES_HOURS))


def test_nan_readings():
    got = results(SimulatedDissolution(seed=2, faults={"nan_reading": 0.2}))
    readings = [v for r in got for c in r.curves for v in c.release_pct]
    share = sum(math.isnan(v) for v in readings) / len(readings)
    assert 0.1 < share < 0.3
    synth = SimulatedSynthesis(seed=2, faults={"nan_reading": 1.0, "synthesis_failure_multiplier": 0})
    assert all(math.isnan(r.characterization.size_nm) for r in results(synth))


def test_readings_above_100_pct():
    fast = dict(RECIPE, polymer_mw_kda=10, drug_logp=0, particle_size_nm=100)
    inst = SimulatedDissolution(seed=2, faults={"over_100": 1.0}, **QUIET)
    inst.submit([WorkItem("F-1", fast)])
    (result,) = inst.collect(["F-1"])
    plateaus = sorted(c.release_pct[-1] for c in result.curves)
    assert plateaus[0] == pytest.approx(100, abs=0.5) and plateaus[-1] > 110
    assert any(p.kind == "too_high" for p in result_problems(result))


def test_duplicate_delivery():
    inst = SimulatedSynthesis(seed=2, faults={"duplicate": 1.0})
    got = results(inst)
    assert len(got) == 20 and [r.key for r in got[::2]] == KEYS and got[0] == got[1]


def test_drift_grows_with_virtual_time():
    inst = SimulatedDissolution(clock="manual", faults={"drift_pct_per_day": 1.0}, **QUIET)
    inst.submit([WorkItem("early", RECIPE)])
    inst.advance(1000)
    inst.submit([WorkItem("late", RECIPE)])
    inst.advance(1000)
    early, late = inst.collect(["early", "late"])
    reference = SimulatedDissolution(**QUIET)
    reference.submit([WorkItem("early", RECIPE)])
    (truth,) = reference.collect(["early"])
    t, e, l, r = (DEFAULT_SAMPLING_TIMES_HOURS[-1], early.curves[0].release_pct[-1],
                  late.curves[0].release_pct[-1], truth.curves[0].release_pct[-1])
    assert e == pytest.approx(r * (1 + t / 24 / 100), abs=0.02)
    assert l == pytest.approx(r * (1 + (1000 + t) / 24 / 100), abs=0.02)


def test_synthesis_failure_multiplier():
    never = SimulatedSynthesis(faults={"synthesis_failure_multiplier": 0})
    doomed = dict(RECIPE, drug_loading_pct=30, particle_size_nm=80)
    never.submit([WorkItem("F-1", doomed)])
    assert never.status(["F-1"]) == {"F-1": JobState.DONE}
    always = SimulatedSynthesis(faults={"synthesis_failure_multiplier": 1000})
    assert all(r.state is JobState.FAILED for r in results(always))


def test_faults_are_deterministic_under_the_seed():
    knobs = {"nan_reading": 0.05, "partial_curve": 0.3, "over_100": 0.3, "duplicate": 0.3}
    a, b = SimulatedDissolution(seed=8, faults=knobs), SimulatedDissolution(seed=8, faults=knobs)
    assert results(a) == results(b) and a.faults_injected == b.faults_injected


@pytest.mark.parametrize(
    "cls, knobs, word",
    [
        (SimulatedDissolution, {"gremlins": 0.1}, "unknown fault"),
        (SimulatedDissolution, {"disconnect": 1.5}, "probability"),
        (SimulatedSynthesis, {"partial_curve": 0.1}, "dissolution"),
        (SimulatedDissolution, {"synthesis_failure_multiplier": 2}, "synthesis"),
        (SimulatedDissolution, {"drift_pct_per_day": "a lot"}, "not a number"),
    ],
)
def test_bad_knobs_are_input_errors(cls, knobs, word):
    with pytest.raises(InputError, match=word):
        cls(faults=knobs)
