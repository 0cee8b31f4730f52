import numpy as np
import pytest

from nanoloop.loop.config import default_config
from nanoloop.loop.errors import InputError
from nanoloop.loop.design.space import Continuous, DesignSpace, LinearConstraint, formulation_id


@pytest.fixture
def space():
    return default_config().design_space()


def test_sample_stays_in_bounds_and_constraints(space):
    frame = space.sample(500, seed=3)
    assert len(frame) == 500
    for v in space.variables:
        if isinstance(v, Continuous):
            assert frame[v.name].between(v.low, v.high).all()
        else:
            assert set(frame[v.name]) <= set(v.categories)
    total = frame["peg_fraction"] + frame["ph_responsive_fraction"]
    assert (total <= 0.4 + 1e-9).all()
    # the constraint binds: without it, about a quarter of the square would exceed 0.4
    assert total.max() > 0.35
    # every polymer is explored
    assert set(frame["polymer"]) == {"PLGA 50:50", "PLGA 75:25", "PLA", "PCL"}


def test_sample_is_reproducible_and_seeded(space):
    assert space.sample(16, seed=1).equals(space.sample(16, seed=1))
    assert not space.sample(16, seed=1).equals(space.sample(16, seed=2))


def test_encode_decode_round_trip(space):
    frame = space.sample(32, seed=0)
    encoded = space.encode(frame)
    assert encoded.shape == (32, len(space.feature_names))
    assert encoded.min() >= 0 and encoded.max() <= 1
    back = space.decode(encoded)
    assert (back["polymer"] == frame["polymer"]).all()
    np.testing.assert_allclose(back["particle_size_nm"], frame["particle_size_nm"], rtol=1e-5)


def test_validate_names_the_problem(space):
    good = space.sample(1, seed=0).iloc[0].to_dict()
    assert space.validate(good)["polymer"] == good["polymer"]
    with pytest.raises(InputError, match="particle_size_nm=900"):
        space.validate({**good, "particle_size_nm": 900})
    with pytest.raises(InputError, match="polymer='PEG'"):
        space.validate({**good, "polymer": "PEG"})
    with pytest.raises(InputError, match="constraint"):
        space.validate({**good, "peg_fraction": 0.3, "ph_responsive_fraction": 0.3})
    with pytest.raises(InputError, match="missing variable 'medium_ph'"):
        space.validate({k: v for k, v in good.items() if k != "medium_ph"})


def test_bad_space_definitions():
    with pytest.raises(InputError, match="min"):
        Continuous("size_nm", 10, 5)
    with pytest.raises(InputError, match="unknown variable 'x'"):
        DesignSpace((Continuous("a", 0, 1),), (LinearConstraint({"x": 1.0}, 1.0),))
    with pytest.raises(InputError, match="can never hold"):  # found when the space is built, not when sampling
        DesignSpace((Continuous("a", 0, 1),), (LinearConstraint({"a": 1.0}, -1.0),))


def test_formulation_id_is_a_content_hash():
    a = {"polymer": "PLA", "size_nm": 120.0}
    assert formulation_id("c", a) == formulation_id("c", dict(reversed(list(a.items()))))
    assert formulation_id("c", a) == formulation_id("c", {"polymer": "PLA", "size_nm": 120.0000000001})
    assert formulation_id("c", a) != formulation_id("c", {**a, "size_nm": 121.0})
    assert formulation_id("c", a) != formulation_id("d", a)
