"""Retarget presets (one TOML per rig family) and automatic finger-chain matching. No bpy.

A *match* says, for each hand of a rig, which bone plays each of the 15 MANO finger joints
(``index1`` … ``thumb3``, names from :data:`dahyf.hand.tables.JOINT_NAMES`), which bone is the
wrist (the hand bone the fingers hang from), and which bones are metacarpals or fingertip leaves
(present in the rig, never rotated). It is found either from a preset file in this folder (or a
user folder) or, when no preset fits, from the hierarchy and the bone names alone.

Preset format (see ``rigify.toml`` for a commented example)::

    name = "mixamo"                # unique id; the file name without .toml
    label = "Mixamo"
    sides = { R = "Right", L = "Left" }   # what {S} becomes in the templates below
    wrist = "mixamorig:{S}Hand"    # a string, or a list of alternatives (first one present wins)
    arm = [...]                    # published parents of the wrist, root first (documentation/tests)
    [fingers]                      # per finger, 3 entries for MANO joints 1, 2, 3 ("" = no such bone)
    index = ["mixamorig:{S}HandIndex1", "mixamorig:{S}HandIndex2", "mixamorig:{S}HandIndex3"]
    [metacarpals]                  # optional, per long finger
    [tips]                         # optional leaf bones past the last phalanx (never rotated)

A preset saved from the panel spells each hand out instead: ``[hands.R]`` / ``[hands.L]`` tables
with ``wrist``, ``thumb`` … ``pinky`` (3-entry lists), and optional ``metacarpals``/``tips`` tables.
Matching ignores case and an FBX namespace (``mixamorig1:``).
"""
from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from dahyf.errors import DaHyFUserError
from dahyf.hand.tables import FINGER_JOINTS, FINGERS, JOINT_NAMES

#: Folder of the built-in presets (this package).
PRESET_DIR = Path(__file__).resolve().parent

SIDES = ("R", "L")
#: The 15 MANO finger joints, MANO order.
FINGER_JOINT_NAMES: tuple[str, ...] = JOINT_NAMES[1:]
#: The long fingers (those that may have a separate metacarpal bone).
LONG_FINGERS: tuple[str, ...] = tuple(f for f in FINGERS if f != "thumb")


class PresetError(DaHyFUserError, ValueError):
    """A preset file is malformed; the message names the file and what to fix."""


# --------------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HandSpec:
    """Bone names of one hand in a preset. Each entry is a tuple of alternatives ('' = none)."""

    wrist: tuple[str, ...]
    fingers: dict[str, tuple[tuple[str, ...], ...]]  # finger -> 3 × alternatives
    metacarpals: dict[str, tuple[str, ...]] = field(default_factory=dict)
    tips: dict[str, tuple[str, ...]] = field(default_factory=dict)
    arm: tuple[str, ...] = ()


@dataclass(frozen=True)
class Preset:
    """A rig family: bone names of each hand, plus optional per-rig axis correction.

    ``axis_correction_deg`` : (3,) XYZ Euler angles in degrees, applied to the transferred finger
    rotations in the hand frame (see :mod:`rigs.handframe`); zero for all built-in presets.
    ``follow_prefix`` : prefix of the deform bones that follow the mapped (control) bones, if any.
    """

    name: str
    label: str
    description: str
    hands: dict[str, HandSpec]
    axis_correction_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    follow_prefix: str = ""
    path: Path | None = None


def _alts(value, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise PresetError(f"{where}: expected a bone name or a list of alternative names, got {value!r}")


def _finger_entries(value, where: str) -> tuple[tuple[str, ...], ...]:
    if not isinstance(value, list) or len(value) != 3:
        raise PresetError(f"{where}: expected 3 entries (MANO joints 1, 2, 3; \"\" for a missing bone), got {value!r}")
    return tuple(_alts(v, f"{where}[{i}]") for i, v in enumerate(value))


def _hand_spec(table: dict, where: str, subst=lambda s: s) -> HandSpec:
    def sub(alts):
        return tuple(subst(a) for a in alts)

    fingers_table = table.get("fingers", table)
    fingers = {}
    for finger in FINGERS:
        if finger not in fingers_table:
            raise PresetError(f"{where}: missing finger {finger!r} (one list of 3 bone names per finger)")
        fingers[finger] = tuple(sub(e) for e in _finger_entries(fingers_table[finger], f"{where}.{finger}"))
    if "wrist" not in table:
        raise PresetError(f"{where}: missing 'wrist' (the hand bone the fingers hang from)")
    meta = {k: sub(_alts(v, f"{where}.metacarpals.{k}")) for k, v in table.get("metacarpals", {}).items()}
    tips = {k: sub(_alts(v, f"{where}.tips.{k}")) for k, v in table.get("tips", {}).items()}
    for k in list(meta) + list(tips):
        if k not in FINGERS:
            raise PresetError(f"{where}: unknown finger {k!r}; fingers are {FINGERS}")
    arm = tuple(subst(a) for a in table.get("arm", []))
    return HandSpec(sub(_alts(table["wrist"], f"{where}.wrist")), fingers, meta, tips, arm)


def load_preset(path: str | Path) -> Preset:
    """Read one preset TOML file (format in the module docstring)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PresetError(f"{path}: cannot read retarget preset ({exc}); fix or delete the file") from exc
    name = data.get("name", path.stem)
    where = str(path)
    hands: dict[str, HandSpec] = {}
    if "hands" in data:
        for side, table in data["hands"].items():
            if side not in SIDES:
                raise PresetError(f"{where}: hands.{side}: sides are 'R' and 'L'")
            hands[side] = _hand_spec(table, f"{where}: hands.{side}")
    else:
        sides = data.get("sides")
        if not isinstance(sides, dict) or not set(sides) <= set(SIDES) or not sides:
            raise PresetError(f"{where}: needs sides = {{ R = \"...\", L = \"...\" }} (what {{S}} becomes per hand) "
                              "or explicit [hands.R]/[hands.L] tables")
        for side, token in sides.items():
            hands[side] = _hand_spec(data, f"{where}", subst=lambda s, t=token: s.replace("{S}", t))
    corr = tuple(float(v) for v in data.get("axis_correction_deg", (0.0, 0.0, 0.0)))
    if len(corr) != 3:
        raise PresetError(f"{where}: axis_correction_deg must be 3 Euler angles in degrees")
    return Preset(name=name, label=data.get("label", name), description=data.get("description", ""),
                  hands=hands, axis_correction_deg=corr, follow_prefix=data.get("follow_prefix", ""), path=path)


def load_presets(extra_dirs=()) -> dict[str, Preset]:
    """All presets: the built-in ones, then those in ``extra_dirs`` (a later file overrides by name)."""
    presets: dict[str, Preset] = {}
    for folder in (PRESET_DIR, *[Path(d) for d in extra_dirs]):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            preset = load_preset(path)
            presets[preset.name] = preset
    return presets


# --------------------------------------------------------------------------------------------
# Matches
# --------------------------------------------------------------------------------------------

@dataclass
class HandMatch:
    """Bones of one hand. ``joints`` maps MANO finger joint names (``index1`` …) to bone names."""

    side: str
    wrist: str | None
    joints: dict[str, str]
    metacarpals: dict[str, str] = field(default_factory=dict)
    tips: dict[str, str] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        return [j for j in FINGER_JOINT_NAMES if j not in self.joints]

    @property
    def usable(self) -> bool:
        """Enough to retarget: a wrist and at least the index, middle and pinky knuckles (hand frame)."""
        return self.wrist is not None and all(f"{f}1" in self.joints for f in ("index", "middle", "pinky"))

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
            word = "right" if side == "R" else "left"
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


def match_preset(preset: Preset, names) -> RigMatch:
    """Match a rig's bone names against one preset. Bones absent from the rig are reported missing."""
    index = _NameIndex(list(names))
    hands = {}
    for side, spec in preset.hands.items():
        joints = {}
        for finger, entries in spec.fingers.items():
            for j, alts in zip(FINGER_JOINTS[finger], entries):
                bone = index.find(alts)
                if bone is not None:
                    joints[JOINT_NAMES[j]] = bone
        meta = {f: b for f, alts in spec.metacarpals.items() if (b := index.find(alts))}
        tips = {f: b for f, alts in spec.tips.items() if (b := index.find(alts))}
        hands[side] = HandMatch(side, index.find(spec.wrist), joints, meta, tips)
    notes = []
    for side, spec in preset.hands.items():
        declared = sum(1 for e in spec.fingers.values() for alts in e if any(alts))
        if 0 < len(hands[side].joints) < declared:
            notes.append(f"Preset '{preset.name}' declares {declared} finger bones for the "
                         f"{'right' if side == 'R' else 'left'} hand; this rig has {len(hands[side].joints)}.")
    return RigMatch(preset.name, hands, notes, preset.axis_correction_deg, preset.follow_prefix)


# --------------------------------------------------------------------------------------------
# Automatic matching from names and hierarchy
# --------------------------------------------------------------------------------------------

#: Finger vocabulary: whole-word tokens (after splitting camelCase, digits and separators).
FINGER_WORDS: dict[str, tuple[str, ...]] = {
    "thumb": ("thumb", "thb", "thmb", "pollex", "daumen", "pouce", "pulgar", "pollice", "polegar", "duim"),
    "index": ("index", "idx", "ind", "pointer", "fore", "forefinger", "zeige", "zeigefinger", "indice",
              "indicateur", "indicador", "wijsvinger"),
    "middle": ("middle", "mid", "mdl", "mittel", "mittelfinger", "majeur", "medio", "mayor", "medius", "middel"),
    "ring": ("ring", "rng", "annular", "ringfinger", "annulaire", "anular", "anulare", "ringvinger"),
    "pinky": ("pinky", "pinkie", "little", "lil", "small", "klein", "kleiner", "kleinfinger", "auriculaire",
              "menique", "meñique", "mignolo", "pink", "pnk"),
}
#: Finger names in CJK scripts, matched as substrings.
FINGER_CJK: dict[str, tuple[str, ...]] = {
    "thumb": ("親指", "拇指", "大拇指", "엄지"),
    "index": ("人差指", "人差し指", "人指", "食指", "검지"),
    "middle": ("中指", "중지"),
    "ring": ("薬指", "无名指", "無名指", "약지"),
    "pinky": ("小指", "새끼"),
}
SIDE_WORDS = {"R": ("r", "right", "rt", "rgt", "droite", "rechts", "derecha"),
              "L": ("l", "left", "lt", "lft", "gauche", "links", "izquierda")}
SIDE_CJK = {"R": ("右", "오른"), "L": ("左", "왼")}
#: Tokens of bones that are not phalanges of a finger chain.
METACARPAL_WORDS = ("metacarpal", "metacarpals", "metacarpus", "meta", "carpal", "mc", "base", "palm")
TIP_WORDS = ("tip", "end", "nub", "top", "null", "leaf", "nail", "tail")
#: Rig-machinery tokens: such bones are never chosen as phalanges.
HELPER_WORDS = ("mch", "org", "vis", "drv", "driver", "ik", "target", "tgt", "pole", "helper", "twist", "master",
                "tweak", "jiggle", "socket", "roll", "parent", "snap", "ref", "ctrl_ik", "bend")
DEFORM_WORDS = ("def", "deform")


def tokens(name: str) -> list[str]:
    """Lower-case word tokens of a bone name ('mixamorig:RightHandIndex1' -> ['right','hand','index','1'])."""
    s = unicodedata.normalize("NFKC", name.rsplit(":", 1)[-1])
    s = re.sub(r"([a-z])([A-Z])", r"\1 \2", s)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", s)
    s = re.sub(r"([^\W\d_])(\d)", r"\1 \2", s)
    s = re.sub(r"(\d)([^\W\d_])", r"\1 \2", s)
    return [t for t in re.split(r"[\s._\-|:/\\,()\[\]]+", s.casefold()) if t]


def name_side(name: str) -> str | None:
    """'R', 'L' or None from side tokens (.L, _r, Left, 左 …) in a bone name."""
    toks = set(tokens(name))
    found = {side for side, words in SIDE_WORDS.items() if toks & set(words)}
    found |= {side for side, words in SIDE_CJK.items() if any(w in name for w in words)}
    return found.pop() if len(found) == 1 else None


#: Tokens of limb bones whose names would otherwise read as a finger ('ForeArm' is not 'fore' finger).
LIMB_WORDS = ("arm", "forearm", "upperarm", "lowerarm", "leg", "foot", "toe", "toes", "shoulder", "clavicle",
              "elbow", "knee", "spine", "neck", "head", "eye", "jaw")


def name_finger(name: str) -> str | None:
    """The finger a bone name refers to ('thumb' … 'pinky'), or None."""
    norm = unicodedata.normalize("NFKC", name)
    if set(tokens(name)) & set(LIMB_WORDS):
        return None
    # MakeHuman / MPFB: finger2-1.L = index, phalanx 1 (the finger number is not a finger word).
    m = re.search(r"(?:^|[^a-z])finger\s*([1-5])\s*[-_.]\s*\d", norm.casefold())
    if m:
        return FINGERS[int(m.group(1)) - 1]
    toks = tokens(name)
    found = {f for f, words in FINGER_WORDS.items() if set(toks) & set(words)}
    if not found:  # compound words: 'IndexFinger' is split already; 'forefinger', 'pinkie3' …
        joined = "".join(toks)
        found = {f for f, words in FINGER_WORDS.items() if any(len(w) >= 5 and w in joined for w in words)}
    found |= {f for f, words in FINGER_CJK.items() if any(w in norm for w in words)}
    return found.pop() if len(found) == 1 else None


def _has(name: str, words) -> bool:
    return bool(set(tokens(name)) & set(words))


def auto_match(names, parents: dict[str, str | None], heads: dict | None = None) -> RigMatch:
    """Find the finger chains of each hand from bone names and the parent hierarchy.

    Parameters
    ----------
    names : bone names of the rig.
    parents : bone name -> parent bone name (None for roots).
    heads : optional bone name -> (3,) rest head in armature space; used only to tell the side of
        bones whose names carry none (x < 0 is the character's right, Blender's front view).

    Returns
    -------
    RigMatch with preset 'auto'. Rules: candidates are bones naming a finger; rig machinery
    (MCH-, ORG-, IK, drivers …) is ignored; a chain is followed through the hierarchy (skipping
    machinery in between); leading metacarpal-named bones of long fingers and trailing leaves named
    tip/end (or a 4th leaf past 3 phalanges) are set aside; 3 phalanges map to MANO joints 1-3,
    a 2-bone thumb to thumb2-3. Deform (DEF-) chains are used only when there is no other.
    """
    names = list(names)
    notes: list[str] = []
    # Side of each candidate: from its name, else from an ancestor's name, else from its position.
    cand: dict[tuple[str, str], list[str]] = {}
    unsided = []
    for n in names:
        finger = name_finger(n)
        if finger is None or _has(n, HELPER_WORDS):
            continue
        side = name_side(n)
        if side is None:
            a = parents.get(n)
            while a is not None and side is None:
                side = name_side(a)
                a = parents.get(a)
        if side is None and heads and n in heads:
            side = "R" if heads[n][0] < 0 else "L"
            unsided.append(n)
        if side is None:
            side = "R"
            unsided.append(n)
        cand.setdefault((side, finger), []).append(n)
    if unsided:
        notes.append(f"{len(unsided)} finger bones carry no side in their name; side taken from "
                     f"{'their position (x < 0: right)' if heads else 'nothing (assumed right)'}.")

    def ancestors(n):
        a = parents.get(n)
        while a is not None:
            yield a
            a = parents.get(a)

    hands: dict[str, HandMatch] = {}
    for side in SIDES:
        joints: dict[str, str] = {}
        meta: dict[str, str] = {}
        tips: dict[str, str] = {}
        roots: list[str] = []
        for finger in FINGERS:
            group = cand.get((side, finger), [])
            if not group:
                continue
            members = set(group)
            red_parent = {n: next((a for a in ancestors(n) if a in members), None) for n in group}
            children: dict[str | None, list[str]] = {}
            for n in group:
                children.setdefault(red_parent[n], []).append(n)

            def longest(n):
                best = [n]
                for c in children.get(n, []):
                    path = [n] + longest(c)
                    if len(path) > len(best):
                        best = path
                return best

            chains = [longest(r) for r in children.get(None, [])]
            chains = [_split_chain(c, finger, children) for c in chains]
            # Prefer: 3 phalanges (2 for fingers that have no more), non-deform, then longest.
            chains.sort(key=lambda c: (-min(len(c[1]), 3), any(_has(b, DEFORM_WORDS) for b in c[1]), -len(c[1])))
            m_bones, phal, t_bones = chains[0]
            if len(chains) > 1 and len(chains[1][1]) == len(phal) and not _has(chains[1][1][0], DEFORM_WORDS) \
                    and not any(_has(b, DEFORM_WORDS) for b in phal):
                notes.append(f"{finger} ({side}): several candidate chains; using {phal[0]}… "
                             f"(also found {chains[1][1][0]}…).")
            if finger == "thumb":
                slots = {3: (1, 2, 3), 2: (2, 3), 1: (2,)}[min(len(phal), 3)]
            else:
                slots = {3: (1, 2, 3), 2: (1, 2), 1: (1,)}[min(len(phal), 3)]
            for s, bone in zip(slots, phal):
                joints[f"{finger}{s}"] = bone
            if m_bones:
                meta[finger] = m_bones[-1]
            if t_bones:
                tips[finger] = t_bones[0]
            roots.append(m_bones[0] if m_bones else phal[0])
        wrist = _common_ancestor(roots, parents) if roots else None
        hands[side] = HandMatch(side, wrist, joints, meta, tips)
    return RigMatch("auto", hands, notes)


def _split_chain(chain: list[str], finger: str, children) -> tuple[list[str], list[str], list[str]]:
    """Split a base→tip chain into (metacarpals, phalanges, tips)."""
    chain = list(chain)
    tips = []
    while chain and not children.get(chain[-1]) and _has(chain[-1], TIP_WORDS) and len(chain) > 1:
        tips.insert(0, chain.pop())
    meta = []
    if finger != "thumb":
        while len(chain) > 1 and _has(chain[0], METACARPAL_WORDS):
            meta.append(chain.pop(0))
    # A 4th bone past three phalanges: a trailing leaf is an end bone (Mixamo 'HandIndex4'),
    # otherwise the first bone is an unnamed metacarpal.
    while len(chain) > 3:
        if not tips and not children.get(chain[-1]):
            tips.insert(0, chain.pop())
        elif finger != "thumb" or len(chain) > 3:
            meta.append(chain.pop(0))
    return meta, chain, tips


def _common_ancestor(bones: list[str], parents) -> str | None:
    """The nearest bone that is a strict ancestor of all ``bones``."""
    def chain_up(n):
        out = []
        a = parents.get(n)
        while a is not None:
            out.append(a)
            a = parents.get(a)
        return out

    paths = [chain_up(b) for b in bones]
    common = set(paths[0]).intersection(*map(set, paths[1:])) if paths else set()
    for a in paths[0]:
        if a in common:
            return a
    return None


# --------------------------------------------------------------------------------------------
# Detection: presets first, automatic matching when none fits
# --------------------------------------------------------------------------------------------

def detect(names, parents: dict[str, str | None], preset: str = "AUTO", heads: dict | None = None,
           extra_dirs=()) -> RigMatch:
    """Match a rig to a preset by name, or ('AUTO') to the best-fitting preset or automatic matching.

    'AUTO' takes the preset that finds the most finger bones (a preset must find at least one full
    hand of 15, or as many as automatic matching, to win over it); ties go to automatic matching.
    """
    names = list(names)
    presets = load_presets(extra_dirs)
    if preset not in ("AUTO", "", None):
        if preset == "auto":
            return auto_match(names, parents, heads)
        if preset not in presets:
            raise PresetError(f"no retarget preset named {preset!r}; available: {', '.join(sorted(presets))} or 'AUTO'")
        return match_preset(presets[preset], names)
    auto = auto_match(names, parents, heads)
    best = None
    for p in presets.values():
        m = match_preset(p, names)
        score = (sum(len(h.joints) == 15 for h in m.hands.values()), m.n_found)
        if m.n_found and (best is None or score > best[0]):
            best = (score, m)
    auto_score = (sum(len(h.joints) == 15 for h in auto.hands.values()), auto.n_found)
    if best is not None and best[0] > auto_score:
        return best[1]
    if best is not None and best[0] == auto_score and best[1].n_found:
        return best[1]
    return auto


# --------------------------------------------------------------------------------------------
# Saving a (fixed) mapping as a new preset
# --------------------------------------------------------------------------------------------

def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def preset_toml(match: RigMatch, name: str, label: str | None = None, description: str = "") -> str:
    """TOML text of a preset that reproduces ``match`` exactly (explicit [hands.R]/[hands.L] form)."""
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", name or ""):
        raise PresetError(f"preset name {name!r}: use letters, digits, '_' or '-' only")
    out = [f"name = {_toml_str(name)}", f"label = {_toml_str(label or name)}",
           f"description = {_toml_str(description or 'Saved from the DaHyF retarget panel.')}"]
    if any(match.axis_correction_deg):
        out.append("axis_correction_deg = [" + ", ".join(repr(float(v)) for v in match.axis_correction_deg) + "]")
    if match.follow_prefix:
        out.append(f"follow_prefix = {_toml_str(match.follow_prefix)}")
    for side in SIDES:
        hand = match.hands.get(side)
        if hand is None or not hand.joints:
            continue
        out += ["", f"[hands.{side}]", f"wrist = {_toml_str(hand.wrist or '')}"]
        for finger in FINGERS:
            entries = [hand.joints.get(JOINT_NAMES[j], "") for j in FINGER_JOINTS[finger]]
            out.append(f"{finger} = [" + ", ".join(_toml_str(e) for e in entries) + "]")
        for table, values in (("metacarpals", hand.metacarpals), ("tips", hand.tips)):
            if values:
                out += ["", f"[hands.{side}.{table}]"] + [f"{k} = {_toml_str(v)}" for k, v in values.items()]
    return "\n".join(out) + "\n"


def save_preset(match: RigMatch, name: str, folder: str | Path, label: str | None = None,
                description: str = "") -> Path:
    """Write ``match`` as ``<folder>/<name>.toml`` (atomically) and return the path."""
    text = preset_toml(match, name, label, description)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(text, encoding="utf-8")
    load_preset(tmp)  # never leave a preset behind that cannot be read back
    tmp.replace(path)
    return path
