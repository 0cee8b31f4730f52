"""The campaign config kept with its ledger (``STORE/blobs/campaign.json``): read it, and store a new or changed one.

A change to what stored results mean (the space, constraints, target or
objective) is refused unless amended explicitly; any change keeps the old
config under ``blobs/config-history/`` and is recorded as a campaign event.
"""

from __future__ import annotations

import hashlib
import json

from nanoloop.loop.config import CampaignConfig, parse_config
from nanoloop.loop.errors import InputError
from nanoloop.loop.store.ledger import Ledger, now_utc

CONFIG_BLOB = "campaign.json"
#: config keys whose change alters what stored results mean (a change needs --amend)
MEANING_KEYS = ("space", "constraints", "target", "objective")


def read_stored_config(ledger: Ledger) -> CampaignConfig:
    """The config stored with the ledger, validated.

    Raises:
        InputError: the store holds no campaign, or its stored config is damaged (the message says how to restore it).
    """
    where = f"{ledger.location}/blobs/{CONFIG_BLOB}"
    blob = ledger.read_blob(CONFIG_BLOB)
    if blob is None:
        raise InputError(f"store {ledger.location!r} holds no campaign (no {CONFIG_BLOB})")
    try:
        data = json.loads(blob)
    except (ValueError, UnicodeDecodeError) as err:
        raise InputError(f"{where}: the stored campaign config is damaged (not JSON: {err}); "
                         f"restore it from blobs/config-history/ or a backup") from None
    if not isinstance(data, dict):
        raise InputError(f"{where}: the stored campaign config is damaged (not a JSON object)")
    return parse_config(data, source=where)


def config_changes(ledger: Ledger, config: CampaignConfig, amend: bool = False) -> list[str] | None:
    """The top-level keys in which ``config`` differs from the stored one: None when none is stored, [] when equal.

    Raises:
        InputError: the store belongs to another campaign, or ``config`` changes what stored results mean
            (:data:`MEANING_KEYS`) without ``amend``.
    """
    stored = ledger.read_blob(CONFIG_BLOB)
    if stored is None:
        return None
    old, new = json.loads(stored), config.model_dump(mode="json")
    if old.get("name") != config.name:
        raise InputError(f"store {ledger.location!r} belongs to campaign {old.get('name')!r}, not {config.name!r}")
    if stored.decode() == _text(config):
        return []
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    meaning = [k for k in changed if k in MEANING_KEYS]
    if meaning and not amend:
        raise InputError(
            f"campaign {config.name!r} in {ledger.location!r} was run with a different {', '.join(meaning)}; "
            "its results would be misread under this config. Use a new campaign name or store, or pass --amend "
            "to record the change (the old config is kept)"
        )
    return changed


def store_config(ledger: Ledger, config: CampaignConfig, changed: list[str] | None, round_: int) -> None:
    """Write ``config`` as the campaign's; ``changed`` (from :func:`config_changes`) non-empty keeps the old one.

    The old config goes to ``blobs/config-history/`` and the change is recorded as a
    ``config-amended`` (a :data:`MEANING_KEYS` change) or ``config-changed`` event of ``round_``
    with an empty formulation id.
    """
    if changed:
        stamp = now_utc().strftime("%Y%m%dT%H%M%S%fZ")
        ledger.write_blob(f"config-history/campaign-{stamp}.json", ledger.read_blob(CONFIG_BLOB))
        ledger.append("events", [{
            "event_id": hashlib.sha256(f"config|{stamp}".encode()).hexdigest()[:20], "formulation_id": "", "campaign": config.name,
            "round": round_, "status": "config-amended" if set(changed) & set(MEANING_KEYS) else "config-changed",
            "reason": f"changed {', '.join(changed)}; old config in blobs/config-history/campaign-{stamp}.json", "time": now_utc(),
        }])
    ledger.write_blob(CONFIG_BLOB, _text(config).encode())


def _text(config: CampaignConfig) -> str:
    return json.dumps(config.model_dump(mode="json"), indent=1)  # key order is the variable order
