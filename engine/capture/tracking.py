"""Hand detection (MediaPipe Tasks hand landmarker) and one track per hand.

The detector runs MediaPipe's ``HandLandmarker`` (Tasks API) with the bundle this project builds
from MediaPipe's own Apache-2.0 models (``dahyf/assets/hand_landmarker.task``, see
``dahyf.assets.landmarker_task``), in VIDEO mode: frames in order with their timestamps, the
hands found in one frame seed the search in the next. It works with every MediaPipe that has the
Tasks API: 0.10.21 (Python 3.11) and 0.10.30+ / 1.x (Python 3.13, which ship no models).

Handedness: the Tasks ``HandLandmarker`` labels the person's own hand in a non-mirrored video
("Right" = the person's right hand). Checked on the real test video, person facing the camera:
their right hand, on the image's left, is "Right" in 59 of 60 frames with the bundled models
(the legacy ``solutions.hands`` on the same models said "Left": it assumed a mirrored selfie
image). The label also flickers from frame to frame, so the tracker does not copy it: it assigns
each detection to the right or the left track by combining the label evidence with continuity
(distance to where the track was last seen), so a track never swaps sides between frames.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from ..geometry import hand_diagonal
from ..hand.tables import SIDES
from .errors import CaptureError


#: MediaPipe Tasks handedness label -> the hand it means in a non-mirrored video.
MEDIAPIPE_LABEL_TO_SIDE = {"Right": "right", "Left": "left"}
#: Running modes of :class:`HandDetector` (MediaPipe Tasks ``RunningMode`` names).
DETECTOR_MODES = ("video", "image")
#: Timestamp step (ms) when frames come without one: 30 frames/s, as the legacy solution assumed.
_DEFAULT_STEP_MS = 33


@dataclass
class Detection:
    """One detected hand in one frame.

    landmarks : (21, 2) px, image coordinates (x right, y down), MediaPipe / FreiHAND order.
    side : 'right' or 'left' (the person's hand), from MediaPipe's handedness label.
    side_score : MediaPipe's confidence in that label, in [0, 1].
    world_landmarks : (21, 3) m, MediaPipe's metric hand landmarks: origin at the hand's
        approximate geometric centre, axes as the image's (x right, y down, z away from the
        camera); None when the detector gave none.
    depth : (21,) px, MediaPipe's relative depth of each landmark (wrist = 0, smaller = nearer
        the camera), in the same scale as x (normalised z times the image width); None when absent.
    """

    landmarks: np.ndarray
    side: str
    side_score: float
    world_landmarks: np.ndarray | None = None
    depth: np.ndarray | None = None

    @property
    def right_score(self) -> float:
        """Probability in [0, 1] that this is the person's right hand (from the handedness score)."""
        return self.side_score if self.side == "right" else 1.0 - self.side_score

    @property
    def centre(self) -> np.ndarray:
        """(2,) px, mean of the 21 landmarks."""
        return self.landmarks.mean(axis=0)

    @property
    def size(self) -> float:
        """Hand size in px: diagonal of the landmarks' bounding box (:func:`dahyf.geometry.hand_diagonal`)."""
        return float(hand_diagonal(self.landmarks))


def _import_tasks():
    """(mediapipe, mediapipe.tasks.python.vision, BaseOptions), or a CaptureError that says what to install."""
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError as exc:
        missing = (getattr(exc, "name", None) or "").split(".")[0]
        if missing and missing != "mediapipe":
            raise CaptureError(f"MediaPipe cannot be imported: it needs the module {missing!r}, which is not "
                               f"installed ({exc}). Reinstall DaHyF, or `pip install` what provides it.") from exc
        raise CaptureError(
            "MediaPipe with the Tasks API is not installed: `pip install mediapipe==0.10.21` on Python 3.11, "
            f"`pip install mediapipe==1.2.3` on Python 3.13 ({exc}).") from exc
    return mp, vision, BaseOptions


def _model_bytes(model_path) -> bytes:
    """The bytes of the ``.task`` bundle (given as bytes so that non-ASCII paths work everywhere)."""
    from pathlib import Path

    from ..assets import HAND_LANDMARKER_TASK

    path = Path(model_path) if model_path is not None else HAND_LANDMARKER_TASK
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CaptureError(f"Cannot read the hand landmarker model {path}: {exc}. Reinstall DaHyF, or rebuild "
                           "it with `python -m dahyf.assets.landmarker_task`.") from exc


class HandDetector:
    """MediaPipe Tasks ``HandLandmarker``: up to ``max_hands`` hands per frame.

    Parameters
    ----------
    max_hands : 1 or 2.
    min_detection_confidence : palm detector score threshold (``min_hand_detection_confidence``).
    min_tracking_confidence : hand presence score below which a hand followed from the previous
        frame is dropped and searched for again (``min_hand_presence_confidence``; the legacy
        solution's ``min_tracking_confidence`` meant this).
    mode : 'video' (frames in order, with timestamps; hands are followed from frame to frame)
        or 'image' (every frame on its own).
    model_path : a ``.task`` bundle; default the bundled ``hand_landmarker.task``.
    second_look : in 'video' mode, when a frame holds more hands than the previous one, run the
        landmarker once more on the same frame (1 ms later), so that the new hand's landmarks and
        handedness come from a box fitted to its landmarks rather than from the coarser palm box.
        On the bundled sample clip the first frame's hand is labelled "Left" (0.88) from the palm
        box and "Right" (0.89, correct) from the second look, and its landmarks move 0.3 px
        closer to the ground truth.

    ``detect(rgb, timestamp_ms)`` in 'video' mode takes the frame's real time; timestamps that do
    not increase (a broken variable-frame-rate file, or none given) are moved to 1 ms after the
    previous one, which MediaPipe requires. A live source can use 'video' mode with its clock.
    """

    def __init__(self, max_hands: int = 2, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, mode: str = "video", model_path=None,
                 second_look: bool = True):
        if mode not in DETECTOR_MODES:
            raise CaptureError(f"detector mode must be one of {', '.join(DETECTOR_MODES)}, got {mode!r}.")
        mp, vision, BaseOptions = _import_tasks()
        self._mp = mp
        self.max_hands, self.mode = max_hands, mode
        options = vision.HandLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=_model_bytes(model_path)),
            running_mode=vision.RunningMode.VIDEO if mode == "video" else vision.RunningMode.IMAGE,
            num_hands=max_hands, min_hand_detection_confidence=min_detection_confidence,
            min_hand_presence_confidence=min_tracking_confidence, min_tracking_confidence=0.5)
        self._landmarker = vision.HandLandmarker.create_from_options(options)
        self.second_look = second_look and mode == "video"
        self._last_ms: int | None = None
        self._hands_before = 0

    def _timestamp(self, timestamp_ms: float | None) -> int:
        last = self._last_ms
        if timestamp_ms is None or not math.isfinite(timestamp_ms):
            ts = 0 if last is None else last + _DEFAULT_STEP_MS
        else:
            ts = int(round(timestamp_ms))
            if last is not None and ts <= last:
                ts = last + 1
        self._last_ms = ts
        return ts

    def detect(self, rgb: np.ndarray, timestamp_ms: float | None = None) -> list[Detection]:
        """Detect hands in one RGB frame (H, W, 3) uint8; in 'video' mode frames must come in order.

        timestamp_ms : the frame's time in ms ('video' mode); None steps 33 ms from the previous frame.
        """
        h, w = rgb.shape[:2]
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        if self.mode == "video":
            ts = self._timestamp(timestamp_ms)
            res = self._landmarker.detect_for_video(image, ts)
            if self.second_look and len(res.hand_landmarks) > self._hands_before:
                res = self._landmarker.detect_for_video(image, self._timestamp(ts + 1))
            self._hands_before = len(res.hand_landmarks)
        else:
            res = self._landmarker.detect(image)
        out: list[Detection] = []
        worlds = res.hand_world_landmarks or [None] * len(res.hand_landmarks)
        for lms, world, handed in zip(res.hand_landmarks, worlds, res.handedness):
            pts = np.array([(p.x * w, p.y * h) for p in lms], dtype=np.float32)
            depth = np.array([p.z * w for p in lms], dtype=np.float32)
            wl = None if world is None else np.array([(p.x, p.y, p.z) for p in world], dtype=np.float32)
            cat = handed[0]
            if cat.category_name not in MEDIAPIPE_LABEL_TO_SIDE:
                raise CaptureError(f"MediaPipe gave the handedness label {cat.category_name!r}; expected "
                                   f"{' or '.join(MEDIAPIPE_LABEL_TO_SIDE)}. Use the bundled hand_landmarker.task.")
            out.append(Detection(pts, MEDIAPIPE_LABEL_TO_SIDE[cat.category_name], float(cat.score),
                                 world_landmarks=wl, depth=depth))
        return drop_duplicates(out, keep=self.max_hands)

    def close(self) -> None:
        self._landmarker.close()

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


#: Hand sizes a hand can move per frame it was not seen (a 2 m/s swipe at 0.5 m: ~0.3), which
#: :class:`HandTracker` allows for before it counts a distance against continuity.
TRACK_REACH = 0.4
#: Two detections of one frame whose landmark centres lie closer than this share of the hand size
#: (box diagonal) are one hand seen twice (MediaPipe's double detections during fast motion).
SAME_HAND_SHARE = 0.2


def same_hand(a: Detection, b: Detection, iou: float = 0.6) -> bool:
    """Whether two detections of one frame cover the same hand: boxes overlapping > ``iou`` or
    landmark centres within SAME_HAND_SHARE hand sizes (touching or framing hands stay apart)."""
    if box_iou(a.landmarks, b.landmarks) >= iou:
        return True
    return float(np.linalg.norm(a.centre - b.centre)) < SAME_HAND_SHARE * max(a.size, b.size, 1.0)


def drop_duplicates(dets: list[Detection], iou: float = 0.6, keep: int = 2) -> list[Detection]:
    """Drop repeated detections of one hand (:func:`same_hand`; the surer label wins) and keep at
    most ``keep`` (MediaPipe can return more hands than ``max_num_hands``)."""
    out: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.side_score):
        if not any(same_hand(d, o, iou) for o in out):
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

    Ghost hands: repeated detections of one hand in a frame are merged first (:func:`same_hand`);
    and a track that starts within ``near_other`` hand sizes of the other side's live track needs
    ``confirm_frames`` consecutive frames of evidence before it is reported (a second hand that
    appears beside a tracked one is usually MediaPipe seeing the same hand twice during fast
    motion). A track starting away from the other hand, or with no other hand live, starts at once.

    Parameters
    ----------
    max_gap : frames after which a lost track's last position no longer counts.
    continuity_weight : weight of the normalised distance against the label evidence.
    switch_penalty : cost of starting the other side's track on top of a live track.
    confirm_frames : frames of evidence a track starting beside the other hand needs.
    near_other : hand sizes (normalised centre distance) within which that applies.
    """

    def __init__(self, max_gap: int = 15, continuity_weight: float = 4.0, switch_penalty: float = 6.0,
                 confirm_frames: int = 3, near_other: float = 1.5):
        self.max_gap = max_gap
        self.continuity_weight = continuity_weight
        self.switch_penalty = switch_penalty
        self.confirm_frames, self.near_other = confirm_frames, near_other
        self._last: dict[str, tuple[int, np.ndarray, float]] = {}
        self._pending: dict[str, tuple[int, int]] = {}     # side -> (last frame seen, frames seen in a row)

    def _live(self, frame: int, side: str) -> tuple[int, np.ndarray, float] | None:
        last = self._last.get(side)
        return last if last is not None and frame - last[0] <= self.max_gap else None

    def _cost(self, frame: int, det: Detection, side: str) -> float:
        p = det.side_score if det.side == side else 1.0 - det.side_score
        cost = -math.log(min(max(p, 0.02), 0.98))
        last = self._live(frame, side)
        if last is not None:
            cost += self.continuity_weight * self._distance(frame, det, last, reach=True)
        else:
            other = self._live(frame, SIDES[1 - SIDES.index(side)])
            if other is not None:
                cost += self.switch_penalty * max(0.0, 1.0 - self._distance(frame, det, other))
        return cost

    @staticmethod
    def _distance(frame: int, det: Detection, last: tuple[int, np.ndarray, float], reach: bool = False) -> float:
        """Distance of ``det`` from where a track was last seen, in its hand sizes; with ``reach``,
        less the way a hand can go in the frames it was missed (TRACK_REACH per frame): a hand lost
        for a few frames of a fast swipe is still the same hand where it turns up again (the label
        still decides between that and a new hand of the other side)."""
        seen, centre, size = last
        d = float(np.linalg.norm(det.centre - centre)) / max(size, 1.0)
        return max(0.0, d - TRACK_REACH * max(0, frame - seen - 1)) if reach else d

    def update(self, frame: int, detections: list[Detection]) -> dict[str, Detection]:
        """Assign the detections of ``frame`` (frames in increasing order) to sides.

        Returns
        -------
        {side: Detection} for the sides seen in this frame.
        """
        detections = drop_duplicates([d for d in detections if np.all(np.isfinite(d.landmarks))], keep=len(SIDES))
        if not detections:
            return {}
        best, best_cost = None, math.inf
        for sides in itertools.permutations(SIDES, len(detections)):
            cost = sum(self._cost(frame, d, s) for d, s in zip(detections, sides))
            if best is None or cost < best_cost:
                best, best_cost = sides, cost
        out = {side: det for side, det in zip(best, detections) if self._confirmed(frame, side, det)}
        for side, det in out.items():
            self._last[side] = (frame, det.centre, det.size)
        return out

    def assign_missing(self, frame: int, detections: list[Detection], sides) -> dict[str, Detection]:
        """Hands found in ``frame`` by a second look (coverage recovery) for the live ``sides`` that
        :meth:`update` left empty: the cheapest assignment (the same costs), at most one per side."""
        sides = [s for s in sides if self._live(frame, s) is not None]
        detections = drop_duplicates([d for d in detections if np.all(np.isfinite(d.landmarks))], keep=len(SIDES))
        best, best_cost = {}, math.inf
        for n in range(min(len(sides), len(detections)), 0, -1):
            for chosen in itertools.permutations(detections, n):
                for order in itertools.permutations(sides, n):
                    cost = sum(self._cost(frame, d, s) for d, s in zip(chosen, order))
                    if cost < best_cost:
                        best, best_cost = dict(zip(order, chosen)), cost
            if best:
                break
        for side, det in best.items():
            self.observe(frame, side, det)
        return best

    def observe(self, frame: int, side: str, det: Detection) -> None:
        """Note a hand of ``side`` found in ``frame`` by other means (coverage recovery's region
        re-detection), so that the track's continuity follows it."""
        self._last[side] = (frame, det.centre, det.size)

    def _confirmed(self, frame: int, side: str, det: Detection) -> bool:
        """Whether ``det`` may be reported on ``side`` (see the class docstring: new tracks beside
        the other hand wait for ``confirm_frames`` frames of evidence)."""
        if self._live(frame, side) is not None:
            return True
        other = self._live(frame, SIDES[1 - SIDES.index(side)])
        if other is None or self.confirm_frames <= 1:
            return True
        if self._distance(frame, det, other) >= self.near_other:
            return True
        last, run = self._pending.get(side, (-2, 0))
        run = run + 1 if frame == last + 1 else 1
        self._pending[side] = (frame, run)
        return run >= self.confirm_frames
