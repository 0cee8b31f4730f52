"""Transfer learning for the release surrogate: pretrain on one dataset, fine-tune on another.

The source is any set of release curves with the same feature columns: the
public data mapped to a campaign's features, or an earlier campaign's ledger
over the same design space. Fine-tuning is
:meth:`ReleaseEnsemble.fine_tune <nanoloop.loop.surrogate.ReleaseEnsemble.fine_tune>`
(every member starts from its pretrained weights, with an L2 pull towards them).

Whether this helps depends on how related the datasets are and on how many new
curves there are: ``bench/bench_surrogate.py --transfer`` measures it.
"""

from __future__ import annotations

from nanoloop.loop.errors import InputError
from nanoloop.loop.surrogate import ReleaseEnsemble


def pretrain(X, y, groups=None, **params) -> ReleaseEnsemble:
    """Train a :class:`ReleaseEnsemble` on the source data (rows: features..., time in hours)."""
    return ReleaseEnsemble(**params).fit(X, y, groups=groups)


def pretrain_from_campaign(campaign, **params) -> tuple[ReleaseEnsemble, list[str]]:
    """Pretrain on every measured curve of an earlier campaign.

    Args:
        campaign: a :class:`nanoloop.loop.campaign.Campaign` (its ledger is only read).
        **params: ReleaseEnsemble arguments.

    Returns:
        (fitted model, the feature names its columns follow).
    """
    X, y, groups, n_formulations = campaign.training_data()
    if n_formulations == 0:
        raise InputError(f"campaign {campaign.config.name!r} has no measured curves to pretrain on")
    return pretrain(X, y, groups, **params), list(campaign.space.feature_names)


def check_same_features(source: list[str], target: list[str]) -> None:
    """Raise :class:`InputError` unless both datasets have the same feature columns in the same order."""
    if list(source) != list(target):
        missing = [f for f in target if f not in source]
        extra = [f for f in source if f not in target]
        detail = f"missing in source: {missing}; only in source: {extra}" if (missing or extra) else "same names, different order"
        raise InputError(f"pretrained model's features differ from the target's ({detail})")
