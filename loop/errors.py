"""Errors that nanoloop reports to its user as one line (exit code 2 on the CLI)."""


class InputError(ValueError):
    """Bad input from the user: a config, a curve file, a store path. The message names the problem."""
