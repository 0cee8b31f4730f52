"""Fixed variables: held at the campaign's value by the config, sampling, refinement, search, inverse design and review."""

import tomllib
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from nanoloop.loop.design.acquisition import AcquisitionSettings, search
from nanoloop.loop.design.candidates import SearchSettings, refine, sobol_pool
from nanoloop.loop.config import TargetProfile, default_config, example_config_text, load_config, parse_config
from nanoloop.loop.errors import InputError
from nanoloop.loop.design.inverse import DESIGN_SEARCH, inverse_design
from nanoloop.loop.design.objective import Objective
from nanoloop.loop.design.space import Categorical, Continuous, DesignSpace

DEMO = default_config().design_space()


def _fixed(**values) -> DesignSpace:
    """The demo space with some variables fixed (name -> value)."""
    return DesignSpace(tuple(replace(v, value=values[v.name]) if v.name in values else v for v in DEMO.variables), DEMO.constraints)


from size_model import SizeModel  # noqa: E402  (tests/loop/design/size_model.py)


def _target(size_unit: float) -> TargetProfile:
    times = np.array([4.0, 24.0, 72.0, 168.0, 336.0])
    return TargetProfile(times_hours=times.tolist(), release_pct=(100 * (1 - np.exp(-times / 10 ** (0.5 + 2.5 * size_unit)))).round(1).tolist())


def _demo_data() -> dict:
    return tomllib.loads(example_config_text())


# -- config --------------------------------------------------------------------------------
def test_a_config_fixes_a_continuous_and_a_categorical_variable():
    data = _demo_data()
    data["space"]["drug_logp"]["value"] = 2.1
    data["space"]["polymer"]["value"] = "PLGA 50:50"
    space = parse_config(data).design_space()
    assert space.fixed == {"polymer": "PLGA 50:50", "drug_logp": 2.1}
    assert "drug_logp" not in space.designed and "polymer" not in space.designed and len(space.designed) == len(space.names) - 2
    assert space.names == DEMO.names and space.feature_names == DEMO.feature_names  # the encoding is unchanged


@pytest.mark.parametrize("variable, entry, words", [
    ("drug_logp", {"min": -1.0, "max": 5.0, "value": 7.5}, "space.drug_logp: value 7.5 is outside [min, max] = [-1, 5]"),
    ("drug_logp", {"min": -1.0, "max": 5.0, "value": "high"}, "space.drug_logp: value 'high' of a continuous variable must be a number"),
    ("drug_logp", {"min": -1.0, "max": 5.0, "value": True}, "space.drug_logp.value: a fixed value must be a number or a category"),
    ("drug_logp", {"value": 2.1}, "space.drug_logp: a continuous variable needs min and max (also when fixed"),
    ("polymer", {"categories": ["PLGA 50:50", "PLA"], "value": "PEG"}, "space.polymer: value 'PEG' is not one of the categories"),
    ("polymer", {"categories": ["PLGA 50:50", "PLA"], "min": 1, "max": 2, "value": "PLA"}, "space.polymer: give either categories or min/max, not both"),
])
def test_a_bad_fixed_value_is_one_line_naming_the_key(tmp_path, variable, entry, words):
    data = _demo_data()
    data["space"][variable] = entry
    with pytest.raises(InputError) as err:
        parse_config(data, source="c.toml")
    assert str(err.value).startswith("c.toml: ") and words in str(err.value) and "\n" not in str(err.value)


def test_a_bad_fixed_value_in_a_toml_file_is_exit_2_naming_file_and_key(tmp_path, capsys):
    from nanoloop.flows.cli import main

    text = (example_config_text().replace('name = "demo-sustained-release"', 'name = "bad-fixed"')
            .replace("[space.medium_ph]            # release medium\nmin = 5.0\nmax = 7.4", "[space.medium_ph]\nmin = 5.0\nmax = 7.4\nvalue = 8.0"))
    (tmp_path / "c.toml").write_text(text)
    assert main(["run", str(tmp_path / "c.toml"), str(tmp_path / "s"), "--auto-approve"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "c.toml" in err and "space.medium_ph: value 8 is outside" in err
    assert not (tmp_path / "s").exists()


def test_a_space_needs_one_designed_variable_and_fixed_values_in_constraints_count():
    with pytest.raises(InputError, match="every variable is fixed"):
        DesignSpace((Continuous("a_pct", 0, 1, 0.5), Categorical("b", ("x", "y"), "x")))
    constraints = DEMO.constraints  # peg_fraction + ph_responsive_fraction <= 0.4
    with pytest.raises(InputError, match="can never hold"):
        _fixed(peg_fraction=0.25, ph_responsive_fraction=0.2)
    space = _fixed(peg_fraction=0.3)
    assert space.constraints == constraints and (space.sample(64, seed=0)["ph_responsive_fraction"] <= 0.1 + 1e-9).all()


# -- validation ----------------------------------------------------------------------------
def test_validate_refuses_another_value_of_a_fixed_variable_and_what_if_accepts_it():
    space = _fixed(drug_logp=2.1, polymer="PLA")
    recipe = space.sample(1, seed=0).iloc[0].to_dict()
    assert space.validate(recipe) == recipe
    assert space.validate({**recipe, "drug_logp": 2.1000001})["drug_logp"] == 2.1  # a file round trip keeps the exact value
    with pytest.raises(InputError, match="drug_logp is fixed at 2.1 for this campaign, got 3"):
        space.validate({**recipe, "drug_logp": 3.0})
    with pytest.raises(InputError, match="polymer is fixed at 'PLA' for this campaign, got 'PCL'"):
        space.validate({**recipe, "polymer": "PCL"})
    assert space.validate({**recipe, "drug_logp": 3.0}, check_fixed=False)["drug_logp"] == 3.0
    with pytest.raises(InputError, match="outside"):  # a what-if stays within the bounds
        space.validate({**recipe, "drug_logp": 9.0}, check_fixed=False)


def test_the_encoding_keeps_the_fixed_column_so_varied_data_still_teach():
    space = _fixed(drug_logp=2.1, polymer="PLA")
    frame = DEMO.sample(32, seed=3)  # earlier data where both varied
    np.testing.assert_array_equal(space.encode(frame), DEMO.encode(frame))
    col = DEMO.feature_names.index("drug_logp")
    assert np.ptp(space.encode(frame)[:, col]) > 0.5
    cols, values = space.fixed_encoding()
    assert np.allclose(space.encode(space.sample(8, seed=1))[:, cols], values)


# -- sampling, refinement, search, inverse design: never move a fixed variable ---------------
@pytest.mark.parametrize("seed", range(6))
def test_sampling_keeps_fixed_values_and_is_space_filling_in_the_designed_ones(seed):
    space = _fixed(drug_logp=2.1, medium_ph=7.4, polymer="PCL")
    frame = space.sample(128, seed=seed)
    assert (frame["drug_logp"] == 2.1).all() and (frame["medium_ph"] == 7.4).all() and (frame["polymer"] == "PCL").all()
    # the Sobol sequence runs over the designed variables only: the same points as a space of just those
    designed = DesignSpace(tuple(v for v in DEMO.variables if v.name in space.designed), DEMO.constraints)
    pd.testing.assert_frame_equal(frame[space.designed], designed.sample(128, seed=seed))
    pool = sobol_pool(space, 64, seed=seed)
    assert pool.frame["drug_logp"].eq(2.1).all() and np.allclose(pool.encoded, space.encode(pool.frame))


@pytest.mark.parametrize("seed", range(6))
def test_refinement_never_moves_a_fixed_variable_even_when_the_score_rewards_it(seed):
    space = _fixed(drug_logp=2.1, polymer="PCL")
    logp, pla = DEMO.feature_names.index("drug_logp"), DEMO.feature_names.index("polymer=PLA")
    size = DEMO.feature_names.index("particle_size_nm")

    cols, values = space.fixed_encoding()
    seen = []

    def score(encoded):  # higher drug_logp, PLA and larger particles would all score higher
        seen.append(np.asarray(encoded)[:, cols].copy())
        return encoded[:, logp] + encoded[:, pla] + encoded[:, size]

    pool = sobol_pool(space, 32, seed=seed)
    refined = refine(space, score, pool.encoded[:6], steps=10, seed=seed)
    assert np.allclose(np.concatenate(seen), values[None, :])  # no step ever scored a moved fixed column
    assert (refined.frame["drug_logp"] == 2.1).all() and (refined.frame["polymer"] == "PCL").all()
    assert refined.frame["particle_size_nm"].mean() > pool.frame["particle_size_nm"].iloc[:6].mean()  # the designed ones did move
    assert all(space.validate(r) for r in refined.frame.to_dict("records"))
    # a start that does not carry the fixed value (a caller's point) is brought to it
    moved = pool.encoded[:2].copy()
    moved[:, logp] = 0.9
    assert (refine(space, score, moved, steps=2, seed=seed).frame["drug_logp"] == 2.1).all()


@pytest.mark.parametrize("seed", range(4))
def test_the_batch_search_proposes_only_the_fixed_values(seed):
    space = _fixed(particle_size_nm=80.0, polymer="PLA")  # the target wants larger, non-PLA particles
    found = search(SizeModel(), Objective(_target(0.6)), space, 4, 0.0, AcquisitionSettings("ei"),
                   SearchSettings(pool_size=128, refine_starts=4, refine_steps=3, seed=seed))
    picked = found.candidates.frame.iloc[found.batch.indices]
    assert len(picked) == 4 and (picked["particle_size_nm"] == 80.0).all() and (picked["polymer"] == "PLA").all()
    assert (found.candidates.frame["particle_size_nm"] == 80.0).all()


@pytest.mark.parametrize("seed", range(3))
def test_inverse_design_keeps_the_fixed_values(seed):
    space = _fixed(particle_size_nm=120.0, polymer="PLGA 75:25")
    designs = inverse_design(SizeModel(), space, Objective(_target(0.6)), n=3,
                             search=replace(DESIGN_SEARCH, pool_size=512, refine_starts=4, refine_steps=6, seed=seed))
    assert len(designs) == 3
    assert all(d.formulation["particle_size_nm"] == 120.0 and d.formulation["polymer"] == "PLGA 75:25" for d in designs)
    free = inverse_design(SizeModel(), DEMO, Objective(_target(0.6)), n=1,
                          search=replace(DESIGN_SEARCH, pool_size=512, refine_starts=4, refine_steps=6, seed=seed))[0]
    assert free.f2_mean > designs[0].f2_mean  # the fixed size really held the search back


def test_a_fixed_variable_separates_no_failures_on_the_dashboard():
    from nanoloop.dashboard.insights import separating_pair

    config = _demo_data()
    config["space"]["drug_logp"]["value"] = 2.1
    config = parse_config(config)
    made = DEMO.sample(12, seed=0).assign(status=["failed"] * 6 + ["measured"] * 6, reason=["too big"] * 6 + [""] * 6)
    made.loc[:5, "drug_logp"] = 4.9  # in earlier data the failures sat at high logP: not this campaign's choice
    pair = separating_pair(made, DEMO.names, config.space)
    assert pair is not None and "drug_logp" not in pair


def test_the_warm_start_example_loads_with_its_two_fixed_variables(tmp_path, capsys):
    from nanoloop.flows.cli import main

    assert main(["init", str(tmp_path / "w"), "--example", "warm-start"]) == 0
    config = load_config(tmp_path / "w" / "campaign.toml")
    assert config.name == "warm-start-sustained-release" != default_config().name
    assert config.design_space().fixed == {"drug_logp": 2.1, "medium_ph": 7.4}
    text = (tmp_path / "w" / "campaign.toml").read_text()
    for line in ("value = 2.1                  # fixed: a property of this campaign's drug, not a design choice",
                 "value = 7.4                  # fixed: a condition of the release test (PBS pH 7.4), not a design choice"):
        assert line in text
    with pytest.raises(InputError, match="no example config 'nope'"):
        example_config_text("nope")


def test_the_readme_fixed_variables_example_parses_and_holds():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    match = re.search(r"<!-- example: fixed-variables -->\n```toml\n(.*?)```", readme, re.S)
    assert match, "README lost its fixed-variables example"
    data = _demo_data()
    data["space"].update(tomllib.loads(match.group(1))["space"])
    space = parse_config(data, source="README.md").design_space()
    assert space.fixed == {"polymer": "PLGA 50:50", "drug_logp": 2.1}
    frame = space.sample(16, seed=0)
    assert (frame["polymer"] == "PLGA 50:50").all() and (frame["drug_logp"] == 2.1).all()


def test_an_earlier_formulation_with_another_fixed_value_is_outside_this_campaign():
    from nanoloop.loop.config import parse_config

    data = _demo_data()
    data["space"]["drug_logp"]["value"] = 2.1
    data["space"]["polymer"]["value"] = "PLA"
    space = parse_config(data).design_space()
    recipe = space.sample(1, seed=0).to_dict("records")[0]
    assert space.outside_reasons(recipe) == []
    other = {**recipe, "drug_logp": 3.0, "polymer": "PCL"}
    assert space.outside_reasons(other) == ["polymer = 'PCL', fixed at 'PLA' in this campaign", "drug_logp = 3, fixed at 2.1 in this campaign"]
