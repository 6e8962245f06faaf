"""Hand detection (MediaPipe hand landmarker, tracking mode) and one track per hand.

MediaPipe's handedness label assumes a mirrored (selfie) image; our videos are not mirrored, so
its "Left" is the person's right hand (checked on the real test video: the hand MediaPipe calls
"Left" is the person's right hand, seen on the image's left side in a frontal view). The label
also flickers from frame to frame, so the tracker does not copy it: it assigns each detection to
the right or the left track by combining the label evidence with continuity (distance to where
the track was last seen), so a track never swaps sides between frames.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from .errors import CaptureError

SIDES = ("right", "left")

#: MediaPipe label -> the hand it means in a non-mirrored video.
MEDIAPIPE_LABEL_TO_SIDE = {"Left": "right", "Right": "left"}


@dataclass
class Detection:
    """One detected hand in one frame.

    landmarks : (21, 2) px, image coordinates (x right, y down), MediaPipe / FreiHAND order.
    side : 'right' or 'left', MediaPipe's label already un-mirrored.
    side_score : MediaPipe's confidence in that label, in [0, 1].
    """

    landmarks: np.ndarray
    side: str
    side_score: float

    @property
    def centre(self) -> np.ndarray:
        """(2,) px, mean of the 21 landmarks."""
        return self.landmarks.mean(axis=0)

    @property
    def size(self) -> float:
        """Hand size in px: diagonal of the landmarks' bounding box."""
        return float(np.linalg.norm(self.landmarks.max(0) - self.landmarks.min(0)))


class HandDetector:
    """MediaPipe Hands (legacy solution API) in tracking mode, up to two hands.

    Parameters
    ----------
    max_hands : 1 or 2.
    model_complexity : 0 (lite) or 1 (full).
    min_detection_confidence, min_tracking_confidence : MediaPipe thresholds.
    """

    def __init__(self, max_hands: int = 2, model_complexity: int = 1,
                 min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5):
        try:
            import mediapipe as mp
        except ImportError as exc:  # pragma: no cover - mediapipe is a pinned dependency
            raise CaptureError("MediaPipe is not installed: `pip install mediapipe==0.10.21`.") from exc
        self.max_hands = max_hands
        self._hands = mp.solutions.hands.Hands(
            static_image_mode=False, max_num_hands=max_hands, model_complexity=model_complexity,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Detect hands in one RGB frame (H, W, 3) uint8; frames must come in video order."""
        h, w = rgb.shape[:2]
        res = self._hands.process(rgb)
        out: list[Detection] = []
        if not res.multi_hand_landmarks:
            return out
        for lms, handed in zip(res.multi_hand_landmarks, res.multi_handedness):
            pts = np.array([(p.x * w, p.y * h) for p in lms.landmark], dtype=np.float32)
            cls = handed.classification[0]
            out.append(Detection(pts, MEDIAPIPE_LABEL_TO_SIDE.get(cls.label, "right"), float(cls.score)))
        return drop_duplicates(out, keep=self.max_hands)

    def close(self) -> None:
        self._hands.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of the landmark bounding boxes of two (21, 2) px sets."""
    lo = np.maximum(a.min(0), b.min(0))
    hi = np.minimum(a.max(0), b.max(0))
    inter = float(np.prod(np.clip(hi - lo, 0, None)))
    area = lambda p: float(np.prod(p.max(0) - p.min(0)))
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def drop_duplicates(dets: list[Detection], iou: float = 0.6, keep: int = 2) -> list[Detection]:
    """Drop repeated detections of one hand (boxes overlapping > ``iou``; the surer label wins)
    and keep at most ``keep`` (MediaPipe can return more hands than ``max_num_hands``)."""
    out: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.side_score):
        if all(box_iou(d.landmarks, o.landmarks) < iou for o in out):
            out.append(d)
    return out[:keep]


class HandTracker:
    """Assign each frame's detections to the right-hand and left-hand tracks.

    Cost of putting detection d on side s: ``-log p(s | label)`` (p = label score when the label
    says s, else 1 - score, clipped) plus, when the track was seen in the last ``max_gap`` frames,
    ``continuity_weight * |centre(d) - centre(track)| / size(track)``. The cheapest assignment of
    at most one detection per side wins; a track therefore keeps its side for life.

    A side whose track is not live (not seen in the last ``max_gap`` frames) also pays
    ``switch_penalty * (1 - d)`` when the detection sits within one hand size (normalised distance
    d < 1) of the *other* side's live track: one hand whose label flickers for a frame stays on
    its track instead of opening a one-frame track of the other hand.

    Parameters
    ----------
    max_gap : frames after which a lost track's last position no longer counts.
    continuity_weight : weight of the normalised distance against the label evidence.
    switch_penalty : cost of starting the other side's track on top of a live track.
    """

    def __init__(self, max_gap: int = 15, continuity_weight: float = 4.0, switch_penalty: float = 6.0):
        self.max_gap = max_gap
        self.continuity_weight = continuity_weight
        self.switch_penalty = switch_penalty
        self._last: dict[str, tuple[int, np.ndarray, float]] = {}

    def _live(self, frame: int, side: str) -> tuple[int, np.ndarray, float] | None:
        last = self._last.get(side)
        return last if last is not None and frame - last[0] <= self.max_gap else None

    def _cost(self, frame: int, det: Detection, side: str) -> float:
        p = det.side_score if det.side == side else 1.0 - det.side_score
        cost = -math.log(min(max(p, 0.02), 0.98))
        last = self._live(frame, side)
        if last is not None:
            _, centre, size = last
            cost += self.continuity_weight * float(np.linalg.norm(det.centre - centre)) / max(size, 1.0)
        else:
            other = self._live(frame, SIDES[1 - SIDES.index(side)])
            if other is not None:
                _, centre, size = other
                d = float(np.linalg.norm(det.centre - centre)) / max(size, 1.0)
                cost += self.switch_penalty * max(0.0, 1.0 - d)
        return cost

    def update(self, frame: int, detections: list[Detection]) -> dict[str, Detection]:
        """Assign the detections of ``frame`` (frames in increasing order) to sides.

        Returns
        -------
        {side: Detection} for the sides seen in this frame.
        """
        detections = [d for d in detections if np.all(np.isfinite(d.landmarks))][: len(SIDES)]
        if not detections:
            return {}
        best, best_cost = None, math.inf
        for sides in itertools.permutations(SIDES, len(detections)):
            cost = sum(self._cost(frame, d, s) for d, s in zip(detections, sides))
            if best is None or cost < best_cost:
                best, best_cost = sides, cost
        out = dict(zip(best, detections))
        for side, det in out.items():
            self._last[side] = (frame, det.centre, det.size)
        return out
