"""Errors that reach the user as one clear line.

Library code raises these with a message that says what is wrong, where, and what to do; the
CLI prints the message alone (no traceback) and exits with `exit_code`.
"""

from __future__ import annotations


class ProbeError(Exception):
    """A problem the user can fix: bad input, missing key, unreachable endpoint."""

    exit_code = 2


class InputError(ProbeError):
    """A file or option the user gave is invalid (exit code 2)."""


class StoreError(ProbeError):
    """The study database cannot be used as asked."""


class TargetError(ProbeError):
    """A model endpoint cannot be used: unreachable, bad key, unknown model."""
