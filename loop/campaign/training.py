"""The campaign's surrogates: trained on the ledger's curves, stored in it under a content version."""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from nanoloop.loop import __version__
from nanoloop.loop.design.cold_start import choose_prior_use
from nanoloop.loop.design.measured import Measured
from nanoloop.loop.design.objective import Objective
from nanoloop.loop.errors import InputError
from nanoloop.loop.models.base import TrainedModel
from nanoloop.loop.models.build import build_release_model, combine_members, load_release_model
from nanoloop.loop.store.ledger import Ledger, now_utc
from nanoloop.loop.store.measurements import measured_mean_curves
from nanoloop.loop.store.prior import load_prior


class ModelStore:
    """Training data, training and stored models of one campaign.

    Args:
        ledger: the campaign's ledger (curves in, models out).
        config: the campaign config (surrogate settings, seed, name).
    """

    def __init__(self, ledger: Ledger, config):
        self.ledger = ledger
        self.config = config
        self.space = config.design_space()
        self._prior = None

    @property
    def prior(self):
        """The ``[prior]`` data in this campaign's encoding (:class:`~nanoloop.loop.design.prior.PriorData`), None without one."""
        if self._prior is None and (self.config.prior.stores or self.config.prior.files):
            self._prior = load_prior(self.config.prior, self.space)
        return self._prior

    def prior_use(self, seed: int) -> dict | None:
        """How the prior trains this round's model: the config's ``[prior] use``, or chosen by cross-validation (``auto``)."""
        prior = self.prior
        if prior is None:
            return None
        said = {"prior_formulations": len(prior), "prior_notes": list(prior.notes)}
        if self.config.prior.use != "auto":
            return {"use": self.config.prior.use, "reason": "set by [prior] use", **said}
        times = Objective.from_config(self.config).curve_times_hours
        measured = Measured.of(self.ledger.read("formulations"), measured_mean_curves(self.ledger), self.space)
        use, errors, reason = choose_prior_use(measured.encoded, measured.release_at(times), prior.encoded, prior.at_times(times), seed=seed,
                                               restarts=self.config.acquisition.gp_restarts)
        return {"use": use, "reason": reason, "held_out_mae_pct": errors, **said}

    def training_data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Rows (features + time hours), release fraction, curve groups, number of formulations."""
        curves = self.ledger.read("curves")
        if curves.empty:
            return np.empty((0, len(self.space.feature_names) + 1)), np.empty(0), np.empty(0), 0
        forms = self.ledger.read("formulations").set_index("formulation_id")
        measured = forms.loc[curves["formulation_id"].unique()]
        encoded = pd.DataFrame(self.space.encode(self.space.recipes(measured)), index=measured.index)
        features = encoded.loc[curves["formulation_id"]].to_numpy(np.float32)
        X = np.column_stack([features, curves["time_hours"].to_numpy(np.float32)])
        y = np.clip(curves["release_pct"].to_numpy(float) / 100.0, 0.0, 1.2)
        return X, y, curves["formulation_id"].to_numpy(), len(measured)

    def new_model(self, n_members: int, random_state: int):
        """An unfitted surrogate with the campaign's settings (``[surrogate] model``: ensemble or blend)."""
        return build_release_model(self.config.surrogate, random_state, n_members)

    def train(self, round_: int, fit_members=None) -> TrainedModel | None:
        """Train the surrogate on every measured curve and store it; None before any measurement.

        Args:
            round_: the round the model proposes for (part of its seed).
            fit_members: optional ``fit_members(models, X, y, groups) -> fitted models``
                that fits one-member ensembles elsewhere (e.g. on Dask workers);
                by default all members train together in this process. The blend
                (``model = "blend"``) always trains in this process: it validates its parts together.

        The version is a hash of the training set and settings, so retraining on
        the same data (after a crash) reuses the stored model.
        """
        X, y, groups, n_formulations = self.training_data()
        settings = self.config.surrogate
        seed = self.config.seed + round_
        prior_use = self.prior_use(seed)
        if n_formulations == 0 and (prior_use is None or prior_use["use"] == "none"):
            return None
        use = prior_use["use"] if prior_use else "none"
        if use == "joint" or n_formulations == 0:  # nothing of this campaign measured yet: the prior is all there is
            PX, Py, Pg = self.prior.training_rows()
            X, y, groups = np.vstack([X, PX]).astype(np.float32), np.concatenate([y, Py]), np.concatenate([groups, Pg])
            use = prior_use["use"] = "joint"
        mode = "batched" if (fit_members is None or settings.model == "blend" or use == "fine-tune") else "per-member"
        # "ensemble" is left out of the hash: stores made before the setting existed keep their model versions
        described = settings.model_dump_json(exclude={"model"} if settings.model == "ensemble" else None)
        if prior_use:
            described += f"|prior:{self.prior.digest}:{use}"
        digest = hashlib.sha256(X.tobytes() + y.tobytes() + described.encode() + f"{seed}|{mode}".encode())
        version = f"M{round_:03d}-{digest.hexdigest()[:10]}"
        blob_name = f"models/{version}.pt"
        stored = self.ledger.read_blob(blob_name)
        if stored is not None:
            return TrainedModel(version, load_release_model(io.BytesIO(stored))[0], n_formulations, prior_use)
        if use == "fine-tune":
            model = self.pretrained(seed).fine_tune(X, y, groups=groups, random_state=seed)
        elif mode == "batched":
            model = self.new_model(settings.members, seed).fit(X, y, groups=groups)
        else:
            singles = [self.new_model(1, seed * 1000 + m) for m in range(settings.members)]
            model = combine_members(fit_members(singles, X, y, groups))
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.pt"
            model.save(path, metadata={"feature_names": self.space.feature_names, "time_unit": "hours", "release_unit": "fraction",
                                       "campaign": self.config.name, "nanoloop_version": __version__})
            self.ledger.write_blob(blob_name, path.read_bytes())
        fitted = model.predict(X)
        metrics = {"train_mae_pct": float(100 * np.mean(np.abs(fitted - y))), "epochs": model.n_epochs_, "std_scale": model.std_scale_, "training": mode,
                   "model": settings.model, "network_weight_early": getattr(model, "network_weight_early_", 1.0),
                   "network_weight_late": getattr(model, "network_weight_late_", 1.0)}
        if prior_use:
            metrics["prior"] = prior_use
        self.ledger.append("models", [{
            "model_version": version, "campaign": self.config.name, "round": round_, "n_formulations": n_formulations,
            "n_points": len(y), "head": settings.head, "members": settings.members, "seed": seed,
            "train_seconds": model.fit_seconds_, "metrics_json": json.dumps(metrics), "trained_at": now_utc(),
        }])
        return TrainedModel(version, model, n_formulations, prior_use)

    def pretrained(self, seed: int):
        """The ensemble trained on the prior alone (stored once per prior and settings), to fine-tune on this campaign."""
        settings = self.config.surrogate
        name = f"models/prior-{self.prior.digest}-{hashlib.sha256(settings.model_dump_json().encode()).hexdigest()[:8]}-{seed}.pt"
        stored = self.ledger.read_blob(name)
        if stored is not None:
            return load_release_model(io.BytesIO(stored))[0]
        X, y, groups = self.prior.training_rows()
        # the network alone (also under model = "blend"): fine-tuning continues a network's weights
        model = build_release_model(settings.model_copy(update={"model": "ensemble"}), seed).fit(X, y, groups=groups)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "prior.pt"
            model.save(path, metadata={"feature_names": self.space.feature_names, "campaign": self.config.name, "prior": self.prior.digest})
            self.ledger.write_blob(name, path.read_bytes())
        return model

    def load(self, version: str):
        """The stored model of that version (a ReleaseEnsemble or a BlendedRelease)."""
        blob = self.ledger.read_blob(f"models/{version}.pt")
        if blob is None:
            raise InputError(f"model {version} is not in the store")
        return load_release_model(io.BytesIO(blob))[0]

    def latest(self) -> TrainedModel | None:
        """The model of the latest round, None before any training."""
        models = self.ledger.read("models")
        if models.empty:
            return None
        row = models.sort_values(["round", "trained_at"]).iloc[-1]
        return TrainedModel(row["model_version"], self.load(row["model_version"]), int(row["n_formulations"]))
