"""An install adds one import name, `nanoloop`, and lives beside a package that owns `adapters`."""

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args, cwd=None) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def build_wheel(source: Path, out: Path) -> Path:
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", out, source)
    return next(out.glob(f"{source.name}*.whl"))


@pytest.fixture(scope="module")
def nanoloop_wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the tracked files: a build/ folder left in the checkout never leaks into it."""
    import shutil

    source = tmp_path_factory.mktemp("source") / "nanoloop"
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in tracked:
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    return build_wheel(source, tmp_path_factory.mktemp("wheels"))


def test_the_wheel_holds_only_the_nanoloop_package(nanoloop_wheel):
    names = zipfile.ZipFile(nanoloop_wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"nanoloop"}
    for module in ("nanoloop/__init__.py", "nanoloop/loop/campaign/campaign.py", "nanoloop/loop/lab/instruments.py",
                   "nanoloop/loop/io/sheets.py", "nanoloop/loop/models/base.py", "nanoloop/loop/design/recommenders.py",
                   "nanoloop/loop/explain/effects.py", "nanoloop/loop/store/ledger.py",
                   "nanoloop/adapters/registry.py", "nanoloop/flows/cli.py", "nanoloop/dashboard/app.py",
                   "nanoloop/loop/examples/demo.toml", "nanoloop/loop/examples/warm_start.toml",
                   "nanoloop/loop/examples/earlier_formulations.csv", "nanoloop/loop/examples/earlier_formulations_map.toml",
                   "nanoloop/adapters/sila/features/NanoparticleFormulation-v1_0.sila.xml",
                   "nanoloop/adapters/sila/features/DissolutionTesting-v1_0.sila.xml",
                   "nanoloop/adapters/liquid_handler/instrument.py"):
        assert module in names


def test_installs_beside_a_package_that_owns_adapters(tmp_path, nanoloop_wheel):
    other = tmp_path / "adapters_pkg"
    (other / "adapters").mkdir(parents=True)
    (other / "adapters" / "__init__.py").write_text("OWNER = 'adapterhub-like'\n")
    (other / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "adapters_pkg"\nversion = "1.0"\n[tool.setuptools]\npackages = ["adapters"]\n'
    )
    other_wheel = build_wheel(other, tmp_path / "wheels")
    env = tmp_path / "venv"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    # dependencies are not needed to import the two names side by side, so none are installed
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", nanoloop_wheel, other_wheel)
    out = run(python, "-c", (
        "import adapters, nanoloop, nanoloop.loop.lab.instruments as port;"
        "print(adapters.OWNER, nanoloop.__name__, port.__name__, nanoloop.open_campaign.__module__)"
    ), cwd=tmp_path)
    assert out.split() == ["adapterhub-like", "nanoloop", "nanoloop.loop.lab.instruments", "nanoloop"]
