"""The base of every error whose message is written for the user (it names the file and says what to do).

Front ends (the CLI, the Blender add-on) show such messages as they are; any other exception is
an internal failure and is reported as one.
"""
from __future__ import annotations


class DaHyFUserError(Exception):
    """Bad input or a setting the user can fix; ``str(exc)`` is the message to show."""
