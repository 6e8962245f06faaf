"""Measure the MediaPipe hand landmarker's 2-D error on real images, for the synthetic noise model.

Runs the real landmarker (MediaPipe Tasks ``HandLandmarker``, image mode) on the
annotated FreiHAND images in ``../shared/media/freihand`` (COCO-style json, same keypoint order as
MediaPipe) and writes per-keypoint error statistics in units of *hand size* (the longer side of the
ground-truth keypoints' bounding box) to ``engine/assets/landmark_noise.json``.

The set is tiny (8 images, 2 distinct poses), so the per-keypoint spreads are regularised:
the error is split into a whole-hand 2-D similarity (shift, scale, rotation: one number each) and
a per-keypoint residual; each keypoint's residual variance is shrunk towards the pooled variance
of its keypoint group (wrist / finger bases / middle joints / end joints / tips) with a prior
weight of ``PRIOR_COUNT`` samples, then floored at ``MIN_SIGMA``. Heavier tails and a per-sample
difficulty scale are added by the sampler (see :mod:`dahyf.train.synthetic`), not fitted here.

Usage: ``python -m dahyf.train.noise_calibration [FREIHAND_DIR] [--out PATH]``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..assets import LANDMARK_NOISE
from ..eval.freihand_images import load_freihand, run_mediapipe
from ..fileio import atomic_write_text
from ..geometry import hand_size
from ..hand.tables import KEYPOINT_NAMES, NUM_KEYPOINTS

DEFAULT_OUT = LANDMARK_NOISE
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


def calibrate(folder: Path) -> dict:
    """Measure the landmark error and build the regularised noise model (a json-able dict).

    The error is split into a whole-hand 2-D similarity (shift, scale, in-plane rotation) and the
    per-keypoint residual after removing it; both are stored in hand sizes (rotation in degrees).
    """
    samples = load_freihand(folder)
    preds = run_mediapipe([p for p, _ in samples])
    raw, resid, shifts, log_scales, rots, found = [], [], [], [], [], []
    for (path, gt), pred in zip(samples, preds):
        if pred is None:
            continue
        hs = hand_size(gt)
        aligned, scale, rot, shift = similarity_align_2d(pred, gt)
        raw.append((pred - gt) / hs)
        resid.append((aligned - gt) / hs)
        shifts.append(shift / hs)
        log_scales.append(np.log(scale))
        rots.append(np.degrees(rot))
        found.append(path.name)
    if len(raw) < 2:
        raise RuntimeError(f"MediaPipe found a hand in only {len(raw)} of {len(samples)} images; cannot calibrate.")
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
    rnd = lambda x: [round(float(v), 5) for v in np.ravel(x)]  # noqa: E731
    return {
        "description": "MediaPipe hand landmarker 2-D error on real FreiHAND images, in hand sizes "
                       "(longer side of the GT keypoint bounding box), split into a whole-hand similarity "
                       "(shift, log-scale, in-plane rotation) and a per-keypoint residual. "
                       "sigma: regularised per-axis std of the residual per keypoint.",
        "source": "MediaPipe Tasks HandLandmarker (image mode, the bundled hand_landmarker.task) on ../shared/media/freihand (2x upscaled)",
        "images_found": found,
        "images_total": len(samples),
        "distinct_poses": 2,
        "keypoint_names": list(KEYPOINT_NAMES),
        "sigma": rnd(sigma),
        "residual_rms": rnd(np.sqrt(var_k)),
        "shift_std": round(float(np.sqrt((np.stack(shifts) ** 2).mean())), 5),
        "log_scale_std": round(float(np.sqrt((np.array(log_scales) ** 2).mean())), 5),
        "rotation_std_deg": round(float(np.sqrt((np.array(rots) ** 2).mean())), 3),
        "median_error": round(float(np.median(dist)), 5),
        "median_residual_error": round(float(np.median(rdist)), 5),
        "p90_error": round(float(np.quantile(dist, 0.9)), 5),
        "mean_bias": [rnd(b) for b in e.mean(axis=0)],
        "regularisation": {"prior_count": PRIOR_COUNT, "min_sigma": MIN_SIGMA, "groups": GROUPS},
    }


def load_noise_model(path: Path | None = None) -> dict:
    """Read the calibrated noise model json (default: the shipped asset)."""
    path = Path(path) if path is not None else DEFAULT_OUT
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `python -m dahyf.train.noise_calibration` to measure it.")
    return json.loads(path.read_text())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("freihand", nargs="?", default=str(Path(__file__).resolve().parents[2].parent / "shared" / "media" / "freihand"))
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    args = ap.parse_args(argv)
    model = calibrate(Path(args.freihand))
    atomic_write_text(args.out, json.dumps(model, indent=1) + "\n")
    print(f"{len(model['images_found'])}/{model['images_total']} images; median error {model['median_error']:.4f} "
          f"hand sizes; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
