"""The campaign: a round as plain methods over the ledger (proposing, approval, the lab, ingest, training, review, evaluation)."""
