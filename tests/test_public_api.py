"""`dir(nanoloop)` is the public API, names loaded on first use included (tab completion in a notebook)."""

import nanoloop


def test_dir_lists_the_public_api_and_no_helper_names():
    names = dir(nanoloop)
    assert set(nanoloop.__all__) <= set(names)
    assert {"open_campaign", "fit_kinetics", "ReleaseEnsemble", "Campaign", "InputError"} <= set(names)
    assert not {"annotations", "import_module"} & set(names)
    assert not [name for name in names if name.startswith("_") and name != "__version__"]


def test_every_listed_name_loads():
    missing = [name for name in dir(nanoloop) if not hasattr(nanoloop, name)]
    assert missing == []


def test_the_readme_earlier_training_calls_work_with_a_warning_naming_campaign_models(tmp_path):
    """campaign.train / campaign.training_data (the 0.1 README) are campaign.models.train / .training_data until 0.3.0."""
    import pytest

    from nanoloop.adapters.registry import build_instruments

    config = nanoloop.default_config().model_copy(update={"name": "old-api", "batch_size": 3})
    campaign = nanoloop.Campaign(config, nanoloop.Ledger(tmp_path / "store"), build_instruments)
    campaign.run_round(0)
    with pytest.warns(DeprecationWarning, match=r"campaign\.models\.training_data\(\)"):
        X, y, groups, n = campaign.training_data()
    assert n == 3 and len(X) == len(y) == len(groups) > 0
    assert [a.tolist() for a in campaign.models.training_data()[:3]] == [X.tolist(), y.tolist(), groups.tolist()]
    campaign.models.train = lambda round_, fit_members=None: ("trained for round", round_)  # the delegation, not a 10 s fit
    with pytest.warns(DeprecationWarning, match=r"campaign\.models\.train\(\.\.\.\)"):
        assert campaign.train(1) == ("trained for round", 1)
