"""The campaign's own prospective record, used to calibrate what proposals claim.

The surrogate is calibrated on held-out curves, but the formulations an
acquisition picks are the ones it is most optimistic about, so the errors on
them are larger. Two corrections are learnt from the formulations the model
proposed and the lab measured:

- :func:`calibrated_spread`: how much the objective's spread is understated
  (the acquisition's ``spread_scale``);
- :func:`prospective_widening`: how much to widen the f2 interval shown to a person.
"""

from __future__ import annotations

import json

import numpy as np

from nanoloop.loop.design.objective import spread_scale


def calibrated_spread(objective, formulations, mean_curves: dict, prior: float) -> tuple[float, int]:
    """:func:`nanoloop.loop.design.objective.spread_scale` from a campaign's record of model-made proposals.

    Uses the predicted objective and spread stored with each proposal (edits
    excluded) and the objective of its measured mean curve.
    """
    made = formulations[(formulations["model_version"] != "") & ~formulations["origin"].str.startswith("edit-of:")
                        & formulations["predicted_objective"].notna()]
    if made.empty or not mean_curves:
        return spread_scale([], [], [], prior=prior)
    measured = objective.measured(mean_curves)["objective"]
    made = made[made["formulation_id"].isin(measured.index)]
    return spread_scale(made["predicted_objective"], made["objective_std"], measured.reindex(made["formulation_id"]).to_numpy(), prior=prior)


def prospective_widening(formulations, measured_f2, min_records: int = 4) -> tuple[float, int]:
    """Factor widening the f2 interval so it covers 90 % of this campaign's own prospective record.

    The model's predictive distribution is calibrated on held-out curves, but the
    formulations an acquisition picks are the ones it is most optimistic about: on
    them the errors are larger. This factor is the 90th percentile, over the
    formulations the model proposed and the lab measured, of the measured f2's
    distance from the predicted f2 in units of the interval's (unwidened) half on
    that side; 1 with fewer than ``min_records`` such formulations, never below 1.

    Args:
        formulations: the ledger's formulations (``formulation_id``, ``acquisition_params_json``
            holding the stored ``f2``, ``f2_lower_90``, ``f2_upper_90`` and ``f2_widening``).
        measured_f2: measured f2 by formulation id (a mapping or Series).

    Returns:
        (factor, number of formulations it was computed on).
    """
    z = []
    for fid, text in zip(formulations["formulation_id"], formulations["acquisition_params_json"]):
        try:
            notes = json.loads(text) if isinstance(text, str) and text else {}
        except ValueError:
            continue
        if not isinstance(notes, dict) or "f2_lower_90" not in notes or fid not in measured_f2:
            continue
        measured, mean, k = float(measured_f2[fid]), float(notes["f2"]), float(notes.get("f2_widening", 1.0))
        if not np.isfinite(measured):
            continue
        side = (notes["f2_upper_90"] - mean) if measured >= mean else (mean - notes["f2_lower_90"])
        z.append(abs(measured - mean) / max(side / k, 1e-6))
    if len(z) < min_records:
        return 1.0, len(z)
    return float(np.clip(np.quantile(z, 0.90), 1.0, 10.0)), len(z)
