"""A campaign's release model: built from its ``[surrogate]`` settings, read back from a saved file, combined from parts.

The model classes, and torch with them, are imported on the first call, so code
that only opens a campaign (``nanoloop status``, the dashboard) never loads torch.
"""

from __future__ import annotations

import io
import json

from nanoloop.loop.errors import InputError
from nanoloop.loop.models.base import ReleaseModel


def load_release_model(path, device: str | None = None) -> tuple[ReleaseModel, dict]:
    """Read a saved :class:`BlendedRelease` or :class:`ReleaseEnsemble` (the saved kind decides); returns (model, user metadata).

    Args:
        path: file path or binary buffer written by the model's ``save``.
        device: override the saved device setting of the network ("auto", "cpu", "cuda").
    """
    import torch

    from nanoloop.loop.models.blend import BlendedRelease
    from nanoloop.loop.models.ensemble import ReleaseEnsemble

    raw = path.read() if hasattr(path, "read") else open(path, "rb").read()
    try:
        blob = torch.load(io.BytesIO(raw), weights_only=True, map_location="cpu")
        meta = json.loads(blob["meta_json"])
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user error
        raise InputError(f"not a saved release model: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
    if meta.get("kind") == "blend":
        return BlendedRelease.from_saved(blob, meta, device), meta.get("user", {})
    return ReleaseEnsemble.load(io.BytesIO(raw), device=device)


def build_release_model(settings, random_state: int, n_members: int | None = None) -> ReleaseModel:
    """The campaign's unfitted surrogate from its ``[surrogate]`` settings.

    Args:
        settings: a :class:`~nanoloop.loop.config.SurrogateConfig` (or a copy); ``settings.model`` names the model,
            "blend" (the config's default) or "ensemble" (the network alone).
        random_state: seed.
        n_members: members, instead of ``settings.members``.
    """
    from nanoloop.loop.models.blend import BlendedRelease
    from nanoloop.loop.models.ensemble import ReleaseEnsemble

    kinds = {"blend": BlendedRelease, "ensemble": ReleaseEnsemble}  # ``[surrogate] model`` -> the class it names
    if settings.model not in kinds:
        raise InputError(f"[surrogate] model must be one of {sorted(kinds)}, got {settings.model!r}")
    members = settings.members if n_members is None else n_members
    model = kinds[settings.model]
    return model(head=settings.head, n_members=members, hidden=settings.hidden, epochs=settings.epochs,
                 learning_rate=settings.learning_rate, weight_decay=settings.weight_decay, random_state=random_state)


def combine_members(parts: list) -> ReleaseModel:
    """One ensemble from one-member ensembles fitted apart on the same data (e.g. on Dask workers)."""
    from nanoloop.loop.models.ensemble import ReleaseEnsemble

    return ReleaseEnsemble.from_members(parts)
