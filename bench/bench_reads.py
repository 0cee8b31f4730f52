"""Benchmark: reading a campaign's ledger as it grows, from a short campaign to a long one.

    python bench/bench_reads.py [--rounds 2 23] [--repeats 5] [--against main]

Builds one store per ``--rounds`` the way a campaign grows it: the demo config
stored with it, then per round one formulations part (a batch of 8), six events
parts (proposed, approved, dispatched, synthesized, dissolving, then measured or
failed), one part each of characterization, curves (3 replicates x 10 times) and
kinetics, and from round 1 on one each of models, explanations and
partial_dependence; every row written through ``Ledger.append``, one part per
append. Round 0 adds 10 parts and each later round 13, so 2 rounds make 23 parts
and 23 rounds 296.

Prints the median over ``--repeats`` of, in milliseconds: an events read with a
new Ledger (cold) and again with the same one (warm); ``campaign_status`` with a
new Ledger (what ``nanoloop status`` computes); the dashboard's ``load_snapshot``;
and the wall time of the command ``nanoloop status STORE`` as a subprocess,
run in turns with a process that only imports what that command imports; and
the command's work once imported (``flows.cli.main(["status", STORE])`` in the
measuring process). Each figure is measured in a fresh child process per code
tree and repeat; ``--against REV`` measures the same stores with the package as
it is at git revision REV too, the two trees taking turns, and prints REV / this
tree.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH = 8
#: subpackage -> its folder in the repository (pyproject.toml's package-dir)
PACKAGE_DIRS = {"loop": "loop", "adapters": "adapters", "flows": "flows", "dashboard": "dashboard"}
#: what `nanoloop status` imports before it reads the store
STATUS_IMPORTS = ("nanoloop.flows.cli", "nanoloop.flows.cli_campaign", "nanoloop.loop.campaign.evaluation", "nanoloop.loop.store.stored_config",
                  "nanoloop.flows.progress")
FIGURES = {
    "events_cold_ms": "events read, new Ledger (cold)",
    "events_warm_ms": "events read, same Ledger (warm)",
    "status_ms": "campaign_status, new Ledger (in-process)",
    "snapshot_ms": "load_snapshot (dashboard, in-process)",
    "command_ms": "`nanoloop status STORE` (whole command)",
    "imports_ms": "  start-up and imports alone",
    "command_work_ms": "  the command once imported (in-process)",
}


# -- building a store -------------------------------------------------------------------
def build_store(path: Path, rounds: int, seed: int = 0) -> int:
    """Write a campaign of ``rounds`` rounds to ``path`` through Ledger.append; returns its part count."""
    import numpy as np

    from nanoloop.loop.config import default_config
    from nanoloop.loop.design.space import Continuous, formulation_id, recipe_json
    from nanoloop.loop.lab.instruments import Characterization
    from nanoloop.loop.store.ledger import Ledger, now_utc
    config = default_config()
    ledger = Ledger(path)
    ledger.write_blob("campaign.json", json.dumps(config.model_dump(mode="json"), indent=1).encode())  # as a campaign stores it
    rng = np.random.default_rng(seed)
    space = config.design_space()
    grid_hours = np.array([1.0, 4, 8, 24, 48, 72, 168, 336, 504, 672])
    continuous = [v.name for v in space.variables if isinstance(v, Continuous) and v.value is None][:4]
    for round_ in range(rounds):
        recipes = space.sample(BATCH, seed=seed + round_).to_dict("records")
        ids = [formulation_id(config.name, recipe) for recipe in recipes]
        version = f"model-r{round_}" if round_ else ""
        rates = rng.uniform(0.002, 0.02, BATCH)
        ledger.append("formulations", [{
            "formulation_id": fid, "campaign": config.name, "round": round_, "parameters_json": recipe_json(recipe),
            "origin": "acquisition" if round_ else "initial-design",
            "predicted_times_hours": grid_hours.tolist() if round_ else None,
            "predicted_release_pct": (100 * (1 - np.exp(-rate * 1.1 * grid_hours))).tolist() if round_ else None,
            "predicted_std_pct": np.full(grid_hours.size, 6.0).tolist() if round_ else None,
            "predicted_objective": rng.uniform(30, 70) if round_ else np.nan, "objective_std": 8.0 if round_ else np.nan,
            "acquisition_value": rng.uniform(0, 1) if round_ else np.nan, "acquisition": "qlogei" if round_ else "sobol",
            "acquisition_params_json": json.dumps({"recommender": "ensemble"}), "model_version": version,
            "seed": seed, "nanoloop_version": "bench", "created_at": now_utc(),
        } for fid, recipe, rate in zip(ids, recipes, rates)])
        failed = ids[-1] if round_ % 3 == 2 else None  # one formulation in three rounds fails in dissolution
        for step in ("proposed", "approved", "dispatched", "synthesized", "dissolving", "measured"):
            events = []
            for fid in ids:
                status = "failed" if fid == failed and step == "measured" else step
                score = rng.uniform(20, 80) if status == "measured" else None
                events.append({
                    "event_id": f"{fid}-{status}", "formulation_id": fid, "campaign": config.name, "round": round_, "status": status,
                    "reason": "dissolution: vessel leaked" if status == "failed" else "", "time": now_utc(),
                    "measured_objective": score, "measured_f2": score,
                })
            ledger.append("events", events)
        measured = [(fid, rate) for fid, rate in zip(ids, rates) if fid != failed]
        ledger.append("characterization", [{
            "formulation_id": fid, **{name: float(rng.uniform(1, 100)) for name in Characterization.fields()},
            "instrument": "bench", "raw_checksum": "",
        } for fid, _ in measured])
        ledger.append("curves", [{
            "formulation_id": fid, "replicate": rep, "time_hours": float(t),
            "release_pct": float(100 * (1 - np.exp(-rate * t)) + rng.normal(0, 1.5)), "instrument": "bench", "raw_checksum": "",
            "apparatus": "USP 2", "medium": "PBS pH 7.4", "volume_ml": 900.0, "temperature_c": 37.0,
        } for fid, rate in measured for rep in (1, 2, 3) for t in grid_hours])
        ledger.append("kinetics", [{
            "formulation_id": fid, "best_model": "first_order_plateau", "params_json": json.dumps({"plateau_pct": 100.0, "k_per_h": rate}),
            "r2": 0.99, "t50_hours": np.log(2) / rate, "t80_hours": np.log(5) / rate, "burst_24h_pct": 100 * (1 - np.exp(-24 * rate)),
            "mdt_hours": 1 / rate,
        } for fid, rate in measured])
        if not round_:
            continue
        ledger.append("models", [{
            "model_version": version, "campaign": config.name, "round": round_, "n_formulations": BATCH * round_,
            "n_points": 30 * BATCH * round_, "head": "blend", "members": 5, "seed": seed, "train_seconds": 12.0,
            "metrics_json": json.dumps({"mae_pct": 6.0}), "trained_at": now_utc(),
        }])
        ledger.append("explanations", [{
            "model_version": version, "round": round_, "feature": name, "importance": float(rng.uniform(0, 5)),
            "method": method, "time_hours": hours, "effect_pct": float(rng.normal(0, 5)) if hours else np.nan, "effect_detail": "",
        } for name in space.names for method, hours in (("permutation_mae_pct", np.nan), ("shapley_pct@168h", 168.0))])
        ledger.append("partial_dependence", [{
            "model_version": version, "round": round_, "variable": name, "time_hours": float(t), "value": float(value),
            "release_pct": 50.0, "low_pct": 40.0, "high_pct": 60.0,
        } for name in continuous for t in (24.0, 168.0, 672.0) for value in np.linspace(0, 1, 10)])
    return sum(1 for part in Path(path).glob("*/part-*.parquet"))  # every table's parts (older revisions list them alike)


# -- measuring (in a child process, so each code tree starts alike) ---------------------------
def _median_ms(call, repeats: int) -> float:
    """Median wall time of ``call`` in ms, after one untimed call (imports, the disk cache)."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def measure(store: str, repeats: int) -> dict[str, float]:
    """The medians of :data:`FIGURES` on ``store`` with the ``nanoloop`` this process imports (and where its ledger module is)."""
    from nanoloop.dashboard.data import load_snapshot
    from nanoloop.loop.campaign.evaluation import campaign_status
    from nanoloop.loop.store import ledger
    from nanoloop.loop.store.ledger import Ledger
    from nanoloop.loop.store.stored_config import read_stored_config

    config = read_stored_config(Ledger(store, create=False))
    warm = Ledger(store, create=False)
    warm.read("events")
    return {
        "ledger_module": ledger.__file__,
        "events_cold_ms": _median_ms(lambda: Ledger(store, create=False).read("events"), repeats),
        "events_warm_ms": _median_ms(lambda: warm.read("events"), repeats),
        "status_ms": _median_ms(lambda: campaign_status(Ledger(store, create=False), config.target, config.name), repeats),
        "snapshot_ms": _median_ms(lambda: load_snapshot(store), repeats),
        "command_work_ms": _median_ms(lambda: _status_in_process(store), repeats),
        **_command_ms(store, repeats),
    }


def _command_ms(store: str, repeats: int) -> dict[str, float]:
    """``nanoloop status STORE`` as a process, and a process that only imports what it imports, run in turns."""
    command = [str(Path(sys.executable).with_name("nanoloop")), "status", store]
    # a module the measured tree does not have (an older revision) is skipped: the rest is what its status imports
    imports = [sys.executable, "-c", "import importlib.util as u, importlib\n"
               f"for m in {list(STATUS_IMPORTS)!r}:\n    importlib.import_module(m) if u.find_spec(m) else None"]
    wall = {"command_ms": [], "imports_ms": []}
    for turn in range(repeats + 1):  # the first turn is not timed (the disk cache)
        for key, argv in (("command_ms", command), ("imports_ms", imports)):
            start = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True)
            if turn:
                wall[key].append(1e3 * (time.perf_counter() - start))
    return {key: statistics.median(times) for key, times in wall.items()}


def _status_in_process(store: str) -> None:
    """What ``nanoloop status STORE`` does once its modules are imported (its table printed to nowhere)."""
    from nanoloop.flows.cli import main

    with contextlib.redirect_stdout(io.StringIO()):
        main(["status", store])


def _measure_in_child(stores: list[str], repeats: int, package: Path | None) -> list[dict[str, float]]:
    """:func:`measure` of each store in a new process; ``package``: a folder put first on its PYTHONPATH (None: this tree)."""
    env = dict(os.environ)
    if package is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(package), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    out = subprocess.run([sys.executable, __file__, "--measure", *stores, "--repeats", str(repeats)],
                         env=env, check=True, capture_output=True, text=True).stdout
    figures = json.loads(out)
    measured = Path(figures[0]["ledger_module"])
    if package is not None and not measured.resolve().is_relative_to(package.parent):
        raise RuntimeError(f"the child measured {measured}, not the package under {package}")
    return figures


def _build_in_child(store: Path, rounds: int, package: Path | None) -> int:
    """:func:`build_store` in a new process with ``package`` first on its PYTHONPATH (None: this tree); returns the parts."""
    env = dict(os.environ)
    if package is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(package), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    out = subprocess.run([sys.executable, __file__, "--build", str(store), str(rounds)], env=env, check=True, capture_output=True, text=True)
    return int(out.stdout.split()[-1])


def _medians(turns: list[list[dict[str, float]]]) -> list[dict[str, float]]:
    """Per store, the median of each figure over the turns (each turn: one child's figures for every store)."""
    return [{key: statistics.median(turn[k][key] for turn in turns) for key in FIGURES} for k in range(len(turns[0]))]


def _package_at(revision: str, folder: Path) -> Path:
    """The ``nanoloop`` package as it is at ``revision``, laid out under ``folder`` for PYTHONPATH."""
    source = folder / "source"
    source.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "nanoloop", *PACKAGE_DIRS.values()], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    package = folder / "package"
    shutil.copytree(source / "nanoloop", package / "nanoloop")
    for name, where in PACKAGE_DIRS.items():
        (package / "nanoloop" / name).symlink_to(source / where, target_is_directory=True)
    return package


# -- printing -------------------------------------------------------------------------------
def report(sizes: list[tuple[int, int]], here: list[dict], against: list[dict] | None, revision: str | None, repeats: int) -> list[str]:
    """The lines to print: one block per store, a figure per line (this tree, and REV with REV / this tree)."""
    lines = []
    for (rounds, parts), figures, old in zip(sizes, here, against or [None] * len(here)):
        lines.append(f"store of {rounds} rounds, {parts} parts, {rounds * BATCH} formulations (median of {repeats}, ms):"
                     + (f" this tree | {revision} | {revision} / this" if old else ""))
        for key, label in FIGURES.items():
            line = f"  {label:<44}{figures[key]:9.1f}"
            if old:
                line += f" | {old[key]:9.1f} | {old[key] / figures[key]:5.1f}x"
            lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, nargs="+", default=[2, 23], help="rounds of each store built (default 2 23: 23 and 296 parts)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each figure; the median is printed")
    parser.add_argument("--against", metavar="REV", help="also measure the package at git revision REV (e.g. main; printed as its commit) on the same stores")
    parser.add_argument("--measure", nargs="+", metavar="STORE", help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--build", nargs=2, metavar=("STORE", "ROUNDS"), help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps([measure(store, args.repeats) for store in args.measure]))
        return
    if args.build:
        print(build_store(Path(args.build[0]), int(args.build[1])))
        return
    folder = Path(tempfile.mkdtemp(prefix="nanoloop-bench-reads-"))
    try:
        revision = args.against and subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.against],
                                                   check=True, capture_output=True, text=True).stdout.strip()
        trees = {"here": None, **({"old": _package_at(revision, folder)} if revision else {})}
        stores, sizes = [], []
        for rounds in args.rounds:  # with --against, built by REV's package: a later config key would not read at REV
            store = folder / f"store-{rounds}-rounds"
            sizes.append((rounds, _build_in_child(store, rounds, trees.get("old"))))
            stores.append(str(store))
        runs = {tree: [] for tree in trees}
        for _ in range(args.repeats):  # the trees take turns, so a change in the machine's load hits both alike
            for tree, package in trees.items():
                runs[tree].append(_measure_in_child(stores, 1, package))
        medians = {tree: _medians(turns) for tree, turns in runs.items()}
        for line in report(sizes, medians["here"], medians.get("old"), revision, args.repeats):
            print(line)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
