"""Hand frames and pose matching between two hands (pure numpy, no bpy).

A *hand frame* is built from a rig's own wrist and knuckles (heads of the proximal phalanges)::

    along  = unit(middle1 - wrist)                               (towards the fingers)
    across = unit((pinky1 - index1) ⟂ along)                     (index -> pinky side)
    palm   = s · along × across,  s = +1 right hand, -1 left     (out of the palm)
    H = [along | across | palm]   (columns; det H = +1 right, -1 left)

Because the left-hand frame is the mirror image of the right-hand one, a rotation expressed in one
hand's frame and re-expressed in the other's is mirrored (``H_t D H_t^T`` stays proper).

**Pose matching** (issue 12): each finger segment (a bone's head to the next joint) gets a
*segment frame* G in hand-frame coordinates: x along the segment, y the finger's flexion axis
(``unit(finger direction × palm)``, made ⟂ x), z = x × y. Through each rig's own rest geometry
both hands are brought to one reference, so the target segment's frame ends where the source's
is, whatever the target's rest curl, splay, roll or proportions (world-space 3×3 rotations)::

    D_k  = H_s,pose^T · S_k,pose · S_k,rest^T · H_s,rest    source bone k from rest, hand frame
    A_k  = G_s,k · G_t,k^T                                  rest alignment of the two segments
    D'_k = D_k · A_k                                        target bone k from rest, hand frame
    T_k,pose = H_t,pose · C D'_k C^T · H_t,rest^T · T_k,rest

so ``D'_k G_t,k = D_k G_s,k``: the posed segment frames coincide. S/T are the source/target bone
matrices, ``H_pose = W_pose W_rest^T H_rest`` the hand frame carried by each rig's posed wrist
bone W, C an optional per-rig axis correction. A target finger with fewer bones (a 2-bone thumb)
matches the segments it has; metacarpals and the wrist are rigid with the hand frame.
"""
from __future__ import annotations

import numpy as np

from dahyf.geometry import hand_frame  # the one definition of the hand frame (used and re-exported here)
from dahyf.hand.kinematics import batch_rodrigues, matrix_to_axis_angle
from dahyf.hand.tables import FINGERS

SIGN = {"R": 1.0, "L": -1.0}
#: |palm-side offset of the thumb| / palm length below which :func:`hand_side` does not decide.
SIDE_MARGIN = 0.03


def hand_side(wrist, index1, middle1, pinky1, thumb_points) -> str | None:
    """Which hand a rest skeleton is, from its shape: 'R', 'L', or None when it cannot tell.

    The thumb sits on the palm side of the plane of the wrist and knuckles (0.1 hand lengths on
    MANO's rest hand), so its offset along the right-hand palm normal is positive for a right hand.

    Parameters
    ----------
    wrist, index1, middle1, pinky1 : (3,) rest positions; thumb_points : (K, 3) thumb joints/tip.
    """
    pts = np.asarray(thumb_points, dtype=np.float64).reshape(-1, 3)
    if not len(pts):
        return None
    H = hand_frame(wrist, index1, middle1, pinky1, "R")
    palm_length = np.linalg.norm(np.asarray(middle1, dtype=np.float64) - np.asarray(wrist, dtype=np.float64))
    offset = float(np.mean((pts - np.asarray(wrist, dtype=np.float64)) @ H[:, 2])) / palm_length
    if abs(offset) < SIDE_MARGIN:
        return None
    return "R" if offset > 0 else "L"


def flexion_axis(directions) -> np.ndarray:
    """A finger's flexion axis in hand-frame coordinates: unit(finger direction × palm normal).

    Parameters
    ----------
    directions : (n, 3) rest directions of the finger's segments, base to tip, hand-frame coordinates
        (any lengths: their sum is the finger's direction).

    Returns
    -------
    (3,) unit vector ⟂ the palm normal (for a finger along ``along`` it is ``-across``).
    """
    d = np.sum(np.asarray(directions, dtype=np.float64).reshape(-1, 3), axis=0)
    axis = np.array([d[1], -d[0], 0.0])  # d × (0, 0, 1)
    n = np.linalg.norm(axis)
    if n < 1e-9:  # a finger along the palm normal: fall back on the hand's own curl axis
        return np.array([0.0, -1.0, 0.0])
    return axis / n


def segment_frames(directions, axis) -> np.ndarray:
    """Frames of a finger's segments in hand-frame coordinates.

    Parameters
    ----------
    directions : (n, 3) segment directions (any lengths), hand-frame coordinates.
    axis : (3,) the finger's flexion axis (:func:`flexion_axis`).

    Returns
    -------
    G : (n, 3, 3) proper rotations, columns (segment direction, flexion axis ⟂ it, their cross).
    """
    d = np.asarray(directions, dtype=np.float64).reshape(-1, 3)
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    a = np.broadcast_to(np.asarray(axis, dtype=np.float64), d.shape)
    y = a - d * np.sum(a * d, axis=1, keepdims=True)
    weak = np.linalg.norm(y, axis=1) < 1e-6  # segment along the flexion axis: use the palm normal
    if np.any(weak):
        z = np.array([0.0, 0.0, 1.0])
        y[weak] = np.cross(z, d[weak])
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    return np.stack([d, y, np.cross(d, y)], axis=2)


def rest_alignment(G_source, G_target) -> np.ndarray:
    """A = G_s G_t^T: (…, 3, 3) the rotation that lays each target segment's rest frame on the source's."""
    return np.asarray(G_source, dtype=np.float64) @ np.swapaxes(np.asarray(G_target, dtype=np.float64), -1, -2)


def match_pose(D, A) -> np.ndarray:
    """D' = D A: (…, P, 3, 3) target bones from rest (hand frame) whose segments end as the source's.

    ``D`` : (…, P, 3, 3) source bones from rest (:func:`source_delta`); ``A`` : (P, 3, 3) :func:`rest_alignment`.
    """
    return np.asarray(D, dtype=np.float64) @ np.asarray(A, dtype=np.float64)


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


def hand_turn(H_reference, H) -> np.ndarray:
    """Q = H_ref^T H: (…, 3, 3) how a hand turned since a reference pose, in its own (anatomical) axes.

    Proper for either side; the same Q applied in a target hand's axes turns it the same way
    anatomically (mirrored for the other side).
    """
    return np.swapaxes(np.asarray(H_reference, dtype=np.float64), -1, -2) @ np.asarray(H, dtype=np.float64)


def scale_rotation(R, weight: float) -> np.ndarray:
    """(…, 3, 3) rotations turned ``weight`` (0..1) of the way from the identity along their geodesic."""
    R = np.asarray(R, dtype=np.float64)
    return R if weight == 1.0 else batch_rodrigues(weight * matrix_to_axis_angle(R))


# --------------------------------------------------------------------------------------------
# A hand's finger geometry in its own hand frame
# --------------------------------------------------------------------------------------------

class HandGeometry:
    """A rig's finger segments at rest in hand coordinates (origin the wrist head, axes its hand frame).

    Parameters
    ----------
    joints : MANO joint names of the mapped finger bones, MANO order (the order of every (…, J, …) array).
    heads, ends : (J, 3) rest head of each bone and end of its segment (the next joint), rig units,
        any common space; ``wrist`` (3,) and ``H`` (3, 3) the hand frame in that space.
    """

    def __init__(self, joints, heads, ends, wrist, H):
        self.joints = tuple(joints)
        H = np.asarray(H, dtype=np.float64)
        w = np.asarray(wrist, dtype=np.float64)
        self.heads = (np.asarray(heads, dtype=np.float64).reshape(-1, 3) - w) @ H
        self.ends = (np.asarray(ends, dtype=np.float64).reshape(-1, 3) - w) @ H
        self.fingers = {f: [i for i, j in enumerate(self.joints) if j.startswith(f)]
                        for f in FINGERS}

    @property
    def directions(self) -> np.ndarray:
        """(J, 3) rest segment directions (not unit), hand coordinates."""
        return self.ends - self.heads

    def knuckle(self, finger: str) -> np.ndarray:
        """(3,) rest head of the finger's first mapped bone."""
        return self.heads[self.fingers[finger][0]]

    def tip(self, finger: str) -> np.ndarray:
        """(3,) rest end of the finger's last mapped segment (the fingertip)."""
        return self.ends[self.fingers[finger][-1]]

    @property
    def length(self) -> float:
        """Hand length: wrist to middle fingertip at rest (rig units)."""
        return float(np.linalg.norm(self.tip("middle")))

    @property
    def palm_length(self) -> float:
        """Wrist to middle knuckle (rig units)."""
        return float(np.linalg.norm(self.knuckle("middle")))

    @property
    def palm_width(self) -> float:
        """Index to pinky knuckle across the hand (rig units)."""
        return float(abs(self.knuckle("pinky")[1] - self.knuckle("index")[1]))

    def segment_frames(self, joints) -> np.ndarray:
        """(len(joints), 3, 3) :func:`segment_frames` of the given joints, each finger about its own flexion axis
        (computed from the given joints of that finger only, so two rigs compare like with like)."""
        idx = [self.joints.index(j) for j in joints]
        out = np.empty((len(idx), 3, 3))
        d = self.directions
        for f in self.fingers:
            sel = [k for k, i in enumerate(idx) if self.joints[i].startswith(f)]
            if sel:
                rows = [idx[k] for k in sel]
                out[sel] = segment_frames(d[rows], flexion_axis(d[rows]))
        return out

    def pose_points(self, D) -> tuple[np.ndarray, np.ndarray]:
        """Posed heads and segment ends in hand coordinates, fingers hanging from a rigid palm.

        Parameters
        ----------
        D : (…, J, 3, 3) rotations of the bones from rest, hand-frame coordinates.

        Returns
        -------
        heads, ends : (…, J, 3).
        """
        D = np.asarray(D, dtype=np.float64)
        heads = np.broadcast_to(self.heads, D.shape[:-2] + (3,)).copy()
        ends = np.empty_like(heads)
        for idx in self.fingers.values():
            for k, i in enumerate(idx):
                if k:
                    heads[..., i, :] = ends[..., idx[k - 1], :]
                ends[..., i, :] = heads[..., i, :] + D[..., i, :, :] @ (self.ends[i] - self.heads[i])
        return heads, ends
