"""SiLA 2 servers for a formulation station and a dissolution tester, with the simulated lab behind them.

They stand in for a lab's instrument servers (tests, demos, trying a campaign
config before the hardware is there)::

    python -m nanoloop.adapters.sila.server synthesis --port 50052 --state-dir lab/synth --insecure
    python -m nanoloop.adapters.sila.server dissolution --port 50053 --state-dir lab/diss \\
        --cert server.pem --key server.key

Each work item is one observable command execution. The outcome comes from
the simulated lab's physics (:mod:`nanoloop.adapters.simulated`), drawn when
the job is accepted and revealed when its wall-clock duration has passed; jobs
run one after the other (``--duration-s`` each). The server keeps a journal
(``<state-dir>/jobs.jsonl``, one line per accepted job, appended before the
client hears back) so a restarted server knows every job it accepted: a key is
made once, however often it is requested. The journal is the record a test
reads to check that no formulation was made twice.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sila2.framework import DefinedExecutionError
from sila2.server import FeatureImplementationBase, SilaServer

from nanoloop.adapters.sila.features import FEATURES, load_feature
from nanoloop.adapters.simulated import SimulatedDissolution, SimulatedSynthesis
from nanoloop.loop.lab.instruments import Characterization, JobResult, PermanentInstrumentError, WorkItem


class Journal:
    """Append-only record of accepted jobs and cancellations (JSON lines; the last line of a key wins)."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.jobs: dict[str, dict[str, Any]] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    try:
                        job = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut short by a kill: that job was never confirmed
                    self.jobs[job["key"]] = job

    def put(self, job: dict[str, Any]) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps(job, allow_nan=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.jobs[job["key"]] = job

    def last_end_s(self) -> float:
        ends = [j.get("cancelled_s") or j["end_s"] for j in self.jobs.values()]
        return max(ends, default=0.0)


def job_state(job: dict[str, Any] | None, now_s: float) -> str:
    """unknown, queued, running, done, failed or cancelled at wall time ``now_s``."""
    if job is None:
        return "unknown"
    if job.get("cancelled_s") is not None:
        return "cancelled"
    if now_s < job["start_s"]:
        return "queued"
    if now_s < job["end_s"]:
        return "running"
    return job["result"]["state"]


class Station:
    """The jobs of one instrument: accepts work once per key, runs it on the simulated lab."""

    def __init__(self, kind: str, state_dir: Path, seed: int = 0, duration_s: float = 1.0, **lab_options: Any):
        self.kind = kind
        self.feature = load_feature(kind)
        lab_class = SimulatedSynthesis if kind == "synthesis" else SimulatedDissolution
        self.lab = lab_class(seed=seed, **lab_options)
        self.duration_s = float(duration_s)
        self.journal = Journal(Path(state_dir) / "jobs.jsonl")
        self.lock = threading.Lock()

    def error(self, identifier: str, message: str) -> DefinedExecutionError:
        return DefinedExecutionError(self.feature.defined_execution_errors[identifier], message)

    def accept(self, key: str, recipe_json: str, context_json: str = "{}") -> dict[str, Any]:
        """The job of ``key``, accepted now if new (idempotent).

        Raises:
            DefinedExecutionError: InvalidRecipe (bad JSON, out of range), RecipeConflict.
        """
        inputs = {"recipe": self._json(key, "Recipe", recipe_json), "context": self._json(key, "Characterization", context_json)}
        with self.lock:
            job = self.journal.jobs.get(key)
            if job is not None:
                if job["inputs"] != inputs:
                    raise self.error("RecipeConflict", f"item {key!r} was already accepted with different inputs")
                return job
            context = {"characterization": inputs["context"]} if inputs["context"] else {}
            try:
                self.lab.submit([WorkItem(key, inputs["recipe"], context)])
            except PermanentInstrumentError as exc:
                raise self.error("InvalidRecipe", str(exc)) from None
            (result,) = self.lab.collect([key])
            start_s = max(time.time(), self.journal.last_end_s())
            job = {"key": key, "inputs": inputs, "start_s": start_s, "end_s": start_s + self.duration_s,
                   "result": result.to_dict(), "pid": os.getpid()}
            self.journal.put(job)
            return job

    def _json(self, key: str, what: str, text: str) -> dict[str, Any]:
        try:
            value = json.loads(text or "{}")
        except json.JSONDecodeError as exc:
            raise self.error("InvalidRecipe", f"item {key!r}: {what} is not JSON ({exc})") from None
        if not isinstance(value, dict):
            raise self.error("InvalidRecipe", f"item {key!r}: {what} must be a JSON object")
        return value

    def state(self, key: str) -> str:
        return job_state(self.journal.jobs.get(key), time.time())

    def cancel(self, key: str) -> str:
        with self.lock:
            job = self.journal.jobs.get(key)
            if job is not None and job_state(job, time.time()) in ("queued", "running"):
                self.journal.put({**job, "cancelled_s": time.time()})
        return self.state(key)

    def responses(self, key: str) -> tuple:
        """(State, FailureReason, readings...) as the feature's responses."""
        job = self.journal.jobs.get(key)
        state = self.state(key)
        result = JobResult.from_dict(job["result"]) if job is not None and state in ("done", "failed") else None
        reason = result.reason if result is not None else ""
        if self.kind == "synthesis":
            char = result.characterization if result is not None else None
            values = char.to_dict() if char is not None else dict.fromkeys(Characterization.fields(), math.nan)
            return (state, reason, *values.values())
        readings = [
            (curve.replicate, t, r) for curve in (result.curves if result is not None else ())
            for t, r in zip(curve.times_hours, curve.release_pct)
        ]
        return (state, reason, readings)

    def run(self, key: str, recipe_json: str, context_json: str, instance) -> tuple:
        """Body of the observable command: accept, report progress until finished, return the readings."""
        job = self.accept(key, recipe_json, context_json)
        while self.state(key) in ("queued", "running"):
            now = time.time()
            instance.progress = min(max((now - job["start_s"]) / max(self.duration_s, 1e-9), 0.0), 1.0)
            instance.estimated_remaining_time = timedelta(seconds=max(job["end_s"] - now, 0.0))
            time.sleep(min(0.1, max(job["end_s"] - now, 0.01)))
            job = self.journal.jobs[key]
        instance.progress = 1.0
        return self.responses(key)


def implementation(station: Station, server: SilaServer) -> FeatureImplementationBase:
    """The feature implementation whose methods carry the FDL's command names."""
    _, command = FEATURES[station.kind]

    class Implementation(FeatureImplementationBase):
        def GetJobState(self, IdempotencyKey, *, metadata):
            return station.state(IdempotencyKey)

        def GetJobResult(self, IdempotencyKey, *, metadata):
            return station.responses(IdempotencyKey)

        def CancelJob(self, IdempotencyKey, *, metadata):
            return station.cancel(IdempotencyKey)

        def get_SamplingTimesHours(self, *, metadata):
            return list(station.lab.sampling_times_hours)

        def get_Replicates(self, *, metadata):
            return station.lab.replicates

    if station.kind == "synthesis":
        def start(self, IdempotencyKey, Recipe, *, metadata, instance):
            return station.run(IdempotencyKey, Recipe, "{}", instance)
    else:
        def start(self, IdempotencyKey, Recipe, Characterization, *, metadata, instance):
            return station.run(IdempotencyKey, Recipe, Characterization, instance)
    setattr(Implementation, command, start)
    return Implementation(server)


def build_server(station: Station) -> SilaServer:
    """A SiLA 2 server offering the station's feature (not started)."""
    identifier, _ = FEATURES[station.kind]
    server = SilaServer(
        server_name=f"nanoloop simulated {station.kind}",
        server_type="NanoloopSimulated" + ("FormulationStation" if station.kind == "synthesis" else "DissolutionTester"),
        server_description=f"Simulated {station.kind} instrument ({identifier}) with nanoloop's ground-truth physics",
        server_version="1.0",
        server_vendor_url="https://github.com/nanoloop",
    )
    server.set_feature_implementation(station.feature, implementation(station, server))
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nanoloop.adapters.sila.server", description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=sorted(FEATURES))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", required=True, help="folder for the job journal (jobs.jsonl)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated lab")
    parser.add_argument("--duration-s", type=float, default=1.0, help="wall-clock seconds one job takes")
    parser.add_argument("--insecure", action="store_true", help="no TLS (loopback only)")
    parser.add_argument("--cert", help="PEM certificate chain of the server")
    parser.add_argument("--key", help="PEM private key of the server")
    args = parser.parse_args(argv)
    if args.insecure and args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--insecure is allowed on loopback only (--host 127.0.0.1)")
    if not args.insecure and not (args.cert and args.key):
        parser.error("give --cert and --key (PEM files), or --insecure on loopback")
    server = build_server(Station(args.kind, Path(args.state_dir), seed=args.seed, duration_s=args.duration_s))
    if args.insecure:
        server.start_insecure(args.host, args.port, enable_discovery=False)
    else:
        server.start(args.host, args.port, private_key=Path(args.key).read_bytes(),
                     cert_chain=Path(args.cert).read_bytes(), enable_discovery=False)
    print(f"serving {args.kind} on {args.host}:{args.port}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(grace_period=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
