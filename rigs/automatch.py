"""Automatic matching: the finger chains of each hand from bone names, hierarchy and rest positions (no bpy).

Candidates are bones whose names say a finger (:mod:`rigs.names`); rig machinery (MCH-, ORG-, IK,
drivers …) is ignored. A finger's bones are chained through the hierarchy, or, when they are not
parented to each other (WebXR/OpenXR joint sets), by the phalanx order their names give
(metacarpal < proximal < intermediate < distal < tip, or numbers) else by distance from the
wrist. Leading metacarpals (by name, or a first bone that starts at the wrist) and trailing
tip/end leaves are set aside; 3 phalanges map to MANO joints 1-3, a 2-bone thumb to thumb2-3.
"""
from __future__ import annotations

import numpy as np

from dahyf.hand.tables import FINGERS

from .match import SIDE_WORD, HandMatch, RigMatch, shape_side
from .names import (DEFORM_WORDS, HELPER_WORDS, METACARPAL_WORDS, TIP_WORDS, WRIST_WORDS, has_word, name_finger,
                    name_side, phalanx_rank)
from .presets import SIDES

#: A finger's first bone is a metacarpal when its head lies closer to the hand bone's head than
#: this fraction of its own length (a proximal phalanx starts a palm length away from the wrist).
METACARPAL_START = 0.75


def _ancestors(n, parents):
    a = parents.get(n)
    while a is not None:
        yield a
        a = parents.get(a)


def _candidates(names, parents, heads) -> tuple[dict[tuple[str, str], list[str]], list[str]]:
    """(side, finger) -> candidate bones, and the bones whose side no name gave."""
    cand: dict[tuple[str, str], list[str]] = {}
    unsided: list[tuple[str, str]] = []
    for n in names:
        finger = name_finger(n)
        if finger is None or has_word(n, HELPER_WORDS):
            continue
        side = name_side(n) or next((s for a in _ancestors(n, parents) if (s := name_side(a))), None)
        if side is None:
            unsided.append((n, finger))
        else:
            cand.setdefault((side, finger), []).append(n)
    # Bones with no side anywhere in their names or ancestors' make one hand, on the side of their
    # centre (x < 0: the character's right); the hand's shape may correct it later.
    xs = [heads[n][0] for n, _ in unsided if heads is not None and n in heads]
    side = "L" if xs and float(np.mean(xs)) > 0 else "R"
    for n, finger in unsided:
        cand.setdefault((side, finger), []).append(n)
    return cand, [n for n, _ in unsided]


def _head(heads, n):
    return None if heads is None or n not in heads else np.asarray(heads[n], dtype=np.float64)


def _reference_head(bone: str, parents, heads):
    """Head of the nearest ancestor of ``bone`` that does not start where ``bone`` starts (drivers
    and helper bones often do): the hand bone or metacarpal the finger hangs from."""
    h0 = _head(heads, bone)
    if h0 is None:
        return None
    for a in _ancestors(bone, parents):
        ha = _head(heads, a)
        if ha is not None and np.linalg.norm(ha - h0) > 1e-6:
            return ha
    return None


def _starts_at_wrist(chain: list[str], parents, heads, wrist_head=None) -> bool | None:
    """Whether the chain's first bone starts at the hand bone (a metacarpal); None without positions."""
    if len(chain) < 2:
        return None
    h0, h1 = _head(heads, chain[0]), _head(heads, chain[1])
    ref = _reference_head(chain[0], parents, heads) if wrist_head is None else wrist_head
    if h0 is None or h1 is None or ref is None:
        return None
    return bool(np.linalg.norm(h0 - ref) < METACARPAL_START * np.linalg.norm(h1 - h0))


def _split_chain(chain: list[str], finger: str, children, parents, heads, wrist_head=None):
    """Split a base→tip chain into (metacarpals, phalanges, tips)."""
    chain = list(chain)
    tips = []
    while chain and not children.get(chain[-1]) and has_word(chain[-1], TIP_WORDS) and len(chain) > 1:
        tips.insert(0, chain.pop())
    meta = []
    if finger != "thumb":
        while len(chain) > 1 and has_word(chain[0], METACARPAL_WORDS):
            meta.append(chain.pop(0))
        if len(chain) > 3 and not meta and _starts_at_wrist(chain, parents, heads, wrist_head):
            meta.append(chain.pop(0))  # an unnamed metacarpal: four-bone fingers
    # A 4th bone past three phalanges: a trailing leaf is an end bone (Mixamo 'HandIndex4'),
    # otherwise the first bone is an unnamed metacarpal.
    while len(chain) > 3:
        if not tips and not children.get(chain[-1]):
            tips.insert(0, chain.pop())
        else:
            meta.append(chain.pop(0))
    return meta, chain, tips


def _spatial_chain(group: list[str], heads, centre) -> list[str]:
    """Order a finger's unparented bones base to tip: by the phalanx order of their names when it
    tells them all apart, else by distance of their heads from ``centre`` (the wrist)."""
    ranks = [phalanx_rank(n) for n in group]
    if None not in ranks and len(set(ranks)) == len(ranks):
        return [n for _, n in sorted(zip(ranks, group))]
    return sorted(group, key=lambda n: float(np.linalg.norm(_head(heads, n) - centre)))


def _finger_chains(group: list[str], parents, heads, centre):
    """Candidate chains of one finger (lists of bones base to tip) and their child map."""
    members = set(group)
    red_parent = {n: next((a for a in _ancestors(n, parents) if a in members), None) for n in group}
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
    spatial = (max(map(len, chains)) == 1 and len(group) > 1 and heads is not None and centre is not None
               and all(n in heads for n in group))
    if spatial:  # bones not parented to each other (WebXR/OpenXR joint sets)
        chain = _spatial_chain(group, heads, centre)
        return [chain], {a: [b] for a, b in zip(chain, chain[1:])}, True
    return chains, children, False


def _wrist_by_name(side: str, names, roots: list[str], heads) -> str | None:
    """A bone named wrist/hand (this side or none) nearest the finger roots, for fingers without a common parent."""
    found = [n for n in names if has_word(n, WRIST_WORDS) and name_finger(n) is None
             and not has_word(n, HELPER_WORDS) and name_side(n) in (side, None)]
    if not found:
        return None
    if heads is None:
        return found[0]
    base = np.mean([heads[r] for r in roots if r in heads], axis=0) if any(r in heads for r in roots) else None
    if base is None:
        return found[0]
    return min(found, key=lambda n: float(np.linalg.norm(_head(heads, n) - base)) if n in heads else np.inf)


def _match_hand(side, cand, names, parents, heads, notes) -> HandMatch:
    joints: dict[str, str] = {}
    meta: dict[str, str] = {}
    tips: dict[str, str] = {}
    roots: list[str] = []
    groups = {f: cand.get((side, f), []) for f in FINGERS}
    everything = [n for g in groups.values() for n in g]
    wrist_guess = _wrist_by_name(side, names, everything, heads)
    centre = _head(heads, wrist_guess) if wrist_guess else (
        np.mean([heads[n] for n in everything], axis=0) if heads and everything and all(n in heads for n in everything)
        else None)
    spatial_any = False
    for finger, group in groups.items():
        if not group:
            continue
        chains, children, spatial = _finger_chains(group, parents, heads, centre)
        spatial_any |= spatial
        ref = centre if spatial else None
        chains = [_split_chain(c, finger, children, parents, heads, ref) for c in chains]
        # Prefer: 3 phalanges (2 for fingers that have no more), non-deform, then longest.
        chains.sort(key=lambda c: (-min(len(c[1]), 3), any(has_word(b, DEFORM_WORDS) for b in c[1]), -len(c[1])))
        m_bones, phal, t_bones = chains[0]
        if len(chains) > 1 and len(chains[1][1]) == len(phal) and not has_word(chains[1][1][0], DEFORM_WORDS) \
                and not any(has_word(b, DEFORM_WORDS) for b in phal):
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
    if roots and wrist is None:
        wrist = wrist_guess
    if spatial_any:
        notes.append(f"{SIDE_WORD[side]} hand: finger bones are not parented to each other; chained by their "
                     f"names' phalanx order, else by distance from {wrist or 'the hand centre'}.")
    return HandMatch(side, wrist, joints, meta, tips)


def auto_match(names, parents: dict[str, str | None], heads: dict | None = None, tails: dict | None = None) -> RigMatch:
    """Find the finger chains of each hand from bone names, the parent hierarchy and rest positions.

    Parameters
    ----------
    names : bone names of the rig.
    parents : bone name -> parent bone name (None for roots).
    heads, tails : optional bone name -> (3,) rest head / tail in armature space: the order of
        fingers' unparented bones, metacarpals that no name marks, and the side of bones whose names
        carry none (their hand's shape, else x < 0 is the character's right, Blender's front view).

    Returns
    -------
    RigMatch with preset 'auto' (rules in the module docstring). Deform (DEF-) chains are used
    only when there is no other.
    """
    names = list(names)
    notes: list[str] = []
    cand, unsided = _candidates(names, parents, heads)
    hands = {side: _match_hand(side, cand, names, parents, heads, notes) for side in SIDES}
    if unsided:
        how = "their position (x < 0: right)" if heads else "nothing (assumed right)"
        sides_used = {s for s in SIDES if any(b in unsided for b in hands[s].joints.values())}
        if len(sides_used) == 1 and not hands[other := ("L" if "R" in sides_used else "R")].joints:
            here = sides_used.pop()
            by_shape = shape_side(hands[here], heads, tails)
            if by_shape is not None:
                how = "the hand's shape (thumb on the palm side)"
                if by_shape != here:
                    hands[here].side, hands[other] = other, hands[here]
                    hands[here] = HandMatch(here, None, {})
        notes.insert(0, f"{len(unsided)} finger bones carry no side in their name; side taken from {how}.")
    return RigMatch("auto", hands, notes)


def _common_ancestor(bones: list[str], parents) -> str | None:
    """The nearest bone that is a strict ancestor of all ``bones``."""
    paths = [list(_ancestors(b, parents)) for b in bones]
    common = set(paths[0]).intersection(*map(set, paths[1:])) if paths else set()
    for a in paths[0]:
        if a in common:
            return a
    return None
