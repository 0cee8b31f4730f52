"""The instrument port: the protocol instruments implement, its value objects and typed errors, plausibility checks, collecting results."""
