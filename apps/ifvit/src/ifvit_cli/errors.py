"""Errors the `ifvit` command reports as one line (no traceback)."""


class UserError(Exception):
    """Bad input or environment: the message says which file, what is wrong and what to do."""
