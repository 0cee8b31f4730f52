"""The SiLA 2 feature definitions (FDL XML) nanoloop's instruments speak, shipped as package data.

``NanoparticleFormulation`` (synthesis) and ``DissolutionTesting`` (dissolution)
share one job pattern: an observable command per work item (keyed by an
idempotency key, with progress), and ``GetJobState`` / ``GetJobResult`` /
``CancelJob`` by key, so a client that lost its connection finds its jobs again.
"""

from __future__ import annotations

from importlib import resources

from sila2.framework import Feature

#: instrument kind -> (feature identifier, observable command that runs one work item)
FEATURES: dict[str, tuple[str, str]] = {
    "synthesis": ("NanoparticleFormulation", "MakeFormulation"),
    "dissolution": ("DissolutionTesting", "RunDissolutionTest"),
}

#: job states the features report (the values of nanoloop's JobState)
STATES = ("unknown", "queued", "running", "done", "failed", "cancelled")


def feature_xml(kind: str) -> str:
    """The FDL XML text of the feature an instrument of ``kind`` needs."""
    identifier, _ = FEATURES[kind]
    return resources.files("nanoloop.adapters.sila").joinpath("features", f"{identifier}-v1_0.sila.xml").read_text()


def load_feature(kind: str) -> Feature:
    """The parsed (and schema-validated) SiLA 2 feature for ``kind``."""
    return Feature(feature_xml(kind))
