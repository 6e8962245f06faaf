"""Measure the MediaPipe hand landmarker against ground truth, for the landmark engine's inputs and
its synthetic training noise.

Two measurements, two files beside each other in ``engine/assets``:

1. ``landmark_rendered.json`` — on the bundled sample clip (rendered from the open hand model, exact
   3-D ground truth; MediaPipe Tasks in video mode, as in a capture): the **landmark map**, the
   **world-landmark noise** and, for reference, the 2-D residual. MediaPipe places its keypoints
   where its annotators did, not at the hand model's joints: its fingertip sits ~30 % of the last
   phalanx short of the model's tip, its PIP joint further out … (measured: the last segment comes
   out at 0.66–0.72 of its length on every rendered clip, the proximal one at 1.1–1.2). A
   straight finger whose projection is that much shorter looks bent — the "half-curled open
   hand". The map ``M`` (21 × 21) writes each MediaPipe keypoint as a combination of the model's
   keypoint, its parent and its children (coefficients summing to 1, ridge towards the identity),
   fitted by least squares on the 2-D keypoints in hand sizes; the engine applies ``M⁻¹`` to the
   landmarks it gets (``dahyf.net.landmark_inputs.apply_landmark_map``), and synthetic training hands are
   drawn in the model's convention. The world landmarks (MediaPipe's metric 3-D hand, camera
   axes, hand-centred) are compared with the model keypoints in the camera frame after ``M⁻¹``:
   per frame a lateral scale, a depth scale (how much of the true depth extent they show) and the
   per-keypoint residual; the synthetic world landmarks of training are drawn from these.
2. ``landmark_noise.json`` — on the annotated FreiHAND images in ``../shared/media/freihand`` (real
   hands, 2-D ground truth; image mode): the 2-D error of MediaPipe's landmarks as they come, in
   units of *hand size* (the longer side of the ground-truth keypoints' bounding box): the
   training noise. Not after the landmark map: on these real hands the map makes the error larger
   (median 0.114 → 0.126 hand sizes), and a network trained on that noise was no better than the
   shipped one given the map (benchmarks/fidelity.md).

The set is tiny (8 images, 2 distinct poses), so the per-keypoint spreads are regularised:
the error is split into a whole-hand 2-D similarity (shift, scale, rotation: one number each) and
a per-keypoint residual; each keypoint's residual variance is shrunk towards the pooled variance
of its keypoint group (wrist / finger bases / middle joints / end joints / tips) with a prior
weight of ``PRIOR_COUNT`` samples, then floored at ``MIN_SIGMA``. Heavier tails and a per-sample
difficulty scale are added by the sampler (see :mod:`dahyf.train.synthetic`), not fitted here.

Usage: ``python -m dahyf.train.noise_calibration [FREIHAND_DIR] [--out PATH] [--rendered-out PATH]``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..assets import LANDMARK_NOISE, LANDMARK_RENDERED
from ..eval.bench_fidelity import DEFAULT_FREIHAND
from ..eval.freihand_images import load_freihand, run_mediapipe
from ..fileio import atomic_write_text
from ..geometry import hand_size
from ..hand.tables import KEYPOINT_NAMES, KEYPOINT_PARENTS, NUM_KEYPOINTS

DEFAULT_OUT = LANDMARK_NOISE
DEFAULT_RENDERED_OUT = LANDMARK_RENDERED
#: Ridge weight of the landmark map's fit (per sample, towards the identity): keeps the wrist's
#: combination of the four nearly collinear finger bases from blowing up.
MAP_RIDGE = 1e-3
#: Keypoint groups for pooling: wrist, then finger keypoint 1, 2, 3, 4 (tip) across the 5 fingers.
GROUPS = {"wrist": [0]} | {f"joint{j}": [1 + 4 * f + (j - 1) for f in range(5)] for j in range(1, 5)}
#: Prior weight (in samples) of the group variance when shrinking a keypoint's variance.
PRIOR_COUNT = 8.0
#: Smallest per-axis standard deviation kept, in hand sizes (MediaPipe is never better than this).
MIN_SIGMA = 0.01


def similarity_align_2d(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, float, float, np.ndarray]:
    """Best 2-D similarity (Umeyama) mapping ``pred`` onto ``gt``.

    Parameters
    ----------
    pred, gt : (21, 2) px.

    Returns
    -------
    aligned (21, 2) px, scale (gt per pred), rotation (rad, pred → gt), shift (2,) px of the centroids (pred − gt).
    """
    mp, mg = pred.mean(0), gt.mean(0)
    P, G = pred - mp, gt - mg
    U, S, Vt = np.linalg.svd(P.T @ G)
    d = np.sign(np.linalg.det(U @ Vt))
    D = np.diag([1.0, d])
    R = U @ D @ Vt
    scale = float((S * np.diag(D)).sum() / (P ** 2).sum())
    return scale * P @ R + mg, scale, float(np.arctan2(R[0, 1], R[0, 0])), mp - mg


def map_neighbours(k: int) -> list[int]:
    """The model keypoints whose combination with keypoint ``k`` makes MediaPipe's keypoint ``k``:
    the wrist ← the five finger bases; a finger keypoint ← its parent and its child (a tip: its
    parent and grandparent)."""
    if KEYPOINT_PARENTS[k] < 0:
        return [c for c in range(NUM_KEYPOINTS) if KEYPOINT_PARENTS[c] == k]
    out = [KEYPOINT_PARENTS[k]] + [c for c in range(NUM_KEYPOINTS) if KEYPOINT_PARENTS[c] == k]
    if len(out) == 1:
        out.append(KEYPOINT_PARENTS[out[0]])
    return out


def fit_landmark_map(landmarks: np.ndarray, keypoints2d: np.ndarray, ridge: float = MAP_RIDGE) -> np.ndarray:
    """The landmark map ``M`` with ``landmarks ≈ M @ keypoints2d`` (rows summing to 1).

    Parameters
    ----------
    landmarks : (N, 21, 2) px, MediaPipe's; keypoints2d : (N, 21, 2) px, the model's projected keypoints.
    ridge : weight (per sample) of a penalty on the off-diagonal coefficients.

    Returns
    -------
    (21, 21): row k has non-zeros only at k and :func:`map_neighbours` (k).
    """
    lm, g = np.asarray(landmarks, np.float64), np.asarray(keypoints2d, np.float64)
    s = hand_size(g)[:, None]
    M = np.eye(NUM_KEYPOINTS)
    for k in range(NUM_KEYPOINTS):
        nb = map_neighbours(k)
        X = np.stack([(g[:, j] - g[:, k]) / s for j in nb], -1).reshape(-1, len(nb))
        y = ((lm[:, k] - g[:, k]) / s).reshape(-1)
        a = np.linalg.solve(X.T @ X + ridge * len(y) * np.eye(len(nb)), X.T @ y)
        M[k, nb] = a
        M[k, k] = 1.0 - a.sum()
    return M


def noise_statistics(preds: list[np.ndarray], gts: list[np.ndarray]) -> dict:
    """The 2-D error of landmark sets against ground truth, split into a whole-hand similarity
    (shift, log-scale, in-plane rotation) and the per-keypoint residual after removing it, in hand
    sizes (rotation in degrees); the per-keypoint residual std is regularised (module docstring).

    preds, gts : lists of (21, 2) px (at least 2).
    """
    raw, resid, shifts, log_scales, rots = [], [], [], [], []
    for pred, gt in zip(preds, gts):
        hs = hand_size(gt)
        aligned, scale, rot, shift = similarity_align_2d(pred, gt)
        raw.append((pred - gt) / hs)
        resid.append((aligned - gt) / hs)
        shifts.append(shift / hs)
        log_scales.append(np.log(scale))
        rots.append(np.degrees(rot))
    e, r = np.stack(raw), np.stack(resid)  # (N, 21, 2) hand sizes
    n = r.shape[0]
    var_k = (r ** 2).mean(axis=(0, 2))  # per keypoint, per-axis residual variance about zero
    sigma = np.zeros(NUM_KEYPOINTS)
    for idx in GROUPS.values():
        pooled = var_k[idx].mean()
        for k in idx:
            sigma[k] = np.sqrt((n * var_k[k] + PRIOR_COUNT * pooled) / (n + PRIOR_COUNT))
    sigma = np.maximum(sigma, MIN_SIGMA)
    dist = np.linalg.norm(e, axis=-1)
    rdist = np.linalg.norm(r, axis=-1)
    return {
        "keypoint_names": list(KEYPOINT_NAMES),
        "sigma": _rnd(sigma),
        "residual_rms": _rnd(np.sqrt(var_k)),
        "shift_std": round(float(np.sqrt((np.stack(shifts) ** 2).mean())), 5),
        "log_scale_std": round(float(np.sqrt((np.array(log_scales) ** 2).mean())), 5),
        "rotation_std_deg": round(float(np.sqrt((np.array(rots) ** 2).mean())), 3),
        "median_error": round(float(np.median(dist)), 5),
        "median_residual_error": round(float(np.median(rdist)), 5),
        "p90_error": round(float(np.quantile(dist, 0.9)), 5),
        "mean_bias": [_rnd(b) for b in e.mean(axis=0)],
    }


def _mediapipe_version() -> str:
    import mediapipe

    return str(mediapipe.__version__)


def _rnd(x) -> list:
    return [round(float(v), 5) for v in np.ravel(x)]


def calibrate(folder: Path) -> dict:
    """Measure the landmark error on the FreiHAND images and build the regularised noise model (a
    json-able dict)."""
    samples = load_freihand(folder)
    preds = run_mediapipe([p for p, _ in samples])
    found, P, G = [], [], []
    for (path, gt), pred in zip(samples, preds):
        if pred is None:
            continue
        P.append(pred)
        G.append(gt)
        found.append(path.name)
    if len(P) < 2:
        raise RuntimeError(f"MediaPipe found a hand in only {len(P)} of {len(samples)} images; cannot calibrate.")
    return {
        "description": "MediaPipe hand landmarker 2-D error on real FreiHAND images, in hand sizes "
                       "(longer side of the GT keypoint bounding box), split into a whole-hand similarity "
                       "(shift, log-scale, in-plane rotation) and a per-keypoint residual. "
                       "sigma: regularised per-axis std of the residual per keypoint.",
        "source": "MediaPipe Tasks HandLandmarker (image mode, the bundled hand_landmarker.task) on ../shared/media/freihand (2x upscaled)",
        "images_found": found,
        "images_total": len(samples),
        "distinct_poses": 2,
        **noise_statistics(P, G),
        "regularisation": {"prior_count": PRIOR_COUNT, "min_sigma": MIN_SIGMA, "groups": GROUPS},
    }


def mediapipe_on_clip(video: Path) -> dict[str, np.ndarray]:
    """MediaPipe Tasks (video mode, as a capture runs it) on a one-hand clip: frame (N,), landmarks
    (N, 21, 2) px and world landmarks (N, 21, 3) m of the frames where it found the hand."""
    import cv2

    from ..capture.tracking import HandDetector
    from ..capture.video import VideoReader

    frames, lm, world = [], [], []
    with HandDetector(max_hands=1) as det:
        for f in VideoReader(video):
            found = det.detect(cv2.cvtColor(f.image, cv2.COLOR_BGR2RGB), 1000.0 * f.time_s)
            if found and found[0].world_landmarks is not None:
                frames.append(f.index)
                lm.append(found[0].landmarks)
                world.append(found[0].world_landmarks)
    return {"frame": np.array(frames, np.int64), "landmarks": np.array(lm, np.float64).reshape(-1, 21, 2),
            "world": np.array(world, np.float64).reshape(-1, 21, 3)}


def world_statistics(world: np.ndarray, joints3d: np.ndarray) -> dict:
    """How MediaPipe's world landmarks (N, 21, 3) m (in the model's keypoint convention) relate to the
    true keypoints (N, 21, 3) m in the camera frame, both centred: per frame the lateral scale
    ``s = <W_xy, X_xy> / |X_xy|²``, the depth scale ``c = <W_z, X_z> / (s |X_z|²)`` (1: the true depth
    extent, 0: flat) and the per-keypoint residual of ``W − s (X_x, X_y, c X_z)``, metres."""
    W = world - world.mean(1, keepdims=True)
    X = joints3d - joints3d.mean(1, keepdims=True)
    s = (W[..., :2] * X[..., :2]).sum((1, 2)) / (X[..., :2] ** 2).sum((1, 2))
    c = (W[..., 2] * X[..., 2]).sum(1) / (s * (X[..., 2] ** 2).sum(1))
    r = W - s[:, None, None] * X * np.stack([np.ones_like(c), np.ones_like(c), c], -1)[:, None]
    return {
        "lateral_scale_mean": round(float(s.mean()), 4), "lateral_scale_std": round(float(s.std()), 4),
        "depth_scale_mean": round(float(c.mean()), 4), "depth_scale_std": round(float(c.std()), 4),
        "depth_scale_quantiles_10_50_90": _rnd(np.quantile(c, [0.1, 0.5, 0.9])),
        "residual_std_xy_m": round(float(np.sqrt((r[..., :2] ** 2).mean())), 5),
        "residual_std_z_m": round(float(np.sqrt((r[..., 2] ** 2).mean())), 5),
        "frames": int(len(W)),
    }


def calibrate_rendered(video: Path, gt: dict) -> dict:
    """The landmark map, the world-landmark noise and the 2-D residual of MediaPipe on a rendered
    one-hand clip with exact ground truth (``gt``: joints2d (T, 21, 2) px, joints3d (T, 21, 3) m)."""
    from ..net.landmark_inputs import apply_landmark_map

    mp = mediapipe_on_clip(video)
    if len(mp["frame"]) < 20:
        raise RuntimeError(f"MediaPipe found the hand in only {len(mp['frame'])} frames of {video}; cannot calibrate.")
    g2 = np.asarray(gt["joints2d"], np.float64)[mp["frame"]]
    g3 = np.asarray(gt["joints3d"], np.float64)[mp["frame"]]
    M = fit_landmark_map(mp["landmarks"], g2)
    inv = np.linalg.inv(M)
    mapped = apply_landmark_map(mp["landmarks"], inv)
    err = lambda a: float(np.median(np.linalg.norm(a - g2, axis=-1).mean(-1) / hand_size(g2)))  # noqa: E731
    two_d = noise_statistics(list(mapped), list(g2))
    return {
        "description": "MediaPipe against exact ground truth on a clip rendered from the open hand model. "
                       "landmark_map M: MediaPipe keypoints = M @ model keypoints (rows sum to 1); the engine "
                       "applies inv(M) to its inputs. world: MediaPipe world landmarks (after inv(M)) against the "
                       "true keypoints, camera frame, centred: lateral scale s, depth scale c, residual (m). "
                       "two_d: the 2-D error after inv(M), in hand sizes (reference; training uses landmark_noise.json).",
        "source": f"MediaPipe Tasks HandLandmarker (video mode, the bundled hand_landmarker.task) on {Path(video).name}",
        "mediapipe": _mediapipe_version(),
        "frames_found": int(len(mp["frame"])),
        "map_ridge": MAP_RIDGE,
        "landmark_map": [[round(float(v), 5) for v in row] for row in M],
        "mean_error_per_hand_size": {"raw": round(err(mp["landmarks"]), 5), "after_map": round(err(mapped), 5)},
        "world": world_statistics(apply_landmark_map(mp["world"], inv), g3),
        "two_d": two_d,
    }


def load_noise_model(path: Path | None = None) -> dict:
    """Read the calibrated noise model json (default: the shipped asset)."""
    path = Path(path) if path is not None else DEFAULT_OUT
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `python -m dahyf.train.noise_calibration` to measure it.")
    return json.loads(path.read_text())


def load_rendered_calibration(path: Path | None = None) -> dict:
    """Read ``landmark_rendered.json`` (the landmark map and the world-landmark noise)."""
    return load_noise_model(Path(path) if path is not None else DEFAULT_RENDERED_OUT)


def landmark_map(calibration: dict | None = None) -> np.ndarray:
    """(21, 21) the landmark map of a rendered calibration (default: the shipped one)."""
    cal = calibration if calibration is not None else load_rendered_calibration()
    return np.asarray(cal["landmark_map"], np.float64)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("freihand", nargs="?", default=str(DEFAULT_FREIHAND))
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--rendered-out", default=str(DEFAULT_RENDERED_OUT))
    args = ap.parse_args(argv)
    from ..sample_video import SAMPLE_GT, SAMPLE_VIDEO, load_ground_truth

    rendered = calibrate_rendered(SAMPLE_VIDEO, load_ground_truth(SAMPLE_GT))
    atomic_write_text(args.rendered_out, json.dumps(rendered, indent=1) + "\n")
    print(f"{rendered['frames_found']} frames; MediaPipe vs the model's keypoints {rendered['mean_error_per_hand_size']} "
          f"hand sizes; world depth scale {rendered['world']['depth_scale_quantiles_10_50_90']}; wrote {args.rendered_out}")
    model = calibrate(Path(args.freihand))
    atomic_write_text(args.out, json.dumps(model, indent=1) + "\n")
    print(f"{len(model['images_found'])}/{model['images_total']} images; median error {model['median_error']:.4f} "
          f"hand sizes; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
