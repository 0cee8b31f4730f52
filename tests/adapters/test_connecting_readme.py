"""README "Connecting real instruments": every config block loads, and the worklist shown is what it makes."""

import re
import tomllib
from pathlib import Path

import pytest

from nanoloop.adapters.registry import load_instrument
from nanoloop.loop.lab.instruments import WorkItem

from lab_recipes import RECIPE

README = Path(__file__).resolve().parents[2] / "README.md"


def block(name: str, language: str = "toml") -> str:
    match = re.search(rf"<!-- example: {name} -->\n```{language}\n(.*?)```", README.read_text(), re.S)
    assert match, f"README lost its {name} example"
    return match.group(1)


@pytest.mark.parametrize("name", ["connect-sila2", "connect-liquid-handler", "connect-exports"])
def test_each_config_block_builds_its_instruments(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lab-ca.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\n")  # read, not used: no connection is made
    instruments = tomllib.loads(block(name))["instruments"]
    for role, spec in instruments.items():
        instrument = load_instrument(spec["kind"], spec.get("options", {}), expected_kind=role)
        assert instrument.kind == role and instrument.name


def test_the_readme_worklist_is_what_the_readme_stock_table_makes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = tomllib.loads(block("connect-liquid-handler"))["instruments"]["synthesis"]
    handler = load_instrument(spec["kind"], spec["options"])
    recipe = dict(RECIPE, polymer_mw_kda=30, drug_loading_pct=10, peg_fraction=0.1, ph_responsive_fraction=0.0)
    handler.submit([WorkItem("F-A", recipe)], timeout_s=30)
    (run,) = (tmp_path / "lab" / "liquid-handler" / "runs").iterdir()
    assert (run / "worklist.csv").read_text() == block("readme-worklist", "csv")
