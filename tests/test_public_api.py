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
