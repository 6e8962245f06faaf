"""A captured hand leaves Blender through the real exporters (glTF, FBX, BVH) with its animation.

Exported from a frame where the hand is not shown (before the take starts), the way an artist
exports after scrubbing, then imported back with Blender's own importers and compared joint by
joint with the rig it came from.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from blender_helpers import make_take, random_hand_poses  # noqa: E402

pytestmark = pytest.mark.blender

#: Scene frames of the take below (video frames 3..14), and one before it where the hand is hidden.
TAKE_FRAMES = range(4, 16)
HIDDEN_FRAME = 1


def _joints(arm, frames):
    """(F, 16, 3) m bone heads in armature space, and the hand mesh's extent (m) per frame."""
    from dahyf.hand.tables import BONE_NAMES

    scene = bpy.context.scene
    mesh = next((o for o in bpy.data.objects if o.type == "MESH" and o.parent == arm), None)
    heads, extents = [], []
    for f in frames:
        scene.frame_set(f)
        heads.append([list(arm.pose.bones[b].head) for b in BONE_NAMES])
        if mesh is not None:
            verts = mesh.evaluated_get(bpy.context.evaluated_depsgraph_get()).data.vertices
            co = np.array([list(mesh.matrix_world @ v.co) for v in verts])
            extents.append(float(np.ptp(co, axis=0).max()))
    return np.array(heads), np.array(extents)


@pytest.fixture(scope="module")
def exported(addon, tmp_path_factory):
    """One captured right hand exported with each exporter at a frame where it is hidden."""
    out = tmp_path_factory.mktemp("export")
    bpy.ops.wm.read_homefile(use_empty=True)
    rng = np.random.default_rng(3)
    n = len(TAKE_FRAMES)
    take = make_take({0: ("right", random_hand_poses(n, 3), rng.normal(0, 1, 10),
                          np.c_[rng.normal(0, 0.03, (n, 2)), np.full(n, 0.6)])})
    assert bpy.ops.dahyf.import_take(filepath=str(take.save(out / "hand.npz"))) == {"FINISHED"}
    arm = next(o for o in bpy.data.objects if o.type == "ARMATURE")
    mesh = next(o for o in arm.children if o.type == "MESH")
    frames = [HIDDEN_FRAME, *TAKE_FRAMES, TAKE_FRAMES[-1] + 1]
    ref = _joints(arm, frames)
    first_key = arm.animation_data.action.frame_range[0]
    scene = bpy.context.scene
    scene.frame_set(HIDDEN_FRAME)
    for o in bpy.context.view_layer.objects:
        o.select_set(False)
    arm.select_set(True)
    mesh.select_set(True)
    bpy.context.view_layer.objects.active = arm
    assert arm.select_get() and mesh.select_get(), "a hand hidden on this frame could not be selected"
    paths = {"gltf": out / "hand.gltf", "fbx": out / "hand.fbx", "bvh": out / "hand.bvh"}
    assert bpy.ops.export_scene.gltf(filepath=str(paths["gltf"]), export_format="GLTF_SEPARATE",
                                     use_selection=True) == {"FINISHED"}
    assert bpy.ops.export_scene.fbx(filepath=str(paths["fbx"]), use_selection=True) == {"FINISHED"}
    assert bpy.ops.export_anim.bvh(filepath=str(paths["bvh"]), frame_start=scene.frame_start,
                                   frame_end=scene.frame_end) == {"FINISHED"}
    return paths, frames, ref, first_key, scene.render.fps


def _reimport(kind, exported):
    paths, frames, ref, first_key, fps = exported
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.context.scene.render.fps = fps
    if kind == "gltf":
        assert bpy.ops.import_scene.gltf(filepath=str(paths["gltf"])) == {"FINISHED"}
    elif kind == "fbx":  # the FBX importer starts the animation at anim_offset
        assert bpy.ops.import_scene.fbx(filepath=str(paths["fbx"]), anim_offset=first_key) == {"FINISHED"}
    else:  # BVH holds the scene's frame range, in the armature's own axes
        assert bpy.ops.import_anim.bvh(filepath=str(paths["bvh"]), axis_forward="Y", axis_up="Z",
                                       frame_start=TAKE_FRAMES[0]) == {"FINISHED"}
    arm = next(o for o in bpy.data.objects if o.type == "ARMATURE")
    return _joints(arm, frames)


def test_gltf_of_the_selection_carries_the_hand_its_animation_and_its_visibility(exported):
    paths, frames, (ref_joints, ref_extent), _, _ = exported
    gltf = json.loads(paths["gltf"].read_text())
    assert len(gltf["skins"]) == 1 and len(gltf["skins"][0]["joints"]) == 16
    assert any("mesh" in node for node in gltf["nodes"])
    joints, extent = _reimport("gltf", exported)
    np.testing.assert_allclose(joints, ref_joints, atol=1e-5)
    shown = np.isin(frames, TAKE_FRAMES)
    assert (ref_extent[shown] > 0.1).all() and (ref_extent[~shown] < 1e-4).all()
    assert (extent[shown] > 0.1).all() and (extent[~shown] < 1e-4).all(), extent


def test_fbx_of_the_selection_carries_the_hand_and_its_animation(exported):
    _, frames, (ref_joints, ref_extent), _, _ = exported
    joints, extent = _reimport("fbx", exported)
    shown = np.isin(frames, TAKE_FRAMES)
    np.testing.assert_allclose(joints[shown], ref_joints[shown], atol=1e-4)
    assert (extent[shown] > 0.1).all(), extent


def test_bvh_carries_the_animation(exported):
    _, frames, (ref_joints, _), _, _ = exported
    joints, _ = _reimport("bvh", exported)
    shown = np.isin(frames, TAKE_FRAMES)
    np.testing.assert_allclose(joints[shown], ref_joints[shown], atol=1e-4)
