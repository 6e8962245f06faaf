"""The one error the capture pipeline raises for bad input: its message says what to do."""
from __future__ import annotations

from ..errors import DaHyFUserError


class CaptureError(DaHyFUserError):
    """A video (or option) the capture pipeline cannot use.

    The message is meant for the user: it names the file and says what to do about it.
    """
