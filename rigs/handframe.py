"""Hand frames and the finger-rotation transfer between two hands (pure numpy, no bpy).

A *hand frame* is built from a rig's own wrist and knuckles (heads of the proximal phalanges)::

    along  = unit(middle1 - wrist)                               (towards the fingers)
    across = unit((pinky1 - index1) ⟂ along)                     (index -> pinky side)
    palm   = s · along × across,  s = +1 right hand, -1 left     (out of the palm)
    H = [along | across | palm]   (columns; det H = +1 right, -1 left)

Because the left-hand frame is the mirror image of the right-hand one, expressing a rotation in
one hand's frame and re-expressing it in the other's mirrors it: a right-hand curl becomes a
left-hand curl (``H_t D H_t^T`` stays a proper rotation since D is proper).

Transfer of one finger (world-space 3×3 rotations; DESIGN.md §5, issue 6)::

    D_k = H_s,pose^T · S_k,pose · S_k,rest^T · H_s,rest    rotation of source bone k from rest, hand frame
    L_k = D_{k-1}^T D_k   (L_1 = D_1)                      its rotation relative to the previous bone
    L'_k = M_k L_k M_k^T,   M_k = G_t,k-1 · G_s,k-1^T      the joint re-expressed about the target's axes
    D'_k = D'_{k-1} L'_k                                   target bone k from rest, hand frame
    T_k,pose = H_t,pose · C D'_k C^T · H_t,rest^T · T_k,rest

with S/T the source/target bone matrices, ``H_pose = W_pose W_rest^T H_rest`` the hand frame
carried by each rig's posed wrist bone W, C an optional per-rig axis correction, and G the
*segment frame* of the previous bone of the finger in hand-frame coordinates
(:func:`segment_frame`; M_1 = I: the knuckle turns about the hand's own axes). A joint's axes are
fixed in the bone before it, so a target finger that rests splayed or pre-curled differently from
MANO's still bends each joint about its own axes, and the finger stays one rigid chain.
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


def segment_frame(direction, H: np.ndarray) -> np.ndarray:
    """A finger segment's frame in hand-frame coordinates.

    Parameters
    ----------
    direction : (3,) rest direction of the segment (joint -> next joint), same space as H.
    H : (3, 3) the rig's hand frame (:func:`hand_frame`).

    Returns
    -------
    G : (3, 3) proper rotation, columns (segment direction, across, palm side) in hand-frame
        coordinates; G = I for a segment along the hand's ``along`` axis.
    """
    d = H.T @ np.asarray(direction, dtype=np.float64)
    d /= np.linalg.norm(d)
    z = np.array([0.0, 0.0, 1.0]) - d * d[2]
    if np.linalg.norm(z) < 1e-6:  # segment along the palm normal: use 'across' instead
        y = np.array([0.0, 1.0, 0.0]) - d * d[1]
        y /= np.linalg.norm(y)
        z = np.cross(d, y)
    z /= np.linalg.norm(z)
    y = np.cross(z, d)
    return np.stack([d, y, z], axis=1)


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
    """T_pose = H_pose C D C^T H_rest^T T_rest: (…, 3, 3) world rotation of the target bone.

    ``D`` : (…, 3, 3) the target bone's rotation from rest in hand-frame coordinates.
    """
    D = np.asarray(D, dtype=np.float64)
    if correction is not None:
        D = correction @ D @ correction.T
    return H_pose @ D @ np.swapaxes(H_rest, -1, -2) @ np.asarray(T_rest, dtype=np.float64)


def chain_transfer(D, M) -> np.ndarray:
    """Map one finger's source rotations onto the target, joint by joint (module docstring).

    Parameters
    ----------
    D : (n, 3, 3) rotations of the finger's source bones from rest, base to tip, hand frame.
    M : (n, 3, 3) per-joint frame maps (M[0] = I for the first bone of the finger).

    Returns
    -------
    (n, 3, 3) rotations of the target bones from rest, target hand frame.
    """
    D = np.asarray(D, dtype=np.float64)
    out = np.empty_like(D)
    prev_s = np.eye(3)
    prev_t = np.eye(3)
    for k in range(len(D)):
        L = prev_s.T @ D[k]
        prev_t = prev_t @ M[k] @ L @ M[k].T
        prev_s = D[k]
        out[k] = prev_t
    return out


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
