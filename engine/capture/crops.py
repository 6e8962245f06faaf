"""Square hand crops around the landmarks, for estimators that look at the image (DESIGN.md §3)."""
from __future__ import annotations

import cv2
import numpy as np

from ..constants import CROP_PADDING, CROP_SIZE


def hand_boxes(landmarks: np.ndarray, padding: float = CROP_PADDING) -> np.ndarray:
    """Square boxes around hands.

    Parameters
    ----------
    landmarks : (B, 21, 2) px.
    padding : box side = padding * max(bbox width, bbox height).

    Returns
    -------
    (B, 3) px: centre x, centre y, side s_i.
    """
    lo, hi = landmarks.min(axis=1), landmarks.max(axis=1)
    centre = 0.5 * (lo + hi)
    side = padding * np.maximum((hi - lo).max(axis=1), 1.0)
    return np.concatenate([centre, side[:, None]], axis=1).astype(np.float32)


def crop_box(image: np.ndarray, box: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """Cut a square box out of an image and resize it; outside the image is black.

    Parameters
    ----------
    image : (H, W, 3) uint8.
    box : (3,) px (cx, cy, side).
    size : output side s_p, px.

    Returns
    -------
    (size, size, 3) uint8.
    """
    cx, cy, side = (float(v) for v in box)
    scale = size / side
    # maps image px to crop px: x' = (x - (cx - side/2)) * scale
    m = np.array([[scale, 0.0, -(cx - side / 2) * scale], [0.0, scale, -(cy - side / 2) * scale]])
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
