"""File paths the add-on reads: Blender-relative ``//`` paths, and the video a take names.

A take records the video it was captured from (``meta['source']``), but a take is a file anyone
may hand over: that entry is only ever used as a *file name* looked up next to the take, never
as a path (it may name a file on another machine — ``C:\\...``, a UNC ``\\\\host\\share`` path that
Windows would contact — or anything at all, e.g. ``/etc/passwd``).
"""
from __future__ import annotations

import ntpath
import os

import bpy

from .engine_api import UserError


def absolute(path: str, what: str) -> str:
    """``path`` made absolute; a ``//`` prefix is relative to the saved .blend file.

    Raises :class:`~.engine_api.UserError` for a ``//`` path while the .blend is not saved
    (relative to nothing). ``what`` names the field in the message ('Video', 'Save take').
    """
    if path.startswith("//") and not bpy.data.filepath:
        raise UserError(f"{what} {path} is relative to the .blend file ('//'), which is not saved yet: save the "
                        ".blend first, or choose the file again with an absolute path.")
    return os.path.abspath(bpy.path.abspath(path))


def recorded_file_name(source) -> str:
    """The file name (last part after ``/`` or ``\\``, drive letters dropped) of a recorded source path; '' if none."""
    name = ntpath.basename(str(source or ""))  # ntpath splits on both separators and drops 'C:'
    return "" if name in (".", "..") or "\0" in name else name


def video_beside_take(take_path: str, source) -> str:
    """The take's video: the file named like the recorded ``source`` in the take's folder, or ''.

    Parameters
    ----------
    take_path : absolute path of the take (.npz).
    source : the take's ``meta['source']`` (any string; only its file name is used).
    """
    name = recorded_file_name(source)
    if not name:
        return ""
    candidate = os.path.join(os.path.dirname(take_path), name)
    return candidate if os.path.isfile(candidate) else ""
