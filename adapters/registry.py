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

from nanoloop.adapters.protocol import Instrument
from nanoloop.loop.errors import InputError

BUILTINS: dict[str, str] = {
    "simulated-synthesis": "nanoloop.adapters.simulated.synthesis:SimulatedSynthesis",
    "simulated-dissolution": "nanoloop.adapters.simulated.dissolution:SimulatedDissolution",
    "file-drop": "nanoloop.adapters.filedrop:FileDropInstrument",
}

KINDS = ("synthesis", "dissolution")


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


def check_instrument(instrument: Any, spec: str = "") -> None:
    """Raise InputError unless ``instrument`` satisfies the Instrument protocol."""
    label = f"instrument {spec!r}" if spec else f"instrument {type(instrument).__name__}"
    missing = [
        m for m in ("describe", "submit", "status", "collect", "cancel") if not callable(getattr(instrument, m, None))
    ]
    if missing or not isinstance(instrument, Instrument):
        missing += [a for a in ("name", "kind") if not hasattr(instrument, a)]
        raise InputError(f"{label} does not implement the Instrument protocol: missing {missing}")
    if not isinstance(instrument.name, str) or not instrument.name:
        raise InputError(f"{label}: 'name' must be a non-empty string, got {instrument.name!r}")
    if instrument.kind not in KINDS:
        raise InputError(f"{label}: 'kind' must be one of {list(KINDS)}, got {instrument.kind!r}")
    for method in ("submit", "status", "collect", "cancel"):
        try:
            params = inspect.signature(getattr(instrument, method)).parameters
        except (TypeError, ValueError):
            continue
        if "timeout_s" not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            raise InputError(f"{label}: method {method!r} must accept a 'timeout_s' argument")
