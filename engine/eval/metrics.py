"""Evaluation metrics, computed as the official FreiHAND evaluation code does (and HO3D's, which reuses it).

FreiHAND protocol (Zimmermann et al., ICCV 2019, the published ``eval.py``):

* **Procrustes alignment with scale** (``align_w_scale``): centre both point sets, divide each by its
  Frobenius norm, solve the orthogonal Procrustes problem ``R, s = argmin ‖A R − B‖`` (SVD), then map
  the prediction into the ground truth's frame: ``P' = (P̂ Rᵀ) · s · ‖G‖ + mean(G)``. Joints and
  vertices are aligned separately.
* **PA-MPJPE / PA-MPVPE**: mean Euclidean distance after alignment (reported in mm).
* **AUC** of the PCK curve over 100 thresholds evenly spaced in [0, 50] mm (trapezoid rule divided by
  the range); PCK per keypoint, averaged over keypoints.
* **F-score** at 5 and 15 mm on the aligned vertices: precision = share of predicted vertices within
  the threshold of the ground-truth cloud, recall = share of ground-truth vertices within it of the
  prediction, F = 2PR / (P + R).

HO3D (Hampali et al., CVPR 2020) evaluates with the same functions, and also reports errors after
aligning only scale and translation, and after aligning the root joint. All functions take metres and
return metres unless named ``*_mm``.
"""
from __future__ import annotations

import numpy as np

from ..geometry import procrustes_align as align_w_scale  # noqa: F401  (FreiHAND's name; the formula lives there)

#: PCK / AUC range and resolution of the official scripts.
AUC_MIN_M, AUC_MAX_M, AUC_STEPS = 0.0, 0.05, 100
#: F-score thresholds of the official scripts, metres.
FSCORE_THRESHOLDS_M = (0.005, 0.015)


def align_sc_tr(gt: np.ndarray, pred: np.ndarray, root: int = 0, scale_joint: int = 9) -> np.ndarray:
    """Align scale and translation only, as HO3D's ``align_sc_tr``.

    The prediction is scaled so that its bone ``root → scale_joint`` (wrist → middle-finger MCP in the
    FreiHAND keypoint order) has the ground truth's length, then translated so that its root lands on
    the ground truth's root. A zero-length predicted bone is not rescaled (as the official code).

    gt, pred : (21, 3) m, FreiHAND keypoint order. Returns (21, 3) m.
    """
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    s = np.linalg.norm(pred[scale_joint] - pred[root])
    p = pred / s if s > 0 else pred
    p = p * np.linalg.norm(gt[scale_joint] - gt[root])
    return p - p[root] + gt[root]


def point_errors(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(N,) m, Euclidean distance per point."""
    return np.linalg.norm(np.asarray(gt, np.float64) - np.asarray(pred, np.float64), axis=-1)


def pck_curve(errors: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """PCK per threshold as the official EvalUtil: per-keypoint share of errors ≤ t, averaged over keypoints.

    errors : (S, K) m (S samples, K keypoints); thresholds : (T,) m. Returns (T,).
    """
    errors = np.asarray(errors, dtype=np.float64)
    per_kp = (errors[None, :, :] <= thresholds[:, None, None]).mean(axis=1)  # (T, K)
    return per_kp.mean(axis=1)


#: The trapezoidal rule: ``np.trapezoid`` (numpy >= 2.0), ``np.trapz`` before (deprecated in 2.0).
trapezoid = getattr(np, "trapezoid", None) or np.trapz


def auc(errors: np.ndarray, val_min: float = AUC_MIN_M, val_max: float = AUC_MAX_M, steps: int = AUC_STEPS) -> float:
    """Area under the PCK curve, normalised to [0, 1] (``trapezoid(pck, t) / trapezoid(1, t)``).

    errors : (S, K) m.
    """
    t = np.linspace(val_min, val_max, steps)
    return float(trapezoid(pck_curve(errors, t), t) / trapezoid(np.ones_like(t), t))


def fscore(gt: np.ndarray, pred: np.ndarray, threshold: float) -> float:
    """F-score of two point clouds at ``threshold`` m (nearest-neighbour distances both ways).

    gt : (N, 3) m; pred : (M, 3) m.
    """
    from scipy.spatial import cKDTree

    d_pred = cKDTree(gt).query(pred)[0]  # each predicted point → gt
    d_gt = cKDTree(pred).query(gt)[0]  # each gt point → prediction
    precision = float(np.mean(d_pred < threshold))
    recall = float(np.mean(d_gt < threshold))
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def evaluate_freihand(gt_joints, pred_joints, gt_verts=None, pred_verts=None) -> dict[str, float]:
    """The FreiHAND metrics over a set of samples.

    Parameters
    ----------
    gt_joints, pred_joints : (S, 21, 3) m.
    gt_verts, pred_verts : (S, V, 3) m, optional.

    Returns
    -------
    dict with ``pa_mpjpe_mm``, ``auc_joints`` and, when vertices are given, ``pa_mpvpe_mm``,
    ``auc_verts``, ``f5``, ``f15``; plus ``num_samples``.
    """
    gt_joints = np.asarray(gt_joints, dtype=np.float64)
    pred_joints = np.asarray(pred_joints, dtype=np.float64)
    if gt_joints.shape != pred_joints.shape:
        raise ValueError(f"joint arrays differ in shape: gt {gt_joints.shape}, pred {pred_joints.shape}")
    jerr = np.stack([point_errors(g, align_w_scale(g, p)) for g, p in zip(gt_joints, pred_joints)])
    out = {"num_samples": int(len(gt_joints)), "pa_mpjpe_mm": float(jerr.mean() * 1000), "auc_joints": auc(jerr)}
    if gt_verts is not None and pred_verts is not None:
        gt_verts = np.asarray(gt_verts, dtype=np.float64)
        pred_verts = np.asarray(pred_verts, dtype=np.float64)
        if gt_verts.shape != pred_verts.shape:
            raise ValueError(f"vertex arrays differ in shape: gt {gt_verts.shape}, pred {pred_verts.shape}")
        verr, f5, f15 = [], [], []
        for g, p in zip(gt_verts, pred_verts):
            a = align_w_scale(g, p)
            verr.append(point_errors(g, a))
            f5.append(fscore(g, a, FSCORE_THRESHOLDS_M[0]))
            f15.append(fscore(g, a, FSCORE_THRESHOLDS_M[1]))
        verr = np.stack(verr)
        out.update(pa_mpvpe_mm=float(verr.mean() * 1000), auc_verts=auc(verr),
                   f5=float(np.mean(f5)), f15=float(np.mean(f15)))
    return out


def evaluate_ho3d(gt_joints, pred_joints, gt_verts=None, pred_verts=None, root: int = 0) -> dict[str, float]:
    """HO3D metrics: the FreiHAND set plus scale-translation-aligned and root-aligned joint errors.

    Inputs as :func:`evaluate_freihand` (HO3D's OpenGL frame or OpenCV frame: the aligned metrics do not
    depend on it; the root-aligned one needs both sets in the same frame). Adds ``mpjpe_sc_tr_mm``
    (HO3D's scale + translation alignment: wrist → middle-MCP bone length and the root) and
    ``mpjpe_root_mm`` (root joint aligned).
    """
    out = evaluate_freihand(gt_joints, pred_joints, gt_verts, pred_verts)
    gt = np.asarray(gt_joints, np.float64)
    pr = np.asarray(pred_joints, np.float64)
    sc = np.stack([point_errors(g, align_sc_tr(g, p, root)) for g, p in zip(gt, pr)])
    rr = np.stack([point_errors(g - g[root], p - p[root]) for g, p in zip(gt, pr)])
    out.update(mpjpe_sc_tr_mm=float(sc.mean() * 1000), auc_joints_sc_tr=auc(sc), mpjpe_root_mm=float(rr.mean() * 1000))
    return out


def epe_2d(gt: np.ndarray, pred: np.ndarray, visible: np.ndarray | None = None) -> float:
    """Mean 2-D end-point error in px.

    gt, pred : (S, K, 2) px; visible : (S, K) bool, default all.
    """
    err = np.linalg.norm(np.asarray(gt, np.float64) - np.asarray(pred, np.float64), axis=-1)
    if visible is None:
        return float(err.mean())
    v = np.asarray(visible, bool)
    return float(err[v].mean()) if v.any() else float("nan")


def pa_mpjpe_batch(gt, pred) -> np.ndarray:
    """(S,) m, PA-MPJPE of each sample (for training curves). gt, pred : (S, N, 3) m."""
    gt = np.asarray(gt, np.float64)
    pred = np.asarray(pred, np.float64)
    return np.array([point_errors(g, align_w_scale(g, p)).mean() for g, p in zip(gt, pred)])
