"""Fidelity metrics: does the captured 3-D hand look like the filmed one (issue 11)?

Pure numpy functions over takes and ground truth; ``dahyf bench fidelity`` (dahyf.eval.bench_fidelity)
runs them on FreiHAND images, the rendered fidelity clips and real video.

Definitions used throughout:

- **summed flexion** of a finger: the sum of the rotation angles of its three MANO joints
  (``flat_hand_mean`` θ, so 0 for the flat hand's finger), degrees; about 220 for a fist.
- **straight finger (no ground truth)**: a finger whose projected base → tip length is within 10 %
  of its maximum over the clip (straight and roughly parallel to the image plane, issue 11);
  **straight finger (ground truth)**: its true summed flexion is at most ``STRAIGHT_GT_DEG``.
- **ghost row**: a second row of the take on a hand that already has one in that frame (with
  ground truth: two rows matched to one true hand; without: two rows whose landmark centres lie
  within ``GHOST_CENTRE_SHARE`` of the hand's size of each other — two real hands touching or
  framing each other stay further apart than that).
- **flip**: a frame-to-frame change of the captured global orientation above ``FLIP_DEG`` that the
  truth does not make (its own change below ``FLIP_GT_DEG``), or, without ground truth, any such
  jump.
"""
from __future__ import annotations

import numpy as np

from ..geometry import hand_diagonal
from ..hand.tables import FINGER_JOINTS, FINGERS
from .metrics import align_w_scale

#: A finger is straight by its projection when its 2-D base → tip length is at least this share of its clip maximum.
STRAIGHT_PROJECTED_SHARE = 0.9
#: A finger is straight by the ground truth when its true summed flexion is at most this, degrees.
STRAIGHT_GT_DEG = 20.0
#: Landmark-centre distance, in hand sizes (landmark box diagonal), below which two rows of one
#: frame are the same hand (no ground truth).
GHOST_CENTRE_SHARE = 0.2
#: Frame-to-frame global-orientation change (deg) that counts as a flip, and the truth's own change
#: below which it is not explained by the motion.
FLIP_DEG = 45.0
FLIP_GT_DEG = 15.0
#: A row belongs to a true hand when its landmarks lie within this share of the hand's size of it
#: (mean keypoint distance).
MATCH_SHARE = 0.35


def finger_chains() -> dict[str, list[int]]:
    """{finger: [wrist, base, 2, 3, tip] keypoint indices} in FINGERS order."""
    return {f: [0] + [1 + 4 * k + i for i in range(4)] for k, f in enumerate(FINGERS)}


def summed_flexion(pose: np.ndarray) -> np.ndarray:
    """Summed flexion per finger, (..., 5) deg in FINGERS order, of MANO poses (..., 16, 3) rad."""
    ang = np.degrees(np.linalg.norm(np.asarray(pose, dtype=np.float64), axis=-1))      # (..., 16)
    return np.stack([ang[..., list(FINGER_JOINTS[f])].sum(-1) for f in FINGERS], axis=-1)


def projected_finger_length(landmarks: np.ndarray) -> np.ndarray:
    """(..., 5) px: the 2-D distance from each finger's base keypoint to its tip, landmarks (..., 21, 2) px."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return np.stack([np.linalg.norm(lm[..., c[4], :] - lm[..., c[1], :], axis=-1)
                     for c in finger_chains().values()], axis=-1)


def straight_by_projection(landmarks: np.ndarray) -> np.ndarray:
    """(N, 5) bool: fingers of one track whose projected length is ≥ 90 % of their maximum in the clip.

    landmarks : (N, 21, 2) px of one track (the raw landmarks: the evidence in the video).
    """
    length = projected_finger_length(landmarks)
    if len(length) == 0:
        return np.zeros((0, len(FINGERS)), bool)
    return length >= STRAIGHT_PROJECTED_SHARE * length.max(axis=0, keepdims=True)


def coincident_rows(frame: np.ndarray, landmarks: np.ndarray, share: float = GHOST_CENTRE_SHARE) -> int:
    """Ghost rows without ground truth: rows whose landmark centre lies within ``share`` hand sizes
    of another row's of the same frame (each extra row counts once). frame (N,), landmarks (N, 21, 2) px."""
    ghosts = 0
    for f in np.unique(frame):
        kept: list[np.ndarray] = []
        for lm in landmarks[frame == f]:
            size = float(hand_diagonal(lm))
            if any(np.linalg.norm(lm.mean(0) - k.mean(0)) < share * max(size, 1.0) for k in kept):
                ghosts += 1
            else:
                kept.append(lm)
    return ghosts


def match_rows(frame: np.ndarray, landmarks: np.ndarray, gt_joints2d: np.ndarray) -> np.ndarray:
    """Which true hand each row shows: (N,) index into the GT hands, -1 for none.

    frame (N,), landmarks (N, 21, 2) px; gt_joints2d (H, T, 21, 2) px. A row goes to the nearest
    true hand by mean keypoint distance when that is below ``MATCH_SHARE`` of the hand's size.
    """
    out = np.full(len(frame), -1, np.int64)
    T = gt_joints2d.shape[1]
    for i, (f, lm) in enumerate(zip(frame, landmarks)):
        if not 0 <= f < T:
            continue
        g = gt_joints2d[:, f]                                            # (H, 21, 2)
        d = np.linalg.norm(g - lm[None], axis=-1).mean(-1)
        size = hand_diagonal(g)
        h = int(np.argmin(d))
        if d[h] <= MATCH_SHARE * size[h]:
            out[i] = h
    return out


def rotation_change_deg(R: np.ndarray) -> np.ndarray:
    """(N-1,) deg: geodesic angle between consecutive rotations R (N, 3, 3)."""
    if len(R) < 2:
        return np.zeros(0)
    M = np.swapaxes(R[:-1], -1, -2) @ R[1:]
    return np.degrees(np.arccos(np.clip((np.trace(M, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)))


def count_flips(frame: np.ndarray, R: np.ndarray, R_gt: np.ndarray | None = None) -> int:
    """Flips of one track: consecutive frames (frame[i+1] == frame[i] + 1) whose captured global
    orientation R (N, 3, 3) jumps by more than ``FLIP_DEG`` while the truth R_gt (N, 3, 3), when
    given, turns by less than ``FLIP_GT_DEG``."""
    consecutive = np.diff(frame) == 1
    jump = rotation_change_deg(R) > FLIP_DEG
    if R_gt is not None:
        jump &= rotation_change_deg(R_gt) < FLIP_GT_DEG
    return int((jump & consecutive).sum())


def pa_mpjpe_mm(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N,) mm: per-row PA-MPJPE (FreiHAND alignment) of keypoints (N, 21, 3) m."""
    return np.array([1000.0 * np.linalg.norm(align_w_scale(g, p) - g, axis=-1).mean() for p, g in zip(pred, gt)])


def rr_mpjpe_mm(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N,) mm: per-row wrist-relative MPJPE of keypoints (N, 21, 3) m."""
    return 1000.0 * np.linalg.norm((pred - pred[:, :1]) - (gt - gt[:, :1]), axis=-1).mean(-1)


def depth_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N,) relative absolute depth error of the wrist, |z − z_gt| / z_gt, keypoints (N, 21, 3) m."""
    return np.abs(pred[:, 0, 2] - gt[:, 0, 2]) / gt[:, 0, 2]


def flexion_error_on_straight(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Absolute summed-flexion errors (deg) of the fingers that are straight in the truth, flattened.

    pred, gt : (N, 16, 3) rad MANO poses.
    """
    f_gt, f_pred = summed_flexion(gt), summed_flexion(pred)
    straight = f_gt <= STRAIGHT_GT_DEG
    return np.abs(f_pred - f_gt)[straight]


def _median(x) -> float:
    x = np.asarray(x, dtype=np.float64).ravel()
    return float(np.median(x)) if x.size else float("nan")


def _mean(x) -> float:
    x = np.asarray(x, dtype=np.float64).ravel()
    return float(np.mean(x)) if x.size else float("nan")
