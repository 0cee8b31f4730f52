"""Transfer learning for the release surrogate: pretrain on one dataset, fine-tune on another.

The source is any set of release curves with the same feature columns: the
public data mapped to a campaign's features, or an earlier campaign's ledger
over the same design space. Fine-tuning starts every member from its
pretrained weights, keeps the pretrained input scaling and time scales (so the
weights keep their meaning), and trains on the new curves with an L2 pull
towards the pretrained weights (L2-SP) instead of weight decay towards zero.
With 8 or more new curves each member early-stops on its own held-out curves
and the interval is recalibrated on them; with fewer it runs a fixed, short
schedule and keeps the pretrained calibration.

Whether this helps depends on how related the datasets are and on how many new
curves there are: ``bench/bench_surrogate.py --transfer`` measures it.
"""

from __future__ import annotations

import copy
import time

import numpy as np
from sklearn.utils.validation import check_is_fitted

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


def fine_tune(
    pretrained: ReleaseEnsemble,
    X,
    y,
    groups=None,
    *,
    epochs: int = 150,
    learning_rate: float | None = None,
    anchor_strength: float = 1e-3,
    random_state: int | None = None,
) -> ReleaseEnsemble:
    """A copy of ``pretrained`` fine-tuned on new curves; the pretrained model is left unchanged.

    Args:
        pretrained: fitted ensemble.
        X: (n_rows, n_features + 1) new rows, time in hours last; same feature columns as the source.
        y: (n_rows,) release fraction.
        groups: (n_rows,) curve ids (validation split when there are 8 or more curves).
        epochs: maximum fine-tuning epochs.
        learning_rate: defaults to a third of the pretraining rate.
        anchor_strength: weight of the squared distance to the pretrained weights.
        random_state: seed of the validation split; defaults to the pretrained one.

    Returns:
        the fine-tuned ensemble (``fine_tuned_`` records what was done).
    """
    check_is_fitted(pretrained, "net_")
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if X.ndim != 2 or X.shape[1] != pretrained.n_features_in_:
        raise InputError(f"fine-tuning rows need {pretrained.n_features_in_} columns (features + time), got shape {X.shape}")
    if epochs < 1 or anchor_strength < 0:
        raise InputError("epochs must be at least 1 and anchor_strength not negative")
    started = time.perf_counter()
    model = copy.deepcopy(pretrained)
    if random_state is not None:
        model.random_state = random_state
    features, times = model._split(X, y)
    train_w, val_w, use_validation = model._member_weights(features, groups)
    device = next(model.net_.parameters()).device
    data = model._tensors(features, times, y, device)
    anchor = [p.detach().clone() for p in model.net_.parameters()]
    rate = learning_rate if learning_rate is not None else pretrained.learning_rate / 3
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(model.random_state))
        ran = model._train(model.net_, data, train_w, val_w, use_validation, epochs, rate, 0.0, anchor=anchor, anchor_strength=anchor_strength)
    if model.calibrate and use_validation:
        model.std_scale_ = model._fit_std_scale(data, val_w > 0)
    model.n_epochs_ = ran
    model.fit_seconds_ = time.perf_counter() - started
    model.fine_tuned_ = {"n_rows": int(len(y)), "epochs": int(ran), "learning_rate": float(rate), "anchor_strength": float(anchor_strength), "recalibrated": bool(model.calibrate and use_validation)}
    return model
