"""The crop policy of the image network (DESIGN.md §3), shared by capture, training and evaluation.

A crop is a square box (c_x, c_y, s_i) centred on the 2-D hand keypoints' bounding box with side
``CROP_PADDING`` × its longer side: the MediaPipe landmarks at capture and in evaluation (the
detector), the annotated 2-D joints in training (then scaled, shifted and turned by the augmentation).
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from ..constants import CROP_PADDING, CROP_SIZE


def hand_boxes(landmarks: np.ndarray, padding: float = CROP_PADDING) -> np.ndarray:
    """Square boxes around hands.

    Parameters
    ----------
    landmarks : (B, 21, 2) px (or any number of points per hand).
    padding : box side = padding * max(bbox width, bbox height).

    Returns
    -------
    (B, 3) px: centre x, centre y, side s_i.
    """
    lo, hi = landmarks.min(axis=1), landmarks.max(axis=1)
    centre = 0.5 * (lo + hi)
    side = padding * np.maximum((hi - lo).max(axis=1), 1.0)
    return np.concatenate([centre, side[:, None]], axis=1).astype(np.float32)


def crop_affine(box, size: int = CROP_SIZE, angle: float = 0.0) -> np.ndarray:
    """The 2 × 3 map from image px to crop px of a box, optionally turned about its centre.

    ``crop = (size / s_i) · (R(angle) · (p − c) + s_i / 2)``, c = (c_x, c_y): the box's upper-left corner
    goes to (0, 0) when ``angle = 0``.

    Parameters
    ----------
    box : (3,) px (c_x, c_y, s_i).
    size : crop side s_p, px.
    angle : rad, counter-clockwise in the image (x right, y down: a positive angle turns +x towards +y).

    Returns
    -------
    (2, 3) float64.
    """
    cx, cy, side = (float(v) for v in box)
    scale = size / side
    c, s = math.cos(angle), math.sin(angle)
    R = np.array([[c, -s], [s, c]])
    centre = np.array([cx, cy])
    t = scale * (side / 2 - R @ centre)
    return np.concatenate([scale * R, t[:, None]], axis=1)


def crop_box(image: np.ndarray, box: np.ndarray, size: int = CROP_SIZE, angle: float = 0.0) -> np.ndarray:
    """Cut a square box out of an image and resize it; outside the image is black.

    Parameters
    ----------
    image : (H, W, 3) uint8.
    box : (3,) px (cx, cy, side).
    size : output side s_p, px.
    angle : rad, see :func:`crop_affine`.

    Returns
    -------
    (size, size, 3) uint8.
    """
    return cv2.warpAffine(image, crop_affine(box, size, angle), (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
