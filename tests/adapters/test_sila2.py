"""SiLA 2 instruments against real SiLA 2 servers on loopback (the simulated lab's physics behind them).

The campaign test runs `nanoloop run` for two rounds against two server
processes and SIGKILLs the synthesis server while it is taking the first batch.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sila2.server.encryption import generate_self_signed_certificate

from nanoloop.adapters.registry import load_instrument
from nanoloop.adapters.sila.client import SilaDissolution, SilaSynthesis
from nanoloop.adapters.sila.features import FEATURES, load_feature
from nanoloop.adapters.sila.server import Station, build_server
from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.config import example_config_text
from nanoloop.loop.errors import InputError
from nanoloop.loop.lab.instruments import (
    InstrumentTimeout,
    JobState,
    PermanentInstrumentError,
    TransientInstrumentError,
    WorkItem,
)

from lab_recipes import RECIPE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server_process(kind: str, port: int, state_dir: Path, log: Path, duration_s: float) -> subprocess.Popen:
    command = [sys.executable, "-m", "nanoloop.adapters.sila.server", kind, "--port", str(port),
               "--state-dir", str(state_dir), "--seed", "7", "--duration-s", str(duration_s), "--insecure"]
    out = open(log, "a")
    proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    deadline = time.monotonic() + 60
    while f"serving {kind}" not in log.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return proc


def journal(state_dir: Path) -> list[dict]:
    """The server's job journal (a line still being written is skipped)."""
    path = state_dir / "jobs.jsonl"
    jobs = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            jobs.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return jobs


@pytest.fixture
def station_server(tmp_path):
    """Start an in-process server: station_server(kind, duration_s) -> (port, station)."""
    servers = []

    def start(kind, duration_s=0.2, tls=False):
        station = Station(kind, tmp_path / kind, seed=3, duration_s=duration_s)
        server = build_server(station)
        port = free_port()
        if tls:  # a self-signed certificate naming the server's UUID, as SiLA 2 asks
            key, cert = generate_self_signed_certificate(server.server_uuid, "127.0.0.1")
            (tmp_path / "ca.pem").write_bytes(cert)
            server.start("127.0.0.1", port, private_key=key, cert_chain=cert, enable_discovery=False)
        else:
            server.start_insecure("127.0.0.1", port, enable_discovery=False)
        servers.append(server)
        return port, station

    yield start
    for server in servers:
        server.stop(grace_period=0.5)


def test_the_features_ship_as_package_data_and_validate():
    for kind, (identifier, command) in FEATURES.items():
        feature = load_feature(kind)
        assert feature._identifier == identifier
        assert command in feature._observable_commands
        assert {"GetJobState", "GetJobResult", "CancelJob"} <= set(feature._unobservable_commands)
        assert {"InvalidRecipe", "RecipeConflict"} <= set(feature.defined_execution_errors)


def test_synthesis_runs_an_observable_command_per_item_with_progress(station_server):
    port, station = station_server("synthesis", duration_s=1.0)
    synth = load_instrument("sila2-synthesis", {"port": port, "insecure": True}, expected_kind="synthesis")
    items = [WorkItem("F-1", RECIPE), WorkItem("F-2", dict(RECIPE, drug_logp=3.0))]
    synth.submit(items, timeout_s=10)
    states = synth.status(["F-1", "F-2", "F-9"], timeout_s=5)
    assert states == {"F-1": JobState.RUNNING, "F-2": JobState.QUEUED, "F-9": JobState.UNKNOWN}
    time.sleep(0.3)
    progress = synth.progress(["F-1", "F-2"])
    assert 0.0 < progress["F-1"] < 1.0 and progress.get("F-2", 0.0) == 0.0
    assert synth.collect(["F-1", "F-2"], timeout_s=5) == []  # not finished yet
    results, deadline = {}, time.monotonic() + 10
    while len(results) < 2 and time.monotonic() < deadline:
        results.update((r.key, r) for r in synth.collect(["F-1", "F-2"], timeout_s=5))
        time.sleep(0.1)
    # the readings are the simulated lab's, as the server journaled them
    for key, job in station.journal.jobs.items():
        assert results[key].state.value == job["result"]["state"]
        if results[key].state is JobState.DONE:
            assert results[key].characterization.to_dict() == job["result"]["characterization"]
    synth.submit(items, timeout_s=10)  # again: nothing new is made
    assert len(station.journal.jobs) == 2 and len((station.journal.path).read_text().splitlines()) == 2
    synth.close()


def test_dissolution_returns_every_vessel_and_uses_the_measured_characterization(station_server):
    port, station = station_server("dissolution", duration_s=0.1)
    tester = SilaDissolution(port=port, insecure=True)
    facts = tester.describe()
    assert facts["replicates"] == 3 and facts["sampling_times_hours"][-1] == 672.0
    char = {"size_nm": 180.0, "pdi": 0.1, "zeta_mv": -20.0, "encapsulation_efficiency_pct": 80.0, "drug_loading_pct": 8.0}
    tester.submit([WorkItem("F-1", RECIPE, {"characterization": char})], timeout_s=10)
    time.sleep(0.3)
    (result,) = tester.collect(["F-1"], timeout_s=5)
    assert result.state is JobState.DONE and [c.replicate for c in result.curves] == [1, 2, 3]
    assert all(c.times_hours == tuple(facts["sampling_times_hours"]) for c in result.curves)
    assert station.journal.jobs["F-1"]["inputs"]["context"] == char
    tester.close()


def test_a_bad_recipe_is_a_permanent_error_naming_the_key(station_server):
    port, station = station_server("synthesis")
    synth = SilaSynthesis(port=port, insecure=True)
    with pytest.raises(PermanentInstrumentError, match="drug_loading_pct") as err:
        synth.submit([WorkItem("F-bad", dict(RECIPE, drug_loading_pct=95))], timeout_s=10)
    assert err.value.item_key == "F-bad" and "InvalidRecipe" in str(err.value)
    assert synth.status(["F-bad"], timeout_s=5) == {"F-bad": JobState.UNKNOWN}
    synth.close()


def test_a_silent_server_times_out_and_a_missing_one_is_transient():
    with socket.socket() as silent:  # accepts TCP connections, never speaks gRPC
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        synth = SilaSynthesis(port=silent.getsockname()[1], insecure=True)
        started = time.monotonic()
        with pytest.raises(InstrumentTimeout):
            synth.status(["F-1"], timeout_s=1.0)
        assert time.monotonic() - started < 3
    nobody = SilaSynthesis(port=free_port(), insecure=True)
    with pytest.raises(TransientInstrumentError, match="unreachable") as err:
        nobody.status(["F-1"], timeout_s=1.0)
    assert not isinstance(err.value, InstrumentTimeout)


def test_certificate_mode(station_server, tmp_path):
    port, _ = station_server("synthesis", tls=True)
    synth = load_instrument("sila2-synthesis", {"port": port, "root_certs": str(tmp_path / "ca.pem")})
    assert synth.describe()["security"] == "TLS"
    assert synth.status(["F-1"], timeout_s=10) == {"F-1": JobState.UNKNOWN}
    synth.close()
    with pytest.raises(TransientInstrumentError):  # plain text to a TLS server does not get through
        SilaSynthesis(port=port, insecure=True).status(["F-1"], timeout_s=1.5)


@pytest.mark.parametrize(
    "options, words",
    [
        ({"host": "10.0.0.7", "insecure": True}, ["insecure", "loopback"]),
        ({"port": 70000, "insecure": True}, ["port"]),
        ({"root_certs": "/no/such/ca.pem"}, ["root_certs", "/no/such/ca.pem"]),
    ],
)
def test_bad_options_are_one_line_input_errors(options, words):
    with pytest.raises(InputError) as err:
        load_instrument("sila2-dissolution", options)
    assert all(w in str(err.value) for w in words) and "\n" not in str(err.value)


def campaign_config(folder: Path, synth_port: int, diss_port: int) -> Path:
    text = example_config_text().replace("batch_size = 8", "batch_size = 3").replace("timeout_s = 30", "timeout_s = 20")
    text = text.replace("members = 5", "members = 2").replace("epochs = 400", "epochs = 20").replace("pool_size = 4096", "pool_size = 64")
    for role, port in (("synthesis", synth_port), ("dissolution", diss_port)):
        text = text.replace(
            f'[instruments.{role}]\nkind = "simulated-{role}"\noptions = {{}}',
            f'[instruments.{role}]\nkind = "sila2-{role}"\noptions = {{ host = "127.0.0.1", port = {port}, insecure = true }}',
        )
    assert text.count("sila2-") == 2
    path = folder / "campaign.toml"
    path.write_text(text)
    return path


@pytest.mark.slow
def test_two_round_campaign_through_the_cli_survives_a_killed_server(tmp_path, prefect_server):
    ports = {"synthesis": free_port(), "dissolution": free_port()}
    dirs = {kind: tmp_path / f"sila-{kind}" for kind in ports}
    logs = {kind: tmp_path / f"{kind}.log" for kind in ports}
    servers = {kind: start_server_process(kind, ports[kind], dirs[kind], logs[kind], 0.2) for kind in ports}
    store = tmp_path / "store"
    cli = Path(sys.executable).with_name("nanoloop")
    command = [str(cli), "run", str(campaign_config(tmp_path, ports["synthesis"], ports["dissolution"])),
               str(store), "--rounds", "2", "--auto-approve"]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
    try:
        # kill the synthesis server as soon as it has taken the first formulation of round 0
        deadline = time.monotonic() + 120
        while not journal(dirs["synthesis"]):
            assert run.poll() is None and time.monotonic() < deadline, run.stdout.read()
            time.sleep(0.02)
        first_pid = servers["synthesis"].pid
        servers["synthesis"].send_signal(signal.SIGKILL)
        servers["synthesis"].wait()
        time.sleep(0.5)
        servers["synthesis"] = start_server_process("synthesis", ports["synthesis"], dirs["synthesis"], logs["synthesis"], 0.2)
        output, _ = run.communicate(timeout=240)
    finally:
        if run.poll() is None:
            run.kill()
        for proc in servers.values():
            proc.terminate()
            proc.wait(timeout=20)
    assert run.returncode == 0, output

    forms = Campaign.open(str(store)).formulations()
    assert len(forms) == 6 and set(forms["round"]) == {0, 1}
    assert set(forms["status"]) <= {"measured", "failed"} and (forms["status"] == "measured").sum() >= 3
    synthesis_jobs = journal(dirs["synthesis"])
    # the batch was split across the killed server and its successor: the kill hit mid-round
    assert {j["pid"] for j in synthesis_jobs} == {first_pid, servers["synthesis"].pid}
    # no formulation was made twice, and every one was made
    made = Counter(j["key"] for j in synthesis_jobs)
    assert set(made) == set(forms["formulation_id"]) and set(made.values()) == {1}
    tested = Counter(j["key"] for j in journal(dirs["dissolution"]))
    assert set(tested.values()) == {1}
    # the ledger holds what the servers measured
    chars = Campaign.open(str(store)).ledger.read("characterization").set_index("formulation_id")
    for job in synthesis_jobs:
        if job["result"]["state"] == "done":
            assert chars.loc[job["key"], "size_nm"] == job["result"]["characterization"]["size_nm"]
            assert chars.loc[job["key"], "instrument"] == "sila2-synthesis"
