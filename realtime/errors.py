"""Errors that mean "the user gave us something we cannot use".

Everything raised as :class:`UserError` is turned by the CLI into a one-line message on stderr and
exit status 2 (no traceback): a missing file, a corrupt image, a wrong checksum, an unknown
backend.  Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input or environment, reported to the user in one line (exit status 2)."""

    exit_code = 2


class ConfigError(UserError):
    """A config file or command-line value that does not fit the schema."""


class ModelError(UserError):
    """A model file that is missing, corrupt or could not be downloaded."""


class MediaError(UserError):
    """An image or video that is missing, unreadable or not what it claims to be."""
