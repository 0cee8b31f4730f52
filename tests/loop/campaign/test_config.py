import copy
import tomllib

import pytest

from nanoloop.loop.config import example_config_text, load_config, parse_config
from nanoloop.loop.errors import InputError


@pytest.fixture
def data():
    return tomllib.loads(example_config_text())


def test_example_config_is_valid_and_commented(data):
    config = parse_config(data)
    assert config.batch_size == 8 and config.rounds == 3
    assert len(config.design_space().variables) == 8
    assert example_config_text().count("#") > 10


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.update(colour="red"), "colour: unknown key"),
        (lambda d: d["surrogate"].update(membrs=3), "surrogate.membrs: unknown key"),
        (lambda d: d["space"]["polymer_mw_kda"].update(min=200), "space.polymer_mw_kda: min (200) must be below max (120)"),
        (lambda d: d["target"].update(release_pct=[20, 50, 40, 80, 95]), "target: release_pct must not decrease"),
        (lambda d: d["target"].update(times_hours=[24, 12, 168, 336, 672]), "times_hours must be positive and strictly increasing"),
        (lambda d: d.update(batch_size=0), "batch_size"),
        (lambda d: d["acquisition"].update(strategy="magic"), "acquisition.strategy"),
        (lambda d: d["acquisition"].update(gp_restarts=-1), "acquisition.gp_restarts"),
        (lambda d: d["constraints"][0]["coefficients"].update(pegg=1.0), "unknown variable 'pegg'"),
    ],
)
def test_bad_config_gives_one_line_naming_the_key(data, change, message):
    bad = copy.deepcopy(data)
    change(bad)
    with pytest.raises(InputError) as err:
        parse_config(bad, source="c.toml")
    text = str(err.value)
    assert message in text and text.startswith("c.toml: ") and "\n" not in text


def test_load_config_errors(tmp_path):
    with pytest.raises(InputError, match="no such config file"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    with pytest.raises(InputError, match="not valid TOML"):
        load_config(broken)
