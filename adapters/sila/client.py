"""Instruments reached through SiLA 2 servers: a formulation station and a dissolution tester.

The adapters use sila2's dynamic client (features are read from the server at
connect time; no generated code) and require the server to implement
``org.nanoloop/synthesis/NanoparticleFormulation/v1`` or
``org.nanoloop/dissolution/DissolutionTesting/v1`` (the FDL files in
``adapters/sila/features/``).

``submit`` asks the server for each key's state first and starts the
observable command only for keys the server never saw, then waits until the
server has journaled each new key; so a lost connection, a client restart or a
server restart never makes a formulation twice. ``status`` / ``collect`` ask
by key (``GetJobState`` / ``GetJobResult``), not through the command
execution, so they work after a reconnect. ``progress`` gives the progress the
running commands report.

Errors: the server unreachable (down, restarting) is retried with a fresh
channel until the call's timeout, then raised as TransientInstrumentError; a
call that gets no answer in time is an InstrumentTimeout; the feature's
InvalidRecipe / RecipeConflict errors and other command errors are
PermanentInstrumentError naming the key.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable, TypeVar

from sila2.client import SilaClient
from sila2.framework import DefinedExecutionError, SilaConnectionError, UndefinedExecutionError, ValidationError
from sila2.framework.errors.framework_error import FrameworkError

from nanoloop.adapters.sila.features import FEATURES
from nanoloop.loop.errors import InputError
from nanoloop.loop.lab.instruments import (
    Characterization,
    InstrumentTimeout,
    JobResult,
    JobState,
    PermanentInstrumentError,
    ReleaseCurve,
    TransientInstrumentError,
    WorkItem,
)

T = TypeVar("T")
RECONNECT_PAUSE_S = 0.3
_OPEN: "weakref.WeakSet[SilaInstrument]" = weakref.WeakSet()


def _close_all() -> None:
    for instrument in list(_OPEN):
        instrument.close()


# the library's execution-info threads are not daemons: stop them before the interpreter waits for them
if hasattr(threading, "_register_atexit"):
    threading._register_atexit(_close_all)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SilaInstrument:
    """Base of the SiLA 2 instruments (use :class:`SilaSynthesis` or :class:`SilaDissolution`).

    Args:
        host: the SiLA 2 server's address.
        port: its port.
        insecure: plain-text gRPC; allowed on a loopback host only.
        root_certs: PEM file of the CA that signed the server certificate (TLS).
        client_key, client_cert: PEM files for mutual TLS, if the server asks for it.
        name: instrument name used in errors.
        seed: accepted so one options table fits every instrument; only reported by ``describe``.
    """

    kind = ""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 50052,
        insecure: bool = False,
        root_certs: str | os.PathLike | None = None,
        client_key: str | os.PathLike | None = None,
        client_cert: str | os.PathLike | None = None,
        name: str = "",
        seed: int | None = None,
    ):
        self.name = name or f"sila2-{self.kind}"
        if not isinstance(host, str) or not host:
            raise InputError(f"{self.name}: option 'host' must be a host name or address, got {host!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise InputError(f"{self.name}: option 'port' must be an integer from 1 to 65535, got {port!r}")
        if insecure and not _is_loopback(host):
            raise InputError(f"{self.name}: option 'insecure' is allowed on a loopback host only; give 'root_certs' for {host}")
        self.tls: dict[str, bytes] = {}
        for option, path in (("root_certs", root_certs), ("private_key", client_key), ("cert_chain", client_cert)):
            if path is not None:
                try:
                    self.tls[option] = Path(path).read_bytes()
                except OSError as exc:
                    raise InputError(f"{self.name}: cannot read {option} file {path}: {exc.strerror}") from None
        if insecure and self.tls:
            raise InputError(f"{self.name}: give either 'insecure' or certificate files, not both")
        self.host, self.port, self.insecure, self.seed = host, port, bool(insecure), seed
        self.feature_id, self.command_id = FEATURES[self.kind]
        self._client: SilaClient | None = None
        self._running: dict[str, Any] = {}  # key -> command instance started by this process
        self.reconnects = 0
        """How many times this process opened a fresh connection after losing one."""
        _OPEN.add(self)

    # --- the Instrument protocol --------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Name, kind, server address, security mode and the feature used."""
        return {
            "name": self.name,
            "kind": self.kind,
            "vendor": "SiLA 2 server",
            "address": f"{self.host}:{self.port}",
            "security": "insecure (loopback)" if self.insecure else "TLS",
            "feature": self.feature_id,
            "seed": self.seed,
        }

    def submit(self, items: list[WorkItem], timeout_s: float = 30.0) -> None:
        """Start the observable command for each key the server does not know yet; returns once it journaled them."""
        deadline = self._deadline("submit", timeout_s)
        for item in items:
            if not isinstance(item, WorkItem) or not isinstance(item.key, str) or not item.key:
                raise PermanentInstrumentError(self.name, f"expected a WorkItem with a non-empty key, got {item!r}")
        for item in dict((i.key, i) for i in items).values():
            if self._call(deadline, "submit", lambda f: f.GetJobState(item.key).State, item.key) != "unknown":
                continue
            args = self._command_args(item)
            self._start(item.key, args, deadline)
            self._wait_accepted(item.key, args, deadline)

    def status(self, keys: list[str], timeout_s: float = 30.0) -> dict[str, JobState]:
        deadline = self._deadline("status", timeout_s)
        return {key: JobState(self._call(deadline, "status", lambda f: f.GetJobState(key).State, key)) for key in keys}

    def collect(self, keys: list[str], timeout_s: float = 30.0) -> list[JobResult]:
        deadline = self._deadline("collect", timeout_s)
        out = []
        for key in dict.fromkeys(keys):
            answer = self._call(deadline, "collect", lambda f: f.GetJobResult(key), key)
            if answer.State in ("done", "failed"):
                out.append(self._result(key, answer))
                self._forget(key)
        return out

    def cancel(self, keys: list[str], timeout_s: float = 30.0) -> None:
        deadline = self._deadline("cancel", timeout_s)
        for key in keys:
            self._call(deadline, "cancel", lambda f: f.CancelJob(key), key)
            self._forget(key)

    def progress(self, keys: list[str]) -> dict[str, float]:
        """Progress (0 to 1) the server reported for the keys this process started and still runs."""
        out = {}
        for key in keys:
            instance = self._running.get(key)
            if instance is not None and instance.progress is not None:
                out[key] = float(instance.progress)
        return out

    def close(self) -> None:
        """Stop listening to running commands and close the connection (jobs go on on the server)."""
        for key in list(self._running):
            self._forget(key)
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # closing a broken channel
                pass
            self._client = None

    # --- what the subclasses provide -------------------------------------------------
    def _command_args(self, item: WorkItem) -> tuple:
        raise NotImplementedError

    def _result(self, key: str, answer) -> JobResult:
        raise NotImplementedError

    # --- machinery -----------------------------------------------------------------
    def _feature(self):
        if self._client is None:
            options: dict[str, Any] = {"insecure": True} if self.insecure else dict(self.tls)
            self._client = SilaClient(self.host, self.port, **options)
            if not hasattr(self._client, self.feature_id):
                raise PermanentInstrumentError(
                    self.name, f"the SiLA 2 server at {self.host}:{self.port} does not implement feature {self.feature_id}"
                )
        return getattr(self._client, self.feature_id)

    def _call(self, deadline: float, op: str, body: Callable[[Any], T], key: str = "") -> T:
        """Run ``body(feature)`` before the deadline, reconnecting while the server is unreachable."""
        last = ""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if last:
                    raise TransientInstrumentError(self.name, f"{op}: server {self.host}:{self.port} unreachable ({last})")
                raise InstrumentTimeout(self.name, f"{op} did not finish within its timeout")
            try:
                return _within(remaining, lambda: body(self._feature()), self.name, op)
            except InstrumentTimeout:
                if last:  # out of time while reconnecting: the server is away, not hanging
                    raise TransientInstrumentError(self.name, f"{op}: server {self.host}:{self.port} unreachable ({last})") from None
                raise
            except SilaConnectionError as exc:
                last = str(exc)
            except FrameworkError as exc:  # e.g. a command execution the restarted server no longer knows
                last = str(exc)
            except DefinedExecutionError as exc:
                raise PermanentInstrumentError(self.name, f"item {key!r}: {exc.identifier}: {exc.message}", item_key=key) from None
            except (UndefinedExecutionError, ValidationError) as exc:
                raise PermanentInstrumentError(self.name, f"item {key!r}: {op} failed on the server: {exc}", item_key=key) from None
            except RuntimeError as exc:  # a server certificate for another server, features the client cannot read
                raise PermanentInstrumentError(self.name, f"{op}: cannot use the server at {self.host}:{self.port}: {exc}") from None
            self._drop_connection()
            time.sleep(min(RECONNECT_PAUSE_S, max(deadline - time.monotonic(), 0)))

    def _start(self, key: str, args: tuple, deadline: float) -> None:
        self._running[key] = self._call(deadline, "submit", lambda f: getattr(f, self.command_id)(*args), key)

    def _wait_accepted(self, key: str, args: tuple, deadline: float) -> None:
        """Wait until the server journaled ``key``; a command that ended with an error raises it.

        If the connection was lost meanwhile and the server does not know the
        key, the start never arrived (or the server died first): start it again.
        """
        while True:
            before = self.reconnects
            if self._call(deadline, "submit", lambda f: f.GetJobState(key).State, key) != "unknown":
                return
            if self.reconnects != before:
                self._start(key, args, deadline)
                continue
            instance = self._running.get(key)
            if instance is not None and instance.done:
                self._running.pop(key, None)
                self._call(deadline, "submit", lambda f: instance.get_responses(), key)
                return
            if time.monotonic() > deadline:
                raise InstrumentTimeout(self.name, f"submit: item {key!r} was not accepted within its timeout")
            time.sleep(0.02)

    def _drop_connection(self) -> None:
        if self._client is not None:
            self.reconnects += 1
        self.close()

    def _forget(self, key: str) -> None:
        instance = self._running.pop(key, None)
        if instance is not None:
            try:
                instance.cancel_execution_info_subscription()
            except Exception:  # the stream is already gone
                pass

    def _deadline(self, op: str, timeout_s: float) -> float:
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
            raise InputError(f"{self.name}: {op} timeout_s must be a positive number of seconds, got {timeout_s!r}")
        return time.monotonic() + timeout_s


def _within(seconds: float, body: Callable[[], T], name: str, op: str) -> T:
    """``body()`` in a daemon thread; InstrumentTimeout if it has not answered after ``seconds``."""
    box: dict[str, Any] = {}

    def run():
        try:
            box["value"] = body()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True, name=f"{name}-{op}")
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise InstrumentTimeout(name, f"{op}: the server did not answer within {seconds:.3g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _finite_or_nan(value: Any) -> float:
    value = float(value)
    return value if math.isfinite(value) else math.nan


class SilaSynthesis(SilaInstrument):
    """A nanoparticle formulation station behind a SiLA 2 server (feature NanoparticleFormulation)."""

    kind = "synthesis"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("name", "sila2-synthesis")
        super().__init__(*args, **kwargs)

    def _command_args(self, item: WorkItem) -> tuple:
        return (item.key, json.dumps(item.recipe, sort_keys=True))

    def _result(self, key: str, answer) -> JobResult:
        if answer.State == "failed":
            return JobResult(key, JobState.FAILED, reason=answer.FailureReason or "failed on the instrument")
        char = Characterization(
            size_nm=_finite_or_nan(answer.SizeNm), pdi=_finite_or_nan(answer.Pdi), zeta_mv=_finite_or_nan(answer.ZetaMv),
            encapsulation_efficiency_pct=_finite_or_nan(answer.EncapsulationEfficiencyPct),
            actual_drug_loading_pct=_finite_or_nan(answer.DrugLoadingPct),
        )
        return JobResult(key, JobState.DONE, characterization=char)


class SilaDissolution(SilaInstrument):
    """A dissolution tester behind a SiLA 2 server (feature DissolutionTesting)."""

    kind = "dissolution"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("name", "sila2-dissolution")
        super().__init__(*args, **kwargs)

    def describe(self) -> dict[str, Any]:
        """As the base, plus the tester's sampling times (hours) and replicates, read from the server."""
        deadline = self._deadline("describe", 10.0)
        facts = super().describe()
        facts["sampling_times_hours"] = list(self._call(deadline, "describe", lambda f: f.SamplingTimesHours.get()))
        facts["replicates"] = int(self._call(deadline, "describe", lambda f: f.Replicates.get()))
        return facts

    def _command_args(self, item: WorkItem) -> tuple:
        char = item.context.get("characterization") if isinstance(item.context, dict) else None
        if isinstance(char, Characterization):
            char = char.to_dict()
        return (item.key, json.dumps(item.recipe, sort_keys=True), json.dumps(char or {}, sort_keys=True))

    def _result(self, key: str, answer) -> JobResult:
        if answer.State == "failed":
            return JobResult(key, JobState.FAILED, reason=answer.FailureReason or "failed on the instrument")
        series: dict[int, list[tuple[float, float]]] = {}
        for reading in answer.Readings:
            series.setdefault(int(reading.Replicate), []).append((float(reading.TimeHours), _finite_or_nan(reading.ReleasePct)))
        curves = tuple(
            ReleaseCurve(rep, tuple(t for t, _ in points), tuple(r for _, r in points))
            for rep, points in sorted(series.items())
        )
        return JobResult(key, JobState.DONE, curves=curves)
