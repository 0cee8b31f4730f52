import numpy as np

from nanoloop.loop.design.candidates import formulation_ids, project, refine, sobol_pool, top_starts, unique_mask
from nanoloop.loop.config import default_config
from nanoloop.loop.design.space import Categorical, Continuous, DesignSpace, LinearConstraint

SPACE = default_config().design_space()


def _peak(space, polymer="PLA", at=0.8):
    """Score peaking at every continuous unit value = ``at`` and the given polymer (fixed layout of SPACE)."""
    cont = [j for j, name in enumerate(space.feature_names) if "=" not in name]
    polymer_col = space.feature_names.index(f"polymer={polymer}")

    def score(encoded):
        encoded = np.asarray(encoded, float)
        return -np.sum((encoded[:, cont] - at) ** 2, axis=1) + 0.5 * encoded[:, polymer_col]

    return score


def test_sobol_pool_is_feasible_and_covers_every_category():
    pool = sobol_pool(SPACE, 2048, seed=3)
    assert len(pool) == 2048 and pool.encoded.shape == (2048, len(SPACE.feature_names))
    assert SPACE.feasible(pool.frame).all()
    assert set(pool.frame["polymer"]) == set(SPACE.by_name["polymer"].categories)
    assert (pool.origin == "sobol").all()


def test_projection_keeps_bounds_and_linear_constraints():
    rng = np.random.default_rng(0)
    start = sobol_pool(SPACE, 256, seed=1).encoded
    proposal = start + rng.normal(0, 0.8, start.shape)
    proposal[:, :4] = start[:, :4]  # categorical block kept
    out = project(SPACE, start, proposal)
    frame = SPACE.decode(out)
    assert SPACE.feasible(frame).all()
    for row in frame.to_dict("records"):
        SPACE.validate(row)  # raises if anything is out of bounds


def test_refine_climbs_a_score_switches_categories_and_stays_valid():
    score = _peak(SPACE, "PLA", at=0.8)
    pool = sobol_pool(SPACE, 512, seed=2)
    starts = pool.encoded[top_starts(score(pool.encoded), 8)]
    refined = refine(SPACE, score, starts, steps=25, seed=0)
    assert len(refined) == 8 and (refined.origin == "refined").all()
    assert np.all(score(refined.encoded) >= score(starts) - 1e-4)  # never worse than its start
    assert score(refined.encoded).max() > score(starts).max() + 0.05
    assert (refined.frame["polymer"] == "PLA").mean() >= 0.75  # categorical searched too
    assert SPACE.feasible(refined.frame).all()
    for row in refined.frame.to_dict("records"):
        SPACE.validate(row)


def test_refine_respects_a_tight_constraint_at_its_optimum():
    space = DesignSpace((Continuous("a", 0, 1), Continuous("b", 0, 1), Categorical("c", ("x", "y"))),
                        (LinearConstraint({"a": 1.0, "b": 1.0}, 0.5),))
    score = lambda e: e[:, 0] + e[:, 1]  # noqa: E731  -- pushes onto a + b = 0.5
    pool = sobol_pool(space, 64, seed=0)
    refined = refine(space, score, pool.encoded[:6], steps=30, seed=1)
    total = refined.frame["a"] + refined.frame["b"]
    assert (total <= 0.5 + 1e-9).all() and total.max() > 0.45


def test_unique_mask_and_ids():
    pool = sobol_pool(SPACE, 16, seed=5)
    doubled = pool.concat(pool.subset(np.arange(4)))
    mask = unique_mask(SPACE, doubled.frame)
    assert mask[:16].all() and not mask[16:].any()
    ids = formulation_ids(SPACE, "c", doubled.frame)
    assert ids[:4] == ids[16:] and len(set(ids)) == 16


def test_top_starts_orders_and_ignores_nan():
    values = np.array([0.1, np.nan, 3.0, 2.0, -1.0])
    assert top_starts(values, 2).tolist() == [2, 3]
    assert top_starts(values, 0).tolist() == []
