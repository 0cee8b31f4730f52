"""The instrument protocol's value objects and errors, and the result checks."""

import math


from nanoloop.loop.lab.plausibility import result_problems
from nanoloop.loop.lab.instruments import (
    Characterization,
    InstrumentError,
    InstrumentTimeout,
    JobResult,
    JobState,
    PermanentInstrumentError,
    ReleaseCurve,
    TransientInstrumentError,
)

GOOD_CURVE = ReleaseCurve(1, (1.0, 24.0, 72.0), (5.0, 30.0, 55.0))


def test_errors_name_the_instrument_and_optionally_the_item():
    err = PermanentInstrumentError("robot", "bad recipe", item_key="F-1")
    assert str(err) == "robot: bad recipe" and err.instrument == "robot" and err.item_key == "F-1"
    assert InstrumentTimeout("robot", "slow").item_key == ""
    assert issubclass(InstrumentTimeout, TransientInstrumentError) and issubclass(InstrumentTimeout, InstrumentError)


def test_results_round_trip_through_dicts():
    result = JobResult("F-1", JobState.DONE, curves=(GOOD_CURVE,), raw_checksum="ab")
    assert JobResult.from_dict(result.to_dict()) == result
    char = Characterization(200.0, 0.1, -20.0, 80.0, 8.0)
    assert Characterization.from_dict(dict(char.to_dict(), extra=1)) == char


def test_checks_pass_sound_results_and_flag_bad_ones():
    assert result_problems(JobResult("F-1", JobState.DONE, curves=(GOOD_CURVE,)), (1.0, 24.0, 72.0)) == []
    assert result_problems(JobResult("F-1", JobState.FAILED, reason="aggregated")) == []
    assert [str(p) for p in result_problems(JobResult("F-1", JobState.FAILED))] == ["failed without a reason"]
    assert result_problems(JobResult("F-1", JobState.DONE)) != []
    nan = ReleaseCurve(2, (1.0, 24.0), (math.nan, 130.0))
    problems = result_problems(JobResult("F-1", JobState.DONE, curves=(GOOD_CURVE, nan)), (1.0, 24.0, 72.0))
    assert {(p.kind, p.replicate) for p in problems} == {("nan_reading", 2), ("too_high", 2), ("partial", 2)}
    assert any("replicate 2" in p.message and "NaN" in p.message for p in problems)
