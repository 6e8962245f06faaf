"""The one coordinate convention between the engine and the Blender scene.

The engine works in OpenCV camera coordinates (metres): x right, y down, z forward, principal
point at the image centre; MANO's canonical frame is that same frame (the take's ``pose[:, 0]``
is the global orientation in camera coordinates and ``transl`` the camera-frame translation).

In Blender, the capture camera looks along +Y with +Z up, so an OpenCV camera point ``(x, y, z)``
is the point ``(x, z, -y)`` relative to the camera:

    CV_TO_BLENDER = Rx(-90°) = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]

Hand armatures carry exactly this rotation as their object transform and sit where the camera
sits, so their *armature space is the engine's camera frame*: bone rest positions, keyed
locations and MANO rotations need no further conversion. The camera's own rotation is Rx(+90°)
(Blender cameras look down their local -Z with +Y up, i.e. ``diag(1, -1, -1)`` from OpenCV, and
Rx(90°)·diag(1,-1,-1) = Rx(-90°)).

The camera and the hands of a take sit at the world origin, unless scene geometry (the startup
Cube, a character) would be in the camera's view: then they move beside it along −X
(:func:`clear_origin`), so that in camera view the hands lie over the video with nothing in between.
"""
from __future__ import annotations

import math

import numpy as np

#: (3, 3) OpenCV camera frame → Blender world frame.
CV_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
#: Euler XYZ (rad) of hand armature objects: Rx(-90°) = CV_TO_BLENDER.
ARMATURE_EULER = (-math.pi / 2, 0.0, 0.0)
#: Euler XYZ (rad) of the capture camera: looks along +Y, +Z up.
CAMERA_EULER = (math.pi / 2, 0.0, 0.0)
#: Scene frame of video frame 0 (the movie clip background starts at scene frame 1).
FRAME_OFFSET = 1


def cv_to_blender(points: np.ndarray) -> np.ndarray:
    """(..., 3) m OpenCV camera points → (..., 3) m points relative to the capture camera (Blender axes)."""
    return np.asarray(points, dtype=np.float64) @ CV_TO_BLENDER.T


#: Sensor width (mm) of every capture camera; with ``sensor_fit = 'HORIZONTAL'`` it spans the image width.
SENSOR_WIDTH_MM = 36.0


def lens_from_focal(focal_px: float, image_width_px: float, sensor_width_mm: float = SENSOR_WIDTH_MM) -> float:
    """Camera focal length in mm for a pinhole focal ``focal_px`` on an image ``image_width_px`` wide.

    With ``sensor_fit = 'HORIZONTAL'`` the sensor width maps to the image width, so
    ``lens = f_px · sensor_width / W``.
    """
    return float(focal_px) * sensor_width_mm / float(image_width_px)


def view_box(image_size: tuple[int, int], focal_px: float, depth_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned box around what a capture camera at the world origin sees, up to ``depth_m``.

    Parameters
    ----------
    image_size : (W, H) px. focal_px : px. depth_m : m, the far end of the view.

    Returns
    -------
    lo, hi : (3,) m, Blender world corners of the box (the view pyramid's bounding box).
    """
    W, H = (float(v) for v in image_size)
    hx, hy = depth_m * W / (2.0 * focal_px), depth_m * H / (2.0 * focal_px)
    corners_cv = np.array([[0.0, 0.0, 0.0]] + [[sx * hx, sy * hy, depth_m] for sx in (-1, 1) for sy in (-1, 1)])
    corners = corners_cv @ CV_TO_BLENDER.T
    return corners.min(axis=0), corners.max(axis=0)


def clear_origin(boxes: np.ndarray, view_lo: np.ndarray, view_hi: np.ndarray, clearance_m: float) -> np.ndarray:
    """Where to put the capture camera so that no scene box lies in its view.

    Parameters
    ----------
    boxes : (K, 2, 3) m, world (min, max) corners of the scene's geometry.
    view_lo, view_hi : (3,) m, :func:`view_box` of the camera at the origin.
    clearance_m : m kept free around the view box.

    Returns
    -------
    (3,) m: the world origin when the view there is clear, else a point beside all the boxes
    along −X (the camera keeps looking along +Y).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 2, 3)
    lo, hi = np.asarray(view_lo) - clearance_m, np.asarray(view_hi) + clearance_m
    overlap = np.all((boxes[:, 0] <= hi) & (boxes[:, 1] >= lo), axis=1)
    if not overlap.any():
        return np.zeros(3)
    return np.array([boxes[:, 0, 0].min() - hi[0], 0.0, 0.0])
