"""Scoring against a rendered clip's ground truth: MediaPipe alone on the clip, and a capture
(PA-MPJPE, root-relative MPJPE, global-orientation error)."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..eval.metrics import pa_mpjpe_batch
from ..geometry import hand_size as hand_size_px
from .script import load_ground_truth, rodrigues, rotation_angle_deg

def mediapipe_check(video_path: str | Path, gt: Mapping, stride: int = 1) -> dict:
    """Run the MediaPipe hand landmarker (video mode) on the decoded clip and compare with the GT.

    Every frame is fed to the tracker (so tracking behaves as in capture); every ``stride``-th
    frame is scored. Returns ``detection_rate``, ``median_err_px``, ``median_err_pct`` (of hand
    size), ``p90_err_pct`` and ``frames`` (scored).
    """
    import cv2

    from ..capture.tracking import HandDetector

    j2d = np.asarray(gt["joints2d"], dtype=np.float64)
    cap = cv2.VideoCapture(str(video_path))
    if not cap.isOpened():
        raise FileNotFoundError(f"cannot open {video_path}")
    errs, pct, found, scored = [], [], 0, 0
    with HandDetector(max_hands=1) as detector:
        t = 0
        while True:
            ok, frame = cap.read()
            if not ok or t >= len(j2d):
                break
            hands = detector.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            if t % stride == 0:
                scored += 1
                if hands:
                    found += 1
                    e = np.linalg.norm(hands[0].landmarks - j2d[t], axis=1)
                    errs.append(np.median(e))
                    pct.append(100.0 * np.median(e) / hand_size_px(j2d[t]))
            t += 1
    cap.release()
    return {"frames": scored, "detection_rate": found / max(scored, 1),
            "median_err_px": float(np.median(errs)) if errs else float("nan"),
            "median_err_pct": float(np.median(pct)) if pct else float("nan"),
            "p90_err_pct": float(np.percentile(pct, 90)) if pct else float("nan")}


def _field(obj, name):
    if isinstance(obj, Mapping) or hasattr(obj, "files"):
        return obj[name] if name in (obj.keys() if isinstance(obj, Mapping) else obj.files) else None
    return getattr(obj, name, None)


def evaluate_take_against_gt(take, gt) -> dict:
    """PA-MPJPE and global-orientation error of a capture of the sample clip.

    Parameters
    ----------
    take : a ``dahyf.Take``, a mapping, or the path of a take ``.npz``: needs ``pose`` (N, 16, 3)
        and ``joints3d`` (N, 21, 3) m; uses ``frame`` (N,) and ``track`` (N,) when present (the
        right-hand track, else the longest, is scored).
    gt : the GT mapping or the path of ``open_hand_sample_gt.npz``.

    Returns
    -------
    dict with ``pa_mpjpe_mm`` (mean over frames of the mean joint error after similarity
    alignment, 21 keypoints), ``orient_err_deg_median`` (median geodesic angle between captured
    and true global orientation), ``rr_mpjpe_mm`` (wrist-relative MPJPE) and ``frames`` (scored).
    """
    if isinstance(gt, (str, Path)):
        gt = load_ground_truth(gt)
    if isinstance(take, (str, Path)):
        with np.load(take, allow_pickle=False) as z:
            take = {k: z[k] for k in z.files}
    pose = np.asarray(_field(take, "pose"), dtype=np.float64)
    j3d = np.asarray(_field(take, "joints3d"), dtype=np.float64)
    N = len(pose)
    frame = _field(take, "frame")
    frame = np.arange(N) if frame is None else np.asarray(frame, dtype=np.int64)
    track = _field(take, "track")
    keep = np.ones(N, bool)
    if track is not None:
        track = np.asarray(track)
        hd = _field(take, "handedness")
        tracks = np.unique(track)
        choice = None
        if hd is not None:
            hd = [str(h) for h in np.asarray(hd).ravel()]
            rights = [t for t in tracks if int(t) < len(hd) and hd[int(t)] == "right"]
            choice = rights[0] if rights else None
        if choice is None:
            choice = tracks[np.argmax([(track == t).sum() for t in tracks])]
        keep = track == choice
    T = len(gt["pose"])
    keep &= (frame >= 0) & (frame < T)
    pose, j3d, frame = pose[keep], j3d[keep], frame[keep]
    if len(frame) == 0:
        raise ValueError("the take has no frame of the sample clip to score")
    gj = np.asarray(gt["joints3d"], dtype=np.float64)[frame]
    gpose = np.asarray(gt["pose"], dtype=np.float64)[frame]
    pa = pa_mpjpe_batch(gj, j3d)
    rr = np.linalg.norm((j3d - j3d[:, :1]) - (gj - gj[:, :1]), axis=2).mean(1)
    ang = rotation_angle_deg(rodrigues(pose[:, 0]), rodrigues(gpose[:, 0]))
    return {"pa_mpjpe_mm": float(1000 * np.mean(pa)), "rr_mpjpe_mm": float(1000 * np.mean(rr)),
            "orient_err_deg_median": float(np.median(ang)), "frames": int(len(frame))}
