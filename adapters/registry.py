"""Find and build an instrument from a campaign config entry.

``load_instrument(spec, options)`` accepts a built-in short name or an import
path ``"package.module:ClassName"`` (any callable returning an instrument).
The options become keyword arguments of the constructor, so a third-party
instrument declares its options as ordinary ``__init__`` parameters::

    # mylab/tester.py
    class Tester:
        name = "mylab-tester"
        kind = "dissolution"
        def __init__(self, host: str, port: int = 502): ...
        def describe(self): ...
        def submit(self, items, timeout_s=30.0): ...
        def status(self, keys, timeout_s=30.0): ...
        def collect(self, keys, timeout_s=30.0): ...
        def cancel(self, keys, timeout_s=30.0): ...

    load_instrument("mylab.tester:Tester", {"host": "10.0.0.7"})
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable, Mapping

from nanoloop.loop.instruments import Instrument, check_instrument
from nanoloop.loop.errors import InputError

BUILTINS: dict[str, str] = {
    "simulated-synthesis": "nanoloop.adapters.simulated.synthesis:SimulatedSynthesis",
    "simulated-dissolution": "nanoloop.adapters.simulated.dissolution:SimulatedDissolution",
    "file-drop": "nanoloop.adapters.filedrop:FileDropInstrument",
    "sila2-synthesis": "nanoloop.adapters.sila.client:SilaSynthesis",
    "sila2-dissolution": "nanoloop.adapters.sila.client:SilaDissolution",
    "liquid-handler-synthesis": "nanoloop.adapters.liquid_handler.instrument:LiquidHandlerSynthesis",
}

#: built-in instruments that take the campaign's seed by default
SIMULATED = ("simulated-synthesis", "simulated-dissolution")

def resolve(spec: str) -> Callable[..., Any]:
    """The class (or factory) a spec names.

    Raises:
        InputError: the spec is neither a built-in name nor an importable
            ``"package.module:ClassName"``.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"instrument spec must be a non-empty string, got {spec!r}")
    path = BUILTINS.get(spec, spec)
    if ":" not in path:
        raise InputError(
            f"instrument {spec!r} is neither a built-in ({', '.join(BUILTINS)}) "
            "nor an import path 'package.module:ClassName'"
        )
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"instrument {spec!r}: cannot import module {module_name!r} ({exc})") from None
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise InputError(f"instrument {spec!r}: module {module_name!r} has no {attribute!r}") from None
    if not callable(target):
        raise InputError(f"instrument {spec!r}: {attribute!r} is not a class or factory")
    return target


def load_instrument(
    spec: str, options: Mapping[str, Any] | None = None, expected_kind: str | None = None
) -> Instrument:
    """Build the instrument ``spec`` names, with ``options`` as keyword arguments.

    Args:
        spec: "simulated-synthesis", "simulated-dissolution", "file-drop", or
            "package.module:ClassName".
        options: constructor options, e.g. ``{"seed": 7, "faults": {"disconnect": 0.05}}``.
        expected_kind: if given, the instrument's kind must be this ("synthesis"/"dissolution").

    Raises:
        InputError: unknown spec, an option the constructor does not accept, a
            rejected option value, or an object that is not an Instrument
            (missing a method, ``name``, or a ``kind`` other than synthesis/dissolution).
    """
    factory = resolve(spec)
    options = dict(options or {})
    bad = [name for name in options if not isinstance(name, str)]
    if bad:
        raise InputError(f"instrument {spec!r}: option names must be strings, got {bad!r}")
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        try:
            signature.bind(**options)
        except TypeError as exc:
            accepted = [p for p in signature.parameters if p not in ("self", "args", "kwargs")]
            raise InputError(f"instrument {spec!r}: {exc}; accepted options: {accepted}") from None
    try:
        instrument = factory(**options)
    except InputError as exc:
        raise InputError(f"instrument {spec!r}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise InputError(f"instrument {spec!r}: bad options: {exc}") from None
    check_instrument(instrument, spec)
    if expected_kind is not None and instrument.kind != expected_kind:
        raise InputError(f"instrument {spec!r} is a {instrument.kind} instrument, expected {expected_kind}")
    return instrument


def build_instruments(config) -> dict[str, Instrument]:
    """The synthesis and dissolution instruments a campaign config names.

    The simulated lab follows the campaign's seed unless its options give one;
    the simulated dissolution tester also follows the campaign's
    ``dissolution_method`` (temperature, sampling times) unless its options say otherwise.
    Pass this function (or its result) as a Campaign's ``instruments``.
    """
    def options(spec):
        if spec.kind not in SIMULATED:
            return dict(spec.options)
        method = {}
        if spec.kind == "simulated-dissolution" and getattr(config, "dissolution_method", None) is not None:
            method = {"temperature_c": config.dissolution_method.temperature_c}
            if config.dissolution_method.sampling_times_hours is not None:
                method["sampling_times_hours"] = list(config.dissolution_method.sampling_times_hours)
        return {"seed": config.seed, **method, **spec.options}

    return {
        role: load_instrument(spec.kind, options(spec), expected_kind=role)
        for role, spec in (("synthesis", config.instruments.synthesis), ("dissolution", config.instruments.dissolution))
    }
