"""Reading bone names: which finger, which side, which phalanx (no bpy).

Names are split into lower-case word tokens (camelCase, digits and separators split:
``mixamorig:RightHandIndex1`` -> ``right hand index 1``); finger, side, phalanx and machinery
words are whole tokens, CJK names substrings. The vocabularies here are the one table of them.
"""
from __future__ import annotations

import re
import unicodedata

from dahyf.hand.tables import FINGERS

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
#: Hand bones (the wrist the fingers hang from), for rigs whose fingers have no common parent.
WRIST_WORDS = ("wrist", "hand")
#: Rig-machinery tokens: such bones are never chosen as phalanges.
HELPER_WORDS = ("mch", "org", "vis", "drv", "driver", "ik", "target", "tgt", "pole", "helper", "twist", "master",
                "tweak", "jiggle", "socket", "roll", "parent", "snap", "ref", "ctrl_ik", "bend")
DEFORM_WORDS = ("def", "deform")
#: Tokens of limb bones whose names would otherwise read as a finger ('ForeArm' is not 'fore' finger).
LIMB_WORDS = ("arm", "forearm", "upperarm", "lowerarm", "leg", "foot", "toe", "toes", "shoulder", "clavicle",
              "elbow", "knee", "spine", "neck", "head", "eye", "jaw")
#: Phalanx words and their order along a finger (WebXR/OpenXR joint names: 'index-finger-phalanx-distal').
PHALANX_ORDER: dict[str, int] = {"metacarpal": 0, "metacarpals": 0, "metacarpus": 0, "meta": 0, "mc": 0,
                                 "proximal": 1, "prox": 1, "intermediate": 2, "inter": 2, "medial": 2,
                                 "distal": 3, "dist": 3, "tip": 4, "end": 4, "nub": 4}


def tokens(name: str) -> list[str]:
    """Lower-case word tokens of a bone name ('mixamorig:RightHandIndex1' -> ['right','hand','index','1'])."""
    s = unicodedata.normalize("NFKC", name.rsplit(":", 1)[-1])
    s = re.sub(r"([a-z])([A-Z])", r"\1 \2", s)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", s)
    s = re.sub(r"([^\W\d_])(\d)", r"\1 \2", s)
    s = re.sub(r"(\d)([^\W\d_])", r"\1 \2", s)
    return [t for t in re.split(r"[\s._\-|:/\\,()\[\]]+", s.casefold()) if t]


def has_word(name: str, words) -> bool:
    """Whether a bone name holds one of ``words`` as a whole token."""
    return bool(set(tokens(name)) & set(words))


def name_side(name: str) -> str | None:
    """'R', 'L' or None from side tokens (.L, _r, Left, 左 …) in a bone name."""
    toks = set(tokens(name))
    found = {side for side, words in SIDE_WORDS.items() if toks & set(words)}
    found |= {side for side, words in SIDE_CJK.items() if any(w in name for w in words)}
    return found.pop() if len(found) == 1 else None


def name_finger(name: str) -> str | None:
    """The finger a bone name refers to ('thumb' … 'pinky'), or None."""
    norm = unicodedata.normalize("NFKC", name)
    if has_word(name, LIMB_WORDS):
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


def phalanx_rank(name: str) -> float | None:
    """Position of a bone along its finger read from its name, or None when the name gives none.

    A phalanx word ranks first (metacarpal 0, proximal 1, intermediate 2, distal 3, tip 4), else the
    last number in the name ('Index3.R' -> 3; MakeHuman 'finger2-3.L' -> 3).
    """
    toks = tokens(name)
    ranks = [PHALANX_ORDER[t] for t in toks if t in PHALANX_ORDER]
    if ranks:
        return float(ranks[-1])
    numbers = [t for t in toks if t.isdigit()]
    return float(numbers[-1]) if numbers else None
