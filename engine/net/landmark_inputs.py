"""The landmark engine's inputs beyond the 2-D landmarks (issue 11): MediaPipe's keypoints
re-expressed in the hand model's convention (the landmark map) and its world landmarks as network
features. Array-API code (:mod:`dahyf.backend`): numpy at capture time, torch in training.
"""
from __future__ import annotations

import numpy as np

from ..backend import asarray_like, namespace, rows_finite
from ..hand.tables import NUM_KEYPOINTS

#: Length of the world-landmark features: 21 × 3 coordinates and a presence flag.
WORLD_DIM = NUM_KEYPOINTS * 3 + 1


def apply_landmark_map(points, landmark_map):
    """Re-express keypoints through a landmark map: ``out_k = Σ_j map[k, j] · points_j``.

    With the map of ``dahyf.train.noise_calibration`` this turns the model's keypoints into where
    MediaPipe puts them; with its inverse, MediaPipe's landmarks into the model's keypoints. The
    rows sum to 1, so it commutes with shifts and mirroring, and (exactly for affine cameras,
    closely for a hand under perspective) with projection.

    Parameters
    ----------
    points : (B, 21, C), px or m; landmark_map : (21, 21).

    Returns
    -------
    (B, 21, C), the dtype of ``points``.
    """
    return asarray_like(landmark_map, points, dtype=points.dtype) @ points


def landmark_unmap(landmark_map) -> np.ndarray:
    """The inverse of a landmark map whose rows are first made to sum to exactly 1 (the diagonal
    takes up the rounding of a stored map), so that the inverse commutes exactly with shifts and
    with mirroring (left hands are mirrored into right ones).

    Parameters
    ----------
    landmark_map : (21, 21), rows summing to 1 up to rounding.

    Returns
    -------
    (21, 21) float64, rows summing to 1.
    """
    M = np.array(landmark_map, dtype=np.float64)
    M[np.diag_indices_from(M)] += 1.0 - M.sum(1)
    return np.linalg.inv(M)


def world_features(world, present):
    """The network's view of MediaPipe's world landmarks: wrist-relative and divided by the hand's
    RMS radius (scale-free, metric shape and depth order), times the presence flag, and the flag.

    Parameters
    ----------
    world : (B, 21, 3) m (right hands; any value where absent); present : (B,) bool.

    Returns
    -------
    (B, 64).
    """
    xp = namespace(world)
    B = world.shape[0]
    ok = present & rows_finite(world)
    w = xp.where(ok[:, None, None], world, xp.zeros_like(world))
    centred = w - xp.mean(w, axis=1, keepdims=True)
    radius = xp.sqrt(xp.mean(xp.sum(centred * centred, axis=-1), axis=-1))
    rel = (w - w[:, :1]) / xp.clip(radius, min=1e-4)[:, None, None]
    flag = xp.astype(ok, world.dtype)
    return xp.concat([xp.reshape(rel, (B, NUM_KEYPOINTS * 3)) * flag[:, None], flag[:, None]], axis=1)
