"""The one source of truth for hand joint, keypoint and bone tables (MANO convention, DESIGN.md §2).

Every other module (engine, Blender add-on, retarget presets, tests) imports these tables;
never retype them.
"""
from __future__ import annotations

from dataclasses import dataclass

#: The 16 MANO joints, in MANO order (global orient first).
JOINT_NAMES: tuple[str, ...] = (
    "wrist",
    "index1", "index2", "index3",
    "middle1", "middle2", "middle3",
    "pinky1", "pinky2", "pinky3",
    "ring1", "ring2", "ring3",
    "thumb1", "thumb2", "thumb3",
)
NUM_JOINTS = len(JOINT_NAMES)

#: Parent of each MANO joint (-1 for the root).
PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)

#: Fingers in the order the 21-keypoint layout uses (FreiHAND = MediaPipe order).
FINGERS: tuple[str, ...] = ("thumb", "index", "middle", "ring", "pinky")

#: The 21 keypoints: wrist, then per finger (thumb, index, middle, ring, pinky) 4 points base to tip.
KEYPOINT_NAMES: tuple[str, ...] = ("wrist",) + tuple(
    f"{finger}{i}" for finger in FINGERS for i in range(1, 5)
)
NUM_KEYPOINTS = len(KEYPOINT_NAMES)

#: Fingertip vertex ids of the real MANO mesh, in FINGERS order (thumb, index, middle, ring, pinky).
MANO_TIP_VERTEX_IDS: tuple[int, ...] = (744, 320, 443, 554, 671)

#: MANO joint index of each finger's three joints, in FINGERS order.
FINGER_JOINTS: dict[str, tuple[int, int, int]] = {
    finger: tuple(JOINT_NAMES.index(f"{finger}{i}") for i in (1, 2, 3)) for finger in FINGERS
}


def _keypoint_sources() -> tuple[int, ...]:
    """Index into ``concat(joints16, tips5)`` for each of the 21 keypoints."""
    src = [0]
    for k, finger in enumerate(FINGERS):
        src.extend(FINGER_JOINTS[finger])
        src.append(NUM_JOINTS + k)
    return tuple(src)


#: ``keypoints21 = concat(joints16, tips5)[KEYPOINT_SOURCES]``.
KEYPOINT_SOURCES: tuple[int, ...] = _keypoint_sources()

#: Parent keypoint of each of the 21 keypoints (-1 for the wrist): the skeleton to draw.
KEYPOINT_PARENTS: tuple[int, ...] = tuple(
    -1 if i == 0 else (0 if (i - 1) % 4 == 0 else i - 1) for i in range(NUM_KEYPOINTS)
)

#: Bone (keypoint index pairs) of the 21-keypoint skeleton, for drawing and bone-length losses.
KEYPOINT_BONES: tuple[tuple[int, int], ...] = tuple(
    (p, c) for c, p in enumerate(KEYPOINT_PARENTS) if p >= 0
)

#: Blender bone name of each MANO joint (same order as JOINT_NAMES).
BONE_NAMES: tuple[str, ...] = JOINT_NAMES

#: MANO joint order of the 9 arrays a MANO-format model file carries (DESIGN.md §2).
MANO_ARRAY_SHAPES: dict[str, tuple] = {
    "v_template": ("V", 3),
    "shapedirs": ("V", 3, 10),
    "posedirs": ("V", 3, 135),
    "J_regressor": (16, "V"),
    "weights": ("V", 16),
    "kintree_table": (2, 16),
    "f": ("F", 3),
    "hands_components": (45, 45),
    "hands_mean": (45,),
}


@dataclass(frozen=True)
class KeypointConvention:
    """How a dataset defines and stores its 21 hand keypoints and MANO labels.

    tip_vertex_ids : fingertip vertex of MANO's 778-vertex mesh, thumb → pinky.
    file_to_keypoints : ``keypoints21 = stored[file_to_keypoints]`` (the dataset's own joint order).
    axes : 'opencv' (x right, y down, z forward) or 'opengl' (y up, z backward: hands at z < 0).
    flat_hand_mean : whether the stored θ is the full rotation (True) or relative to MANO's
        ``hands_mean`` (False: add ``hands_mean`` for our flat_hand_mean=True convention).
    source : where the facts come from.
    """

    tip_vertex_ids: tuple[int, ...]
    file_to_keypoints: tuple[int, ...]
    axes: str
    flat_hand_mean: bool
    source: str


_IDENTITY21 = tuple(range(NUM_KEYPOINTS))

#: The one table of per-dataset keypoint conventions (MANO 778-vertex mesh).
KEYPOINT_CONVENTIONS: dict[str, KeypointConvention] = {
    "mano": KeypointConvention(
        MANO_TIP_VERTEX_IDS, _IDENTITY21, "opencv", True,
        "smplx / HaMeR fingertips; our own keypoint order and camera frame"),
    "freihand": KeypointConvention(
        (744, 320, 443, 555, 672), _IDENTITY21, "opencv", False,
        "FreiHAND utils/mano_utils.py (kpId2vertices); utils/model.py poses MANO with flat_hand_mean=False"),
    "ho3d": KeypointConvention(
        (744, 333, 444, 555, 672), KEYPOINT_SOURCES, "opengl", True,
        "HO3D setup_mano.py (patched lbs.py: 16 MANO joints, then these tips) and vis_HO3D.py "
        "(flat_hand_mean=True, handPose written to fullpose directly); README: OpenGL coordinates"),
}

#: The two hand sides, in the order tracks and models list them.
SIDES = ("right", "left")
