"""Coverage recovery for offline capture (issue 11 §4): find the visible hands that MediaPipe's
forward pass missed — blurred, cut by the frame edge, gripping an object, small and far away.

Two ways, both from real pixels (nothing is invented; short gaps that remain are interpolated later,
flagged ``filled``, by :class:`~.stages.TrackState`):

- **backward re-tracking**: where a hand appears (a track starts, or comes back after a gap), the
  frames before it — only those, at most :data:`RECOVER_WINDOW_S` — are decoded again and fed in
  reverse order, with increasing timestamps, to a fresh landmarker in VIDEO mode. Seeded on the
  frame where the hand was found, MediaPipe follows it back from frame to frame (its landmark model
  tracks a hand through blur or an edge cut that its palm detector cannot find from scratch).
- **region re-detection**: in a frame where a hand followed in the frames just before (or after,
  going backward) is missing, a crop around where those frames predict it (constant velocity,
  :data:`REGION_SCALE` × its size), resized to :data:`REGION_PX`, goes to the landmarker in IMAGE
  mode: a small far hand becomes large enough for the palm detector, a hand at the frame edge gets
  a margin.

Where the prediction finds nothing, the whole frame is looked at again (an averaged copy,
:func:`region_crop`) for a hand seen in the last :data:`EXPECT_S`. A recovered detection is accepted
only near the prediction (:data:`MAX_CENTRE_SHIFT` hand sizes, sizes within :data:`SIZE_RATIO`) or
close enough to the chain's last hand (:func:`continues`), with the tracker's side costs for the
whole-frame look, and never on a hand another track holds in that frame
(:func:`~.tracking.same_hand`): no ghosts. :class:`CoverageRecovery` runs both on the stream with a
window of frames (landmarks only, no pixels) that it releases :data:`RECOVER_WINDOW_S` late; the
re-decoded frames are held a block at a time (:data:`DECODE_BLOCK_BYTES`), so memory does not grow
with the video.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterator

import cv2
import numpy as np

from .stages import FrameHands
from .tracking import Detection, HandDetector, HandTracker, same_hand

#: How far back (s) a hand that appears is followed backward; also how late frames leave the window.
RECOVER_WINDOW_S = 1.0
#: Side of the region re-detection's crop, in hand sizes (landmark box diagonal), and the px it is resized to.
REGION_SCALE = 2.0
REGION_PX = 256
#: A recovered detection's centre must lie within this many predicted hand sizes of the prediction,
#: and its size within this ratio of the predicted size.
MAX_CENTRE_SHIFT = 0.6
SIZE_RATIO = (0.5, 2.0)
#: Frames a chain (backward or forward) may miss in a row before it stops.
MAX_MISSES = 1
#: A hand seen this recently (s) is looked for in the whole (averaged) frame where it is missing.
EXPECT_S = 0.5
#: A hand found in the whole frame continues a chain when its centre lies within
#: ``JUMP_BASE + JUMP_PER_FRAME × frames`` hand sizes of the chain's last one (a fast swipe, 2 m/s
#: at 0.5 m: 0.3 per frame; a hand that vanishes where another one appears a hand size away is not it).
JUMP_BASE, JUMP_PER_FRAME = 1.0, 0.5
#: Decoded frames held at once while re-tracking backward (bytes of BGR pixels).
DECODE_BLOCK_BYTES = 64 * 2**20


# --- pure helpers ------------------------------------------------------------------------------------
def predict_region(history: list[tuple[int, Detection]], frame: int) -> tuple[np.ndarray, float]:
    """Where a hand should be in ``frame``: (centre (2,) px, size px) by constant velocity from the
    last two entries of ``history`` ((frame, Detection), in the chain's order — frames increasing
    going forward, decreasing going backward), or the last entry alone."""
    f1, d1 = history[-1]
    if len(history) < 2:
        return d1.centre.astype(np.float64), d1.size
    f0, d0 = history[-2]
    step = (frame - f1) / (f1 - f0) if f1 != f0 else 0.0
    centre = d1.centre + (d1.centre - d0.centre) * step
    size = max(d1.size + (d1.size - d0.size) * step, 0.5 * d1.size)
    return centre.astype(np.float64), float(size)


def plausible(det: Detection, centre: np.ndarray, size: float) -> bool:
    """Whether ``det`` is the predicted hand (centre (2,) px, size px): near it and of its size."""
    ratio = det.size / max(size, 1.0)
    near = float(np.linalg.norm(det.centre - centre)) <= MAX_CENTRE_SHIFT * max(size, 1.0)
    return near and SIZE_RATIO[0] <= ratio <= SIZE_RATIO[1]


def pick(dets: list[Detection], centre: np.ndarray, size: float, taken: list[Detection]) -> Detection | None:
    """The detection of ``dets`` nearest the prediction that is :func:`plausible` and not a hand
    already ``taken`` by another track in that frame; None if there is none."""
    ok = [d for d in dets if plausible(d, centre, size) and not any(same_hand(d, t) for t in taken)]
    return min(ok, key=lambda d: float(np.linalg.norm(d.centre - centre))) if ok else None


def continues(det: Detection, last: Detection, frames: int) -> bool:
    """Whether ``det`` may be the hand ``last`` was, ``frames`` frames apart (see JUMP_BASE)."""
    size = max(last.size, 1.0)
    ratio = det.size / size
    jump = float(np.linalg.norm(det.centre - last.centre)) / size
    return jump <= JUMP_BASE + JUMP_PER_FRAME * abs(frames) and SIZE_RATIO[0] <= ratio <= SIZE_RATIO[1]


def region_box(centre: np.ndarray, size: float, image_size: tuple[int, int]) -> np.ndarray | None:
    """(3,) px (cx, cy, side) of the re-detection crop around a predicted hand, or None when the
    predicted hand lies wholly outside the image (W, H)."""
    side = REGION_SCALE * max(size, 8.0)
    w, h = image_size
    half = 0.5 * size
    if centre[0] + half < 0 or centre[1] + half < 0 or centre[0] - half > w or centre[1] - half > h:
        return None
    return np.array([centre[0], centre[1], side], np.float64)


def frame_box(image_size: tuple[int, int]) -> np.ndarray:
    """(3,) px (cx, cy, side): the square around the whole image (W, H)."""
    w, h = image_size
    return np.array([w / 2, h / 2, max(w, h)], np.float64)


def region_crop(rgb: np.ndarray, box: np.ndarray, crop_px: int) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Cut the square ``box`` (3,) px (cx, cy, side) out of ``rgb`` (H, W, 3) — black outside the
    image — and resize it to ``crop_px``, averaging pixels when it shrinks (INTER_AREA).

    MediaPipe shrinks a frame to its palm detector's input without averaging; on a noisy or
    grainy frame that aliasing alone can hide a clear hand (measured on the rendered clips: of 26
    frames of ``blur_swipe`` around its swipe, 3 found on the frames as they are, 19 on an averaged
    copy). Returns the crop (crop_px, crop_px, 3) and its integer box (x0, y0, side) px.
    """
    h, w = rgb.shape[:2]
    side = max(1, int(round(float(box[2]))))
    x0, y0 = int(round(float(box[0]) - side / 2)), int(round(float(box[1]) - side / 2))
    sub = rgb[max(0, y0):max(0, min(h, y0 + side)), max(0, x0):max(0, min(w, x0 + side))]
    top, left = max(0, -y0), max(0, -x0)
    sub = cv2.copyMakeBorder(sub, top, side - sub.shape[0] - top, left, side - sub.shape[1] - left,
                             cv2.BORDER_CONSTANT, value=(0, 0, 0))
    interp = cv2.INTER_AREA if side > crop_px else cv2.INTER_LINEAR
    return cv2.resize(sub, (crop_px, crop_px), interpolation=interp), (x0, y0, side)


def from_crop(det: Detection, origin: tuple[int, int, int], crop_px: int) -> Detection:
    """A detection made on a :func:`region_crop` crop (origin (x0, y0, side) px, ``crop_px`` side) in image px."""
    x0, y0, side = origin
    s = side / crop_px
    lm = det.landmarks * s + np.array([x0, y0], np.float32)
    depth = None if det.depth is None else det.depth * s
    return Detection(lm.astype(np.float32), det.side, det.side_score, det.world_landmarks, depth)


class RegionDetector:
    """MediaPipe's landmarker in IMAGE mode on averaged crops: around a predicted hand, or the whole
    frame (see the module docstring and :func:`region_crop`)."""

    def __init__(self, detector_options: dict | None = None):
        opts = {k: v for k, v in (detector_options or {}).items() if k not in ("mode", "second_look")}
        self.detector = HandDetector(mode="image", **opts)
        self.calls = 0

    def detect_box(self, rgb: np.ndarray, box: np.ndarray) -> list[Detection]:
        """Hands in the square ``box`` (3,) px (cx, cy, side) of ``rgb`` (H, W, 3), in image px."""
        crop, origin = region_crop(rgb, box, REGION_PX)
        self.calls += 1
        return [from_crop(d, origin, REGION_PX) for d in self.detector.detect(crop)]

    def detect(self, rgb: np.ndarray, centre: np.ndarray, size: float) -> list[Detection]:
        """Hands in the crop around a predicted hand (centre (2,) px, size px)."""
        box = region_box(centre, size, (rgb.shape[1], rgb.shape[0]))
        return [] if box is None else self.detect_box(rgb, box)

    def detect_frame(self, rgb: np.ndarray) -> list[Detection]:
        """Hands anywhere in the frame (an averaged copy of it)."""
        return self.detect_box(rgb, frame_box((rgb.shape[1], rgb.shape[0])))

    def close(self) -> None:
        self.detector.close()


def _taken(fh: FrameHands) -> list[Detection]:
    """Every hand the forward pass assigned in ``fh``, on the captured sides or not."""
    return list(fh.found.values()) + list(fh.others)


# --- the streaming stage ---------------------------------------------------------------------------------
@dataclass
class RecoveryCounts:
    """What recovery added: detections found by backward re-tracking and by region re-detection,
    backward passes run, and passes skipped because the re-decoded frames did not match the first
    pass's timestamps (a seek that landed elsewhere: nothing is taken from it)."""

    backward: int = 0
    region: int = 0
    passes: int = 0
    seek_mismatch: int = 0
    frames_decoded: int = 0
    seconds: float = 0.0

    def to_meta(self) -> dict:
        return {"recovered_backward_rows": self.backward, "recovered_region_rows": self.region,
                "recovery_passes": self.passes, "recovery_frames_decoded": self.frames_decoded,
                "recovery_seek_mismatches": self.seek_mismatch}


@dataclass
class _Seen:
    """The frames a side was last found in (frame, Detection), newest last (at most 2)."""

    chain: list = field(default_factory=list)

    def add(self, frame: int, det: Detection) -> None:
        self.chain = (self.chain + [(frame, det)])[-2:]

    @property
    def last(self) -> int | None:
        return self.chain[-1][0] if self.chain else None


class CoverageRecovery:
    """Backward re-tracking and region re-detection on a stream of :class:`~.stages.FrameHands`.

    ``push(fh, rgb)`` adds the next frame (its hands as the forward pass assigned them, and its RGB
    pixels, which are not kept) and returns the frames that left the window, final, in order;
    ``flush()`` returns the rest at the end.

    Parameters
    ----------
    sides : track sides captured.
    fps : frames/s (the window is RECOVER_WINDOW_S of frames).
    image_size : (W, H) px.
    read_frames : ``read_frames(start, end)`` -> iterator of frames (``index``, ``time_s``, ``image``
        BGR) ``start .. end - 1`` decoded again; None: no backward re-tracking.
    keep_rgb : recovered frames keep their RGB pixels in ``FrameHands.rgb`` (estimators that crop).
    detector_options : as for :class:`~.tracking.HandDetector`.
    cancel : set to stop a backward pass early.
    tracker : the forward pass's :class:`~.tracking.HandTracker`: it assigns hands found in the whole
        frame to the missing sides (its label and continuity costs) and follows the recovered hands.
    """

    def __init__(self, sides, fps: float, image_size: tuple[int, int], read_frames: Callable | None = None,
                 keep_rgb: bool = False, detector_options: dict | None = None,
                 cancel: threading.Event | None = None, tracker: HandTracker | None = None):
        self.sides = tuple(sides)
        self.image_size = tuple(image_size)
        self.fps = float(fps)
        self.window_frames = max(1, int(round(RECOVER_WINDOW_S * fps)))
        self.read_frames, self.keep_rgb = read_frames, keep_rgb
        self.detector_options = dict(detector_options or {})
        self.cancel, self.tracker = cancel, tracker
        self.expect_frames = max(1, int(round(EXPECT_S * fps)))
        self.counts = RecoveryCounts()
        self._window: deque[FrameHands] = deque()
        self._seen = {s: _Seen() for s in self.sides}
        self._region: RegionDetector | None = None
        w, h = self.image_size
        self._block = max(1, min(self.window_frames, DECODE_BLOCK_BYTES // max(1, w * h * 3)))

    # --- the stream ----------------------------------------------------------------------------------
    def push(self, fh: FrameHands, rgb: np.ndarray) -> list[FrameHands]:
        t0 = time.perf_counter()
        try:
            main = dict(fh.found)
            for side in self.sides:        # a hand followed until just now, missing here: look where it should be
                seen = self._seen[side]
                if side not in fh.found and seen.last is not None and 0 < fh.index - seen.last <= MAX_MISSES + 1:
                    centre, size = predict_region(seen.chain, fh.index)
                    det = pick(self._regions().detect(rgb, centre, size), centre, size, _taken(fh))
                    if det is not None:
                        self._found(fh, side, det)
            missing = [s for s in self.sides if s not in fh.found and self._seen[s].last is not None
                       and fh.index - self._seen[s].last <= self.expect_frames]
            if missing and self.tracker is not None:   # still missing: look in the whole (averaged) frame
                taken = _taken(fh)
                extra = [d for d in self._regions().detect_frame(rgb) if not any(same_hand(d, t) for t in taken)]
                extra = [d for d in extra if any(continues(d, self._seen[s].chain[-1][1], fh.index - self._seen[s].last)
                                                 for s in missing)]
                for side, det in self.tracker.assign_missing(fh.index, extra, missing).items():
                    self._found(fh, side, det)
            for side, det in main.items():  # a hand appears: follow it back over the frames before
                last = self._seen[side].last
                if last is None or fh.index - last > 1:
                    self._backward(side, fh, rgb, det, last)
            for side, det in fh.found.items():
                self._seen[side].add(fh.index, det)
            if self.keep_rgb and fh.found and fh.rgb is None:
                fh.rgb = rgb
            self._window.append(fh)
            out = []
            while self._window and self._window[0].index <= fh.index - self.window_frames:
                out.append(self._window.popleft())
            return out
        finally:
            self.counts.seconds += time.perf_counter() - t0

    def _found(self, fh: FrameHands, side: str, det: Detection) -> None:
        """A hand recovered in the newest frame: keep it, and let the tracker follow it."""
        fh.found[side] = det
        self.counts.region += 1
        if self.tracker is not None:
            self.tracker.observe(fh.index, side, det)

    def flush(self) -> list[FrameHands]:
        out = list(self._window)
        self._window.clear()
        return out

    def close(self) -> None:
        if self._region is not None:
            self._region.close()
            self._region = None

    def _regions(self) -> RegionDetector:
        if self._region is None:
            self._region = RegionDetector(self.detector_options)
        return self._region

    # --- backward re-tracking ------------------------------------------------------------------------
    def _backward(self, side: str, fh: FrameHands, rgb: np.ndarray, anchor: Detection, last: int | None) -> None:
        """Follow ``side``'s hand, found in ``fh``, back through the window's frames after ``last``."""
        if self.read_frames is None or not self._window:
            return
        lo = max(self._window[0].index, fh.index - self.window_frames, (last + 1) if last is not None else -1)
        if lo >= fh.index:
            return
        by_index = {w.index: w for w in self._window}
        self.counts.passes += 1
        tracker = HandDetector(**{**self.detector_options, "mode": "video", "second_look": False})
        try:
            chain: list[tuple[int, Detection]] = [(fh.index, anchor)]
            ts = 0.0
            prev_t = fh.time_s
            tracker.detect(rgb, ts)                    # seed: the frame where the hand was found
            misses = 0
            for frame in self._frames_backward(lo, fh.index, by_index):
                if frame is None or (self.cancel is not None and self.cancel.is_set()):
                    return
                target = by_index.get(frame.index)
                if target is None:
                    return
                ts += max(1.0, 1000.0 * abs(prev_t - frame.time_s))
                prev_t = frame.time_s
                frame_rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
                found = tracker.detect(frame_rgb, ts)
                if side in target.found:           # already seen there (a region re-detection): keep it
                    chain.append((frame.index, target.found[side]))
                    misses = 0
                    continue
                centre, size = predict_region(chain, frame.index)
                taken = _taken(target)
                det = pick(found, centre, size, taken)
                if det is None:
                    det = pick(self._regions().detect(frame_rgb, centre, size), centre, size, taken)
                if det is None:           # the whole (averaged) frame: the nearest hand that continues the chain
                    last_f, last_d = chain[-1]
                    extra = [d for d in self._regions().detect_frame(frame_rgb)
                             if continues(d, last_d, last_f - frame.index) and not any(same_hand(d, t) for t in taken)]
                    det = min(extra, key=lambda d: float(np.linalg.norm(d.centre - last_d.centre)), default=None)
                if det is None:
                    misses += 1
                    if misses > MAX_MISSES:
                        return
                    continue
                misses = 0
                target.found[side] = det
                if self.keep_rgb and target.rgb is None:
                    target.rgb = frame_rgb
                self.counts.backward += 1
                chain.append((frame.index, det))
        finally:
            tracker.close()

    def _frames_backward(self, lo: int, hi: int, by_index: dict) -> Iterator:
        """Frames hi - 1 down to lo decoded again, a block at a time; None after a seek that did not
        land on the first pass's frames (their timestamps differ by more than half a frame)."""
        end = hi
        while end > lo:
            start = max(lo, end - self._block)
            block = []
            for frame in self.read_frames(start, end):
                block.append(frame)
            self.counts.frames_decoded += len(block)
            for frame in block:
                ref = by_index.get(frame.index)
                if ref is not None and abs(ref.time_s - frame.time_s) > 0.5 / max(self.fps, 1e-6):
                    self.counts.seek_mismatch += 1
                    yield None
                    return
            if [f.index for f in block] != list(range(start, end)):
                self.counts.seek_mismatch += 1
                yield None
                return
            yield from reversed(block)
            end = start
