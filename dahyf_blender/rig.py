"""The MANO hand rig: a 16-bone armature in MANO order with a skinned hand mesh as child.

Bones are named by :data:`dahyf.hand.tables.BONE_NAMES`. Each bone's head is its MANO rest joint
(of the hand shape in use), its tail the next joint of the finger (or the fingertip), and its
roll puts the bone's local Z axis on the back of the hand, so that finger curl is a rotation
about the bone's local X axis. Armature space is the engine's camera frame (see :mod:`.coords`).
"""
from __future__ import annotations

import bpy
import numpy as np
from bpy.props import EnumProperty
from mathutils import Matrix, Vector

from . import coords, engine_api
from .prefs import get_prefs
from .ui import menu_entry_factory

#: Custom properties stored on a DaHyF rig: its side ('right' | 'left') and hand model; on a captured
#: rig also its take name, track number and source video.
SIDE_PROP = "dahyf_side"
MODEL_PROP = "dahyf_hand_model"
TAKE_PROP = "dahyf_take"
TRACK_PROP = "dahyf_track"
SOURCE_PROP = "dahyf_source"


def rest_geometry(hand_model, betas=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rest pose of a hand model for a shape.

    Parameters
    ----------
    hand_model : ``dahyf.HandModel``.
    betas : (10,) shape coefficients (default the mean shape).

    Returns
    -------
    joints : (16, 3) m; keypoints : (21, 3) m (fingertips included); vertices : (V, 3) m.
    """
    betas = np.zeros(10) if betas is None else np.asarray(betas, dtype=np.float64).reshape(-1)
    out = hand_model(np.zeros((1, 16, 3)), betas[None])   # numpy in, numpy out (no torch in Blender)
    return out.joints[0], out.keypoints[0], out.vertices[0]


def bone_layout(joints: np.ndarray, keypoints: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heads, tails and roll axes of the 16 bones.

    Parameters
    ----------
    joints : (16, 3) m rest joints; keypoints : (21, 3) m rest keypoints; side : 'right' | 'left'.

    Returns
    -------
    heads, tails : (16, 3) m; z_axes : (16, 3) unit vectors (bone-local +Z, back of the hand).
    """
    from dahyf.hand.tables import JOINT_NAMES, KEYPOINT_NAMES, PARENTS

    children = {p: j for j, p in enumerate(PARENTS) if p > 0}
    heads = np.asarray(joints, dtype=np.float64)
    tails = np.empty_like(heads)
    for j, name in enumerate(JOINT_NAMES):
        if j == 0:
            tails[j] = heads[JOINT_NAMES.index("middle1")]
        elif j in children:
            tails[j] = heads[children[j]]
        else:  # last joint of a finger: the fingertip keypoint
            tails[j] = keypoints[KEYPOINT_NAMES.index(name[:-1] + "4")]
    wrist = heads[0]
    normal = np.cross(heads[JOINT_NAMES.index("index1")] - wrist, heads[JOINT_NAMES.index("pinky1")] - wrist)
    normal /= np.linalg.norm(normal)
    if side == "left":  # mirrored hand: keep +Z on the same anatomical side
        normal = -normal
    y = tails - heads
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    z = normal[None] - np.sum(normal[None] * y, axis=1, keepdims=True) * y
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    return heads, tails, z


def _set_active(context, obj):
    for o in context.view_layer.objects:
        o.select_set(False)
    obj.select_set(True)
    context.view_layer.objects.active = obj


def build_hand_rig(context, hand_model, side: str, betas=None, name: str | None = None,
                   collection=None, location=(0.0, 0.0, 0.0)):
    """Create the armature (16 bones, quaternion mode) and its skinned hand mesh.

    Parameters
    ----------
    context : bpy.types.Context.
    hand_model : ``dahyf.HandModel`` of that side.
    side : 'right' | 'left'.
    betas : (10,) shape of the captured hand (default the mean shape).
    name : object name (default "DaHyF Hand R" / "... L").
    collection : where to link the objects (default the scene collection).
    location : world location of the armature object (the camera sits at the origin).

    Returns
    -------
    (armature object, mesh object).
    """
    from dahyf.hand.tables import BONE_NAMES, PARENTS

    side = side.lower()
    name = name or f"DaHyF Hand {'R' if side == 'right' else 'L'}"
    collection = collection or context.scene.collection
    joints, keypoints, vertices = rest_geometry(hand_model, betas)
    heads, tails, z_axes = bone_layout(joints, keypoints, side)

    arm = bpy.data.armatures.new(name)
    arm.display_type = "OCTAHEDRAL"
    arm_obj = bpy.data.objects.new(name, arm)
    collection.objects.link(arm_obj)
    arm_obj.rotation_euler = coords.ARMATURE_EULER
    arm_obj.location = location
    arm_obj.show_in_front = True
    arm_obj[SIDE_PROP] = side
    arm_obj[MODEL_PROP] = str(getattr(hand_model, "name", "model"))

    if context.object is not None and context.object.mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")
    _set_active(context, arm_obj)
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        ebones = []
        for j, bname in enumerate(BONE_NAMES):
            eb = arm.edit_bones.new(bname)
            eb.head = Vector(heads[j])
            eb.tail = Vector(tails[j])
            eb.align_roll(Vector(z_axes[j]))
            eb.use_deform = True
            if PARENTS[j] >= 0:
                eb.parent = ebones[PARENTS[j]]
                eb.use_connect = False
            ebones.append(eb)
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
    for pb in arm_obj.pose.bones:
        pb.rotation_mode = "QUATERNION"

    mesh = bpy.data.meshes.new(name + " mesh")
    mesh.from_pydata(vertices.tolist(), [], np.asarray(hand_model.faces).tolist())
    mesh.update()
    mesh.shade_smooth()
    mesh_obj = bpy.data.objects.new(name + " mesh", mesh)
    collection.objects.link(mesh_obj)
    mesh_obj.parent = arm_obj
    mesh_obj.matrix_parent_inverse = Matrix.Identity(4)
    weights = np.asarray(hand_model.lbs_weights)
    for j, bname in enumerate(BONE_NAMES):
        vg = mesh_obj.vertex_groups.new(name=bname)
        idx = np.nonzero(weights[:, j] > 1e-4)[0]
        for v in idx.tolist():
            vg.add([v], float(weights[v, j]), "REPLACE")
    mod = mesh_obj.modifiers.new("Armature", "ARMATURE")
    mod.object = arm_obj
    mesh_obj.data.materials.append(_skin_material())

    _set_active(context, arm_obj)
    return arm_obj, mesh_obj


def _skin_material():
    mat = bpy.data.materials.get("DaHyF Skin")
    if mat is None:
        mat = bpy.data.materials.new("DaHyF Skin")
        mat.diffuse_color = (0.30, 0.62, 0.95, 1.0)  # light blue: stands out over skin in the video
    return mat


def bone_rest_quaternions(arm_obj) -> np.ndarray:
    """(16, 4) rest orientation (w, x, y, z) of each bone in armature space, BONE_NAMES order."""
    from dahyf.hand.tables import BONE_NAMES

    return np.array([list(arm_obj.data.bones[b].matrix_local.to_quaternion()) for b in BONE_NAMES])


class DAHYF_OT_add_hand_rig(bpy.types.Operator):
    """Add a MANO hand armature (16 bones) with its skinned hand mesh at the 3D cursor"""

    bl_idname = "dahyf.add_hand_rig"
    bl_label = "Add Hand Rig"
    bl_options = {"REGISTER", "UNDO"}

    side: EnumProperty(name="Side", items=(("RIGHT", "Right", "Right hand"), ("LEFT", "Left", "Left hand")),
                       default="RIGHT")

    def execute(self, context):
        prefs = get_prefs(context)
        try:
            hand = engine_api.load_hand(prefs, self.side.lower())
        except engine_api.UserError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        arm_obj, _ = build_hand_rig(context, hand, self.side.lower(), location=context.scene.cursor.location.copy())
        self.report({"INFO"}, f"Added {arm_obj.name} ({hand.name} hand model)")
        return {"FINISHED"}


def menu_func(self, context):
    self.layout.operator(DAHYF_OT_add_hand_rig.bl_idname, text="DaHyF Hand Rig", icon="VIEW_PAN")


classes = (DAHYF_OT_add_hand_rig,)

register, unregister = menu_entry_factory(classes, "VIEW3D_MT_armature_add", menu_func)
