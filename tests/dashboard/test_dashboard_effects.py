"""The feature view's data and figures without a browser: time order of methods, old stores, empty rounds."""

from __future__ import annotations

import shutil

from nanoloop.dashboard import data, figures, signed_effects
from nanoloop.loop.store.ledger import Ledger


def test_methods_in_time_order_and_old_store_message(campaign_store, tmp_path):
    store = tmp_path / "ledger"
    shutil.copytree(campaign_store[0], store)
    methods = ["integrated_gradients_pct@168h", "integrated_gradients_pct@24h", "permutation_mae_pct", "integrated_gradients_pct@72h"]
    Ledger(store).append("explanations", [  # as an older nanoloop stored them: no signed rows, no time_hours column
        {"model_version": "M002-x", "round": 2, "feature": f, "importance": v * (1 + k), "method": m}
        for k, m in enumerate(methods) for f, v in [("particle_size_nm", 0.2), ("polymer_mw_kda", 0.5)]
    ])
    snap = data.load_snapshot(store)
    assert data.magnitude_methods(snap.explanations) == [
        "permutation_mae_pct", "integrated_gradients_pct@24h", "integrated_gradients_pct@72h", "integrated_gradients_pct@168h"]
    frame = data.feature_importance(snap, 2)
    assert list(dict.fromkeys(frame["method"])) == data.magnitude_methods(snap.explanations)
    bars = figures.importance_figure(snap, 2)
    assert list(bars.layout.yaxis.categoryarray) == ["particle_size_nm", "polymer_mw_kda"]  # largest on top (drawn last)
    assert signed_effects.chosen_round(snap, "all") is None  # no signed effects anywhere
    message = signed_effects.effects_figure(snap, 2).layout.annotations[0].text
    assert "No signed effects stored" in message and "--compute" in message
    assert "No partial dependence stored" in signed_effects.partial_dependence_figure(snap, 2, "polymer_mw_kda", 24.0).layout.annotations[0].text
