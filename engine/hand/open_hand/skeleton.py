"""The open hand model's canonical skeleton (MANO_RIGHT frame, metres) and the round cones built on it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..tables import FINGER_JOINTS, FINGERS, JOINT_NAMES

# ---------------------------------------------------------------------------------------------
# Canonical skeleton (metres, MANO_RIGHT frame)
# ---------------------------------------------------------------------------------------------

#: MANO_RIGHT mean rest joints ``J_regressor @ v_template`` (flat hand, θ = 0), JOINT_NAMES order,
#: rounded to 0.1 mm. Published in MANO-based code, e.g. oarriaga/paz
#: examples/minimal_hand/joint_config.py (``MANO_REF_JOINTS``, MANO_LEFT: same numbers with x negated)
#: and smplx-based IK code that hard-codes MANO_RIGHT's ``default`` joints; see OPEN_HAND.md.
MANO_REST_JOINTS = np.array([
    [0.0957, 0.0064, 0.0062],     # wrist
    [0.0076, 0.0012, 0.0269],     # index1  (MCP)
    [-0.0251, 0.0052, 0.0291],    # index2  (PIP)
    [-0.0473, 0.0039, 0.0290],    # index3  (DIP)
    [0.0010, 0.0049, 0.0028],     # middle1
    [-0.0302, 0.0068, -0.0028],   # middle2
    [-0.0531, 0.0055, -0.0067],   # middle3
    [0.0269, -0.0036, -0.0370],   # pinky1
    [0.0099, -0.0035, -0.0495],   # pinky2
    [-0.0060, -0.0042, -0.0599],  # pinky3
    [0.0139, 0.0024, -0.0205],    # ring1
    [-0.0144, 0.0045, -0.0256],   # ring2
    [-0.0379, 0.0028, -0.0332],   # ring3
    [0.0716, -0.0091, 0.0320],    # thumb1  (CMC)
    [0.0519, -0.0082, 0.0557],    # thumb2  (MCP)
    [0.0297, -0.0137, 0.0702],    # thumb3  (IP)
])

#: MANO_RIGHT fingertip vertices (744, 320/333, 443/444, 555, 672) of the mean flat hand, FINGERS order
#: (thumb, index, middle, ring, pinky), from the same paz table (x negated), rounded to 0.1 mm.
MANO_TIP_POINTS = np.array([
    [0.0037, -0.0164, 0.0941],    # thumb
    [-0.0724, 0.0030, 0.0277],    # index
    [-0.0790, 0.0061, -0.0120],   # middle
    [-0.0625, 0.0024, -0.0407],   # ring
    [-0.0237, -0.0055, -0.0698],  # pinky
])

#: Unit palm normal of the canonical right hand (points out of the palm): −y.
PALM_NORMAL = np.array([0.0, -1.0, 0.0])
#: Rotation axis that flexes the four fingers (MANO: positive z).
FINGER_FLEX_AXIS = np.array([0.0, 0.0, 1.0])
#: Axis of the thumb IP joint in MANO's relaxed mean pose, (0.5356, −0.0460, 0.2774) normalised:
#: a positive rotation about it flexes the thumb toward the palm.
THUMB_FLEX_AXIS = np.array([0.5356, -0.0460, 0.2774]) / np.linalg.norm([0.5356, -0.0460, 0.2774])

#: Skin radius (m) at [base joint, middle joint, distal joint, tip] of each finger, FINGERS order.
#: Adult proximal-phalanx breadths ≈ 17-21 mm, distal ≈ 14-17 mm; fingers are modelled round.
FINGER_RADII = {
    "thumb": (0.0120, 0.0105, 0.0096, 0.0088),
    "index": (0.0096, 0.0089, 0.0081, 0.0074),
    "middle": (0.0099, 0.0092, 0.0083, 0.0075),
    "ring": (0.0093, 0.0086, 0.0078, 0.0071),
    "pinky": (0.0085, 0.0077, 0.0070, 0.0064),
}

#: Palm slab: core polygon in the (x, z) plane (inset by PALM_ROUND), centre height and half thickness.
PALM_CORE = np.array([
    [0.106, 0.014], [0.060, 0.026], [0.012, 0.026], [0.002, 0.003],
    [0.014, -0.020], [0.027, -0.035], [0.070, -0.031], [0.106, -0.019],
])
PALM_Y = 0.0015
PALM_ROUND = 0.0085
PALM_HALF_CORE = (0.0040, 0.0020)  # at the wrist, at the knuckles (added to PALM_ROUND)
#: Thenar pad (ball of the thumb): round cone from near the wrist to the thumb's CMC joint.
THENAR = (np.array([0.097, -0.0045, 0.010]), np.array([0.066, -0.0095, 0.036]), 0.0125, 0.0110)

#: Smooth-union widths (m): palm+thenar, +thumb, +fingers.
BLEND = (0.012, 0.008, 0.0075)
#: Surface-nets grid spacing (m) and bounding box. The origin is chosen so that no grid plane grazes
#: the skin tangentially in a narrow finger gap (that would give a non-manifold edge; checked below).
GRID_STEP = 0.0040
GRID_MIN = np.array([-0.0929, -0.0329, -0.0829])
GRID_MAX = np.array([0.1271, 0.0321, 0.1141])


@dataclass(frozen=True)
class Primitive:
    """A round cone from ``a`` to ``b`` with radii ``ra``, ``rb`` (m), owned by joint ``joint``."""

    a: np.ndarray
    b: np.ndarray
    ra: float
    rb: float
    joint: int
    group: str  # 'thenar', 'thumb', 'finger'


def finger_chain(finger: str) -> tuple[list[int], np.ndarray]:
    """MANO joint ids of a finger and its 4 chain points (3 joints + tip) (4, 3) m."""
    ids = list(FINGER_JOINTS[finger])
    pts = np.vstack([MANO_REST_JOINTS[ids], MANO_TIP_POINTS[FINGERS.index(finger)]])
    return ids, pts


def primitives() -> list[Primitive]:
    """The round cones of thumb, fingers and thenar pad (the palm slab is separate)."""
    prims = [Primitive(THENAR[0], THENAR[1], THENAR[2], THENAR[3], JOINT_NAMES.index("thumb1"), "thenar")]
    for finger in FINGERS:
        ids, pts = finger_chain(finger)
        radii = FINGER_RADII[finger]
        for s in range(3):
            a, b = pts[s], pts[s + 1]
            rb = radii[s + 1]
            if s == 2:  # the distal cone ends one radius short of the tip so the skin reaches the tip
                d = (b - a) / np.linalg.norm(b - a)
                b = b - d * rb
            prims.append(Primitive(a, b, radii[s], rb, ids[s], "thumb" if finger == "thumb" else "finger"))
    return prims
