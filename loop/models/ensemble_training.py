"""How :class:`~nanoloop.loop.models.ensemble.ReleaseEnsemble` trains: validation splits, the loop, the calibration.

Functions of the estimator (``model``): they read its settings and fitted
scaling and train its network in place. Training is full-batch AdamW with
early stopping per member on its own held-out curves, optionally pulled
towards given weights (L2-SP, for fine-tuning).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch

from nanoloop.loop.models.heads import CurveHead
from nanoloop.loop.errors import InputError
from nanoloop.loop.models.base import Z90

_SMALL_WORK = 20_000_000  # members x rows x hidden below which CPU training runs on one thread


@contextlib.contextmanager
def training_threads(device: torch.device, work: int):
    """One CPU thread for small problems (restored afterwards).

    Full-batch steps on a few thousand rows are tiny: a second thread buys
    little, and on a busy machine the threads' synchronisation makes training
    10-30x slower (measured on 2 shared cores).
    """
    if device.type != "cpu" or work > _SMALL_WORK or torch.get_num_threads() == 1:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def member_weights(model, features: np.ndarray, groups, sample_weight=None) -> tuple[np.ndarray, np.ndarray, bool]:
    """Per-member row weights for training and validation, each (M, n), and whether there is validation.

    Each member holds out its own share of the groups (curves): consecutive
    slices of one random order, so the members' validation curves do not
    overlap while there are enough groups and every curve validates some
    member (inner validation chose this over independent random draws:
    MAE 0.139 vs 0.143 on the Bannigan benchmark). With ``bootstrap`` a
    member trains on a draw with replacement of the rest.
    """
    if groups is None:
        _, groups = np.unique(features, axis=0, return_inverse=True)
    groups = np.asarray(groups).reshape(-1)
    if len(groups) != len(features):
        raise InputError(f"groups has {len(groups)} entries but X has {len(features)} rows")
    _, group_index = np.unique(groups, return_inverse=True)
    n_groups = int(group_index.max()) + 1
    rng = np.random.default_rng(model.random_state)
    use_validation = model.validation_fraction > 0 and n_groups >= 8
    val_groups = np.zeros((model.n_members, n_groups), dtype=bool)
    counts = np.ones((model.n_members, n_groups))
    n_val = max(1, int(round(model.validation_fraction * n_groups)))
    order = rng.permutation(n_groups)  # consecutive slices: disjoint while members x n_val <= groups
    for m in range(model.n_members):
        if use_validation:
            val_groups[m, np.take(order, np.arange(m * n_val, (m + 1) * n_val), mode="wrap")] = True
        if model.bootstrap:
            pool = np.flatnonzero(~val_groups[m])
            counts[m] = np.bincount(rng.choice(pool, len(pool), replace=True), minlength=n_groups)
    train_w = (counts * ~val_groups)[:, group_index]
    val_w = val_groups[:, group_index].astype(np.float64)
    if sample_weight is not None:
        weight = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
        if len(weight) != len(features) or not np.all(np.isfinite(weight)) or np.any(weight < 0) or weight.sum() <= 0:
            raise InputError("sample_weight must hold one finite, non-negative weight per row, not all zero")
        train_w, val_w = train_w * weight, val_w * weight
    return train_w, val_w, use_validation


def training_tensors(model, features, times, y, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Training tensors: the distinct formulations' scaled features, each row's formulation index, times, release.

    The network sees a formulation once (time enters only the head), so a
    curve of 36 points costs one forward pass, not 36.
    """
    unique, row_index = np.unique(features, axis=0, return_inverse=True)
    xs = torch.as_tensor((unique - model.x_mean_) / model.x_scale_, dtype=torch.float32, device=device)
    index = torch.as_tensor(row_index.reshape(-1), dtype=torch.int64, device=device)
    return xs, index, torch.as_tensor(np.array(times), dtype=torch.float32, device=device), torch.as_tensor(np.array(y), dtype=torch.float32, device=device)

def train_members(model, net, data, train_w, val_w, use_validation: bool, epochs: int, learning_rate: float, weight_decay: float, anchor=None, anchor_strength: float = 0.0) -> int:
    """Full-batch AdamW with per-member early stopping; restores each member's best weights.

    ``anchor`` (a list of tensors shaped like the parameters) adds
    ``anchor_strength * ||w - anchor||^2`` to each member's loss: fine-tuning
    that stays near pretrained weights (L2-SP).

    Returns the number of epochs run.
    """
    device = data[0].device
    train_w = torch.as_tensor(train_w, dtype=torch.float32, device=device)
    val_w = torch.as_tensor(val_w, dtype=torch.float32, device=device)
    with training_threads(device, train_w.shape[0] * train_w.shape[1] * model.hidden):
        return _train_loop(model, net, data, train_w, val_w, use_validation, epochs, learning_rate, weight_decay, anchor, anchor_strength)

def _train_loop(model, net, data, train_w, val_w, use_validation, epochs, learning_rate, weight_decay, anchor, anchor_strength) -> int:
    xs, index, ts, ys = data
    device = xs.device
    optimizer = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=weight_decay)
    n_members = train_w.shape[0]
    best_loss = torch.full((n_members,), float("inf"), device=device)
    best_state = [p.detach().clone() for p in net.parameters()]
    since_best = torch.zeros(n_members, dtype=torch.int64, device=device)
    train_norm = train_w.sum(1).clamp(min=1e-9)
    val_norm = val_w.sum(1).clamp(min=1e-9)
    ran = 0
    for epoch in range(int(epochs)):
        net.train()
        optimizer.zero_grad()
        inputs = xs
        if model.input_noise > 0:
            inputs = xs.unsqueeze(0) + model.input_noise * torch.randn((n_members, *xs.shape), device=device)
        per_point = member_loss(model, net(inputs)[:, index], ts, ys)  # (M, n)
        loss = ((per_point * train_w).sum(1) / train_norm).sum()
        if anchor is not None and anchor_strength > 0:
            loss = loss + anchor_strength * sum(((p - a) ** 2).sum() for p, a in zip(net.parameters(), anchor))
        loss.backward()
        optimizer.step()
        ran = epoch + 1
        if not use_validation:
            continue
        net.eval()
        with torch.no_grad():
            val = (member_loss(model, net(xs)[:, index], ts, ys) * val_w).sum(1) / val_norm
            improved = val < best_loss - 1e-5
            best_loss = torch.where(improved, val, best_loss)
            since_best = torch.where(improved, torch.zeros_like(since_best), since_best + 1)
            for saved, p in zip(best_state, net.parameters()):
                saved[improved] = p.detach()[improved]
        if bool((since_best > model.patience).all()):
            break
    if use_validation:
        with torch.no_grad():
            for saved, p in zip(best_state, net.parameters()):
                p.copy_(saved)
    net.eval()
    return ran

def member_loss(model, raw: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-point negative log-likelihood of the chosen kind, shape (M, n)."""
    mean = model.curve_head().curve(raw, t)
    std = CurveHead.noise_std(raw)
    if model.likelihood == "laplace":
        b = std / math.sqrt(2.0)
        return torch.abs(y - mean) / b + torch.log(b)
    nll = 0.5 * ((y - mean) / std) ** 2 + torch.log(std)
    return nll * std.detach() if model.likelihood == "beta-nll" else nll

def fit_std_scale(model, data, val_mask: np.ndarray) -> float:
    """Scale making 90 % of each member's held-out points fall inside its 90 % interval."""
    xs, index, ts, ys = data
    with torch.no_grad():
        raw = model.net_(xs)[:, index]
        mean = model.curve_head().curve(raw, ts).cpu().numpy()
        noise = CurveHead.noise_std(raw).cpu().numpy()
    y = ys.cpu().numpy()
    spread = mean.std(axis=0)
    z = []
    for m in range(mean.shape[0]):
        held = val_mask[m]
        total = np.sqrt(spread[held] ** 2 + noise[m, held] ** 2)
        z.append(np.abs(y[held] - mean[m, held]) / np.maximum(total, 1e-6))
    z = np.concatenate(z)
    if len(z) < 20:
        return 1.0
    return float(np.clip(np.quantile(z, 0.90) / Z90, 0.25, 10.0))
