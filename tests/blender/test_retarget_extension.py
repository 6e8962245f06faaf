"""The installed extension ships the retarget presets and matcher and registers the retarget operator."""
from __future__ import annotations

import pytest

bpy = pytest.importorskip("bpy")

pytestmark = pytest.mark.blender


def test_installed_extension_carries_rigs_and_retarget(addon, sub):
    retarget = sub("retarget")
    for module in (retarget.presets, retarget.match, sub("retarget._rigs").contacts):
        assert module.__name__.startswith(addon.__name__ + ".rigs"), module.__name__
    names = set(retarget.presets.load_presets())
    assert {"rigify", "mixamo", "unreal", "vrm", "autorigpro", "mpfb", "openxr", "webxr"} <= names
    assert callable(retarget.apply_current_pose) and callable(retarget.bake)
    assert hasattr(bpy.types, "DAHYF_OT_retarget") and hasattr(bpy.types.Scene, "dahyf_retarget")
