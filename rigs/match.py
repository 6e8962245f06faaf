"""Which bones of a rig play the MANO hand: matching against presets, or automatically (no bpy).

A *match* says, for each hand of a rig, which bone plays each of the 15 MANO finger joints, which
bone is the wrist, and which bones are metacarpals or fingertip leaves (present, never rotated).
:func:`detect` tries the presets (:mod:`rigs.presets`) and falls back to automatic matching
(:mod:`rigs.automatch`) when none fits well; its notes say what was found, what is missing, and why
a preset was or was not used.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dahyf.hand.tables import FINGER_JOINTS, JOINT_NAMES

from . import handframe
from .presets import FINGER_JOINT_NAMES, SIDES, Preset, PresetError, load_presets

#: A preset fits a hand when it finds the wrist and at least this many of the 15 finger bones.
MIN_PRESET_BONES = 12
SIDE_WORD = {"R": "right", "L": "left"}


@dataclass
class HandMatch:
    """Bones of one hand. ``joints`` maps MANO finger joint names (``index1`` …) to bone names."""

    side: str
    wrist: str | None
    joints: dict[str, str]
    metacarpals: dict[str, str] = field(default_factory=dict)
    tips: dict[str, str] = field(default_factory=dict)
    wrist_controls: list[str] = field(default_factory=list)  # bones keyed to turn the hand (default: wrist)

    @property
    def missing(self) -> list[str]:
        return [j for j in FINGER_JOINT_NAMES if j not in self.joints]

    @property
    def usable(self) -> bool:
        """Enough to retarget: a wrist and at least the index, middle and pinky knuckles (hand frame)."""
        return self.wrist is not None and all(f"{f}1" in self.joints for f in ("index", "middle", "pinky"))

    @property
    def fits_preset(self) -> bool:
        """Good enough for a preset to be chosen: wrist found and ≥ :data:`MIN_PRESET_BONES` finger bones."""
        return self.wrist is not None and len(self.joints) >= MIN_PRESET_BONES

    def finger_bones(self, finger: str) -> list[tuple[str, str]]:
        """(MANO joint, bone) pairs of a finger, base to tip."""
        return [(JOINT_NAMES[j], self.joints[JOINT_NAMES[j]]) for j in FINGER_JOINTS[finger]
                if JOINT_NAMES[j] in self.joints]


@dataclass
class RigMatch:
    """The result of matching a rig: per side ('R', 'L') a :class:`HandMatch`, and notes."""

    preset: str
    hands: dict[str, HandMatch]
    notes: list[str] = field(default_factory=list)
    axis_correction_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    follow_prefix: str = ""

    @property
    def n_found(self) -> int:
        return sum(len(h.joints) for h in self.hands.values())

    def report(self) -> str:
        """A human-readable summary: what was matched, what was not, and what to do."""
        how = "automatic name/hierarchy matching" if self.preset == "auto" else f"preset '{self.preset}'"
        lines = [f"Matched by {how}."]
        for side in SIDES:
            word = SIDE_WORD[side]
            hand = self.hands.get(side)
            if hand is None or not hand.joints:
                lines.append(f"{word} hand: no finger bones found.")
                continue
            lines.append(f"{word} hand: {len(hand.joints)}/15 finger bones, wrist {hand.wrist or 'NOT FOUND'}"
                         + (f", {len(hand.metacarpals)} metacarpals" if hand.metacarpals else "")
                         + (f", {len(hand.tips)} tip bones (not rotated)" if hand.tips else ""))
            if hand.missing:
                lines.append(f"  not matched: {', '.join(hand.missing)}")
        if not any(h.usable for h in self.hands.values()):
            lines.append("No usable hand: the rig needs a hand bone with finger chains (at least index, middle "
                         "and pinky). Pick a preset, or fix the mapping in the DaHyF panel and save it as a preset.")
        lines.extend(self.notes)
        return "\n".join(lines)


def _key(name: str) -> str:
    """Matching key of a bone name: no FBX namespace, case-folded."""
    return name.rsplit(":", 1)[-1].casefold()


class _NameIndex:
    def __init__(self, names):
        self.exact = set(names)
        self.by_key: dict[str, str] = {}
        for n in names:
            self.by_key.setdefault(_key(n), n)

    def find(self, alternatives) -> str | None:
        for alt in alternatives:
            if not alt:
                continue
            if alt in self.exact:
                return alt
            hit = self.by_key.get(_key(alt))
            if hit is not None:
                return hit
        return None


def shape_side(hand: HandMatch, heads: dict | None, tails: dict | None = None) -> str | None:
    """'R' or 'L' from a hand's rest shape (:func:`rigs.handframe.hand_side`), None when it cannot tell."""
    if heads is None or hand.wrist not in heads or not all(f"{f}1" in hand.joints for f in ("index", "middle", "pinky")):
        return None
    pts = [np.asarray(heads[b], dtype=np.float64) for b in
           (hand.wrist, hand.joints["index1"], hand.joints["middle1"], hand.joints["pinky1"])]
    thumb = [np.asarray(heads[b], dtype=np.float64) for _, b in hand.finger_bones("thumb") if b in heads]
    if "thumb" in hand.tips and hand.tips["thumb"] in heads:
        thumb.append(np.asarray(heads[hand.tips["thumb"]], dtype=np.float64))
    try:
        return handframe.hand_side(*pts, thumb)
    except ValueError:  # degenerate rest positions (all bones at one point)
        return None


def _one_hand_if_sideless(hands: dict[str, HandMatch], notes: list[str], heads, tails) -> dict[str, HandMatch]:
    """Names without a side (both sides of a preset resolve to the same bones): keep one hand, side by shape."""
    if set(hands) != {"R", "L"} or not hands["R"].joints or hands["R"].joints != hands["L"].joints \
            or hands["R"].wrist != hands["L"].wrist:
        return hands
    hand = hands["R"]
    side = shape_side(hand, heads, tails)
    if side is None:
        side = "R"
        notes.append("The bone names carry no side and the hand's shape does not tell it: assumed a right hand "
                     "(set the target hand in the panel if it is a left one).")
    else:
        notes.append(f"The bone names carry no side: a {SIDE_WORD[side]} hand by its shape (thumb on the palm side).")
    hand.side = side
    return {side: hand}


def match_preset(preset: Preset, names, heads: dict | None = None, tails: dict | None = None) -> RigMatch:
    """Match a rig's bone names against one preset. Bones absent from the rig are reported missing.

    ``heads``/``tails`` (bone -> (3,) rest position) tell the side of a hand whose names carry none.
    """
    index = _NameIndex(list(names))
    hands = {}
    notes: list[str] = []
    for side, spec in preset.hands.items():
        joints = {}
        for finger, entries in spec.fingers.items():
            for j, alts in zip(FINGER_JOINTS[finger], entries):
                bone = index.find(alts)
                if bone is not None:
                    joints[JOINT_NAMES[j]] = bone
        meta = {f: b for f, alts in spec.metacarpals.items() if (b := index.find(alts))}
        tips = {f: b for f, alts in spec.tips.items() if (b := index.find(alts))}
        controls = [b for c in spec.wrist_controls if (b := index.find((c,)))]
        hands[side] = HandMatch(side, index.find(spec.wrist), joints, meta, tips, controls)
        declared = sum(1 for e in spec.fingers.values() for alts in e if any(alts))
        if joints and hands[side].wrist is None:
            notes.append(f"Preset '{preset.name}': {SIDE_WORD[side]} hand wrist not found "
                         f"(looked for {', '.join(repr(a) for a in spec.wrist)}).")
        if 0 < len(joints) < declared:
            missing = [JOINT_NAMES[j] for f, e in spec.fingers.items() for j, alts in zip(FINGER_JOINTS[f], e)
                       if any(alts) and JOINT_NAMES[j] not in joints]
            notes.append(f"Preset '{preset.name}' declares {declared} finger bones for the {SIDE_WORD[side]} hand; "
                         f"this rig has {len(joints)} (missing {', '.join(missing)}).")
    hands = _one_hand_if_sideless(hands, notes, heads, tails)
    return RigMatch(preset.name, hands, notes, preset.axis_correction_deg, preset.follow_prefix)


def _fit(m: RigMatch) -> tuple[int, int]:
    """(hands the preset fits, finger bones in them): how well a preset match fits."""
    fitting = [h for h in m.hands.values() if h.fits_preset]
    return len(fitting), sum(len(h.joints) for h in fitting)


def _why_not(m: RigMatch) -> str | None:
    """Why a preset that found some bones does not fit, naming what it found and what it lacks."""
    parts = []
    for side, h in m.hands.items():
        if not h.joints:
            continue
        lacks = []
        if h.wrist is None:
            lacks.append("no wrist")
        if len(h.joints) < MIN_PRESET_BONES:
            lacks.append(f"only {len(h.joints)} of 15 finger bones")
        if lacks:
            parts.append(f"{SIDE_WORD[side]} hand: {len(h.joints)} finger bones but {' and '.join(lacks)}")
    return f"preset '{m.preset}' not used ({'; '.join(parts)})" if parts else None


def detect(names, parents: dict[str, str | None], preset: str = "AUTO", heads: dict | None = None,
           extra_dirs=(), tails: dict | None = None) -> RigMatch:
    """Match a rig to a preset by name, or ('AUTO') to the best-fitting preset or automatic matching.

    'AUTO' takes a preset only when it *fits* a hand (its wrist and ≥ 12 of the 15 finger bones are
    found; :data:`MIN_PRESET_BONES`); the preset fitting more hands, then more bones, wins. Ties
    between presets and weak matches go to automatic matching, and the notes say why. 'auto' is
    automatic matching alone; any other value names a preset.

    Parameters
    ----------
    names : bone names; parents : bone -> parent bone (None for roots).
    heads, tails : optional bone -> (3,) rest positions (armature space): bone order along
        unparented fingers, metacarpals, and the side of hands whose names carry none.
    extra_dirs : user preset folders (a broken file there is skipped with a note).
    """
    from .automatch import auto_match

    names = list(names)
    skipped: list[str] = []
    presets = load_presets(extra_dirs, notes=skipped)
    if preset not in ("AUTO", "", None):
        if preset == "auto":
            found = auto_match(names, parents, heads, tails)
        elif preset not in presets:
            raise PresetError(f"no retarget preset named {preset!r}; available: {', '.join(sorted(presets))} or 'AUTO'"
                              + (f" ({' '.join(skipped)})" if skipped else ""))
        else:
            found = match_preset(presets[preset], names, heads, tails)
        found.notes.extend(skipped)
        return found
    fitting, near = [], []
    for p in presets.values():
        m = match_preset(p, names, heads, tails)
        if _fit(m)[0]:
            fitting.append(m)
        elif (why := _why_not(m)) is not None and m.n_found >= 5:
            near.append(why)
    fitting.sort(key=_fit, reverse=True)
    if fitting and (len(fitting) == 1 or _fit(fitting[0]) > _fit(fitting[1])):
        best = fitting[0]
        best.notes.extend(skipped)
        return best
    auto = auto_match(names, parents, heads, tails)
    if len(fitting) > 1:
        tied = [m.preset for m in fitting if _fit(m) == _fit(fitting[0])]
        auto.notes.append(f"Presets {', '.join(repr(t) for t in tied)} fit equally well: automatic matching used "
                          "instead (pick one in the panel to use it).")
    auto.notes.extend(f"Automatic matching used: {w}." for w in near)
    auto.notes.extend(skipped)
    return auto
