"""Applying a plan: source poses in, target pose channels out — baked into an Action, or set live.

Per frame (vectorised over frames, no scene evaluation when the source is plainly animated):

1. the source's bone rotations by forward kinematics of its Action's channels;
2. pose matching (:mod:`rigs.handframe`), then the contact pass (:mod:`rigs.contacts`);
3. with the wrist option, the hand's turn since the reference frame, blended, on the hand bone;
4. each target bone's pose channels from its parent's pose (what the plan's anchors say), so no
   target evaluation is needed either.

:func:`bake` keys them into a new Action with the add-on's bulk keyer (:func:`..keying.write_keys`);
:func:`apply_current_pose` sets them from the source's current pose (live use, each timer tick). Its
three steps are public, for callers that run the solve off the UI thread: :func:`read_source` and
:func:`write_target` touch Blender data (main thread), :func:`solve` is numpy only (any thread).
"""
from __future__ import annotations

import bpy
import numpy as np
from mathutils import Euler, Matrix, Quaternion

from dahyf.hand import quaternion as Q
from dahyf.hand.kinematics import batch_rodrigues

from .. import compat, keying
from ._rigs import contacts, handframe
from .matching import RetargetError
from .plan import RetargetPlan, make_plan, rigid

#: Custom property written on a retargeted armature.
SOURCE_PROP = "dahyf_retarget_source"
_ROTATION_PATH = {"QUATERNION": "rotation_quaternion", "AXIS_ANGLE": "rotation_axis_angle"}


# --------------------------------------------------------------------------------------------
# Source poses
# --------------------------------------------------------------------------------------------

def _bone_path(bone: str, prop: str) -> str:
    return f'pose.bones["{bpy.utils.escape_identifier(bone)}"].{prop}'


def _channels_to_matrices(mode: str, values: np.ndarray) -> np.ndarray:
    """(F, n) rotation channel values in a rotation mode -> (F, 3, 3)."""
    if mode == "QUATERNION":
        q = values / np.maximum(np.linalg.norm(values, axis=1, keepdims=True), 1e-12)
        return batch_rodrigues(Q.to_axis_angle(q))
    if mode == "AXIS_ANGLE":
        return np.array([Quaternion(v[1:], v[0]).to_matrix() if np.any(v[1:]) else Matrix.Identity(3)
                         for v in values])
    return np.array([Euler(v, mode).to_matrix() for v in values])


def channel_rotations(obj, bone: str, frames, owner=None) -> np.ndarray:
    """(F, 3, 3) a pose bone's basis rotation at ``frames`` from the F-curves of ``owner`` (a channel
    owner: Action or channelbag), else its current channel values."""
    pb = obj.pose.bones[bone]
    mode = pb.rotation_mode
    prop = _ROTATION_PATH.get(mode, "rotation_euler")
    current = np.array(getattr(pb, prop), dtype=np.float64)
    values = np.broadcast_to(current, (len(frames), len(current))).copy()
    if owner is not None:
        for i in range(len(current)):
            fc = owner.fcurves.find(_bone_path(bone, prop), index=i)
            if fc is not None and len(fc.keyframe_points):
                values[:, i] = fcurve_values(fc, frames)
    return _channels_to_matrices(mode, values)


def fcurve_values(fc, frames) -> np.ndarray:
    """(F,) an F-curve's values at ``frames``: read off its keys where a key sits on the frame (a
    capture keys every frame), evaluated elsewhere."""
    co = np.empty(2 * len(fc.keyframe_points))
    fc.keyframe_points.foreach_get("co", co)
    keys, vals = co[0::2], co[1::2]
    frames = np.asarray(frames, dtype=np.float64)
    at = np.clip(np.searchsorted(keys, frames), 0, len(keys) - 1)
    on_key = np.abs(keys[at] - frames) < 1e-4
    if fc.modifiers:  # modifiers change values even on keys
        on_key[:] = False
    out = np.where(on_key, vals[at], 0.0)
    for k in np.flatnonzero(~on_key):
        out[k] = fc.evaluate(frames[k])
    return out


def _plainly_animated(obj, bones) -> bool:
    """Whether ``bones``' poses are their Action's channels alone (no constraints, drivers, NLA, blending)."""
    pbones = obj.pose.bones
    for b in bones:
        if any(not c.mute and c.influence > 0 for c in pbones[b].constraints):
            return False
    anim = obj.animation_data
    if anim is None:
        return True
    paths = tuple(f'pose.bones["{bpy.utils.escape_identifier(b)}"]' for b in bones)
    if any(d.data_path.startswith(paths) for d in anim.drivers):
        return False
    if any(not t.mute and len(t.strips) for t in anim.nla_tracks) or anim.use_tweak_mode:
        return False
    return getattr(anim, "action_influence", 1.0) >= 1.0 and getattr(anim, "action_blend_type", "REPLACE") == "REPLACE"


def _fk(plan: RetargetPlan, basis: np.ndarray) -> np.ndarray:
    """(F, 16, 3, 3) armature-space rotations of the source's wrist and finger bones from their bases."""
    rest = plan.src_rest[:, :3, :3]
    out = np.empty_like(basis)
    for i, p in enumerate(plan.src_parents):
        outside = plan.src_outside.get(i, np.eye(4))[:3, :3]
        parent = out[:, p] @ rest[p].T if p >= 0 else outside
        out[:, i] = parent @ rest[i] @ basis[:, i]
    return out


def source_rotations(plan: RetargetPlan, frames) -> np.ndarray:
    """(F, 16, 3, 3) armature-space rotations of the source's wrist and 15 finger bones at ``frames``.

    Plainly animated sources (the DaHyF rig) are read from their Action's F-curves and posed by
    forward kinematics; others are evaluated frame by frame (slower, but anything goes).
    """
    frames = list(frames)
    src = plan.source
    if _plainly_animated(src, plan.src_bones) and not plan.src_skips:
        owner = compat.channel_owner(src)
        basis = np.stack([channel_rotations(src, b, frames, owner) for b in plan.src_bones], axis=1)
        return _fk(plan, basis)
    scene = bpy.context.scene
    frame0 = scene.frame_current
    out = np.empty((len(frames), len(plan.src_bones), 3, 3))
    try:
        for k, f in enumerate(frames):
            scene.frame_set(f)
            out[k] = [rigid(src.pose.bones[b].matrix) for b in plan.src_bones]
    finally:
        scene.frame_set(frame0)
    return out


def read_source(plan: RetargetPlan) -> np.ndarray:
    """(1, 16, 3, 3) armature-space rotations of the source's current pose (wrist first), from its pose
    channels (no depsgraph update needed). Main thread (reads Blender data).

    The first read also sets ``plan.wrist_reference`` (when None) to this wrist rotation: the
    "no turn" of the wrist option for :func:`solve` ``(plan, S, plan.wrist_reference)``.
    """
    if plan.src_skips:
        S = np.array([[rigid(plan.source.pose.bones[b].matrix) for b in plan.src_bones]])
    else:
        S = _fk(plan, np.array([[rigid(plan.source.pose.bones[b].matrix_basis) for b in plan.src_bones]]))
    if plan.wrist_reference is None:
        plan.wrist_reference = S[0, 0].copy()
    return S


# --------------------------------------------------------------------------------------------
# The transfer
# --------------------------------------------------------------------------------------------

def solve(plan: RetargetPlan, S: np.ndarray, reference: np.ndarray | None = None, bodies=None):
    """Target pose channels for source rotations ``S`` (F, 16, 3, 3) (wrist first).

    Parameters
    ----------
    reference : (3, 3) the source wrist rotation meaning "no turn" (wrist option); default S[0, 0].
    bodies : per wrist control, its own basis rotation ((3, 3) or (F, 3, 3)) under the captured
        turn; default the one the plan recorded.

    Returns
    -------
    basis : (F, P, 4, 4) target pose-bone basis matrices (rotation; location used for detached bones);
    controls : (F, C, 3, 3) basis rotations of the wrist controls (only when the wrist option is on);
    followers : per plan follower, (F, 4, 4) basis (rotation and location).
    """
    opt = plan.options
    Hs_pose = S[:, 0] @ plan.Ws_rest.T @ plan.Hs
    D_all = handframe.source_delta(S[:, 1:], plan.src_rest[1:, :3, :3], Hs_pose[:, None], plan.Hs)
    src_index = [plan.src_geo.joints.index(p[0]) for p in plan.pairs]
    D = handframe.match_pose(D_all[:, src_index], plan.A)
    if plan.correction is not None:
        D = plan.correction @ D @ plan.correction.T
    if opt.contacts:
        D = contacts.contact_pass(D, plan.tgt_geo, contacts.source_goals(plan.src_geo, D_all, plan.tgt_geo))
    F = len(S)
    W = np.broadcast_to(plan.Wt_eval4, (F, 4, 4)).copy()
    controls = np.zeros((F, 0, 3, 3))
    if opt.wrist > 0:
        ref = S[0, 0] if reference is None else reference
        Q = handframe.scale_rotation(handframe.hand_turn(ref @ plan.Ws_rest.T @ plan.Hs, Hs_pose), opt.wrist)
        K = plan.Wt_rest.T @ plan.Ht
        W[:, :3, :3] = plan.Wt_eval4[:3, :3] @ K @ Q @ K.T
        bodies = bodies if bodies is not None else [body for _, _, body in plan.wrist_controls]
        controls = np.stack([body @ EK @ Q @ EK.T for (_, EK, _), body in zip(plan.wrist_controls, bodies)], axis=1)
    Ht_pose = W[:, :3, :3] @ plan.Wt_rest.T @ plan.Ht
    heads, _ = plan.tgt_geo.pose_points(D)
    P = np.zeros((F, len(plan.pairs), 4, 4))
    P[..., 3, 3] = 1.0
    P[..., :3, :3] = Ht_pose[:, None] @ D @ plan.Ht.T @ plan.T_rest4[:, :3, :3]
    P[..., :3, 3] = W[:, None, :3, 3] + np.einsum("fij,fpj->fpi", Ht_pose, heads)
    basis = np.stack([_basis(a, plan.rest_rel[i], P[:, i], P, W) for i, a in enumerate(plan.anchors)], axis=1)
    followers = [_basis(fl.anchor, fl.rest_rel, (P[:, fl.lead] if fl.lead >= 0 else W) @ fl.rel, P, W)
                 for fl in plan.followers]
    return basis, controls, followers


def _basis(anchor, rest_rel, pose, P, W) -> np.ndarray:
    """(F, 4, 4) pose-bone basis giving armature-space ``pose`` under the parent ``anchor`` says."""
    if anchor.kind == "pair":
        parent = P[:, anchor.index] @ anchor.offset
    elif anchor.kind == "wrist":
        parent = W @ anchor.offset
    else:
        parent = anchor.offset
    return np.linalg.inv(rest_rel) @ np.linalg.inv(parent) @ pose


# --------------------------------------------------------------------------------------------
# Pose channels
# --------------------------------------------------------------------------------------------

def rotation_channels(mode: str, R: np.ndarray, previous=None) -> tuple[str, np.ndarray]:
    """(data path, (F, n) values) of basis rotations ``R`` (F, 3, 3) in a pose bone's rotation mode,
    continuous along F (and with ``previous``, the last values already set)."""
    if mode in ("QUATERNION", "AXIS_ANGLE"):
        q = Q.from_matrix(R)
        if mode == "QUATERNION":
            return "rotation_quaternion", keying.make_continuous(q, previous)
        return "rotation_axis_angle", np.array([[a, *ax] for ax, a in (Quaternion(v).to_axis_angle() for v in q)])
    out, prev = [], (Euler(previous, mode) if previous is not None else None)
    for r in R:
        e = Matrix(r.tolist()).to_euler(mode, prev) if prev is not None else Matrix(r.tolist()).to_euler(mode)
        out.append(tuple(e))
        prev = e
    return "rotation_euler", np.array(out)


def _channels(plan: RetargetPlan, basis: np.ndarray, controls: np.ndarray, followers):
    """[(bone, data path, (F, n) values)] for every channel the transfer sets."""
    tpb = plan.target.pose.bones
    out = []
    quat = [i for i, b in enumerate(plan.target_bones) if tpb[b].rotation_mode == "QUATERNION"]
    q = keying.make_continuous(Q.from_matrix(basis[:, quat, :3, :3]))  # all quaternion bones at once
    for i, bone in enumerate(plan.target_bones):
        if i in quat:
            out.append((bone, "rotation_quaternion", q[:, quat.index(i)]))
        else:
            out.append((bone, *rotation_channels(tpb[bone].rotation_mode, basis[:, i, :3, :3])))
        if plan.detached[i]:
            out.append((bone, "location", basis[:, i, :3, 3]))
    for fl, B in zip(plan.followers, followers):
        out += [(fl.bone, *rotation_channels(tpb[fl.bone].rotation_mode, B[:, :3, :3])), (fl.bone, "location", B[:, :3, 3])]
    for c, (bone, _, _) in enumerate(plan.wrist_controls if controls.shape[1] else ()):
        out.append((bone, *rotation_channels(tpb[bone].rotation_mode, controls[:, c])))
    return out


def write_target(plan: RetargetPlan, solved, frame: int = 0) -> None:
    """Set the target's pose channels to frame ``frame`` of ``solved`` (what :func:`solve` returns),
    now (no keys). Main thread (writes Blender data)."""
    tpb = plan.target.pose.bones
    for bone, path, values in _channels(plan, *solved):
        setattr(tpb[bone], path, tuple(values[frame]))


def apply_current_pose(plan: RetargetPlan) -> None:
    """Pose the target from the source's current pose, now (no keys, no scene evaluation).

    For live use: call it whenever the source's pose channels change (e.g. each timer tick of a
    live capture), then let Blender redraw. With the wrist option, the turn is measured from
    ``plan.wrist_reference`` (set to the source's wrist when first called; reset it to None to
    take the current pose as the new reference). It is :func:`read_source`, :func:`solve` and
    :func:`write_target` in a row.
    """
    S = read_source(plan)
    write_target(plan, solve(plan, S, plan.wrist_reference))


# --------------------------------------------------------------------------------------------
# Baking
# --------------------------------------------------------------------------------------------

def bake(plan: RetargetPlan, context, frame_start: int, frame_end: int, action_name: str | None = None):
    """Bake frames [frame_start, frame_end] into a new Action on the target; return it.

    The target's previous Action (if any) is pushed down to an NLA track, unchanged, so that the
    rest of its animation keeps playing under the new keys (the wrist option layers the captured
    turn over the hand's own animation). On error nothing is left behind.
    """
    if frame_end < frame_start:
        raise RetargetError(f"empty frame range {frame_start}..{frame_end}")
    target = plan.target
    frames = list(range(frame_start, frame_end + 1))
    ref = plan.options.wrist_reference
    sample = frames if ref is None or ref in frames else [ref] + frames
    S = source_rotations(plan, sample)
    reference = S[sample.index(ref if ref is not None else frame_start), 0]
    S = S[len(sample) - len(frames):]
    anim = target.animation_data
    previous = anim.action if anim is not None else None
    bodies = None
    if plan.options.wrist > 0:  # the hand's own animation, under the captured turn
        owner = compat.channel_owner(target) if previous is not None else None
        bodies = [channel_rotations(target, b, frames, owner) for b, _, _ in plan.wrist_controls]
    channels = _channels(plan, *solve(plan, S, reference, bodies))
    anim = target.animation_data or target.animation_data_create()
    action = bpy.data.actions.new(action_name or f"{_action_name(plan.source)} → {target.name}")
    if previous is not None:
        _push_down(target, previous)
    owner = compat.assign_action(target, action)
    f = np.asarray(frames, dtype=np.float64)
    for bone, path, values in channels:
        for k in range(values.shape[1]):
            fc = compat.new_fcurve(owner, _bone_path(bone, path), k, group=bone)
            keying.write_keys(fc, f, values[:, k])
    target[SOURCE_PROP] = plan.source.name
    return action


def retarget_objects(context, source, target, preset: str = "AUTO", frame_range: tuple[int, int] | None = None,
                     target_side: str = "AUTO", options=None):
    """Bake ``source``'s take onto ``target`` (what "capture straight onto my rig" calls after a capture).

    Parameters
    ----------
    source, target : armature objects (the DaHyF hand rig with its take; the artist's armature).
    preset : preset name, 'AUTO' or 'auto'.
    frame_range : (first, last) frames; default the keyed frames of the source's bones (not its
        visibility keys, which sit one frame before and after the capture), else the scene's.
    options : :class:`.plan.RetargetOptions`; default the Retarget panel's settings.

    Returns
    -------
    (Action, RetargetPlan); ``plan.notes`` holds warnings worth showing. Raises RetargetError.
    """
    if options is None:
        from .ui import panel_options

        options = panel_options(context)
    plan = make_plan(source, target, preset, "AUTO", target_side, options=options)
    if frame_range is None:
        owner = compat.channel_owner(source)
        ranges = [fc.range() for fc in (owner.fcurves if owner is not None else ())
                  if fc.data_path.startswith("pose.bones") and fc.data_path != keying.VISIBILITY_PATH
                  and len(fc.keyframe_points)]
        if ranges:
            frame_range = (int(round(min(r[0] for r in ranges))), int(round(max(r[1] for r in ranges))))
        else:
            frame_range = (context.scene.frame_start, context.scene.frame_end)
    return bake(plan, context, *frame_range), plan


def _action_name(obj) -> str:
    anim = obj.animation_data
    return anim.action.name if anim is not None and anim.action is not None else obj.name


def _push_down(obj, action) -> None:
    """Move ``obj``'s active Action to a new NLA track (Blender's 'Push Down', kept unchanged)."""
    anim = obj.animation_data
    slot = getattr(anim, "action_slot", None)
    track = anim.nla_tracks.new()
    track.name = f"{action.name} (before DaHyF)"
    start = int(action.frame_range[0])
    strip = track.strips.new(action.name, start, action)
    if slot is not None and hasattr(strip, "action_slot"):
        strip.action_slot = slot
    anim.action = None
