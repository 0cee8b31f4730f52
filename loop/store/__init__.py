"""The ledger and what reads and writes it: schemas, status vocabulary, doctor, tidy tables, import of a lab's experiments."""
