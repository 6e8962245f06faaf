"""Camera of DaHyF (DESIGN.md §3): weak perspective in the crop ↔ full perspective in the image.

Conventions: OpenCV camera (x right, y down, z forward), principal point at the image centre,
square pixels, focal length f in px. The weak-perspective camera (s, t_x, t_y) maps a model point X
(metres, before translation) to normalised crop coordinates ``x_n = s · (X_xy + t)`` with
``x_n = 2 (u - C) / s_i`` ∈ [-1, 1] inside the crop (C: crop centre, s_i: crop side, px).
The full-perspective translation follows CLIFF (Li et al., ECCV 2022):
``t_z = 2 f / (s · s_i)``, ``t_x' = t_x + 2 c_x / (s · s_i)``, ``t_y' = t_y + 2 c_y / (s · s_i)`` with
``(c_x, c_y) = C - (W/2, H/2)``. The pinhole projection and the default focal length are in
:mod:`dahyf.geometry`. Array-API functions (:mod:`dahyf.backend`): numpy arrays or tensors.
"""
from __future__ import annotations

from ..backend import namespace


def weak_to_full_perspective(weak_cam, crop_centre, crop_side, image_size, focal, eps: float = 1e-6):
    """Weak-perspective crop camera to the full-perspective translation in the image's camera.

    Parameters
    ----------
    weak_cam : (B, 3), (s, t_x, t_y); s dimensionless (per metre, normalised crop units), t in m.
    crop_centre : (B, 2) px, crop centre C in the image.
    crop_side : (B,) px, s_i.
    image_size : (B, 2) px, (W, H).
    focal : (B,) px.

    Returns
    -------
    (B, 3) m, translation of the model in camera coordinates.
    """
    xp = namespace(weak_cam)
    s = xp.clip(weak_cam[:, 0], min=eps)
    denom = s * crop_side
    c = crop_centre - image_size / 2
    tz = 2 * focal / denom
    tx = weak_cam[:, 1] + 2 * c[:, 0] / denom
    ty = weak_cam[:, 2] + 2 * c[:, 1] / denom
    return xp.stack([tx, ty, tz], axis=-1)


def full_to_weak(transl, crop_centre, crop_side, image_size, focal):
    """Inverse of :func:`weak_to_full_perspective`.

    Parameters
    ----------
    transl : (B, 3) m, camera-frame translation (t_z > 0).
    crop_centre : (B, 2) px; crop_side : (B,) px; image_size : (B, 2) px; focal : (B,) px.

    Returns
    -------
    (B, 3), (s, t_x, t_y).
    """
    tz = transl[:, 2]
    s = 2 * focal / (crop_side * tz)
    c = crop_centre - image_size / 2
    tx = transl[:, 0] - c[:, 0] * tz / focal
    ty = transl[:, 1] - c[:, 1] * tz / focal
    return namespace(transl).stack([s, tx, ty], axis=-1)


def weak_project(points, weak_cam):
    """Weak-perspective projection to normalised crop coordinates.

    Parameters
    ----------
    points : (B, N, 3) m, model coordinates (without translation).
    weak_cam : (B, 3), (s, t_x, t_y).

    Returns
    -------
    (B, N, 2), ``s · (X_xy + t)``; [-1, 1] spans the crop.
    """
    return weak_cam[:, None, :1] * (points[..., :2] + weak_cam[:, None, 1:])
