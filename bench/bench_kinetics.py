"""Benchmark: fit every release law to synthetic release curves and to the 209 real liposome curves.

    python bench/bench_kinetics.py [--curves 1000] [--points 15] [--workers 2] [--seed 0] [--data FILE]

Synthetic curves come from four generating laws with random parameters and
1.5 % noise, sampled from 0.5 h to 672 h. Prints the wall time and curves per
second over all workers, then median figures per curve: wall and CPU fit time,
best R², and the share of curves whose generating law ranks in the top three
by AICc. The CPU figures do not depend on other load on the machine.

In the same run, the public liposome set (209 digitized curves, CC BY 4.0) is
read through the front door (`read_curves`: sorted, averaged, flagged) and
fitted the same way; by default it is looked for in shared/data/liposome-release/
inside or beside the repository, or give --data FILE. Prints its time and the
median RMSE of the best law.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread per worker process

import argparse  # noqa: E402
import time  # noqa: E402
from multiprocessing import get_context  # noqa: E402

import numpy as np  # noqa: E402

from pathlib import Path  # noqa: E402

from nanoloop.loop.kinetics import LAWS_BY_NAME, fit_laws, read_curves  # noqa: E402

REAL_SET = Path("data", "liposome-release", "yanes2024_release_curves.csv")

GENERATORS = {  # law name -> sampler of its parameters from a random generator
    "first_order_plateau": lambda rng: (rng.uniform(50, 100), 10 ** rng.uniform(-3, -0.5)),
    "weibull": lambda rng: (10 ** rng.uniform(0.5, 2.7), rng.uniform(0.4, 1.6)),
    "korsmeyer_peppas": lambda rng: (rng.uniform(2, 10), rng.uniform(0.3, 0.6)),
    "logistic_plateau": lambda rng: (rng.uniform(50, 100), rng.uniform(-6, -2), rng.uniform(1.5, 4)),
}


def synthetic_curves(n_curves: int, n_points: int, seed: int):
    """(generating law, times_hours, release_pct) for `n_curves` noisy curves."""
    rng = np.random.default_rng(seed)
    times = np.geomspace(0.5, 672.0, n_points)
    names = list(GENERATORS)
    curves = []
    for i in range(n_curves):
        name = names[i % len(names)]
        clean = LAWS_BY_NAME[name](times, *GENERATORS[name](rng))
        curves.append((name, times, np.clip(clean, 0, 105) + rng.normal(0.0, 1.5, n_points)))
    return curves


def fit_one(curve):
    name, times, release = curve
    start, cpu_start = time.perf_counter(), time.process_time()
    fit = fit_laws(times, release)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    top3 = [f.law.name for f in fit.fits[:3]]
    return seconds, cpu_seconds, fit.best.r2, name in top3


def real_set_path(given: str | None) -> Path | None:
    """--data, else shared/data/liposome-release/... inside or beside the repository root."""
    if given:
        return Path(given)
    root = Path(__file__).resolve().parents[1]
    return next((p for p in (root / "shared" / REAL_SET, root.parent / "shared" / REAL_SET) if p.is_file()), None)


def fit_real(curve):
    curve_id, times, release = curve
    start, cpu_start = time.perf_counter(), time.process_time()
    best = fit_laws(times, release, curve_id=curve_id).best
    return time.perf_counter() - start, time.process_time() - cpu_start, best.rmse


def run(pool, function, items, workers):
    if pool is None:
        return [function(item) for item in items]
    return pool.map(function, items, chunksize=max(1, len(items) // (8 * workers)))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", type=int, default=1000, help="number of curves (default 1000)")
    parser.add_argument("--points", type=int, default=15, help="points per curve (default 15)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", help="the liposome release CSV (default: found under shared/ by the repository)")
    args = parser.parse_args(argv)
    curves = synthetic_curves(args.curves, args.points, args.seed)
    real_path = real_set_path(args.data)
    pool = get_context("spawn").Pool(args.workers) if args.workers > 1 else None
    try:
        start = time.perf_counter()
        results = run(pool, fit_one, curves, args.workers)
        elapsed = time.perf_counter() - start
        real = None
        if real_path is not None:
            real_start = time.perf_counter()
            data = read_curves(real_path)
            items = [(c.curve_id, c.times_hours, c.release_pct) for c in data.curves]
            real = (data, run(pool, fit_real, items, args.workers), time.perf_counter() - real_start)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    seconds, cpu_seconds, r2, recovered = (np.array(column) for column in zip(*results))
    print(f"{args.curves} curves x {len(LAWS_BY_NAME)} laws, {args.points} points, {args.workers} workers: "
          f"{elapsed:.1f} s, {args.curves / elapsed:.1f} curves/s")
    print(f"median per curve: {1e3 * np.median(seconds):.1f} ms wall, {1e3 * np.median(cpu_seconds):.1f} ms CPU; "
          f"best R² {np.median(r2):.4f}; generating law in the top 3 for {100 * recovered.mean():.0f} % of curves")
    print(f"CPU total {cpu_seconds.sum():.1f} s: {cpu_seconds.sum() / args.workers:.1f} s on {args.workers} idle cores")
    if real is None:
        print("real curves: liposome set not found under shared/data/liposome-release/; pass --data FILE")
        return
    data, fitted, real_elapsed = real
    real_seconds, real_cpu, rmse = (np.array(column, dtype=float) for column in zip(*fitted))
    tidied = sum(bool(c.notes) for c in data.curves)
    print(f"{len(data.curves)} real curves ({real_path.name}; {len(data.skipped or {})} skipped, {tidied} tidied on "
          f"reading), same run and workers: {real_elapsed:.1f} s wall including reading, "
          f"{len(data.curves) / real_elapsed:.1f} curves/s; CPU total {real_cpu.sum():.1f} s, "
          f"median {1e3 * np.median(real_cpu):.1f} ms per curve; median RMSE of the best law {np.median(rmse):.2f} %")


if __name__ == "__main__":
    main()
