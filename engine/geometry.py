"""Camera and hand geometry shared by the engine: one formula each, numpy or torch alike.

Conventions (DESIGN.md §3): OpenCV camera (x right, y down, z forward), square pixels, principal
point at the image centre, focal length in pixels. Image sizes are (W, H) px.
"""
from __future__ import annotations

import math

import numpy as np

from .backend import namespace

#: Depths are clamped to at least this before dividing, m (keeps projections and gradients finite).
MIN_DEPTH = 1e-3
#: A focal length below this fraction of the image's longer side (px) is refused: it is almost
#: surely a lens focal length in millimetres (e.g. 26) given where pixels are expected.
MIN_FOCAL_FRACTION = 0.1


def default_focal(image_size):
    """Focal length used when the camera is unknown: ``f = sqrt(W² + H²)`` px.

    Parameters
    ----------
    image_size : (W, H) px as a pair of numbers, or an array (..., 2) px.

    Returns
    -------
    float px for a pair; (...,) px array for an array.
    """
    if isinstance(image_size, (tuple, list)):
        return float(math.hypot(*image_size))
    xp = namespace(image_size)
    if not xp.isdtype(image_size.dtype, "real floating"):
        image_size = xp.astype(image_size, xp.float32)
    return xp.linalg.vector_norm(image_size, axis=-1)


def check_focal(focal: float, image_size) -> float:
    """``focal`` (px) if plausible for an image of ``image_size`` (W, H) px, else ValueError.

    A focal length below ``MIN_FOCAL_FRACTION · max(W, H)`` px (a field of view over ~157°) is
    refused with a message about pixels vs millimetres.
    """
    focal = float(focal)
    lowest = MIN_FOCAL_FRACTION * max(image_size)
    if not math.isfinite(focal) or focal < lowest:
        raise ValueError(
            f"focal {focal:g} px is implausible for a {image_size[0]}x{image_size[1]} video (at least "
            f"{lowest:g} px expected). The focal length is in pixels, not millimetres: for a lens of F mm on "
            f"a sensor W_s mm wide, focal_px = F / W_s x {image_size[0]}; or leave it out for sqrt(W^2 + H^2).")
    return focal


def _per_batch(xp, value, like, trailing: int):
    """A scalar, or an array (B,) / (B, k) given per batch item, broadcast against ``like`` (B, N, ...)."""
    if isinstance(value, (int, float)):
        return value
    value = xp.asarray(value, dtype=like.dtype) if not hasattr(value, "shape") else value
    if value.ndim == 0:
        return value
    return value[(..., *([None] * trailing))]


def project_points(points, focal, image_size, min_depth: float = MIN_DEPTH):
    """Pinhole projection into the image, principal point at the image centre.

    Parameters
    ----------
    points : (..., N, 3) m, camera coordinates.
    focal : px, a number or (...,) per leading item.
    image_size : (W, H) px, a pair or (..., 2) per leading item.
    min_depth : m, depths are clamped to at least this.

    Returns
    -------
    (..., N, 2) px, ``u = f X / Z + W/2``, ``v = f Y / Z + H/2``.
    """
    xp = namespace(points)
    f = _per_batch(xp, focal, points, 2)
    if isinstance(image_size, (tuple, list)):
        centre = xp.asarray([image_size[0] / 2.0, image_size[1] / 2.0], dtype=points.dtype)
    else:
        centre = image_size[..., None, :] / 2
    z = xp.clip(points[..., 2:3], min=min_depth)
    return f * points[..., :2] / z + centre


def project_with_intrinsics(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pinhole projection with a full intrinsics matrix (datasets' cameras: any principal point).

    Parameters
    ----------
    points : (N, 3) m, camera coordinates; K : (3, 3) intrinsics, px.

    Returns
    -------
    (N, 2) px, ``(K X)_xy / (K X)_z``.
    """
    p = points @ K.T
    return p[:, :2] / p[:, 2:3]


def project_points_jacobian(points, focal, min_depth: float = MIN_DEPTH):
    """Derivative of :func:`project_points` with respect to the points.

    Parameters
    ----------
    points : (B, N, 3) m; focal : (B,) px.

    Returns
    -------
    (B, N, 2, 3) px / m: ``[[f/Z, 0, −f X/Z²], [0, f/Z, −f Y/Z²]]``.
    """
    xp = namespace(points)
    z = xp.clip(points[..., 2:], min=min_depth)
    xy = points[..., :2] / z
    fz = (focal[:, None, None] / z)[..., None]                      # (B, N, 1, 1)
    eye2 = xp.broadcast_to(xp.eye(2, dtype=points.dtype), (*points.shape[:-1], 2, 2))
    return xp.concat([eye2, -xy[..., None]], axis=-1) * fz


def hand_size(points2d):
    """Hand size in px: the longer side of the 2-D keypoints' bounding box (see :func:`hand_diagonal`).

    Parameters
    ----------
    points2d : (..., 21, 2) px.

    Returns
    -------
    (...,) px.
    """
    xp = namespace(points2d)
    return xp.max(xp.max(points2d, axis=-2) - xp.min(points2d, axis=-2), axis=-1)


def hand_diagonal(points2d) -> np.ndarray:
    """The diagonal of the 2-D keypoints' bounding box, px: the hand size of the tracker's and the
    fidelity benchmark's distance thresholds (their shares were tuned in it; :func:`hand_size`, the
    longer side, is the one of the estimator, the focal pass and the capture benchmark).

    points2d : (..., 21, 2) px, numpy → (...,) px in their dtype.
    """
    p = np.asarray(points2d)
    return np.linalg.norm(p.max(-2) - p.min(-2), axis=-1)


def hand_frame(wrist, index1, middle1, pinky1, side: str = "R") -> np.ndarray:
    """The anatomical hand frame from four points (used by the retargeting, the sample clip and the
    synthetic hands): ``along = unit(middle1 − wrist)``, ``across = unit((pinky1 − index1) ⟂ along)``,
    ``palm = s · along × across`` (s = +1 right, −1 left: out of the palm).

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
    palm = _SIDE_SIGN[side] * np.cross(along, across)
    return np.stack([along, across, palm], axis=1)


_SIDE_SIGN = {"R": 1.0, "L": -1.0}


def procrustes_align(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Align ``pred`` to ``gt`` with rotation, uniform scale and translation — FreiHAND's ``align_w_scale``.

    The official evaluation's formula (Zimmermann et al., ICCV 2019): centre both sets, divide each
    by its Frobenius norm, solve the orthogonal Procrustes problem ``R = argmin ‖p R − g‖`` by SVD
    (R orthogonal: a reflection is allowed, as in the official code), scale by the sum of singular
    values, and map into the ground truth's frame.

    Parameters
    ----------
    gt, pred : (..., N, 3) m (any leading batch shape).

    Returns
    -------
    (..., N, 3) m float64, the aligned prediction.
    """
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if gt.shape != pred.shape or gt.ndim < 2 or gt.shape[-1] != 3:
        raise ValueError(f"gt and pred must both be (..., N, 3), got {gt.shape} and {pred.shape}")
    t1, t2 = gt.mean(-2, keepdims=True), pred.mean(-2, keepdims=True)
    g, p = gt - t1, pred - t2
    s1 = np.linalg.norm(g, axis=(-2, -1), keepdims=True) + 1e-8
    s2 = np.linalg.norm(p, axis=(-2, -1), keepdims=True) + 1e-8
    g, p = g / s1, p / s2
    # scipy.linalg.orthogonal_procrustes(g, p), as the official code: R = (u vt)^T of svd(p^T g)
    u, w, vt = np.linalg.svd(np.swapaxes(p, -1, -2) @ g)
    return (p @ (u @ vt)) * w.sum(-1)[..., None, None] * s1 + t1
