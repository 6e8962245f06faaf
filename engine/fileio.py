"""File helpers shared across the engine (no heavy imports)."""
from __future__ import annotations

import os


def _umask() -> int:
    """The process umask: from /proc (Linux, no side effect), else set and restored at once."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def user_file_mode() -> int:
    """Permission bits of an ordinary new file (0o666 minus the umask); mkstemp gives 0o600."""
    return 0o666 & ~_umask()
