"""The ledger and what reads and writes it: the append-only tables, the status vocabulary, status events,
measured curves and scores, the stored config, tidy tables, the doctor, the import of a lab's earlier experiments
and the ``[prior]``'s reading.

The campaign's state lives here, on disk. Above design (it scores measured curves
with the campaign's objective) and below the campaign, which is the only writer of
rounds.
"""
