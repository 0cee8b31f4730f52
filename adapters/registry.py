"""Find and build an instrument from a campaign config entry.

``load_instrument(spec, options)`` accepts a built-in short name, the name of an
installed plug-in (entry-point group ``nanoloop.instruments``), or an import path
``"package.module:ClassName"``. The options become keyword arguments of the
constructor, so a third-party instrument declares its options as ordinary
``__init__`` parameters::

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

A config that names a plug-in runs that plug-in's code, so a config may name an
import path only when its top-level package is trusted: listed in the config's
``[instruments] trusted_plugins``, or in the environment variable
``NANOLOOP_TRUSTED_PLUGINS`` (comma-separated names, or ``*`` for any). Whatever
the trust, a standard-library module is never a plug-in, and the target's
protocol is checked on the class before anything is called.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from importlib.metadata import entry_points
from typing import Any, Callable, Iterable, Mapping

from nanoloop.loop.lab.instruments import ENTRY_POINT_GROUP, KINDS, Instrument, check_instrument, check_methods  # installed plug-ins are trusted
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

#: environment variable naming the plug-in packages a config may import (comma-separated, or "*")
TRUST_ENV = "NANOLOOP_TRUSTED_PLUGINS"


def _installed_plugin(spec: str) -> str | None:
    """The ``module:attr`` an installed plug-in of this name points to, if any."""
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name == spec:
            return point.value
    return None


def trusted_packages(config_trusted: Iterable[str] = ()) -> set[str]:
    """Top-level package names whose import paths a config may name ("*": any)."""
    names = {n.strip() for n in os.environ.get(TRUST_ENV, "").split(",") if n.strip()}
    if names & {"1", "true", "yes", "all"}:
        names.add("*")
    return names | {n.strip() for n in config_trusted if n.strip()}


def _check_trusted(spec: str, module_name: str, trusted: bool | Iterable[str]) -> None:
    top = module_name.split(".")[0]
    if top in sys.stdlib_module_names or top in ("builtins", "nanoloop"):
        raise InputError(f"instrument {spec!r}: {module_name!r} is not an instrument plug-in (standard-library and "
                         "nanoloop modules are never loaded by import path; use a built-in name)")
    if trusted is True:
        return
    allowed = trusted_packages(() if trusted is False else trusted)
    if "*" not in allowed and top not in allowed:
        raise InputError(
            f"instrument {spec!r}: plug-in package {top!r} is not trusted (a config that names a plug-in runs its code); "
            f"allow it with [instruments] trusted_plugins = [\"{top}\"] in the config or {TRUST_ENV}={top}, "
            f"or install it under the entry-point group {ENTRY_POINT_GROUP!r}"
        )


def _check_target(spec: str, target: Any) -> None:
    """The protocol, checked on the class (or plain function) before it is ever called."""
    if inspect.isclass(target):
        check_methods(target, f"instrument {spec!r}")
        kind = getattr(target, "kind", None)
        if isinstance(kind, str) and kind not in KINDS:
            raise InputError(f"instrument {spec!r}: 'kind' must be one of {list(KINDS)}, got {kind!r}")
    elif not inspect.isfunction(target):  # builtins (os.system), bound methods, other callables: never called
        raise InputError(f"instrument {spec!r} is not an instrument class or factory function")


def resolve(spec: str, trusted: bool | Iterable[str] = True) -> Callable[..., Any]:
    """The class (or factory function) a spec names, checked before anything is called.

    Args:
        spec: a built-in name, an installed plug-in's name, or "package.module:ClassName".
        trusted: for an import path: True (the caller is code: any non-standard-library
            package), or the packages a config trusts (the environment's are added).

    Raises:
        InputError: the spec is unknown, not trusted, not importable, or its target
            is not an instrument class (checked on the class, before calling it).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"instrument spec must be a non-empty string, got {spec!r}")
    path = BUILTINS.get(spec) or _installed_plugin(spec)
    if path is None:
        if ":" not in spec:
            raise InputError(
                f"instrument {spec!r} is neither a built-in ({', '.join(BUILTINS)}), an installed plug-in "
                f"(entry points {ENTRY_POINT_GROUP!r}) nor an import path 'package.module:ClassName'"
            )
        _check_trusted(spec, spec.partition(":")[0], trusted)
        path = spec
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
    _check_target(spec, target)
    if trusted is not True and not inspect.isclass(target):  # a config names classes: checked before they are called
        raise InputError(f"instrument {spec!r}: a config must name an instrument class, not a function")
    return target


def _checked_factory(spec: str, options: Mapping[str, Any] | None, trusted) -> tuple[Callable[..., Any], dict]:
    """Resolve ``spec`` and check ``options`` against its constructor, calling nothing."""
    factory = resolve(spec, trusted)
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
    return factory, options


def load_instrument(
    spec: str, options: Mapping[str, Any] | None = None, expected_kind: str | None = None,
    trusted: bool | Iterable[str] = True,
) -> Instrument:
    """Build the instrument ``spec`` names, with ``options`` as keyword arguments.

    Args:
        spec: "simulated-synthesis", "simulated-dissolution", "file-drop", an
            installed plug-in's name, or "package.module:ClassName".
        options: constructor options, e.g. ``{"seed": 7, "faults": {"disconnect": 0.05}}``.
        expected_kind: if given, the instrument's kind must be this ("synthesis"/"dissolution").
        trusted: see :func:`resolve` (a config's instruments pass its ``trusted_plugins``).

    Raises:
        InputError: unknown or untrusted spec, an option the constructor does not
            accept, a rejected option value, or an object that is not an Instrument
            (missing a method, ``name``, or a ``kind`` other than synthesis/dissolution).
    """
    factory, options = _checked_factory(spec, options, trusted)
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


def _specs(config):
    def options(spec):
        if spec.kind not in SIMULATED:
            return dict(spec.options)
        method = {}
        if spec.kind == "simulated-dissolution" and getattr(config, "dissolution_method", None) is not None:
            method = {"temperature_c": config.dissolution_method.temperature_c}
            if config.dissolution_method.sampling_times_hours is not None:
                method["sampling_times_hours"] = list(config.dissolution_method.sampling_times_hours)
        return {"seed": config.seed, **method, **spec.options}

    trusted = list(config.instruments.trusted_plugins)
    return [(role, spec.kind, options(spec), trusted)
            for role, spec in (("synthesis", config.instruments.synthesis), ("dissolution", config.instruments.dissolution))]


def check_instruments(config) -> None:
    """Check, without building anything, that the config's instruments resolve, are trusted and take their options.

    Run when a config is loaded, before anything is stored.
    """
    for role, spec, options, trusted in _specs(config):
        factory, _ = _checked_factory(spec, options, trusted)
        kind = getattr(factory, "kind", None) if inspect.isclass(factory) else None
        if isinstance(kind, str) and kind != role:
            raise InputError(f"instrument {spec!r} is a {kind} instrument, expected {role}")


def build_instruments(config) -> dict[str, Instrument]:
    """The synthesis and dissolution instruments a campaign config names.

    The simulated lab follows the campaign's seed unless its options give one;
    the simulated dissolution tester also follows the campaign's
    ``dissolution_method`` (temperature, sampling times) unless its options say otherwise.
    Import paths must be trusted (``[instruments] trusted_plugins`` or
    ``NANOLOOP_TRUSTED_PLUGINS``). Pass this function (or its result) as a
    Campaign's ``instruments``.
    """
    return {role: load_instrument(spec, options, expected_kind=role, trusted=trusted) for role, spec, options, trusted in _specs(config)}
