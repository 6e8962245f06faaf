"""The estimators' input: a small typed batch of detected hands (what ``predict`` receives).

The capture pipeline builds one :class:`HandBatch` per chunk; estimators read the fields they use.
New inputs (MediaPipe world landmarks, handedness scores, temporal context …) are added here as
optional fields with a default of None, so older estimators keep working unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..backend import to_numpy
from ..geometry import default_focal
from ..hand.tables import NUM_KEYPOINTS


@dataclass(frozen=True)
class HandBatch:
    """B detected hands (numpy arrays; ``len(batch) == B``).

    landmarks2d : (B, 21, 2) float32 px, image, MediaPipe order.
    is_right : (B,) bool, handedness.
    image_size : (B, 2) float32 px, (W, H).
    focal : (B,) float32 px.
    world_landmarks : (B, 21, 3) float32 m, MediaPipe world landmarks (hand-centred), or None.
    handedness_score : (B,) float32 in [0, 1], the landmarker's confidence in ``is_right``, or None.
    crops : (B, s_p, s_p, 3) uint8 RGB hand crops, for estimators with ``needs_crops``, or None.
    boxes : (B, 3) float32 px (c_x, c_y, s_i) of those crops, or None.
    """

    landmarks2d: np.ndarray
    is_right: np.ndarray
    image_size: np.ndarray
    focal: np.ndarray
    world_landmarks: np.ndarray | None = None
    handedness_score: np.ndarray | None = None
    crops: np.ndarray | None = None
    boxes: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.landmarks2d.shape[0])

    @classmethod
    def of(cls, landmarks2d, is_right, image_size, focal=None, **optional) -> "HandBatch":
        """A checked batch from arrays or tensors (any float type); ``image_size`` (2,) or (B, 2) and
        ``focal`` (scalar or (B,); None: ``sqrt(W² + H²)``) are broadcast to B.

        Raises
        ------
        ValueError
            Wrong shapes, with the expected ones.
        """
        lm = to_numpy(landmarks2d, np.float32)
        if lm.ndim != 3 or lm.shape[1:] != (NUM_KEYPOINTS, 2):
            raise ValueError(f"landmarks2d must be (B, 21, 2) px, got {tuple(lm.shape)}")
        B = lm.shape[0]
        right = np.broadcast_to(to_numpy(is_right, bool).reshape(-1), (B,)).copy()
        size = np.broadcast_to(to_numpy(image_size, np.float32).reshape(-1, 2), (B, 2)).copy()
        f = default_focal(size) if focal is None else np.broadcast_to(to_numpy(focal, np.float32).reshape(-1), (B,)).copy()
        extra = {}
        for name, value in optional.items():
            if name not in {f.name for f in fields(cls)}:
                raise TypeError(f"HandBatch has no field {name!r}")
            extra[name] = None if value is None else to_numpy(value)
        return cls(lm, right, size, f.astype(np.float32), **extra)

    def select(self, rows) -> "HandBatch":
        """The sub-batch of ``rows`` (a boolean mask or indices)."""
        return HandBatch(**{f.name: (None if getattr(self, f.name) is None else getattr(self, f.name)[rows])
                            for f in fields(self)})
