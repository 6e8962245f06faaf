"""Anatomical joint axes of a MANO-format right hand: flexion, abduction and twist per joint.

Used by the synthetic pose prior (joint limits in anatomical terms, :mod:`dahyf.train.synthetic`) and
by the per-frame fit (:mod:`dahyf.net.refine`: fingers bend about their flexion axes; sideways and
twisting motions are small). Built from the model's rest joints, so they hold for any MANO-format
hand model.
"""
from __future__ import annotations

import numpy as np

from ..geometry import hand_frame
from .tables import FINGER_JOINTS, FINGERS, NUM_JOINTS


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def anatomical_axes(rest_joints: np.ndarray, tips: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-joint rotation axes in the model's rest frame (MANO local rotations act in that frame).

    Parameters
    ----------
    rest_joints : (16, 3) m, MANO order, flat rest pose, right hand.
    tips : (5, 3) m, fingertip positions in FINGERS order (thumb → pinky).

    Returns
    -------
    flex, abd, twist : (16, 3) unit axes. A positive rotation about ``flex`` curls the bone towards
    the palm; ``abd`` spreads it sideways (thumb: away from the palm); ``twist`` is along the bone.

    The palm normal n (out of the palm) follows from chirality: for a right hand,
    ``n ∝ (index1 − pinky1) × (middle1 − wrist)``. A flexion axis is ``d × n`` (d: the bone direction),
    so a positive angle moves the bone towards n.
    """
    J = np.asarray(rest_joints, dtype=np.float64)
    tips = np.asarray(tips, dtype=np.float64)
    idx1, mid1, pky1 = J[FINGER_JOINTS["index"][0]], J[FINGER_JOINTS["middle"][0]], J[FINGER_JOINTS["pinky"][0]]
    H = hand_frame(J[0], idx1, mid1, pky1, "R")
    up, n = H[:, 0], H[:, 2]
    to_pinky = _unit(pky1 - idx1)
    flex = np.zeros((NUM_JOINTS, 3))
    abd = np.zeros((NUM_JOINTS, 3))
    twist = np.zeros((NUM_JOINTS, 3))
    flex[0], abd[0], twist[0] = np.cross(up, n), n, up
    for k, finger in enumerate(FINGERS):
        chain = list(FINGER_JOINTS[finger])
        ends = [J[c] for c in chain[1:]] + [tips[k]]
        for j, end in zip(chain, ends):
            d = _unit(end - J[j])
            if finger == "thumb":
                side = _unit(to_pinky - d * (to_pinky @ d))
                curl = _unit(side + n)
                if j == chain[0]:  # CMC: flexion across the palm, abduction away from it
                    flex[j], abd[j] = np.cross(d, side), np.cross(d, n)
                else:
                    flex[j], abd[j] = np.cross(d, curl), _unit(np.cross(d, np.cross(d, curl)))
            else:
                nn_ = _unit(n - d * (n @ d))
                flex[j], abd[j] = np.cross(d, nn_), nn_
            twist[j] = d
    return _unit(flex), _unit(abd), _unit(twist)


def model_axes(hand_model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`anatomical_axes` of a right :class:`~dahyf.hand.model.HandModel` (its flat rest pose)."""
    out = hand_model(np.zeros((1, NUM_JOINTS, 3), np.float32))
    return anatomical_axes(np.asarray(out.joints[0]), np.asarray(out.keypoints[0, [4, 8, 12, 16, 20]]))

