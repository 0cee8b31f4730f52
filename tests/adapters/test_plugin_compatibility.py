"""A plug-in written for an earlier release keeps working, and says what to change.

tests/plugins/legacy_robot is the README's instrument example as an earlier release
showed it (``from nanoloop.loop.instruments import ...``, ``Characterization(drug_loading_pct=...)``),
packaged as a lab would: installed, found through the entry-point group ``nanoloop.instruments``.
"""

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import nanoloop.instruments as public
from nanoloop.loop.lab import instruments as port

PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "legacy_robot"
CLI = [sys.executable, "-m", "nanoloop.flows.cli"]


@pytest.mark.slow
def test_an_installed_plugin_of_an_earlier_release_runs_a_round_through_the_cli(tmp_path, prefect_server):
    site, source = tmp_path / "site", tmp_path / "legacy_robot"
    shutil.copytree(PLUGIN, source)  # pip builds in the source folder: never in the repository
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(site), str(source)],
                   check=True, capture_output=True, timeout=300)
    config = tmp_path / "campaign.toml"
    subprocess.run([*CLI, "init", str(tmp_path)], check=True, capture_output=True)
    text = config.read_text()
    assert '[instruments.synthesis]\nkind = "simulated-synthesis"\noptions = {}' in text
    config.write_text(text.replace('[instruments.synthesis]\nkind = "simulated-synthesis"\noptions = {}',
                                   '[instruments.synthesis]\nkind = "legacy-robot"\noptions = { encapsulation_efficiency_pct = 65 }'))
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONWARNINGS": "default::DeprecationWarning", "PREFECT_API_URL": prefect_server}
    done = subprocess.run([*CLI, "run", str(config), str(tmp_path / "store"), "--rounds", "1", "--auto-approve"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "import Characterization from nanoloop.instruments" in done.stderr  # the old path works and names the new one
    assert "Characterization(drug_loading_pct=...) is deprecated" in done.stderr and "actual_drug_loading_pct" in done.stderr

    from nanoloop.loop.store.ledger import Ledger

    chars = Ledger(tmp_path / "store", create=False).read("characterization")
    assert len(chars) == 8 and (chars["encapsulation_efficiency_pct"] == 65).all() and (chars["pdi"] == 0.1).all()
    assert (chars["actual_drug_loading_pct"] > 0).all()  # the old argument reached the new field


def test_the_public_module_exports_the_port_and_the_old_path_still_resolves_with_a_warning():
    assert {"Instrument", "WorkItem", "JobState", "JobResult", "Characterization", "ReleaseCurve", "InstrumentError",
            "TransientInstrumentError", "InstrumentTimeout", "PermanentInstrumentError", "check_instrument", "KINDS",
            "ENTRY_POINT_GROUP"} <= set(public.__all__)
    assert all(getattr(public, name) is getattr(port, name) for name in public.__all__)
    with pytest.warns(DeprecationWarning, match=r"import JobResult from nanoloop\.instruments"):
        from nanoloop.loop.instruments import JobResult
    assert JobResult is public.JobResult
    with pytest.raises(ImportError):
        from nanoloop.loop.instruments import NoSuchName  # noqa: F401


def test_the_measured_loadings_old_argument_name_is_accepted_with_a_warning():
    new = public.Characterization(size_nm=120, pdi=0.1, zeta_mv=-20, encapsulation_efficiency_pct=70, actual_drug_loading_pct=3.5)
    with pytest.warns(DeprecationWarning, match="actual_drug_loading_pct"):
        old = public.Characterization(size_nm=120, pdi=0.1, zeta_mv=-20, encapsulation_efficiency_pct=70, drug_loading_pct=3.5)
    assert old == new == public.Characterization(120, 0.1, -20, 70, 3.5)
    with pytest.raises(TypeError, match="not both"):
        public.Characterization(120, 0.1, -20, 70, 3.5, drug_loading_pct=3.5)
    with pytest.raises(TypeError, match="missing"):
        public.Characterization(120, 0.1, -20, 70)
    with pytest.raises(TypeError, match="unexpected"):
        public.Characterization(120, 0.1, -20, 70, 3.5, loading=3.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        public.Characterization.from_dict(new.to_dict())  # the new names: no warning
