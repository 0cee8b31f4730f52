"""The trained campaign that the explanation tests read (test_explain.py and test_effects.py), made once per session."""

import numpy as np
import pandas as pd
import pytest

MEASURED_AT_HOURS = np.array([6, 24, 72, 168, 336, 672.0])


def _release_pct(frame: pd.DataFrame) -> np.ndarray:
    """Ground truth: molecular weight sets the release time scale, loading the burst; nothing else matters."""
    tau = 20 + 600 * (frame["polymer_mw_kda"].to_numpy() - 10) / 110
    burst = 0.3 * frame["drug_loading_pct"].to_numpy() / 30
    curves = burst[:, None] + (1 - burst[:, None]) * (1 - np.exp(-MEASURED_AT_HOURS / tau[:, None]))
    return 100 * curves


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    """A campaign with 24 measured round-0 formulations and a model trained for round 1 (its path).

    Tests explain it (explain_round is idempotent) and read it; copy it (shutil.copytree) to change anything else.
    """
    from nanoloop.adapters.registry import build_instruments
    from nanoloop.loop.campaign.campaign import Campaign
    from nanoloop.loop.config import default_config
    from nanoloop.loop.store.ledger import Ledger

    config = default_config()
    config = config.model_copy(update={"name": "explain-test", "batch_size": 24, "surrogate": config.surrogate.model_copy(update={"members": 3, "epochs": 250, "hidden": 32})})
    path = str(tmp_path_factory.mktemp("explain") / "ledger")
    campaign = Campaign(config, Ledger(path), build_instruments)
    ids = campaign.propose(0)
    forms = campaign.formulations().set_index("formulation_id").loc[ids]
    release = _release_pct(campaign.space.recipes(forms))
    rows = [
        {"formulation_id": fid, "replicate": 0, "time_hours": t, "release_pct": float(r), "instrument": "test", "raw_checksum": ""}
        for fid, curve in zip(ids, release) for t, r in zip(MEASURED_AT_HOURS, curve)
    ]
    campaign.ledger.append("curves", rows)
    campaign.models.train(1)
    return path
