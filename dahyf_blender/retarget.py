"""Retarget a captured hand take onto the artist's own rig (DESIGN.md §5, issue 6).

The source is any armature with MANO bone names (a DaHyF hand rig); the target is any armature
whose hands a preset (``rigs/*.toml``) or automatic matching finds. Per finger bone, the source
bone's rotation from its rest, expressed in the source hand frame (built from the rig's own wrist
and knuckles), is applied to the target bone from its own rest in the target hand frame, joint by
joint about the axes of the previous bone of the finger (:mod:`rigs.handframe`), so rest
orientations, bone rolls, bones that do not point at their child, object rotation/scale (0.01
FBX/glTF imports), the wrist's animation on both sides and left/right mirroring all cancel. Only the mapped finger bones are keyed, into a new Action; the
target's previous Action is pushed down to an NLA track (untouched, still playing underneath).
A live preview drives the target's finger bones with Copy Rotation constraints instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np
from bpy.props import BoolProperty, CollectionProperty, EnumProperty, IntProperty, PointerProperty, StringProperty
from mathutils import Matrix

from dahyf.errors import DaHyFUserError
from dahyf.hand.tables import BONE_NAMES, FINGER_JOINTS, FINGERS, JOINT_NAMES

try:  # inside the built extension, build_addon.py ships rigs/ as a subpackage
    from .rigs import handframe, presets
except ImportError:  # running from the repository (tests, development)
    from rigs import handframe, presets

from . import compat
from .ui import SidebarPanel

SIDE_ITEMS = (("AUTO", "Auto", "Same side as the source when the target has it, else the other hand (mirrored)"),
              ("RIGHT", "Right", "Right hand"), ("LEFT", "Left", "Left hand"))
_SIDE_CODE = {"RIGHT": "R", "LEFT": "L", "right": "R", "left": "L", "R": "R", "L": "L"}
_SIDE_WORD = {"R": "right", "L": "left"}
#: Custom properties written on a retargeted armature.
SOURCE_PROP = "dahyf_retarget_source"
LIVE_TAG = "dahyf_retarget_live"
#: Constraint types that override a bone's own rotation (retargeting such a bone has no effect).
_OVERRIDING = {"COPY_ROTATION", "COPY_TRANSFORMS", "CHILD_OF", "DAMPED_TRACK", "LOCKED_TRACK", "TRACK_TO",
               "STRETCH_TO", "IK", "ARMATURE", "TRANSFORM"}


class RetargetError(DaHyFUserError, RuntimeError):
    """Retargeting cannot run; the message says why and what to do."""


# --------------------------------------------------------------------------------------------
# Matching the rigs
# --------------------------------------------------------------------------------------------

def user_preset_dir(create: bool = False) -> Path | None:
    """Folder of the user's own retarget presets (the extension's user folder, else config/dahyf/rigs)."""
    pkg = __package__ or "dahyf_blender"
    try:
        return Path(bpy.utils.extension_path_user(pkg, path="rigs", create=create))
    except (ValueError, AttributeError, RuntimeError):
        path = bpy.utils.user_resource("CONFIG", path="dahyf/rigs", create=create)
        return Path(path) if path else None


def _extra_dirs() -> list[Path]:
    d = user_preset_dir()
    return [d] if d is not None and d.is_dir() else []


def armature_names(obj) -> tuple[list[str], dict, dict]:
    """Bone names, parent map and rest heads (armature space) of an armature object."""
    bones = obj.data.bones
    names = [b.name for b in bones]
    parents = {b.name: (b.parent.name if b.parent else None) for b in bones}
    heads = {b.name: tuple(b.head_local) for b in bones}
    return names, parents, heads


def match_armature(obj, preset: str = "AUTO") -> presets.RigMatch:
    """Match an armature's hands to a preset ('AUTO': best preset or automatic matching)."""
    if obj is None or obj.type != "ARMATURE":
        raise RetargetError(f"{getattr(obj, 'name', obj)!r} is not an armature object")
    names, parents, heads = armature_names(obj)
    return presets.detect(names, parents, preset, heads=heads, extra_dirs=_extra_dirs())


def source_hand(obj, side: str = "AUTO") -> presets.HandMatch:
    """The MANO hand of a source armature: bones named by BONE_NAMES (else automatic matching)."""
    if obj is None or obj.type != "ARMATURE":
        raise RetargetError(f"source {getattr(obj, 'name', obj)!r} is not an armature object")
    if side == "AUTO":
        stored = str(obj.get("dahyf_side", "")).lower()  # written by dahyf.add_hand_rig
        side = _SIDE_CODE.get(stored) or presets.name_side(obj.name) or "R"
    else:
        side = _SIDE_CODE[side]
    bones = obj.data.bones
    if all(b in bones for b in BONE_NAMES):
        return presets.HandMatch(side, BONE_NAMES[0], {n: b for n, b in zip(JOINT_NAMES[1:], BONE_NAMES[1:])})
    found = match_armature(obj, "AUTO")
    hand = found.hands.get(side)
    if hand is None or not hand.usable:
        hand = max(found.hands.values(), key=lambda h: len(h.joints))
    if not hand.usable:
        raise RetargetError(f"source {obj.name!r} has no MANO hand bones ({', '.join(BONE_NAMES[:4])} …): "
                            "pick the armature made by Capture from video or Add Hand Rig")
    return hand


def pick_target_hand(match: presets.RigMatch, source_side: str, target_side: str = "AUTO"):
    """(HandMatch, mirrored?, notes) for the target hand that receives the source hand."""
    notes = []
    if target_side != "AUTO":
        side = _SIDE_CODE[target_side]
        hand = match.hands.get(side)
        if hand is None or not hand.usable:
            raise RetargetError(f"the target has no usable {_SIDE_WORD[side]} hand.\n{match.report()}")
    else:
        usable = [s for s in presets.SIDES if match.hands.get(s) is not None and match.hands[s].usable]
        if not usable:
            raise RetargetError(f"the target has no hand to retarget onto.\n{match.report()}")
        side = source_side if source_side in usable else usable[0]
        if side != source_side:
            notes.append(f"The target has no {_SIDE_WORD[source_side]} hand: the {_SIDE_WORD[source_side]} take is "
                         f"mirrored onto its {_SIDE_WORD[side]} hand.")
        hand = match.hands[side]
    return hand, side != source_side, notes


# --------------------------------------------------------------------------------------------
# The transfer
# --------------------------------------------------------------------------------------------

def _rot(m) -> np.ndarray:
    """Orthonormal 3×3 rotation part of a mathutils 4×4/3×3 matrix (scale removed)."""
    a = np.array(m.to_3x3(), dtype=np.float64)
    u, _, vt = np.linalg.svd(a)
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    return r


def _hand_frame(obj, hand: presets.HandMatch) -> np.ndarray:
    b = obj.data.bones
    pts = [b[hand.wrist].head_local] + [b[hand.joints[f"{f}1"]].head_local for f in ("index", "middle", "pinky")]
    return handframe.hand_frame(*[np.array(p) for p in pts], hand.side)


def segment_directions(obj, hand: presets.HandMatch) -> dict[str, np.ndarray]:
    """Rest direction (armature space) of each mapped finger bone's segment: its head to the next joint.

    The next joint is the head of the next mapped bone of the finger, else of the finger's tip
    bone, else of the bone's only child, else the bone's tail (bones need not point at their child).
    """
    bones = obj.data.bones
    out = {}
    for finger in FINGERS:
        pairs = hand.finger_bones(finger)
        for k, (joint, name) in enumerate(pairs):
            b = bones[name]
            if k + 1 < len(pairs):
                end = bones[pairs[k + 1][1]].head_local
            elif finger in hand.tips:
                end = bones[hand.tips[finger]].head_local
            elif len(b.children) == 1 and (b.children[0].head_local - b.head_local).length > 1e-6 * b.length:
                end = b.children[0].head_local
            else:
                end = b.tail_local
            d = np.array(end - b.head_local, dtype=np.float64)
            if np.linalg.norm(d) < 1e-12:
                raise RetargetError(f"bone {name!r} of {obj.name!r} has zero length")
            out[joint] = d
    return out


@dataclass
class RetargetPlan:
    """Everything the per-frame transfer needs, computed once from the two rigs' rest poses."""

    source: object
    target: object
    src: presets.HandMatch
    tgt: presets.HandMatch
    pairs: list[tuple[str, str, str]]  # (MANO joint, source bone, target bone), parents first
    levels: list[list[int]]            # indices into pairs, one list per hierarchy depth
    Hs: np.ndarray                     # (3, 3) source hand frame at rest (armature space)
    Ht: np.ndarray
    Ws_rest: np.ndarray                # (3, 3) source wrist bone rest rotation
    Wt_rest: np.ndarray
    S_rest: np.ndarray                 # (P, 3, 3)
    T_rest: np.ndarray                 # (P, 3, 3)
    correction: np.ndarray | None
    mirrored: bool
    M: np.ndarray | None = None        # (P, 3, 3) joint frame maps G_t,prev G_s,prev^T (I for a finger's first)
    chains: list[list[int]] = field(default_factory=list)  # pair indices per finger, base to tip
    notes: list[str] = field(default_factory=list)

    @property
    def target_bones(self) -> list[str]:
        return [p[2] for p in self.pairs]


def make_plan(source, target, preset: str = "AUTO", source_side: str = "AUTO", target_side: str = "AUTO",
              match: presets.RigMatch | None = None) -> RetargetPlan:
    """Match both rigs and pair source and target finger bones.

    ``match`` overrides the target matching (a mapping fixed in the panel).
    """
    if target is None or target.type != "ARMATURE":
        raise RetargetError(f"target {getattr(target, 'name', target)!r} is not an armature object")
    if source == target:
        raise RetargetError("source and target are the same armature")
    src = source_hand(source, source_side)
    match = match or match_armature(target, preset)
    tgt, mirrored, notes = pick_target_hand(match, src.side, target_side)
    notes = list(match.notes) + notes
    pairs = []
    for finger in FINGERS:
        for j in FINGER_JOINTS[finger]:
            name = JOINT_NAMES[j]
            if name in tgt.joints and name in src.joints:
                pairs.append((name, src.joints[name], tgt.joints[name]))
    if tgt.missing:
        notes.append(f"Target {_SIDE_WORD[tgt.side]} hand lacks {', '.join(tgt.missing)}: those MANO joints are "
                     "folded into the next bone of their finger (its rotation includes theirs).")
    tb = target.data.bones
    mapped = {p[2] for p in pairs}

    def depth(bone):
        d, a = 0, tb[bone].parent
        while a is not None:
            d += a.name in mapped
            a = a.parent
        return d

    depths = [depth(p[2]) for p in pairs]
    levels = [[i for i, d in enumerate(depths) if d == k] for k in range(max(depths) + 1)] if pairs else []
    for _, _, bone in pairs:
        for c in target.pose.bones[bone].constraints:
            if c.type in _OVERRIDING and c.influence > 0 and not c.mute:
                notes.append(f"Target bone {bone!r} has a {c.type} constraint that overrides its rotation; "
                             "map the control bones instead (fix the mapping in the panel).")
    sb = source.data.bones
    corr = match.axis_correction_deg
    Hs, Ht = _hand_frame(source, src), _hand_frame(target, tgt)
    ds, dt = segment_directions(source, src), segment_directions(target, tgt)
    chains, M = [], np.empty((len(pairs), 3, 3))
    for finger in FINGERS:
        idx = [i for i, p in enumerate(pairs) if p[0].startswith(finger)]
        for k, i in enumerate(idx):
            if k == 0:  # the knuckle turns about the hand's own axes
                M[i] = np.eye(3)
            else:
                prev = pairs[idx[k - 1]][0]
                M[i] = handframe.segment_frame(dt[prev], Ht) @ handframe.segment_frame(ds[prev], Hs).T
        if idx:
            chains.append(idx)
    return RetargetPlan(
        source=source, target=target, src=src, tgt=tgt, pairs=pairs, levels=levels, M=M, chains=chains,
        Hs=Hs, Ht=Ht,
        Ws_rest=_rot(sb[src.wrist].matrix_local), Wt_rest=_rot(tb[tgt.wrist].matrix_local),
        S_rest=np.array([_rot(sb[p[1]].matrix_local) for p in pairs]),
        T_rest=np.array([_rot(tb[p[2]].matrix_local) for p in pairs]),
        correction=handframe.euler_xyz_deg(corr) if any(corr) else None,
        mirrored=mirrored, notes=notes)


def pose_frame(plan: RetargetPlan, view_layer) -> None:
    """Pose the target's mapped finger bones from the source's current pose (both already evaluated).

    Only rotations change: each bone's location and scale channels are kept. Bones are set one
    hierarchy level at a time (``pose_bone.matrix`` uses the parent's evaluated pose, whatever
    rig machinery sits in between), with a depsgraph update between levels; the caller updates
    after the last level if it needs the evaluated result.
    """
    spb, tpb = plan.source.pose.bones, plan.target.pose.bones
    Ws = _rot(spb[plan.src.wrist].matrix)
    Wt = _rot(tpb[plan.tgt.wrist].matrix)
    Hs_pose = Ws @ plan.Ws_rest.T @ plan.Hs
    Ht_pose = Wt @ plan.Wt_rest.T @ plan.Ht
    S_pose = np.array([_rot(spb[p[1]].matrix) for p in plan.pairs])
    D = handframe.source_delta(S_pose, plan.S_rest, Hs_pose, plan.Hs)
    Dt = np.empty_like(D)
    for idx in plan.chains:
        Dt[idx] = handframe.chain_transfer(D[idx], plan.M[idx])
    R = handframe.target_rotation(Dt, plan.T_rest, Ht_pose, plan.Ht, plan.correction)
    for k, level in enumerate(plan.levels):
        if k:
            view_layer.update()
        for i in level:
            pb = tpb[plan.pairs[i][2]]
            loc, scale = pb.location.copy(), pb.scale.copy()
            cur = pb.matrix
            pb.matrix = Matrix.LocRotScale(cur.translation, Matrix(R[i].tolist()), cur.to_scale())
            pb.location, pb.scale = loc, scale


def _rotation_channels(pb, prev):
    """(data_path, values) of a pose bone's rotation in its rotation mode, continuous with ``prev``."""
    mode = pb.rotation_mode
    basis = pb.matrix_basis
    if mode == "QUATERNION":
        q = basis.to_quaternion()
        if prev is not None and np.dot(prev, q) < 0:
            q.negate()
        return "rotation_quaternion", list(q)
    if mode == "AXIS_ANGLE":
        axis, angle = basis.to_quaternion().to_axis_angle()
        return "rotation_axis_angle", [angle, *axis]
    from mathutils import Euler

    e = basis.to_euler(mode, Euler(prev, mode)) if prev is not None else basis.to_euler(mode)
    return "rotation_euler", list(e)


def bake(plan: RetargetPlan, context, frame_start: int, frame_end: int, action_name: str | None = None):
    """Bake frames [frame_start, frame_end] into a new Action on the target; return it.

    The target's previous Action (if any) is pushed down to an NLA track, unchanged, so that the
    rest of its animation keeps playing under the finger keys. On error nothing is left behind.
    """
    if frame_end < frame_start:
        raise RetargetError(f"empty frame range {frame_start}..{frame_end}")
    scene, view_layer = context.scene, context.view_layer
    target = plan.target
    tpb = target.pose.bones
    saved = {b: (tpb[b].rotation_mode, tuple(tpb[b].rotation_quaternion), tuple(tpb[b].rotation_euler),
                 tuple(tpb[b].rotation_axis_angle)) for b in plan.target_bones}
    frame0 = scene.frame_current
    frames = list(range(frame_start, frame_end + 1))
    values: dict[str, list] = {b: [] for b in plan.target_bones}
    paths: dict[str, str] = {}
    try:
        for f in frames:
            scene.frame_set(f)
            pose_frame(plan, view_layer)
            for b in plan.target_bones:
                prev = values[b][-1] if values[b] else None
                paths[b], v = _rotation_channels(tpb[b], prev)
                values[b].append(v)
    finally:
        for b, (mode, q, e, aa) in saved.items():
            tpb[b].rotation_quaternion, tpb[b].rotation_euler, tpb[b].rotation_axis_angle = q, e, aa
        scene.frame_set(frame0)

    anim = target.animation_data or target.animation_data_create()
    previous = anim.action
    name = action_name or f"{_action_name(plan.source)} → {target.name}"
    action = bpy.data.actions.new(name)
    if previous is not None:
        _push_down(target, previous)
    owner = compat.assign_action(target, action)
    co = np.empty((len(frames), 2), dtype=np.float32)
    co[:, 0] = frames
    for b in plan.target_bones:
        arr = np.asarray(values[b], dtype=np.float64)
        for k in range(arr.shape[1]):
            fc = compat.new_fcurve(owner, f'pose.bones["{bpy.utils.escape_identifier(b)}"].{paths[b]}', k, group=b)
            co[:, 1] = arr[:, k]
            fc.keyframe_points.add(len(frames))
            fc.keyframe_points.foreach_set("co", co.ravel())
            fc.keyframe_points.foreach_set("interpolation", [1] * len(frames))  # LINEAR
            fc.update()
    target[SOURCE_PROP] = plan.source.name
    return action


def retarget_objects(context, source, target, preset: str = "AUTO", frame_range: tuple[int, int] | None = None,
                     target_side: str = "AUTO"):
    """Bake ``source``'s take onto ``target`` (what "capture straight onto my rig" calls after a capture).

    Parameters
    ----------
    source, target : armature objects (the DaHyF hand rig with its take; the artist's armature).
    preset : preset name, 'AUTO' or 'auto'.
    frame_range : (first, last) frames; default the keyed frames of the source's bones (not its
        visibility keys, which sit one frame before and after the capture), else the scene's.

    Returns
    -------
    (Action, RetargetPlan); ``plan.notes`` holds warnings worth showing. Raises RetargetError.
    """
    plan = make_plan(source, target, preset, "AUTO", target_side)
    if frame_range is None:
        owner = compat.channel_owner(source)
        ranges = [fc.range() for fc in (owner.fcurves if owner is not None else ())
                  if fc.data_path.startswith("pose.bones") and len(fc.keyframe_points)]
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


# --------------------------------------------------------------------------------------------
# Live preview: Copy Rotation constraints between the two hand frames
# --------------------------------------------------------------------------------------------

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
    """Drive the target's finger bones from the source with constraints (no keys). Returns the constraints.

    Exact replay of :func:`pose_frame` (rotations only; an empty parented to a bone turns with
    object · posed bone · its local rotation). Per finger, with N_k = H_t^T T_k,rest:

    - ``A_s`` / ``A_t`` ride the source / target wrist with local ``W_rest^T H``: the posed hand frames;
    - ``E_k`` rides source bone k with local ``S_k,rest^T H_s M_k^T N_k``; ``P_k`` rides source bone
      k-1 with local ``S_k-1,rest^T H_s M_k^T N_k-1`` (for k = 1: P_1 = A_s);
    - ``F_k`` is a child of ``F_k-1`` (F_1 of A_t) whose local rotation copies E_k read in P_k's
      space (Copy Rotation, target space CUSTOM, owner space LOCAL): world(F_k) = H_t,pose D'_k N_k;
    - target bone k copies F_k's world rotation.

    A mirrored pair (left take on a right hand) would need reflected spaces: bake it instead.
    """
    if plan.mirrored:
        raise RetargetError("live preview needs a target hand of the same side as the source; bake instead "
                            "(baking mirrors left/right correctly)")
    remove_live_preview(plan.target)
    coll = bpy.data.collections.get("DaHyF retarget preview") or bpy.data.collections.new("DaHyF retarget preview")
    if coll.name not in context.scene.collection.children:
        context.scene.collection.children.link(coll)
    src, tgt = plan.source, plan.target
    tag = tgt.name
    a_s = _empty(f"DaHyF {tag} | source hand", plan.Ws_rest.T @ plan.Hs, coll, src, plan.src.wrist)
    a_t = _empty(f"DaHyF {tag} | target hand", plan.Wt_rest.T @ plan.Ht, coll, tgt, plan.tgt.wrist)
    N = plan.Ht.T @ plan.T_rest  # (P, 3, 3)
    cons = []
    for chain in plan.chains:
        f_prev = a_t
        for k, i in enumerate(chain):
            joint, sbone, tbone = plan.pairs[i]
            M = plan.M[i]
            e = _empty(f"DaHyF {tag} | {joint} source", plan.S_rest[i].T @ plan.Hs @ M.T @ N[i], coll, src, sbone)
            if k == 0:
                space = a_s
            else:
                h = chain[k - 1]
                space = _empty(f"DaHyF {tag} | {joint} joint space",
                               plan.S_rest[h].T @ plan.Hs @ M.T @ N[h], coll, src, plan.pairs[h][1])
            f = _empty(f"DaHyF {tag} | {joint} target", np.eye(3), coll, f_prev)
            cf = f.constraints.new("COPY_ROTATION")
            cf.target, cf.target_space, cf.space_object, cf.owner_space = e, "CUSTOM", space, "LOCAL"
            c = tgt.pose.bones[tbone].constraints.new("COPY_ROTATION")
            c.name = "DaHyF live retarget"
            c.target, c.target_space, c.owner_space = f, "WORLD", "WORLD"
            cons.append(c)
            f_prev = f
    if plan.correction is not None:
        plan.notes.append("The preset's axis correction is applied when baking only, not in the live preview.")
    tgt[LIVE_TAG] = True
    return cons


def remove_live_preview(target) -> None:
    """Remove the live-preview constraints and empties of ``target`` (if any)."""
    for pb in target.pose.bones:
        for c in list(pb.constraints):
            if c.name.startswith("DaHyF live retarget"):
                pb.constraints.remove(c)
    for o in list(bpy.data.objects):
        if o.get(LIVE_TAG) and o.name.startswith(f"DaHyF {target.name} | "):
            bpy.data.objects.remove(o)
    if LIVE_TAG in target:
        del target[LIVE_TAG]


# --------------------------------------------------------------------------------------------
# Operators and panel
# --------------------------------------------------------------------------------------------

def _preset_items(self, context):
    items = [("AUTO", "Auto", "Best-fitting preset, else automatic matching by names and hierarchy"),
             ("auto", "Automatic matching", "Match finger chains by names and hierarchy, ignoring presets")]
    try:
        for p in presets.load_presets(_extra_dirs()).values():
            items.append((p.name, p.label, p.description))
    except presets.PresetError as exc:
        items.append(("ERROR", f"(preset error: {exc})", str(exc)))
    _preset_items.cache = items  # Blender needs the strings kept alive
    return items


class DAHYF_PG_bone_map(bpy.types.PropertyGroup):
    joint: StringProperty(name="MANO joint")
    bone: StringProperty(name="Bone", description="Target bone for this MANO joint (empty: none)")


class DAHYF_PG_retarget(bpy.types.PropertyGroup):
    source: PointerProperty(name="Source", type=bpy.types.Object, poll=lambda s, o: o.type == "ARMATURE",
                            description="Hand armature with the take (MANO bone names)")
    target: PointerProperty(name="Target", type=bpy.types.Object, poll=lambda s, o: o.type == "ARMATURE",
                            description="Your character's armature")
    preset: EnumProperty(name="Preset", items=_preset_items)
    target_side: EnumProperty(name="Target hand", items=SIDE_ITEMS, default="AUTO")
    side: StringProperty(name="Mapped side", default="R")
    wrist: StringProperty(name="Wrist", description="Target hand bone (the fingers' parent)")
    mapping: CollectionProperty(type=DAHYF_PG_bone_map)
    use_mapping: BoolProperty(name="Use this mapping", default=False,
                              description="Retarget with the mapping shown here instead of the preset")
    new_preset_name: StringProperty(name="Preset name", default="my_rig")


def _panel_match(s) -> presets.RigMatch:
    joints = {m.joint: m.bone for m in s.mapping if m.bone}
    hand = presets.HandMatch(s.side, s.wrist or None, joints)
    return presets.RigMatch("panel", {s.side: hand})


class DAHYF_OT_retarget(bpy.types.Operator):
    """Retarget a captured hand take onto an armature's hand (bake a new Action, or live preview)"""

    bl_idname = "dahyf.retarget"
    bl_label = "Retarget Hand"
    bl_options = {"REGISTER", "UNDO"}

    source: StringProperty(name="Source", description="Name of the hand armature object with the take")
    target: StringProperty(name="Target", description="Name of the armature object to retarget onto")
    preset: StringProperty(name="Preset", default="AUTO", description="Preset name, 'AUTO', or 'auto' (no presets)")
    source_side: EnumProperty(name="Source hand", items=SIDE_ITEMS, default="AUTO")
    target_side: EnumProperty(name="Target hand", items=SIDE_ITEMS, default="AUTO")
    mode: EnumProperty(name="Mode", default="BAKE", items=(
        ("BAKE", "Bake", "Key the target's finger bones into a new Action"),
        ("LIVE", "Live preview", "Drive the target's finger bones with constraints (no keys)"),
        ("CLEAR", "Remove preview", "Remove the live-preview constraints")))
    frame_start: IntProperty(name="Start", default=-1, description="First frame (-1: scene start)")
    frame_end: IntProperty(name="End", default=-1, description="Last frame (-1: scene end)")
    use_panel_mapping: BoolProperty(name="Use panel mapping", default=False)

    def execute(self, context):
        source = bpy.data.objects.get(self.source)
        target = bpy.data.objects.get(self.target)
        if target is None:
            self.report({"ERROR"}, f"No object named {self.target!r}: set target to your armature's object name")
            return {"CANCELLED"}
        if self.mode == "CLEAR":
            remove_live_preview(target)
            return {"FINISHED"}
        if source is None:
            self.report({"ERROR"}, f"No object named {self.source!r}: set source to the captured hand armature")
            return {"CANCELLED"}
        if context.object is not None and context.object.mode != "OBJECT":
            bpy.ops.object.mode_set(mode="OBJECT")
        try:
            match = None
            if self.use_panel_mapping:
                match = _panel_match(context.scene.dahyf_retarget)
            plan = make_plan(source, target, self.preset, self.source_side, self.target_side, match=match)
            if self.mode == "LIVE":
                add_live_preview(plan, context)
                self.report({"INFO"}, f"Live preview: {len(plan.pairs)} finger bones of {target.name} follow {source.name}")
            else:
                start = context.scene.frame_start if self.frame_start < 0 else self.frame_start
                end = context.scene.frame_end if self.frame_end < 0 else self.frame_end
                action = bake(plan, context, start, end)
                self.report({"INFO"}, f"Retargeted {len(plan.pairs)} finger bones onto {target.name} "
                                      f"({_SIDE_WORD[plan.tgt.side]} hand), frames {start}-{end}: Action {action.name!r}")
        except (RetargetError, presets.PresetError, ValueError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        for note in plan.notes:
            self.report({"WARNING"}, note)
        return {"FINISHED"}


class DAHYF_OT_retarget_detect(bpy.types.Operator):
    """Match the target armature's hand bones and show the mapping in the panel"""

    bl_idname = "dahyf.retarget_detect"
    bl_label = "Detect Mapping"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        s = context.scene.dahyf_retarget
        if s.target is None:
            self.report({"ERROR"}, "Pick a target armature first")
            return {"CANCELLED"}
        try:
            match = match_armature(s.target, s.preset)
            src_side = source_hand(s.source).side if s.source is not None else "R"
            hand, _, notes = pick_target_hand(match, src_side, s.target_side)
        except (RetargetError, presets.PresetError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        s.mapping.clear()
        s.side, s.wrist = hand.side, hand.wrist or ""
        for name in JOINT_NAMES[1:]:
            row = s.mapping.add()
            row.joint, row.bone = name, hand.joints.get(name, "")
        s.use_mapping = True
        for line in (match.report().splitlines() + notes):
            self.report({"INFO"}, line)
        return {"FINISHED"}


class DAHYF_OT_retarget_save_preset(bpy.types.Operator):
    """Save the mapping shown in the panel as a new retarget preset in your user folder"""

    bl_idname = "dahyf.retarget_save_preset"
    bl_label = "Save as Preset"

    def execute(self, context):
        s = context.scene.dahyf_retarget
        if not len(s.mapping):
            self.report({"ERROR"}, "Detect a mapping first")
            return {"CANCELLED"}
        match = _panel_match(s)
        other = "L" if s.side == "R" else "R"
        if s.target is not None:  # add the other hand by swapping side tokens, when those bones exist
            hand = match.hands[s.side]
            names = set(s.target.data.bones.keys())
            swapped = {k: _swap_side(v) for k, v in hand.joints.items()}
            if all(v in names for v in swapped.values()) and _swap_side(hand.wrist or "") in names:
                match.hands[other] = presets.HandMatch(other, _swap_side(hand.wrist), swapped)
        try:
            path = presets.save_preset(match, s.new_preset_name, user_preset_dir(create=True))
        except (presets.PresetError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Saved retarget preset {s.new_preset_name!r} to {path}")
        return {"FINISHED"}


def _swap_side(name: str) -> str:
    """The mirror name (Blender's own rule: .L/.R, _l/_r, Left/Right …)."""
    return bpy.utils.flip_name(name)


class DAHYF_PT_retarget(SidebarPanel, bpy.types.Panel):
    bl_label = "Retarget"
    bl_idname = "DAHYF_PT_retarget"
    bl_options = {"DEFAULT_CLOSED"}
    bl_order = 100  # below the capture panels

    def draw(self, context):
        s = context.scene.dahyf_retarget
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        layout.prop(s, "source")
        layout.prop(s, "target")
        layout.prop(s, "preset")
        layout.prop(s, "target_side")
        layout.operator("dahyf.retarget_detect", icon="VIEWZOOM")
        if len(s.mapping) and s.target is not None:
            box = layout.box()
            box.prop(s, "use_mapping")
            box.prop_search(s, "wrist", s.target.data, "bones", text="wrist")
            for row in s.mapping:
                box.prop_search(row, "bone", s.target.data, "bones", text=row.joint)
            r = box.row(align=True)
            r.prop(s, "new_preset_name", text="")
            r.operator("dahyf.retarget_save_preset", icon="FILE_TICK")
        ok = s.source is not None and s.target is not None
        col = layout.column(align=True)
        col.enabled = ok
        for mode, text, icon in (("BAKE", "Retarget (bake)", "ACTION"), ("LIVE", "Live preview", "CONSTRAINT"),
                                 ("CLEAR", "Remove preview", "X")):
            op = col.operator("dahyf.retarget", text=text, icon=icon)
            if ok:
                op.source, op.target = s.source.name, s.target.name
            op.preset = s.preset
            op.target_side = s.target_side
            op.mode = mode
            op.use_panel_mapping = s.use_mapping


classes = (DAHYF_PG_bone_map, DAHYF_PG_retarget, DAHYF_OT_retarget, DAHYF_OT_retarget_detect,
           DAHYF_OT_retarget_save_preset, DAHYF_PT_retarget)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.dahyf_retarget = PointerProperty(type=DAHYF_PG_retarget)


def unregister():
    del bpy.types.Scene.dahyf_retarget
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
