"""Which bones of the two armatures play the MANO hand (the armature side of :mod:`rigs.match`)."""
from __future__ import annotations

from pathlib import Path

import bpy

from dahyf.errors import DaHyFUserError
from dahyf.hand.tables import BONE_NAMES, JOINT_NAMES

from ..rig import SIDE_PROP
from ._rigs import names, presets
from ._rigs import match as match_mod

_SIDE_CODE = {"RIGHT": "R", "LEFT": "L", "right": "R", "left": "L", "R": "R", "L": "L"}
SIDE_WORD = match_mod.SIDE_WORD


class RetargetError(DaHyFUserError, RuntimeError):
    """Retargeting cannot run; the message says why and what to do."""


def user_preset_dir(create: bool = False) -> Path | None:
    """Folder of the user's own retarget presets (the extension's user folder, else config/dahyf/rigs)."""
    pkg = (__package__ or "dahyf_blender.retarget").rsplit(".", 1)[0]
    try:
        return Path(bpy.utils.extension_path_user(pkg, path="rigs", create=create))
    except (ValueError, AttributeError, RuntimeError):
        path = bpy.utils.user_resource("CONFIG", path="dahyf/rigs", create=create)
        return Path(path) if path else None


def extra_dirs() -> list[Path]:
    d = user_preset_dir()
    return [d] if d is not None and d.is_dir() else []


def armature_names(obj) -> tuple[list[str], dict, dict, dict]:
    """Bone names, parent map, rest heads and rest tails (armature space) of an armature object."""
    bones = obj.data.bones
    names = [b.name for b in bones]
    parents = {b.name: (b.parent.name if b.parent else None) for b in bones}
    heads = {b.name: tuple(b.head_local) for b in bones}
    tails = {b.name: tuple(b.tail_local) for b in bones}
    return names, parents, heads, tails


def match_armature(obj, preset: str = "AUTO") -> match_mod.RigMatch:
    """Match an armature's hands to a preset ('AUTO': best preset or automatic matching)."""
    if obj is None or obj.type != "ARMATURE":
        raise RetargetError(f"{getattr(obj, 'name', obj)!r} is not an armature object")
    names, parents, heads, tails = armature_names(obj)
    return match_mod.detect(names, parents, preset, heads=heads, tails=tails, extra_dirs=extra_dirs())


def source_hand(obj, side: str = "AUTO") -> match_mod.HandMatch:
    """The MANO hand of a source armature: bones named by BONE_NAMES (else automatic matching)."""
    if obj is None or obj.type != "ARMATURE":
        raise RetargetError(f"source {getattr(obj, 'name', obj)!r} is not an armature object")
    if side == "AUTO":
        stored = str(obj.get(SIDE_PROP, "")).lower()  # written by dahyf.add_hand_rig
        side = _SIDE_CODE.get(stored) or names.name_side(obj.name) or "R"
    else:
        side = _SIDE_CODE[side]
    bones = obj.data.bones
    if all(b in bones for b in BONE_NAMES):
        return match_mod.HandMatch(side, BONE_NAMES[0], {n: b for n, b in zip(JOINT_NAMES[1:], BONE_NAMES[1:])})
    found = match_armature(obj, "AUTO")
    hand = found.hands.get(side)
    if hand is None or not hand.usable:
        hand = max(found.hands.values(), key=lambda h: len(h.joints))
    if not hand.usable:
        raise RetargetError(f"source {obj.name!r} has no MANO hand bones ({', '.join(BONE_NAMES[:4])} …): "
                            "pick the armature made by Capture from video or Add Hand Rig")
    return hand


def pick_target_hand(match: match_mod.RigMatch, source_side: str, target_side: str = "AUTO"):
    """(HandMatch, mirrored?, notes) for the target hand that receives the source hand."""
    notes = []
    if target_side != "AUTO":
        side = _SIDE_CODE[target_side]
        hand = match.hands.get(side)
        if hand is None or not hand.usable:
            raise RetargetError(f"the target has no usable {SIDE_WORD[side]} hand.\n{match.report()}")
    else:
        usable = [s for s in presets.SIDES if match.hands.get(s) is not None and match.hands[s].usable]
        if not usable:
            raise RetargetError(f"the target has no hand to retarget onto.\n{match.report()}")
        side = source_side if source_side in usable else usable[0]
        if side != source_side:
            notes.append(f"The target has no {SIDE_WORD[source_side]} hand: the {SIDE_WORD[source_side]} take is "
                         f"mirrored onto its {SIDE_WORD[side]} hand.")
        hand = match.hands[side]
    return hand, side != source_side, notes
