"""Blender version support in one place: the version gate, path-property options and the F-curve
access of an Action.

Blender 4.2–4.3 store F-curves on ``action.fcurves``; 4.4 added layered actions (slots, layers,
strips, channelbags) and 5.0 removed ``action.fcurves``. :func:`action_fcurves` hides the
difference so that the keying code has a single path.
"""
from __future__ import annotations

import sys

import bpy
from dahyf.errors import DaHyFUserError

#: Oldest Blender this extension supports (matches ``blender_version_min`` in the manifest).
MIN_VERSION: tuple[int, int, int] = (4, 2, 0)


def path_options(*options: str) -> set[str]:
    """``options`` for a file-path property, plus 'PATH_SUPPORTS_BLEND_RELATIVE' where Blender has it.

    Blender 5.x warns when a ``//`` (blend-relative) path is given to a path property that does not
    declare it supports one; 4.2 has no such option and refuses it.
    """
    supported = "is_path_supports_blend_relative" in bpy.types.Property.bl_rna.properties
    return set(options) | ({"PATH_SUPPORTS_BLEND_RELATIVE"} if supported else set())


class UnsupportedBlender(DaHyFUserError, RuntimeError):
    """This Blender is older than :data:`MIN_VERSION`, or not one that this zip was built for."""


def _dotted(version) -> str:
    return ".".join(str(v) for v in version)


def check_blender_version(version: tuple[int, ...] | None = None, python: tuple[int, ...] | None = None) -> None:
    """Raise :class:`UnsupportedBlender` with an actionable message when this Blender cannot run the add-on.

    Too old for the add-on, or outside the range of the zip's Python tier (``build_info``: a zip
    for Python 3.11 serves Blender 4.2–5.0, one for Python 3.13 Blender 5.1+; its wheels are
    compiled for that Python only).

    Parameters
    ----------
    version : (major, minor, patch), default ``bpy.app.version``.
    python : (major, minor), default the running Python's.
    """
    from . import build_info as built

    version = tuple(version if version is not None else bpy.app.version)[:3]
    python = tuple(python if python is not None else sys.version_info)[:2]
    if version < MIN_VERSION:
        raise UnsupportedBlender(
            f"DaHyF needs Blender {_dotted(MIN_VERSION)} or newer (this is Blender {_dotted(version)}). "
            f"Install Blender {_dotted(MIN_VERSION)} LTS or later from https://www.blender.org/download/."
        )
    if built.TIER is None:  # a development checkout: no zip, no tier
        return
    fits = (version >= built.BLENDER_MIN and (built.BLENDER_MAX is None or version < built.BLENDER_MAX)
            and python == tuple(built.PYTHON))
    if not fits:
        span = (f"Blender {_dotted(built.BLENDER_MIN)} to {_dotted(built.BLENDER_MAX)} (excluded)" if built.BLENDER_MAX
                else f"Blender {_dotted(built.BLENDER_MIN)} and newer")
        raise UnsupportedBlender(
            f"This DaHyF zip ({built.TIER}) is for {span}, which run Python {_dotted(built.PYTHON)}; this is Blender "
            f"{_dotted(version)} with Python {_dotted(python)}. Remove it and install the DaHyF zip made for "
            f"Python {_dotted(python)}: dahyf_blender-<version>-py{python[0]}{python[1]}-<platform>.zip "
            "(py311: Blender 4.2 LTS to 5.0, py313: Blender 5.1 and newer)."
        )


def uses_layered_actions() -> bool:
    """True when Actions hold their F-curves in slots/channelbags (Blender 4.4+)."""
    return bpy.app.version >= (4, 4, 0) and "slots" in bpy.types.Action.bl_rna.properties


def assign_action(id_data, action: bpy.types.Action):
    """Make ``action`` the active Action of ``id_data``; return the owner of its F-curves.

    The owner has ``.fcurves`` and ``.groups``: the channelbag of a new slot for ``id_data`` on
    Blender 4.4+ (layered actions), the Action itself on 4.2–4.3.
    """
    anim = id_data.animation_data or id_data.animation_data_create()
    anim.action = action
    if not uses_layered_actions():
        return action
    slot = anim.action_slot
    if slot is None:
        slot = action.slots.new(id_type=id_data.id_type, name=id_data.name)
        anim.action_slot = slot
    from bpy_extras import anim_utils

    return anim_utils.action_ensure_channelbag_for_slot(action, slot)


def channel_owner(id_data):
    """The owner (``.fcurves``, ``.groups``) of ``id_data``'s active Action channels, or None."""
    anim = id_data.animation_data
    if anim is None or anim.action is None:
        return None
    if not uses_layered_actions():
        return anim.action
    from bpy_extras import anim_utils

    return anim_utils.action_get_channelbag_for_slot(anim.action, anim.action_slot)


def new_fcurve(owner, data_path: str, index: int = 0, group: str | None = None) -> bpy.types.FCurve:
    """Create an F-curve on ``owner`` (an Action or a channelbag), optionally in channel group ``group``."""
    fc = owner.fcurves.new(data_path, index=index)
    if group:
        grp = owner.groups.get(group) or owner.groups.new(group)
        fc.group = grp
    return fc
