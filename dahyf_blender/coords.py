"""The one coordinate convention between the engine and the Blender scene.

The engine works in OpenCV camera coordinates (metres): x right, y down, z forward, principal
point at the image centre; MANO's canonical frame is that same frame (the take's ``pose[:, 0]``
is the global orientation in camera coordinates and ``transl`` the camera-frame translation).

In Blender, the capture camera sits at the world origin looking along +Y with +Z up, so an
OpenCV camera point ``(x, y, z)`` is the world point ``(x, z, -y)``:

    CV_TO_BLENDER = Rx(-90°) = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]

Hand armatures carry exactly this rotation as their object transform, so their *armature space
is the engine's camera frame*: bone rest positions, keyed locations and MANO rotations need no
further conversion. The camera's own rotation is Rx(+90°) (Blender cameras look down their
local -Z with +Y up, i.e. ``diag(1, -1, -1)`` from OpenCV, and Rx(90°)·diag(1,-1,-1) = Rx(-90°)).
"""
from __future__ import annotations

import math

import numpy as np

#: (3, 3) OpenCV camera frame → Blender world frame.
CV_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
#: Euler XYZ (rad) of hand armature objects: Rx(-90°) = CV_TO_BLENDER.
ARMATURE_EULER = (-math.pi / 2, 0.0, 0.0)
#: Euler XYZ (rad) of the capture camera at the origin: looks along +Y, +Z up.
CAMERA_EULER = (math.pi / 2, 0.0, 0.0)
#: Scene frame of video frame 0 (the movie clip background starts at scene frame 1).
FRAME_OFFSET = 1


def cv_to_blender(points: np.ndarray) -> np.ndarray:
    """(..., 3) m OpenCV camera points → (..., 3) m Blender world points."""
    return np.asarray(points, dtype=np.float64) @ CV_TO_BLENDER.T


def lens_from_focal(focal_px: float, image_width_px: float, sensor_width_mm: float = 36.0) -> float:
    """Camera focal length in mm for a pinhole focal ``focal_px`` on an image ``image_width_px`` wide.

    With ``sensor_fit = 'HORIZONTAL'`` the sensor width maps to the image width, so
    ``lens = f_px · sensor_width / W``.
    """
    return float(focal_px) * sensor_width_mm / float(image_width_px)
