"""The README's "write your own instrument" example, run as written in a campaign round."""

import re
import sys
from pathlib import Path

from nanoloop.loop.lab.instruments import Instrument
from nanoloop.adapters.registry import load_instrument
from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.config import default_config
from nanoloop.loop.store.ledger import Ledger
from nanoloop.adapters.registry import build_instruments

README = Path(__file__).resolve().parents[2] / "README.md"


def example_source() -> str:
    text = README.read_text()
    match = re.search(r"<!-- example: my_lab/robot.py -->\n```python\n(.*?)```", text, re.S)
    assert match, "README lost its instrument example"
    return match.group(1)


def test_readme_instrument_runs_in_a_campaign(tmp_path, monkeypatch):
    package = tmp_path / "my_lab"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "robot.py").write_text(example_source())
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("my_lab", None)

    robot = load_instrument("my_lab.robot:NominalSynthesisRobot", {"encapsulation_efficiency_pct": 65}, expected_kind="synthesis")
    assert isinstance(robot, Instrument)

    config = default_config()
    config = config.model_copy(update={"name": "own-robot", "batch_size": 3, "instruments": config.instruments.model_copy(update={
        "synthesis": config.instruments.synthesis.model_copy(update={"kind": "my_lab.robot:NominalSynthesisRobot", "options": {"encapsulation_efficiency_pct": 65}}),
        "trusted_plugins": ["my_lab"],
    })})
    campaign = Campaign(config, Ledger(tmp_path / "store"), build_instruments)
    campaign.propose(0)
    campaign.approve(0)
    campaign.dispatch_synthesis(0)
    assert len(campaign.collect_synthesis(0)["synthesized"]) == 3
    campaign.dispatch_dissolution(0)
    assert len(campaign.collect_dissolution(0)["measured"]) == 3
    chars = campaign.ledger.read("characterization")
    assert (chars["encapsulation_efficiency_pct"] == 65).all() and (chars["pdi"] == 0.1).all()
    params = campaign.space.recipes(campaign.formulations().set_index("formulation_id").loc[chars["formulation_id"]])
    assert list(chars["size_nm"]) == list(params["particle_size_nm"])
