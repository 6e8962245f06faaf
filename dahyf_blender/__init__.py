"""DaHyF for Blender: capture hand motion from a video into a keyed MANO hand rig.

A Blender 4.2+ extension (see ``blender_manifest.toml``). Every submodule owns its classes and
exposes ``register()`` / ``unregister()`` (Rigify style); this file only calls them in order.
"""
from __future__ import annotations

import importlib

_SUBMODULES = ("prefs", "props", "rig", "ops_capture", "ops_import", "retarget", "ui", "live_ui")


def _modules():
    return [importlib.import_module(f"{__package__}.{name}") for name in _SUBMODULES]


def register():
    from . import compat

    compat.check_blender_version()
    for module in _modules():
        module.register()


def unregister():
    for module in reversed(_modules()):
        module.unregister()
