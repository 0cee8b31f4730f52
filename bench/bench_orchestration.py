"""Orchestration overhead of a round and the Dask speed-up of ensemble training.

    .venv/bin/python bench/bench_orchestration.py [--rounds 3] [--batch 8] [--repeats 3]

Overhead: the same campaign (same config and seed, so the same work) runs
twice, once as plain Campaign steps in this process ("science") and once as
Prefect round flows against a running server; a round's overhead is its flow
wall time minus its science time. Uses PREFECT_API_URL when set, otherwise
starts a temporary `prefect server` on a free loopback port.

Dask: training the round's ensemble on the final data, all members batched in
this process against one task per member on a local Dask cluster (started
once, its start-up reported apart). Medians over --repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.update({"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING", "DASK_LOGGING__DISTRIBUTED": "warning"})


def start_server() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = tempfile.mkdtemp(prefix="nanoloop-bench-prefect-")
    env = {**os.environ, "PREFECT_HOME": home}
    prefect = Path(sys.executable).with_name("prefect")
    proc = subprocess.Popen([str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the Prefect server did not start")


def science_round(campaign, round_: int) -> None:
    """What a round flow does, without Prefect: the steps, the explanation, the evaluation."""
    campaign.run_round(round_)
    if round_ > 0:
        from nanoloop.loop.explain.importance import explain_round

        explain_round(campaign, round_)
    from nanoloop.loop.campaign.evaluation import campaign_status

    campaign_status(campaign.ledger, campaign.config.target, campaign.config.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    server = None
    if not os.environ.get("PREFECT_API_URL"):
        server, url = start_server()
        os.environ["PREFECT_API_URL"] = url
    try:
        from nanoloop.loop.campaign.campaign import Campaign
        from nanoloop.loop.config import default_config
        from nanoloop.adapters.registry import build_instruments
        from nanoloop.loop.store.ledger import Ledger

        config = default_config().model_copy(update={"batch_size": args.batch, "name": "bench-orchestration"})
        folder = Path(tempfile.mkdtemp(prefix="nanoloop-bench-"))
        science = Campaign(config, Ledger(folder / "science"), build_instruments)
        science_s = []
        for round_ in range(args.rounds):
            started = time.perf_counter()
            science_round(science, round_)
            science_s.append(time.perf_counter() - started)

        from nanoloop.flows.rounds import round_flow

        Campaign(config, Ledger(folder / "flow"))
        flow_s = []
        for round_ in range(args.rounds):
            started = time.perf_counter()
            round_flow(str(folder / "flow"), auto_approve=True)
            flow_s.append(time.perf_counter() - started)

        same = Ledger(folder / "science").read("curves").sort_values(["formulation_id", "replicate", "time_hours"]).reset_index(drop=True).equals(
            Ledger(folder / "flow").read("curves").sort_values(["formulation_id", "replicate", "time_hours"]).reset_index(drop=True)
        )
        overhead = [f - s for f, s in zip(flow_s, science_s)]
        result = {
            "rounds": [{"round": r, "science_s": s, "flow_s": f, "overhead_s": f - s, "overhead_pct": 100 * (f - s) / f} for r, (s, f) in enumerate(zip(science_s, flow_s))],
            "median_overhead_s": statistics.median(overhead),
            "median_overhead_pct": statistics.median(100 * o / f for o, f in zip(overhead, flow_s)),
            "same_measurements": same,
        }
        result["dask"] = dask_speedup(science, args.repeats)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)

    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{'round':>5} {'science s':>10} {'flow s':>8} {'overhead s':>11} {'overhead %':>11}")
    for r in result["rounds"]:
        print(f"{r['round']:>5} {r['science_s']:>10.2f} {r['flow_s']:>8.2f} {r['overhead_s']:>11.2f} {r['overhead_pct']:>10.1f}%")
    print(f"median orchestration overhead: {result['median_overhead_s']:.2f} s a round, {result['median_overhead_pct']:.1f} % of the round (same measurements in both: {same})")
    d = result["dask"]
    print(
        f"ensemble training ({d['members']} members, {d['formulations']} formulations): batched in-process {d['batched_s']:.2f} s, "
        f"one Dask task per member {d['dask_s']:.2f} s -> speed-up {d['speedup']:.2f}x on {d['workers']} workers "
        f"(cluster start-up {d['cluster_start_s']:.1f} s, not counted)"
    )


def dask_speedup(campaign, repeats: int) -> dict:
    """Median seconds to train the ensemble: batched here vs per-member tasks on a local Dask cluster."""
    from prefect import flow

    from nanoloop.flows.parallel import dask_task_runner, fit_members_in_tasks

    X, y, groups, n_formulations = campaign.models.training_data()
    members = campaign.config.surrogate.members
    batched = []
    for k in range(repeats):
        started = time.perf_counter()
        campaign.models.new_model(members, k).fit(X, y, groups=groups)
        batched.append(time.perf_counter() - started)

    @flow(task_runner=dask_task_runner(None))
    def train_on_dask() -> dict:
        timings = []
        for k in range(repeats):
            started = time.perf_counter()
            fit_members_in_tasks([campaign.models.new_model(1, 1000 * k + m) for m in range(members)], X, y, groups)
            timings.append(time.perf_counter() - started)
        return {"timings": timings}

    started = time.perf_counter()
    timings = train_on_dask()["timings"]
    total = time.perf_counter() - started
    return {
        "members": members, "formulations": n_formulations, "workers": os.cpu_count(),
        "batched_s": statistics.median(batched), "dask_s": statistics.median(timings),
        "speedup": statistics.median(batched) / statistics.median(timings), "cluster_start_s": total - sum(timings),
    }


if __name__ == "__main__":
    main()
