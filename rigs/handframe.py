"""Hand frames and the finger-rotation transfer between two hands (pure numpy, no bpy).

A *hand frame* is built from a rig's own wrist and knuckles (heads of the proximal phalanges)::

    along  = unit(middle1 - wrist)                               (towards the fingers)
    across = unit((pinky1 - index1) ⟂ along)                     (index -> pinky side)
    palm   = s · along × across,  s = +1 right hand, -1 left     (out of the palm)
    H = [along | across | palm]   (columns; det H = +1 right, -1 left)

Because the left-hand frame is the mirror image of the right-hand one, expressing a rotation in
one hand's frame and re-expressing it in the other's mirrors it: a right-hand curl becomes a
left-hand curl (``H_t D H_t^T`` stays a proper rotation since D is proper).

Transfer of one finger bone (world-space 3×3 rotations; DESIGN.md §5, issue 6)::

    D = H_s,pose^T · S_pose · S_rest^T · H_s,rest         rotation of the source bone, in its hand frame
    T_pose = H_t,pose · C D C^T · H_t,rest^T · T_rest     the same rotation on the target bone

with S/T the source/target bone matrices, ``H_pose = W_pose W_rest^T H_rest`` the hand frame
carried by each rig's posed wrist bone W, and C an optional per-rig axis correction.
"""
from __future__ import annotations

import numpy as np

SIGN = {"R": 1.0, "L": -1.0}


def hand_frame(wrist, index1, middle1, pinky1, side: str) -> np.ndarray:
    """The hand frame from four points.

    Parameters
    ----------
    wrist, index1, middle1, pinky1 : (3,) positions (any unit, one space) of the wrist and of the
        index, middle and pinky knuckles (MCP joints).
    side : 'R' or 'L'.

    Returns
    -------
    H : (3, 3) orthonormal, columns (along, across, palm normal); det +1 for 'R', -1 for 'L'.
    """
    wrist, index1, middle1, pinky1 = (np.asarray(p, dtype=np.float64) for p in (wrist, index1, middle1, pinky1))
    along = middle1 - wrist
    n = np.linalg.norm(along)
    if n < 1e-12:
        raise ValueError("hand frame: the wrist and the middle knuckle coincide; check the wrist bone mapping")
    along /= n
    across = pinky1 - index1
    across = across - along * (across @ along)
    n = np.linalg.norm(across)
    if n < 1e-12:
        raise ValueError("hand frame: index and pinky knuckles are aligned with the wrist; check the finger mapping")
    across /= n
    palm = SIGN[side] * np.cross(along, across)
    return np.stack([along, across, palm], axis=1)


def euler_xyz_deg(angles) -> np.ndarray:
    """(3, 3) rotation from XYZ Euler angles in degrees (R = Rz · Ry · Rx, Blender's 'XYZ')."""
    x, y, z = np.radians(np.asarray(angles, dtype=np.float64))
    cx, sx, cy, sy, cz, sz = np.cos(x), np.sin(x), np.cos(y), np.sin(y), np.cos(z), np.sin(z)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def source_delta(S_pose, S_rest, H_pose, H_rest) -> np.ndarray:
    """D = H_pose^T S_pose S_rest^T H_rest: (…, 3, 3) bone rotation from rest, in hand-frame coordinates."""
    S_pose, S_rest = np.asarray(S_pose, dtype=np.float64), np.asarray(S_rest, dtype=np.float64)
    return np.swapaxes(H_pose, -1, -2) @ S_pose @ np.swapaxes(S_rest, -1, -2) @ H_rest


def target_rotation(D, T_rest, H_pose, H_rest, correction=None) -> np.ndarray:
    """T_pose = H_pose C D C^T H_rest^T T_rest: (…, 3, 3) world rotation of the target bone."""
    D = np.asarray(D, dtype=np.float64)
    if correction is not None:
        D = correction @ D @ correction.T
    return H_pose @ D @ np.swapaxes(H_rest, -1, -2) @ np.asarray(T_rest, dtype=np.float64)


def direction_change(u_rest, u_pose) -> tuple[np.ndarray, np.ndarray]:
    """Angle and axis of the change of a direction.

    Parameters
    ----------
    u_rest, u_pose : (N, 3) directions (any length), in one frame.

    Returns
    -------
    angle : (N,) radians; axis : (N, 3) unit ``u_rest × u_pose`` (zero where the angle is ~0).
    """
    a = np.asarray(u_rest, dtype=np.float64)
    b = np.asarray(u_pose, dtype=np.float64)
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    c = np.cross(a, b)
    s = np.linalg.norm(c, axis=-1)
    angle = np.arctan2(s, np.sum(a * b, axis=-1))
    axis = np.where(s[..., None] > 1e-9, c / np.maximum(s, 1e-12)[..., None], 0.0)
    return angle, axis
