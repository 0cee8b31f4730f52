"""The campaign: one stateful :class:`~nanoloop.loop.campaign.campaign.Campaign` whose methods are a round's
steps (proposing, approval, the lab, ingest), its models (training), the batch review and the evaluation.

The top layer of loop/: it reads the ledger into plain data for the recommenders
and writes back what they propose; Prefect flows and the CLI call it.
"""
