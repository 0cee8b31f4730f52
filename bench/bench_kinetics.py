"""Benchmark: fit every release law to synthetic release curves and report the throughput.

    python bench/bench_kinetics.py [--curves 1000] [--points 15] [--workers 2] [--seed 0]

Curves come from four generating laws with random parameters and 1.5 % noise,
sampled from 0.5 h to 672 h. Prints the wall time and curves per second over
all workers, then median figures per curve: wall and CPU fit time, best R²,
and the share of curves whose generating law ranks in the top three by AICc.
The CPU figures do not depend on other load on the machine.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread per worker process

import argparse  # noqa: E402
import time  # noqa: E402
from multiprocessing import get_context  # noqa: E402

import numpy as np  # noqa: E402

from nanoloop.loop.kinetics import LAWS_BY_NAME, fit_laws  # noqa: E402

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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", type=int, default=1000, help="number of curves (default 1000)")
    parser.add_argument("--points", type=int, default=15, help="points per curve (default 15)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    curves = synthetic_curves(args.curves, args.points, args.seed)
    start = time.perf_counter()
    if args.workers > 1:
        with get_context("spawn").Pool(args.workers) as pool:
            results = pool.map(fit_one, curves, chunksize=max(1, len(curves) // (8 * args.workers)))
    else:
        results = [fit_one(curve) for curve in curves]
    elapsed = time.perf_counter() - start
    seconds, cpu_seconds, r2, recovered = (np.array(column) for column in zip(*results))
    print(f"{args.curves} curves x {len(LAWS_BY_NAME)} laws, {args.points} points, {args.workers} workers: "
          f"{elapsed:.1f} s, {args.curves / elapsed:.1f} curves/s")
    print(f"median per curve: {1e3 * np.median(seconds):.1f} ms wall, {1e3 * np.median(cpu_seconds):.1f} ms CPU; "
          f"best R² {np.median(r2):.4f}; generating law in the top 3 for {100 * recovered.mean():.0f} % of curves")
    print(f"CPU total {cpu_seconds.sum():.1f} s: {cpu_seconds.sum() / args.workers:.1f} s on {args.workers} idle cores")


if __name__ == "__main__":
    main()
