"""Planning a retarget: match both rigs' hands and measure their rest geometry, once.

The plan pairs each source finger bone with the target bone that plays the same MANO joint, and
holds everything the per-frame transfer (:mod:`.apply`) needs: both hands' frames and segment
geometry in hand coordinates (:class:`rigs.handframe.HandGeometry`), the rest alignment of each
pair of segments, and, for every target bone, what it hangs from — so that poses are computed
without evaluating the scene frame by frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import bpy
import numpy as np

from dahyf.hand.tables import FINGERS, JOINT_NAMES

from ._rigs import handframe
from ._rigs import match as match_mod
from .matching import SIDE_WORD, RetargetError, match_armature, pick_target_hand, source_hand
#: Constraint types that override a bone's own rotation (retargeting such a bone has no effect).
_OVERRIDING = {"COPY_ROTATION", "COPY_TRANSFORMS", "CHILD_OF", "DAMPED_TRACK", "LOCKED_TRACK", "TRACK_TO",
               "STRETCH_TO", "IK", "ARMATURE", "TRANSFORM"}
#: Length of a last phalanx without a tip, relative to the one before it (distal/middle phalanx ≈ 0.8).
LAST_SEGMENT = 0.8
#: Constraints through which a bone follows another rigidly (Rigify's DEF-hand copies ORG-hand).
_FOLLOWING = {"COPY_TRANSFORMS", "COPY_ROTATION", "CHILD_OF"}


@dataclass
class RetargetOptions:
    """What a retarget does besides matching the fingers.

    wrist : 0..1 blend of the captured hand's turn (relative to ``wrist_reference``) keyed on the
        target's hand bone; 0 (default) leaves the hand bone alone.
    wrist_reference : source frame whose hand orientation is "no turn" (None: the first frame baked;
        for :func:`.apply.apply_current_pose`, the source pose when the plan was made).
    contacts : keep captured fingertip contacts (pinch, tips on the palm) on the target.
    """

    wrist: float = 0.0
    wrist_reference: int | None = None
    contacts: bool = True


# --------------------------------------------------------------------------------------------
# Rest geometry
# --------------------------------------------------------------------------------------------

def rigid(m) -> np.ndarray:
    """Orthonormal 3×3 rotation part of a mathutils 4×4/3×3 matrix or array (scale removed)."""
    a = np.asarray(m.to_3x3() if hasattr(m, "to_3x3") else m, dtype=np.float64)[:3, :3]
    u, _, vt = np.linalg.svd(a)
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    return r


def rigid4(m) -> np.ndarray:
    """4×4 rigid transform (rotation orthonormalised, scale dropped) of a mathutils 4×4 matrix."""
    out = np.eye(4)
    out[:3, :3] = rigid(m)
    out[:3, 3] = np.asarray(m.translation, dtype=np.float64)
    return out


def segment_ends(obj, hand: match_mod.HandMatch) -> dict[str, np.ndarray]:
    """Rest end (armature space) of each mapped finger bone's segment: the next joint.

    The next joint is the head of the next mapped bone of the finger, else of the finger's tip
    bone, else of the bone's only child, else the bone's tail (bones need not point at their child);
    a last phalanx whose tail makes it shorter than 0.4 or longer than 1.6 times the phalanx
    before it (an importer's guess) is given :data:`LAST_SEGMENT` times that length instead.
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
                if k:  # importers guess leaf bones' tails: keep the direction, not an implausible length
                    prev = (b.head_local - bones[pairs[k - 1][1]].head_local).length
                    if not 0.4 * prev <= b.length <= 1.6 * prev:
                        end = b.head_local + (b.tail_local - b.head_local).normalized() * (LAST_SEGMENT * prev)
            if (end - b.head_local).length < 1e-9 * max(b.length, 1e-9):
                raise RetargetError(f"bone {name!r} of {obj.name!r} has zero length")
            out[joint] = np.array(end, dtype=np.float64)
    return out


def hand_geometry(obj, hand: match_mod.HandMatch) -> tuple[handframe.HandGeometry, np.ndarray]:
    """(HandGeometry of the mapped finger bones, hand frame H (3, 3) in armature space) at rest."""
    b = obj.data.bones
    pts = [np.array(b[hand.wrist].head_local)] + [np.array(b[hand.joints[f"{f}1"]].head_local)
                                                    for f in ("index", "middle", "pinky")]
    try:
        H = handframe.hand_frame(*pts, hand.side)
    except ValueError as exc:
        raise RetargetError(f"{obj.name}: {exc}") from exc
    joints = [j for j in JOINT_NAMES[1:] if j in hand.joints]
    ends = segment_ends(obj, hand)
    heads = [np.array(b[hand.joints[j]].head_local) for j in joints]
    return handframe.HandGeometry(joints, heads, [ends[j] for j in joints], pts[0], H), H


# --------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------

@dataclass
class Anchor:
    """What a target bone's parent is during the transfer: how to get its posed 4×4 each frame.

    kind 'pair' : parent pose = pose of pair ``index`` · ``offset``; 'wrist' : wrist pose · offset
    (the parent moves rigidly with the hand); 'fixed' : ``offset`` (armature space, constant);
    'root' : no parent (identity).
    """

    kind: str
    index: int = -1
    offset: np.ndarray = field(default_factory=lambda: np.eye(4))


@dataclass
class Follower:
    """An unmapped bone (fingertip, metacarpal) of a joint set that must be moved with a mapped one."""

    bone: str
    lead: int             # index of the pair it moves with; -1: the wrist
    rel: np.ndarray       # (4, 4) lead rest⁻¹ · bone rest
    anchor: Anchor
    rest_rel: np.ndarray  # (4, 4) parent rest⁻¹ · bone rest


@dataclass
class RetargetPlan:
    """Everything the per-frame transfer needs, computed once from the two rigs' rest poses."""

    source: object
    target: object
    src: match_mod.HandMatch
    tgt: match_mod.HandMatch
    pairs: list[tuple[str, str, str]]  # (MANO joint, source bone, target bone), MANO order
    Hs: np.ndarray                     # (3, 3) source hand frame at rest (armature space)
    Ht: np.ndarray
    src_geo: handframe.HandGeometry    # all 15 source finger joints
    tgt_geo: handframe.HandGeometry    # the target's mapped joints (= pairs, same order)
    A: np.ndarray                      # (P, 3, 3) rest alignment of each pair of segments
    correction: np.ndarray | None
    mirrored: bool
    options: RetargetOptions
    src_bones: list[str]               # the source's wrist + its 15 finger bones (rotation order)
    src_parents: list[int]             # index into src_bones of each one's parent (-1: outside the set)
    src_rest: np.ndarray               # (16, 4, 4) rest matrices (armature space)
    src_outside: dict[int, np.ndarray] = field(default_factory=dict)  # fixed parent poses outside the set
    src_skips: bool = False            # finger bones hang from bones outside the set: evaluate, don't compute
    T_rest4: np.ndarray | None = None  # (P, 4, 4) target rest matrices
    rest_rel: np.ndarray | None = None  # (P, 4, 4) parent rest⁻¹ · bone rest (identity-parent: bone rest)
    anchors: list[Anchor] = field(default_factory=list)
    detached: np.ndarray | None = None  # (P,) bool: the bone does not follow the bone before it (key location)
    followers: list[Follower] = field(default_factory=list)
    Wt_rest4: np.ndarray | None = None  # (4, 4) target wrist rest
    Wt_eval4: np.ndarray | None = None  # (4, 4) target wrist pose when the plan was made
    wrist_controls: list[tuple[str, np.ndarray, np.ndarray]] = field(default_factory=list)  # (bone, E K, body basis 3×3)
    wrist_reference: np.ndarray | None = None  # (3, 3) source wrist rotation that means "no turn" (live)
    notes: list[str] = field(default_factory=list)

    @property
    def target_bones(self) -> list[str]:
        return [p[2] for p in self.pairs]

    @property
    def Ws_rest(self) -> np.ndarray:
        return self.src_rest[0, :3, :3]

    @property
    def Wt_rest(self) -> np.ndarray:
        return self.Wt_rest4[:3, :3]


def _check_overrides(target, pairs, notes):
    for _, _, bone in pairs:
        for c in target.pose.bones[bone].constraints:
            if c.type in _OVERRIDING and c.influence > 0 and not c.mute:
                notes.append(f"Target bone {bone!r} has a {c.type} constraint that overrides its rotation; "
                             "map the control bones instead (fix the mapping in the panel).")


def _follows(bones, pbones, name: str, wrist: str, depth: int = 0) -> bool:
    """Whether bone ``name`` moves rigidly with ``wrist``: it is the wrist, hangs below it, or copies it."""
    if depth > 8:
        return False
    b = bones[name]
    while b is not None:
        if b.name == wrist:
            return True
        for c in pbones[b.name].constraints:
            sub = getattr(c, "subtarget", "")
            if (c.type in _FOLLOWING and not c.mute and c.influence > 0.999 and sub and sub in bones
                    and _follows(bones, pbones, sub, wrist, depth + 1)):
                return True
        b = b.parent
    return False


def _anchor(target, wrist: str, index: dict[str, int], bone: str) -> Anchor:
    """How ``bone``'s parent moves during the transfer (see :class:`Anchor`), read from the evaluated pose."""
    bones, pbones = target.data.bones, target.pose.bones
    parent = bones[bone].parent
    if parent is None:
        return Anchor("root")
    if parent.name in index:
        return Anchor("pair", index[parent.name])
    p_eval = rigid4(pbones[parent.name].matrix)
    up = next((a for a in parent.parent_recursive if a.name in index), None)
    if up is not None:
        return Anchor("pair", index[up.name], np.linalg.inv(rigid4(pbones[up.name].matrix)) @ p_eval)
    if _follows(bones, pbones, parent.name, wrist):
        return Anchor("wrist", offset=np.linalg.inv(rigid4(pbones[wrist].matrix)) @ p_eval)
    return Anchor("fixed", offset=p_eval)


def _rest_rel(bones, bone: str) -> np.ndarray:
    """Parent rest⁻¹ · bone rest (the bone's rest for a root bone), 4×4."""
    b = bones[bone]
    rest = rigid4(b.matrix_local)
    return np.linalg.inv(rigid4(b.parent.matrix_local)) @ rest if b.parent is not None else rest


def _anchors(target, tgt, pairs, notes) -> tuple[list[Anchor], np.ndarray, list[Follower]]:
    """Anchors of the mapped bones, which of them are detached (do not hang from the bone before
    them or the hand: their locations are keyed), and the tip/metacarpal bones that then must follow."""
    bones, pbones = target.data.bones, target.pose.bones
    index = {p[2]: i for i, p in enumerate(pairs)}
    anchors = [_anchor(target, tgt.wrist, index, p[2]) for p in pairs]
    detached = np.zeros(len(pairs), dtype=bool)
    for i, (joint, _, bone) in enumerate(pairs):
        prev = next((pairs[k][2] for k in range(i - 1, -1, -1) if pairs[k][0][:-1] == joint[:-1]), None)
        chain = {a.name for a in bones[bone].parent_recursive}
        detached[i] = (prev not in chain) if prev is not None else not _follows(bones, pbones, bone, tgt.wrist)
    followers = []
    if detached.any():
        notes.append(f"{int(detached.sum())} target finger bones do not hang from the bone before them (or the hand): "
                     "their locations are keyed too.")
        for finger, tip in tgt.tips.items():
            last = max((i for i, p in enumerate(pairs) if p[0].startswith(finger)), default=None)
            if last is not None and pairs[last][2] not in {a.name for a in bones[tip].parent_recursive}:
                followers.append(Follower(tip, last, np.linalg.inv(rigid4(bones[pairs[last][2]].matrix_local))
                                          @ rigid4(bones[tip].matrix_local), _anchor(target, tgt.wrist, index, tip),
                                          _rest_rel(bones, tip)))
        for mc in tgt.metacarpals.values():
            if not _follows(bones, pbones, mc, tgt.wrist):
                followers.append(Follower(mc, -1, np.linalg.inv(rigid4(bones[tgt.wrist].matrix_local))
                                          @ rigid4(bones[mc].matrix_local), _anchor(target, tgt.wrist, index, mc),
                                          _rest_rel(bones, mc)))
    return anchors, detached, followers


def _source_chain(source, src) -> tuple[list[str], list[int], np.ndarray, dict, bool]:
    """The source's wrist + 15 finger bones: each one's parent index (-1: none in the set), rest
    matrices, fixed poses of parents outside the set, and whether bones sit in between (a finger
    bone whose parent is outside the set although the wrist is an ancestor: forward kinematics from
    channels would miss it)."""
    sb, spb = source.data.bones, source.pose.bones
    names = [src.wrist] + [src.joints[j] for j in JOINT_NAMES[1:] if j in src.joints]
    index = {n: i for i, n in enumerate(names)}
    parents, outside, skips = [], {}, False
    for i, n in enumerate(names):
        p = sb[n].parent
        if p is not None and p.name in index:
            parents.append(index[p.name])
            continue
        parents.append(-1)
        skips |= i > 0
        if p is not None:
            outside[i] = rigid4(spb[p.name].matrix) @ np.linalg.inv(rigid4(p.matrix_local))
    rest = np.array([rigid4(sb[n].matrix_local) for n in names])
    return names, parents, rest, outside, skips


def _wrist_controls(target, tgt, Ht) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(bone, E K, body basis) of each bone keyed by the wrist option (see :mod:`.apply`)."""
    bones, pbones = target.data.bones, target.pose.bones
    names = [c for c in tgt.wrist_controls if c in bones] or [tgt.wrist]
    W_rest = rigid(bones[tgt.wrist].matrix_local)
    K = W_rest.T @ Ht  # the hand frame in the wrist bone's own axes
    out = []
    for name in names:
        E = rigid(bones[name].matrix_local).T @ W_rest  # control -> wrist, at rest
        out.append((name, E @ K, rigid(pbones[name].matrix_basis)))
    return out


def make_plan(source, target, preset: str = "AUTO", source_side: str = "AUTO", target_side: str = "AUTO",
              match: match_mod.RigMatch | None = None, options: RetargetOptions | None = None) -> RetargetPlan:
    """Match both rigs and pair source and target finger bones (``match`` overrides the target matching)."""
    if target is None or target.type != "ARMATURE":
        raise RetargetError(f"target {getattr(target, 'name', target)!r} is not an armature object")
    if source == target:
        raise RetargetError("source and target are the same armature")
    options = options or RetargetOptions()
    src = source_hand(source, source_side)
    match = match or match_armature(target, preset)
    tgt, mirrored, notes = pick_target_hand(match, src.side, target_side)
    notes = list(match.notes) + notes
    pairs = [(j, src.joints[j], tgt.joints[j]) for j in JOINT_NAMES[1:] if j in tgt.joints and j in src.joints]
    if tgt.missing:
        notes.append(f"Target {SIDE_WORD[tgt.side]} hand lacks {', '.join(tgt.missing)}: its other finger segments "
                     "still point where the capture's do.")
    _check_overrides(target, pairs, notes)
    bpy.context.view_layer.update()  # the one evaluation: parents' poses relative to the hand
    src_geo, Hs = hand_geometry(source, src)
    tgt_geo, Ht = hand_geometry(target, tgt)
    joints = [p[0] for p in pairs]
    A = handframe.rest_alignment(src_geo.segment_frames(joints), tgt_geo.segment_frames(joints))
    src_bones, src_parents, src_rest, outside, skips = _source_chain(source, src)
    tb = target.data.bones
    T_rest4 = np.array([rigid4(tb[p[2]].matrix_local) for p in pairs])
    rest_rel = np.array([_rest_rel(tb, p[2]) for p in pairs])
    anchors, detached, followers = _anchors(target, tgt, pairs, notes)
    corr = match.axis_correction_deg
    plan = RetargetPlan(
        source=source, target=target, src=src, tgt=tgt, pairs=pairs, Hs=Hs, Ht=Ht, src_geo=src_geo, tgt_geo=tgt_geo,
        A=A, correction=handframe.euler_xyz_deg(corr) if any(corr) else None, mirrored=mirrored, options=options,
        src_bones=src_bones, src_parents=src_parents, src_rest=src_rest, src_outside=outside, src_skips=skips,
        T_rest4=T_rest4,
        rest_rel=rest_rel, anchors=anchors, detached=detached, followers=followers, Wt_rest4=rigid4(tb[tgt.wrist].matrix_local),
        Wt_eval4=rigid4(target.pose.bones[tgt.wrist].matrix), notes=notes)
    plan.wrist_controls = _wrist_controls(target, tgt, Ht)
    return plan
