"""Loading instruments by built-in name or import path."""

import textwrap

import pytest

from nanoloop.adapters.filedrop import FileDropInstrument
from nanoloop.loop.lab.instruments import Instrument, JobState, WorkItem
from nanoloop.adapters.registry import BUILTINS, load_instrument
from nanoloop.adapters.simulated import SimulatedDissolution, SimulatedSynthesis
from nanoloop.loop.errors import InputError

PLUGIN = textwrap.dedent('''
    from nanoloop.loop.lab.instruments import JobResult, JobState

    class EchoTester:
        """A third-party dissolution tester that releases everything at once."""

        kind = "dissolution"

        def __init__(self, host: str, name: str = "echo"):
            self.host, self.name, self._keys = host, name, []

        def describe(self):
            return {"name": self.name, "kind": self.kind, "vendor": "Echo Labs", "host": self.host}

        def submit(self, items, timeout_s=30.0):
            self._keys += [i.key for i in items if i.key not in self._keys]

        def status(self, keys, timeout_s=30.0):
            return {k: JobState.DONE if k in self._keys else JobState.UNKNOWN for k in keys}

        def collect(self, keys, timeout_s=30.0):
            return [JobResult(k, JobState.DONE) for k in keys if k in self._keys]

        def cancel(self, keys, timeout_s=30.0):
            pass

    class NoCollect:
        name, kind = "broken", "dissolution"
        def describe(self): return {}
        def submit(self, items, timeout_s=30.0): pass
        def status(self, keys, timeout_s=30.0): return {}
        def cancel(self, keys, timeout_s=30.0): pass

    class Spectrometer(EchoTester):
        kind = "spectroscopy"

    class NoTimeout(EchoTester):
        def status(self, keys):
            return {}

    def make_echo(**options):
        return EchoTester(**options)
''')


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    (tmp_path / "echolab_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "echolab_plugin"


@pytest.mark.parametrize(
    "spec, options, cls",
    [
        ("simulated-synthesis", {"seed": 3}, SimulatedSynthesis),
        ("simulated-dissolution", {"seed": 3, "faults": {"nan_reading": 0.01}}, SimulatedDissolution),
        ("file-drop", {"kind": "dissolution"}, FileDropInstrument),
    ],
)
def test_builtins(spec, options, cls, tmp_path):
    if spec == "file-drop":
        options = dict(options, root=str(tmp_path))
    inst = load_instrument(spec, options)
    assert type(inst) is cls and isinstance(inst, Instrument)
    assert {"simulated-synthesis", "simulated-dissolution", "file-drop"} <= set(BUILTINS)


def test_import_path_plugin_with_options(plugin):  # called from code: trusted
    inst = load_instrument(f"{plugin}:EchoTester", {"host": "10.0.0.7"}, expected_kind="dissolution")
    assert isinstance(inst, Instrument) and inst.describe()["host"] == "10.0.0.7"
    inst.submit([WorkItem("F-1", {})])
    assert inst.status(["F-1"]) == {"F-1": JobState.DONE}
    assert load_instrument(f"{plugin}:make_echo", {"host": "h"}).host == "h"


@pytest.mark.parametrize(
    "spec, options, words",
    [
        ("simulated-magic", {}, ["simulated-magic", "built-in"]),
        ("no_such_package.mod:Thing", {}, ["no_such_package", "cannot import"]),
        ("{plugin}:Missing", {}, ["Missing"]),
        ("{plugin}:NoCollect", {}, ["NoCollect", "collect"]),
        ("{plugin}:Spectrometer", {"host": "h"}, ["kind", "spectroscopy"]),
        ("{plugin}:NoTimeout", {"host": "h"}, ["timeout_s"]),
        ("{plugin}:EchoTester", {}, ["host"]),
        ("{plugin}:EchoTester", {"host": "h", "colour": "red"}, ["colour", "accepted options"]),
        ("simulated-dissolution", {"replicates": 99}, ["simulated-dissolution", "replicates"]),
        ("simulated-synthesis", {"faults": {"gremlins": 1}}, ["gremlins"]),
        ("", {}, ["non-empty"]),
    ],
)
def test_errors_name_the_problem(plugin, spec, options, words):
    with pytest.raises(InputError) as err:
        load_instrument(spec.format(plugin=plugin), options)
    for word in words:
        assert word in str(err.value)


def test_expected_kind_is_checked():
    with pytest.raises(InputError, match="synthesis instrument, expected dissolution"):
        load_instrument("simulated-synthesis", {}, expected_kind="dissolution")
