"""The installed extension ships the retarget presets and registers the retarget operator."""
from __future__ import annotations

import pytest

bpy = pytest.importorskip("bpy")

pytestmark = pytest.mark.blender


def test_installed_extension_carries_rigs_and_retarget(addon, sub):
    retarget = sub("retarget")
    assert retarget.presets.__name__.startswith(addon.__name__ + ".rigs"), retarget.presets.__name__
    names = set(retarget.presets.load_presets())
    assert {"rigify", "mixamo", "unreal", "vrm", "autorigpro", "mpfb", "openxr"} <= names
    assert hasattr(bpy.types, "DAHYF_OT_retarget") and hasattr(bpy.types.Scene, "dahyf_retarget")
