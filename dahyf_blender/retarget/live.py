"""Live preview: the target's finger bones follow the source through Copy Rotation constraints (no keys).

Exact replay of pose matching (:mod:`rigs.handframe`; rotations only), one constraint chain per
finger bone with N_k = C^T H_t^T T_k,rest:

- ``A_s`` / ``A_t`` ride the source / target wrist with local ``W_rest^T H`` (``· C`` on the
  target): the posed hand frames;
- ``E_k`` rides source bone k with local ``S_k,rest^T H_s A_k N_k``; read in ``A_s``'s space it is
  ``D_k A_k N_k``;
- ``F_k`` is a child of ``A_t`` whose local rotation copies that (Copy Rotation, target space
  CUSTOM, owner space LOCAL): world(F_k) = H_t,pose C D_k A_k C^T H_t^T T_k,rest;
- target bone k copies F_k's world rotation.

The contact pass and the wrist option are not replayed (bake, or drive the rig with
:func:`.apply.apply_current_pose`); a mirrored pair would need reflected spaces and fingers that do
not hang from each other need locations: bake those.
"""
from __future__ import annotations

import bpy
import numpy as np
from mathutils import Matrix

from .matching import RetargetError
from .plan import RetargetPlan

#: Custom property tagging a live-previewed armature and the empties that drive it.
LIVE_TAG = "dahyf_retarget_live"
CONSTRAINT_NAME = "DaHyF live retarget"
COLLECTION = "DaHyF retarget preview"


def _empty(name, local: np.ndarray, collection, parent_obj=None, bone: str | None = None):
    """An empty with rotation ``local`` (3×3) under an object or one of its bones."""
    e = bpy.data.objects.new(name, None)
    e.empty_display_size = 0.01
    e.hide_render = True
    collection.objects.link(e)
    if parent_obj is not None:
        e.parent = parent_obj
        if bone is not None:
            e.parent_type = "BONE"
            e.parent_bone = bone
        e.matrix_parent_inverse = Matrix.Identity(4)
    e.rotation_mode = "QUATERNION"
    e.rotation_quaternion = Matrix(local.tolist()).to_quaternion()
    e[LIVE_TAG] = True
    return e


def add_live_preview(plan: RetargetPlan, context) -> list:
    """Drive the target's finger bones from the source with constraints (no keys). Returns the constraints."""
    if plan.mirrored:
        raise RetargetError("live preview needs a target hand of the same side as the source; bake instead "
                            "(baking mirrors left/right correctly)")
    if plan.detached.any():
        raise RetargetError("live preview needs finger bones that hang from each other; this rig's do not "
                            "(a joint set): bake instead")
    remove_live_preview(plan.target)
    coll = bpy.data.collections.get(COLLECTION) or bpy.data.collections.new(COLLECTION)
    if coll.name not in context.scene.collection.children:
        context.scene.collection.children.link(coll)
    src, tgt = plan.source, plan.target
    tag = tgt.name
    C = plan.correction if plan.correction is not None else np.eye(3)
    a_s = _empty(f"DaHyF {tag} | source hand", plan.Ws_rest.T @ plan.Hs, coll, src, plan.src.wrist)
    a_t = _empty(f"DaHyF {tag} | target hand", plan.Wt_rest.T @ plan.Ht @ C, coll, tgt, plan.tgt.wrist)
    N = C.T @ plan.Ht.T @ plan.T_rest4[:, :3, :3]  # (P, 3, 3)
    S_rest = {b: plan.src_rest[i, :3, :3] for i, b in enumerate(plan.src_bones)}
    cons = []
    for i, (joint, sbone, tbone) in enumerate(plan.pairs):
        e = _empty(f"DaHyF {tag} | {joint} source", S_rest[sbone].T @ plan.Hs @ plan.A[i] @ N[i], coll, src, sbone)
        f = _empty(f"DaHyF {tag} | {joint} target", np.eye(3), coll, a_t)
        cf = f.constraints.new("COPY_ROTATION")
        cf.target, cf.target_space, cf.space_object, cf.owner_space = e, "CUSTOM", a_s, "LOCAL"
        c = tgt.pose.bones[tbone].constraints.new("COPY_ROTATION")
        c.name = CONSTRAINT_NAME
        c.target, c.target_space, c.owner_space = f, "WORLD", "WORLD"
        cons.append(c)
    if plan.options.contacts or plan.options.wrist > 0:
        plan.notes.append("The live preview follows the finger directions only: contacts and the wrist option "
                          "apply when baking.")
    tgt[LIVE_TAG] = True
    return cons


def remove_live_preview(target) -> None:
    """Remove the live-preview constraints and empties of ``target`` (if any)."""
    for pb in target.pose.bones:
        for c in list(pb.constraints):
            if c.name.startswith(CONSTRAINT_NAME):
                pb.constraints.remove(c)
    for o in list(bpy.data.objects):
        if o.get(LIVE_TAG) and o.name.startswith(f"DaHyF {target.name} | "):
            bpy.data.objects.remove(o)
    if LIVE_TAG in target:
        del target[LIVE_TAG]
