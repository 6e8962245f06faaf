"""Stages of the capture pipeline shared by file and live capture (DESIGN.md §4), and the typed rows
that flow between them:

    frame --HandFinder.find--> FrameHands (one Detection per track side)
          --estimator (pipeline.PoseStages)--> TrackSample per (track, frame)
          --TrackState.push / release--> confidence gate, β, temporal filter --> final TrackSamples
          --pipeline.PoseStages.rows--> take rows (take.ROW_FIELDS)

Nothing here imports torch; the estimator and the hand model live in :mod:`.pipeline`.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import cv2
import numpy as np

from .errors import CaptureError
from .filters import PoseFilter, PoseSample
from .tracking import Detection, HandDetector, HandTracker

#: A track's β is the median over its first BETA_SAMPLES confident frames, or over what it has
#: BETA_WINDOW_S seconds after its first frame, whichever comes first; in file capture its rows
#: wait until then, so every row of a track carries the same β (and rows still stream, with
#: bounded memory).
BETA_SAMPLES = 30
BETA_WINDOW_S = 2.0


@dataclass
class FrameHands:
    """The hands found in one frame, assigned to track sides.

    index : frame index in the source; time_s : s, its timestamp.
    found : {side: Detection} for the sides captured that were seen in this frame.
    rgb : (H, W, 3) uint8 RGB frame, kept only when the estimator wants crops and a hand was found.
    """

    index: int
    time_s: float
    found: dict[str, Detection]
    rgb: np.ndarray | None = None


class HandFinder:
    """Detect the hands of each frame (MediaPipe) and assign them to tracks, one frame at a time.

    Parameters
    ----------
    sides : track sides captured ('right', 'left').
    image_size : (W, H) px every frame must have.
    source_name : names the source in error messages.
    keep_rgb : keep the RGB frame in :class:`FrameHands` (estimators that want crops).
    detector_options : keyword arguments for :class:`~.tracking.HandDetector`.
    """

    def __init__(self, sides, image_size: tuple[int, int], source_name: str, keep_rgb: bool = False,
                 detector_options: dict | None = None):
        self.sides, self.image_size, self.source_name = tuple(sides), tuple(image_size), source_name
        self.keep_rgb = keep_rgb
        self.detector = HandDetector(**(detector_options or {}))
        self.tracker = HandTracker()

    def find(self, frame) -> FrameHands:
        """Hands of ``frame`` (``index``, ``time_s``, ``image`` (H, W, 3) uint8 BGR); frames in order.

        Raises
        ------
        CaptureError
            The frame's size differs from ``image_size``.
        """
        rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
        if frame.image.shape[1::-1] != self.image_size:
            w, h = self.image_size
            raise CaptureError(
                f"{self.source_name}: frame {frame.index} is {frame.image.shape[1]}x{frame.image.shape[0]} "
                f"but the video started at {w}x{h}; videos whose frame size changes are not supported. "
                "Re-encode it at one size.")
        found = self.tracker.update(frame.index, self.detector.detect(rgb, 1000.0 * frame.time_s))
        found = {s: d for s, d in found.items() if s in self.sides}
        return FrameHands(frame.index, frame.time_s, found, rgb if (found and self.keep_rgb) else None)

    def close(self) -> None:
        self.detector.close()


@dataclass(frozen=True)
class TrackSample(PoseSample):
    """One row of a track: the filter's :class:`PoseSample` plus what the take keeps beside it.

    landmarks2d : (21, 2) px raw MediaPipe landmarks.
    confidence : the estimator's confidence in [0, 1].
    filled : True when the confidence gate replaced the pose by the last confident one.
    """

    landmarks2d: np.ndarray
    confidence: float
    filled: bool = False


class TrackState:
    """One track's post-processing: β (median), confidence gate, temporal filter.

    Parameters
    ----------
    index : track number in the take; side : 'right' / 'left'.
    threshold : confidence below which a frame holds the last confident pose.
    pose_filter : the track's :class:`~.filters.PoseFilter`.
    fps : frames/s (for the β window).
    hold_for_beta : keep the filtered rows back until β is fixed (file capture: every row carries
        the final β). False (live): rows go out at once and :meth:`betas` is the median so far
        until it is fixed.
    """

    def __init__(self, index: int, side: str, threshold: float, pose_filter: PoseFilter, fps: float,
                 hold_for_beta: bool = True):
        self.index, self.side, self.threshold = index, side, threshold
        self.filter = pose_filter
        self.hold_for_beta = hold_for_beta
        self._betas: list[np.ndarray] = []
        self._betas_any: list[np.ndarray] = []
        self._beta_median: np.ndarray | None = None
        self._held: tuple[np.ndarray, np.ndarray] | None = None
        self.first_frame: int | None = None
        self.frozen = False
        self.pending: list[TrackSample] = []   # filtered rows not released yet
        self.beta_window = max(1, int(round(BETA_WINDOW_S * fps)))

    @property
    def lag(self) -> int:
        """Frames the filter holds a row back."""
        return self.filter.lag

    def betas(self) -> np.ndarray:
        """(10,) the track's β (see BETA_SAMPLES); before it is fixed, the median so far when
        rows are not held for it, else an error."""
        if self._beta_median is not None:
            return self._beta_median
        if self.hold_for_beta or not self._betas_any:
            raise RuntimeError("β is not fixed yet")
        return np.median(np.stack(self._betas or self._betas_any), axis=0)

    def maybe_freeze(self, frame: int, force: bool = False) -> None:
        """Fix β when enough confident frames are in, the window has passed, or ``force``."""
        if self.frozen or self.first_frame is None:
            return
        if force or len(self._betas) >= BETA_SAMPLES or frame >= self.first_frame + self.beta_window:
            pool = self._betas or self._betas_any
            self._beta_median = np.median(np.stack(pool), axis=0)
            self.frozen = True

    def ready_until(self) -> float:
        """Last frame whose rows this track no longer holds back (inf when none are waiting)."""
        if self.frozen or self.first_frame is None or not self.hold_for_beta:
            return math.inf
        return self.first_frame - 1

    def take_pending(self, until: float) -> list[TrackSample]:
        """Remove and return the filtered rows at frames <= ``until``."""
        n = 0
        while n < len(self.pending) and self.pending[n].frame <= until:
            n += 1
        out, self.pending = self.pending[:n], self.pending[n:]
        return out

    def push(self, sample: TrackSample, betas: np.ndarray) -> None:
        """Add the estimate of one frame (frames increasing): gate it, note its β (10,), filter it."""
        if self.first_frame is None:
            self.first_frame = sample.frame
        if len(self._betas_any) < BETA_SAMPLES:
            self._betas_any.append(betas)
        confident = sample.confidence >= self.threshold
        if confident:
            if not self.frozen and len(self._betas) < BETA_SAMPLES:
                self._betas.append(betas)
            self._held = (sample.pose, sample.transl)
        elif self._held is not None:   # confidence gate: hold the last confident pose
            sample = dataclasses.replace(sample, pose=self._held[0], transl=self._held[1])
        self.pending += self.filter.push(dataclasses.replace(sample, filled=not confident))

    def advance(self, frame: int, flush: bool = False) -> None:
        """The stream reached ``frame`` (``flush``: it ended): collect what the filter lets go."""
        self.pending += self.filter.flush() if flush else self.filter.advance_to(frame)
