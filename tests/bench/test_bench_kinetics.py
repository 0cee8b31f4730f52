"""The kinetics benchmark on a handful of curves, with the repository's messy test file as the "real" set."""

import importlib.util
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bench_kinetics", _ROOT / "bench" / "bench_kinetics.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_bench_prints_synthetic_and_real_times_of_the_same_run(capsys):
    bench.main(["--curves", "4", "--workers", "1", "--data", str(_ROOT / "tests" / "data" / "kinetics_messy.csv")])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("4 curves x 24 laws, 15 points, 1 workers: ")
    assert out[-1].startswith("4 real curves (kinetics_messy.csv; 1 skipped, 3 tidied on reading), same run and workers: ")
    assert "median RMSE of the best law" in out[-1]
