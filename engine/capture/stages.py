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

from ..geometry import hand_size
from .errors import CaptureError
from .filters import PoseFilter, PoseSample
from .tracking import Detection, HandDetector, HandTracker

#: A track's β is the median over its first BETA_SAMPLES confident frames, or over what it has
#: BETA_WINDOW_S seconds after its first frame, whichever comes first; in file capture its rows
#: wait until then, so every row of a track carries the same β (and rows still stream, with
#: bounded memory).
BETA_SAMPLES = 30
BETA_WINDOW_S = 2.0
#: Offline capture fills a track's gaps up to this long (s) — the hand seen on both sides of it —
#: by interpolating its pose on SO(3) (rows flagged ``filled``); longer gaps stay empty.
FILL_GAP_S = 0.3
#: Orientation continuity (zero-lag captures): a run of at most SPIKE_RUN frames whose global
#: orientation leaves the rotation between the frames just around it by more than SPIKE_DEG (those
#: two within SPIKE_DEG / 2 of each other) is put back on the path between them (orientation on
#: SO(3), translation linearly; the fingers stay); a run whose depth alone leaves the line between
#: theirs by more than SPIKE_DEPTH of it (theirs within SPIKE_DEPTH of each other) gets the
#: translation of the line — unless the landmarks force the excursion: the path must reproject
#: within SPIKE_REPROJ hand sizes (landmark box, longer side) of what the estimate itself does.
SPIKE_RUN = 2
SPIKE_DEG = 30.0
SPIKE_DEPTH = 0.1
SPIKE_REPROJ = 0.02
#: Vanishing ends (zero-lag captures with gap filling): where a hand slides behind something or out
#: of view, MediaPipe's landmarks shrink onto what is left of it and the capture reads a hand flying
#: away and turning (the real test video's fist behind the other forearm: 0.99 → 1.56 m and turns of
#: 10° … 46° per frame in its last four frames, benchmarks/vanishing_ends.py). The rows at either
#: end of a run of a track (a track's stretch without a gap longer than FILL_GAP_S) whose depth
#: moves away from the run faster than VANISH_RATE (relative depth change per second,
#: |d ln z / dt|: 2.5 /s is 1.25 m/s at 0.5 m), at most VANISH_MAX_S of them, are dropped — never
#: the whole run.
VANISH_RATE = 2.5
VANISH_MAX_S = 0.2


def vanishing_ends(z: np.ndarray, fps: float, max_rows: int, head: bool = True, tail: bool = True) -> tuple[int, int]:
    """How many rows at the head and at the tail of one run of a track to drop (see VANISH_RATE).

    z : (n,) m, the wrist depth of the run's rows in frame order; fps : frames/s; max_rows : at most
    this many at each end; head / tail : judge that end (False: 0 rows there). At least one row is
    always left.
    """
    z = np.log(np.maximum(np.asarray(z, np.float64), 1e-6))
    step = VANISH_RATE / float(fps)
    n_tail = 0
    while tail and n_tail < min(max_rows, len(z) - 1) and z[-1 - n_tail] - z[-2 - n_tail] > step:
        n_tail += 1
    n_head = 0
    while head and n_head < min(max_rows, len(z) - 1 - n_tail) and z[n_head] - z[n_head + 1] > step:
        n_head += 1
    return n_head, n_tail


@dataclass
class FrameHands:
    """The hands found in one frame, assigned to track sides.

    index : frame index in the source; time_s : s, its timestamp.
    found : {side: Detection} for the sides captured that were seen in this frame.
    rgb : (H, W, 3) uint8 RGB frame, kept only when the estimator wants crops and a hand was found.
    others : the detector's hands of this frame that are not in ``found`` (on a side not captured —
        ``hands='right'`` on a video with a left hand too —, or held back by the tracker as a
        possible ghost): coverage recovery must not take them for a captured side.
    """

    index: int
    time_s: float
    found: dict[str, Detection]
    rgb: np.ndarray | None = None
    others: list[Detection] = dataclasses.field(default_factory=list)


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
        #: (H, W, 3) uint8 RGB of the frame :meth:`find` saw last (coverage recovery looks at it again).
        self.last_rgb: np.ndarray | None = None

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
        detections = self.detector.detect(rgb, 1000.0 * frame.time_s)
        every = self.tracker.update(frame.index, detections)
        found = {s: d for s, d in every.items() if s in self.sides}
        others = [d for d in detections if not any(d is f for f in found.values())]
        self.last_rgb = rgb
        return FrameHands(frame.index, frame.time_s, found, rgb if (found and self.keep_rgb) else None, others)

    def close(self) -> None:
        self.detector.close()


@dataclass(frozen=True)
class TrackSample(PoseSample):
    """One row of a track: the filter's :class:`PoseSample` plus what the take keeps beside it.

    landmarks2d : (21, 2) px raw MediaPipe landmarks.
    confidence : the estimator's confidence in [0, 1].
    filled : True when the confidence gate replaced the pose by the last confident one, or the row
        was interpolated across a short gap (:func:`interpolate_gap`).
    """

    landmarks2d: np.ndarray
    confidence: float
    filled: bool = False


def interpolate_gap(a: TrackSample, b: TrackSample, times: dict[int, float] | None = None) -> list[TrackSample]:
    """Rows for the frames strictly between ``a.frame`` and ``b.frame`` of one track, flagged ``filled``:
    every joint rotation interpolated on SO(3) (the geodesic from a's to b's), the translation and the
    landmarks (21, 2) px linearly, the confidence the lower of the two; ``time_s`` from ``times``
    (frame -> s) where known, else linear."""
    from .filters import so3_exp_apply, so3_log_relative
    from ..hand import quaternion as Q

    n = b.frame - a.frame
    if n <= 1:
        return []
    qa = Q.from_axis_angle(a.pose)
    delta = so3_log_relative(qa, Q.from_axis_angle(b.pose))               # (J, 3) rad
    out = []
    for f in range(a.frame + 1, b.frame):
        u = (f - a.frame) / n
        t = (times or {}).get(f, a.time_s + u * (b.time_s - a.time_s))
        out.append(TrackSample(f, float(t), Q.to_axis_angle(so3_exp_apply(qa, u * delta)),
                               (1 - u) * np.asarray(a.transl, np.float64) + u * np.asarray(b.transl, np.float64),
                               ((1 - u) * a.landmarks2d + u * b.landmarks2d).astype(np.float32),
                               min(a.confidence, b.confidence), True))
    return out


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Geodesic angle (deg) between two axis-angle rotations (3,) rad."""
    from .filters import so3_log_relative
    from ..hand import quaternion as Q

    return float(np.degrees(np.linalg.norm(so3_log_relative(Q.from_axis_angle(a), Q.from_axis_angle(b)))))


def path_between(a: TrackSample, b: TrackSample, frames) -> tuple[np.ndarray, np.ndarray]:
    """Global orientation (n, 3) rad on the geodesic from ``a``'s to ``b``'s, and translation (n, 3)
    on the line between theirs, at ``frames`` (n,) between ``a.frame`` and ``b.frame``."""
    from .filters import so3_exp_apply, so3_log_relative
    from ..hand import quaternion as Q

    u = (np.asarray(frames, np.float64) - a.frame) / (b.frame - a.frame)
    qa = Q.from_axis_angle(a.pose[0])
    delta = so3_log_relative(qa, Q.from_axis_angle(b.pose[0]))
    rot = Q.to_axis_angle(so3_exp_apply(np.broadcast_to(qa, (len(u), 4)), u[:, None] * delta))
    ta, tb = np.asarray(a.transl, np.float64), np.asarray(b.transl, np.float64)
    return rot, (1 - u)[:, None] * ta + u[:, None] * tb


class TrackState:
    """One track's post-processing: β (median), confidence gate, gap filling, orientation
    continuity, temporal filter.

    Parameters
    ----------
    index : track number in the take; side : 'right' / 'left'.
    threshold : confidence below which a frame holds the last confident pose.
    pose_filter : the track's :class:`~.filters.PoseFilter`.
    fps : frames/s (for the β window).
    hold_for_beta : keep the filtered rows back until β is fixed (file capture: every row carries
        the final β). False (live): rows go out at once and :meth:`betas` is the median so far
        until it is fixed.
    fill_gaps : interpolate gaps of at most FILL_GAP_S (:func:`interpolate_gap`; offline capture);
        the filter is then advanced that many frames late, so that the rows before a gap that
        closes later are smoothed with its filled rows.
    reproject : ``reproject(pose (n, 16, 3) rad, transl (n, 3) m, betas (10,)) -> (n, 21, 2) px``:
        turns on orientation continuity (see SPIKE_RUN; offline captures), which needs it to ask
        the landmarks, and with ``fill_gaps`` the trimming of vanishing ends (see VANISH_RATE); the
        filter then runs SPIKE_RUN + 1 (+ VANISH_MAX_S · fps) frames later still.
    """

    def __init__(self, index: int, side: str, threshold: float, pose_filter: PoseFilter, fps: float,
                 hold_for_beta: bool = True, fill_gaps: bool = False, reproject=None):
        self.index, self.side, self.threshold = index, side, threshold
        self.filter = pose_filter
        self.hold_for_beta = hold_for_beta
        self.reproject = reproject
        self._recent: list[TrackSample] = []     # rows held for the continuity check and the ends
        self.spike_rows = 0
        self.fps = float(fps)
        # ends only where runs are whole: with gaps filled (offline recovery), not in the single pass,
        # whose runs break at every missed frame (measured: it trimmed good rows of a far hand there)
        self.vanish_frames = max(1, int(round(VANISH_MAX_S * fps))) if reproject is not None and fill_gaps else 0
        self.guard_frames = SPIKE_RUN + 1 + self.vanish_frames if reproject is not None else 0
        self.fill_frames = int(round(FILL_GAP_S * fps)) if fill_gaps else 0
        self.end_trimmed_rows = 0
        self._last_frame: int | None = None      # the newest row forwarded
        self._run_open = False                   # the current run's tail is not judged yet
        self._head_frame: int | None = None      # first frame of the current run, while its head is not judged
        self._prev: TrackSample | None = None    # the last row pushed into the filter
        self.filled_gap_rows = 0
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

    def push(self, sample: TrackSample, betas: np.ndarray, times: dict[int, float] | None = None) -> None:
        """Add the estimate of one frame (frames increasing): gate it, note its β (10,), fill the gap
        before it when short (``times``: frame -> s of the frames in between), filter it."""
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
        sample = dataclasses.replace(sample, filled=not confident)
        prev = self._prev
        if prev is not None and 1 < sample.frame - prev.frame <= self.fill_frames + 1:
            for row in interpolate_gap(prev, sample, times):
                self._forward(row)
                self.filled_gap_rows += 1
        self._forward(sample)
        self._prev = sample

    def _forward(self, row: TrackSample) -> None:
        """Into the continuity check and the ends' check (when on), then into the filter."""
        if self.reproject is None:
            self.pending += self.filter.push(row)
            return
        if self.vanish_frames:
            if self._last_frame is None or row.frame - self._last_frame > self.fill_frames + 1:   # a new run
                self._close_run()
                self._head_frame = row.frame
            self._last_frame, self._run_open = row.frame, True
        self._recent.append(row)
        self._unspike()
        while len(self._recent) > self.guard_frames:
            self._release_first()

    def _run_in_buffer(self, first: bool) -> tuple[int, int]:
        """[start, end) of the held rows of one run: the first run in the buffer or the last one."""
        rows, gap = self._recent, self.fill_frames + 1
        if first:
            end = 1
            while end < len(rows) and rows[end].frame - rows[end - 1].frame <= gap:
                end += 1
            return 0, end
        start = len(rows) - 1
        while start > 0 and rows[start].frame - rows[start - 1].frame <= gap:
            start -= 1
        return start, len(rows)

    def _drop_ends(self, start: int, end: int, head: bool, tail: bool) -> None:
        """Drop the vanishing ends (see VANISH_RATE) of the held rows [start, end) of one run."""
        z = [float(r.transl[2]) for r in self._recent[start:end]]
        n_head, n_tail = vanishing_ends(z, self.fps, self.vanish_frames, head, tail)
        if n_head or n_tail:
            del self._recent[end - n_tail:end]
            del self._recent[start:start + n_head]
            self.end_trimmed_rows += n_head + n_tail

    def _close_run(self) -> None:
        """The current run has ended: judge its tail (and its head, if still held)."""
        if not (self._run_open and self._recent):
            self._run_open = False
            return
        start, end = self._run_in_buffer(first=False)
        self._drop_ends(start, end, head=self._recent[start].frame == self._head_frame, tail=True)
        self._run_open, self._head_frame = False, None

    def _release_first(self) -> None:
        """Into the filter: the oldest held row — unless it is a run's head not judged yet: then the
        head is judged (its vanishing rows dropped) and the caller looks again."""
        if self._head_frame is not None and self._recent[0].frame == self._head_frame:
            self._drop_ends(*self._run_in_buffer(first=True), head=True, tail=False)
            self._head_frame = None
            return
        self.pending += self.filter.push(self._recent.pop(0))

    def _unspike(self) -> None:
        """Put a short excursion just before the newest row back on the path (see SPIKE_RUN)."""
        buf = self._recent
        b = buf[-1]
        for run in range(1, SPIKE_RUN + 1):
            if len(buf) < run + 2:
                return
            a, rows = buf[-run - 2], buf[-run - 1:-1]
            if b.frame - a.frame != run + 1 or any(r.filled for r in rows):
                continue
            rot, transl = path_between(a, b, [r.frame for r in rows])
            pose = np.stack([r.pose for r in rows]).astype(np.float64)
            raw_t = np.stack([np.asarray(r.transl, np.float64) for r in rows])
            fixed = pose.copy()
            if (_angle_deg(a.pose[0], b.pose[0]) <= SPIKE_DEG / 2
                    and all(_angle_deg(r.pose[0], q) > SPIKE_DEG for r, q in zip(rows, rot))):
                fixed[:, 0] = rot                                           # a flip: orientation and place
            elif (abs(a.transl[2] - b.transl[2]) <= SPIKE_DEPTH * transl[0, 2]
                  and np.all(np.abs(raw_t[:, 2] - transl[:, 2]) > SPIKE_DEPTH * transl[:, 2])):
                pass                                                        # a depth spike: place only
            else:
                continue
            betas = self.betas_so_far()
            lm = np.stack([r.landmarks2d for r in rows]).astype(np.float64)
            size = np.maximum(hand_size(lm), 1.0)
            err_raw = np.linalg.norm(self.reproject(pose, raw_t, betas) - lm, axis=-1).mean(-1) / size
            err_fix = np.linalg.norm(self.reproject(fixed, transl, betas) - lm, axis=-1).mean(-1) / size
            if np.all(err_fix <= err_raw + SPIKE_REPROJ):
                for k, (r, p, t) in enumerate(zip(rows, fixed, transl)):
                    buf[len(buf) - run - 1 + k] = dataclasses.replace(r, pose=p, transl=t)
                self.spike_rows += run
                return

    def betas_so_far(self) -> np.ndarray:
        """(10,) the track's β: the fixed one, else the median of what has come in (zeros before any)."""
        if self._beta_median is not None:
            return self._beta_median
        pool = self._betas or self._betas_any
        return np.median(np.stack(pool), axis=0) if pool else np.zeros(10)

    def advance(self, frame: int, flush: bool = False) -> None:
        """The stream reached ``frame`` (``flush``: it ended): collect what the filter lets go
        (``fill_frames`` later when gaps are filled: a gap that closes later may still add rows
        that the rows before it should be smoothed with; and later still while the continuity
        check holds rows)."""
        held = frame - self.fill_frames
        if self._run_open and (flush or frame > self._last_frame + self.fill_frames + 1):
            self._close_run()
        while self._recent and (flush or self._recent[0].frame <= held - self.guard_frames):
            self._release_first()
        self.pending += self.filter.flush() if flush else self.filter.advance_to(held - self.guard_frames)
