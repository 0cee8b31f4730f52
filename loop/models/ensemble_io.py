"""Saving and loading :class:`~nanoloop.loop.models.ensemble.ReleaseEnsemble`, and combining ensembles fitted apart.

A saved file holds tensors and one JSON string (settings, scaling, user
metadata); it loads with ``torch.load(weights_only=True)``, so loading never
unpickles arbitrary objects.
"""

from __future__ import annotations

import io
import json
import pickle

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from nanoloop.loop.models.heads import EnsembleMLP, n_outputs
from nanoloop.loop.errors import InputError

_FORMAT = 2  # layout of saved files: 2 = noise output last for every head


def save_ensemble(model, path, metadata: dict | None = None) -> None:
    """Write ``model``'s weights and metadata to ``path`` (a file path or a binary buffer; loadable with weights_only=True)."""
    check_is_fitted(model, "net_")
    meta = {
        "format": _FORMAT,
        "params": model.get_params(),
        "n_features_in": model.n_features_in_,
        "time_center_hours": model.time_center_hours_,
        "std_scale": model.std_scale_,
        "n_epochs": getattr(model, "n_epochs_", None),
        "fit_seconds": getattr(model, "fit_seconds_", None),
        "torch_version": torch.__version__,
        "user": metadata or {},
    }
    blob = {
        "meta_json": json.dumps(meta),
        "state": {k: v.cpu() for k, v in model.net_.state_dict().items()},
        "x_mean": torch.as_tensor(model.x_mean_),
        "x_scale": torch.as_tensor(model.x_scale_),
        "x_low": torch.as_tensor(model.x_low_),
        "x_high": torch.as_tensor(model.x_high_),
        "freeform_taus_hours": torch.as_tensor(model.freeform_taus_hours_),
    }
    write_blob(blob, path)


def write_blob(blob: dict, path) -> None:
    """Write a dict of tensors and strings with ``torch.save`` to a path or a writable file object."""
    buffer = io.BytesIO()
    torch.save(blob, buffer)
    if hasattr(path, "write"):
        path.write(buffer.getvalue())
        return
    with open(path, "wb") as handle:
        handle.write(buffer.getvalue())


def load_ensemble(cls, path, device: str | None = None) -> tuple:
    """:meth:`ReleaseEnsemble.load <nanoloop.loop.models.ensemble.ReleaseEnsemble.load>` for the class ``cls``."""
    try:
        blob = torch.load(path, weights_only=True, map_location="cpu")
        meta = json.loads(blob["meta_json"])
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, EOFError, pickle.UnpicklingError) as err:
        raise InputError(f"not a saved ReleaseEnsemble: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
    params = dict(meta["params"])
    known = set(cls().get_params())
    unknown = sorted(set(params) - known)
    if unknown or meta.get("format", 1) > _FORMAT:
        raise InputError(f"model saved by a newer nanoloop (unknown settings {unknown}); upgrade to load it")
    if meta.get("format", 1) < 2 and params.get("head") == "freeform":
        raise InputError("free-form model saved in the format-1 layout; retrain it")
    if device is not None:
        params["device"] = device
    model = cls(**params)
    model.n_features_in_ = meta["n_features_in"]
    model.time_center_hours_ = meta["time_center_hours"]
    model.std_scale_ = meta["std_scale"]
    model.n_epochs_ = meta.get("n_epochs")
    model.fit_seconds_ = meta.get("fit_seconds")
    model.x_mean_ = blob["x_mean"].numpy()
    model.x_scale_ = blob["x_scale"].numpy()
    infinite = np.full_like(model.x_mean_, np.inf)
    model.x_low_ = blob["x_low"].numpy() if "x_low" in blob else -infinite
    model.x_high_ = blob["x_high"].numpy() if "x_high" in blob else infinite
    model.freeform_taus_hours_ = blob["freeform_taus_hours"].numpy()
    net = EnsembleMLP(model.n_members, model.n_features_in_ - 1, model.hidden, model.n_layers, n_outputs(model.head, model.residual), model.dropout, torch.Generator())
    net.load_state_dict(blob["state"])
    model.net_ = net.to(model.torch_device()).eval()
    return model, meta["user"]


def combine_members(cls, parts: list):
    """:meth:`ReleaseEnsemble.from_members <nanoloop.loop.models.ensemble.ReleaseEnsemble.from_members>` for the class ``cls``."""
    if not parts:
        raise InputError("no fitted ensembles to combine")
    first = parts[0]
    for part in parts[1:]:
        if not (np.allclose(part.x_mean_, first.x_mean_) and np.allclose(part.x_scale_, first.x_scale_)):
            raise InputError("ensembles fitted on different data cannot be combined")
    model = cls(**{**first.get_params(), "n_members": sum(p.n_members for p in parts)})
    for name in ("n_features_in_", "time_center_hours_", "x_mean_", "x_scale_", "x_low_", "x_high_", "freeform_taus_hours_", "n_epochs_"):
        setattr(model, name, getattr(first, name))
    model.std_scale_ = float(np.median([p.std_scale_ for p in parts]))
    model.fit_seconds_ = float(sum(p.fit_seconds_ for p in parts))
    net = EnsembleMLP(model.n_members, model.n_features_in_ - 1, model.hidden, model.n_layers, n_outputs(model.head, model.residual), model.dropout, torch.Generator())
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            tensor.copy_(torch.cat([p.net_.state_dict()[name].cpu() for p in parts], dim=0))
    model.net_ = net.to(model.torch_device()).eval()
    return model
