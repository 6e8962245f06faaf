"""The streaming capture pipeline (DESIGN.md §4).

frames (decoder thread) -> MediaPipe landmarks + handedness -> one track per hand -> crops (only
for estimators that want them) -> batched estimator forward -> per-track β (median) ->
confidence gate -> temporal filter on SO(3) -> chunks of finished rows, in frame order.

The stages after decoding are shared with live capture (:mod:`.live`): :class:`~.stages.HandFinder`
(detect, assign to tracks) and :class:`PoseStages` (estimate, per-track gate / β / filter, take
rows). :class:`CapturePipeline` drives them over a video file, batched and overlapped.

Memory does not grow with the video: the decoder queue, one chunk of frames and the smoother's
window are all that is held.
"""
from __future__ import annotations

import math
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from ..backend import blas_threads, to_numpy_outputs
from ..constants import CROP_SIZE
from ..geometry import check_focal, default_focal, project_points
from ..hand.model import keypoint_function
from ..hand.tables import NUM_KEYPOINTS
from ..net.batch import HandBatch
from .crops import crop_box, hand_boxes
from .errors import CaptureError
from .filters import FILTER_KINDS, make_filter
from .recovery import CoverageRecovery
from .settings import DEFAULT_CHUNK_FRAMES, DEFAULT_SMOOTH, DEFAULT_THRESHOLD, HANDS_CHOICES, capture_sides
from .stages import FrameHands, HandFinder, TrackSample, TrackState
from .take import concat_rows, empty_rows
from .tracking import Detection
from .video import ReadAhead, frames_within

#: Temporal filter names (see filters.FILTER_KINDS).
FILTERS = tuple(FILTER_KINDS)
#: Seconds of video whose hands the focal pass (``CapturePipeline(focal_pass=...)``) sees before the
#: capture starts estimating (the whole video when it is shorter): up to ~180 detections, of which
#: the self-calibration uses the 96 largest; longer would hold back the first keyed frames in Blender.
FOCAL_WINDOW_S = 3.0


@dataclass
class Chunk:
    """Finished rows of a stretch of the video (see take.ROW_FIELDS), plus progress.

    rows are in frame order (then track order). ``frames_done`` / ``frames_total``: frames decoded
    so far / in the video (0 when unknown). ``final``: the last chunk of the stream;
    ``cancelled``: the stream stopped early on request (the rows so far still form a valid take).
    """

    rows: dict[str, np.ndarray]
    frames_done: int
    frames_total: int
    fps: float
    image_size: tuple[int, int]
    focal: float
    handedness: tuple[str, ...]
    meta: dict = field(default_factory=dict)
    final: bool = False
    cancelled: bool = False

    def __len__(self) -> int:
        return len(self.rows["frame"])


@dataclass
class Estimates:
    """The estimator's output for B hands: pose (B, 16, 3) rad, betas (B, 10), transl (B, 3) m,
    confidence (B,); valid (B,) bool: every value finite (rows that are not never reach a take);
    refine_failed (B,) bool: the per-frame fit failed and the row kept the network's prediction."""

    pose: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    confidence: np.ndarray
    valid: np.ndarray
    refine_failed: np.ndarray


def estimate_hands(estimator, hands: list[tuple[FrameHands, str, Detection]], image_size: tuple[int, int],
                   focal: float) -> Estimates:
    """One batched forward of ``estimator`` over (frame, side, detection) triples (B >= 1)."""
    lm = np.stack([d.landmarks for _, _, d in hands]).astype(np.float32)
    B = len(hands)
    extra = {}
    if getattr(estimator, "needs_crops", False):
        boxes = hand_boxes(lm)
        extra = {"crops": np.stack([crop_box(fh.rgb, b, CROP_SIZE) for (fh, _, _), b in zip(hands, boxes)]),
                 "boxes": boxes}
    worlds = [d.world_landmarks for _, _, d in hands]
    if any(w is not None for w in worlds):   # MediaPipe's metric 3-D hand (the landmark engine reads it; NaN: absent)
        extra["world_landmarks"] = np.stack([np.full((NUM_KEYPOINTS, 3), np.nan) if w is None else w
                                             for w in worlds]).astype(np.float32)
    batch = HandBatch.of(lm, np.array([s == "right" for _, s, _ in hands]), image_size, focal, **extra)
    out = to_numpy_outputs(estimator.predict(batch))
    keys = ("pose", "betas", "transl", "confidence")
    valid = np.asarray(out.get("valid", np.ones(B, bool)), bool).copy()
    for k in keys:
        valid &= np.isfinite(out[k].reshape(B, -1)).all(1)
    failed = np.asarray(out.get("refine_failed", np.zeros(B, bool)), bool)
    return Estimates(**{k: out[k] for k in keys}, valid=valid, refine_failed=failed)


class PoseStages:
    """Estimate → per-track confidence gate, β, temporal filter → take rows; file and live capture.

    Parameters
    ----------
    estimator : object with ``predict(...)``, ``needs_crops``, ``device`` (see dahyf.net).
    keypoints : {side: keypoint_function(hand model)} for the sides captured.
    sides : track sides in track order.
    threshold, filter_kind, smooth, fps : see :class:`CapturePipeline` (fps: nominal frames/s).
    image_size : (W, H) px; focal : px.
    hold_for_beta, fill_gaps : see :class:`~.stages.TrackState` (False for live capture).
    """

    def __init__(self, estimator, keypoints: dict, sides, threshold: float, filter_kind: str, smooth: float,
                 fps: float, image_size: tuple[int, int], focal: float, hold_for_beta: bool = True,
                 fill_gaps: bool = False):
        self.estimator, self.keypoints = estimator, keypoints
        self.image_size, self.focal = image_size, focal
        offline = not FILTER_KINDS[filter_kind].causal     # zero-lag captures: orientation continuity
        self.tracks = [TrackState(i, s, threshold, make_filter(filter_kind, smooth, fps), fps, hold_for_beta,
                                  fill_gaps, self._reprojection(s) if offline else None)
                       for i, s in enumerate(sides)]
        self._times: dict[int, float] = {}     # frame -> s of the recent frames (the filled rows' times)
        self._by_side = {t.side: t for t in self.tracks}
        #: Estimates that were not finite (dropped: never in a take) and per-frame fits that failed
        #: (the row keeps the network's prediction); the capture's meta reports both.
        self.nonfinite_rows = 0
        self.refine_failed_rows = 0

    def _reprojection(self, side: str):
        """``f(pose (n, 16, 3) rad, transl (n, 3) m, betas (10,)) -> (n, 21, 2) px`` of ``side``'s hand."""
        keypoints = self.keypoints[side]

        def reproject(pose, transl, betas):
            b = np.repeat(np.asarray(betas, np.float32)[None], len(pose), axis=0)
            return project_points(keypoints(pose, b, transl), self.focal, self.image_size)

        return reproject

    def push(self, batch: list[FrameHands]) -> None:
        """Estimate every hand of ``batch`` (frames in order) in one forward, and feed the tracks."""
        if batch:
            keep = batch[0].index - max(st.fill_frames for st in self.tracks) - 1
            self._times = {f: t for f, t in self._times.items() if f >= keep}
            self._times.update((fh.index, fh.time_s) for fh in batch)
        hands = [(fh, side, det) for fh in batch for side, det in fh.found.items()]
        if not hands:
            return
        est = estimate_hands(self.estimator, hands, self.image_size, self.focal)
        bad = int((~est.valid).sum())
        if bad:
            warnings.warn(f"the engine gave non-finite values for {bad} of {len(hands)} hand detections; they are "
                          "left out of the take (a broken checkpoint?)", RuntimeWarning, stacklevel=2)
        self.nonfinite_rows += bad
        self.refine_failed_rows += int(est.refine_failed.sum())
        for i, (fh, side, det) in enumerate(hands):
            if not est.valid[i]:    # a non-finite estimate never reaches a take (counted, warned)
                continue
            sample = TrackSample(fh.index, fh.time_s, est.pose[i], est.transl[i], det.landmarks,
                                 float(est.confidence[i]))
            self._by_side[side].push(sample, est.betas[i], self._times)

    def release(self, last: int, flush: bool = False) -> list[list[TrackSample]]:
        """Final rows of each track (track order) once the stream reached frame ``last`` (``flush``:
        ended) and every track's β is fixed (see ``hold_for_beta``)."""
        for st in self.tracks:
            st.advance(last, flush)
            st.maybe_freeze(last, force=flush)
        until = min(st.ready_until() for st in self.tracks)
        return [st.take_pending(until) for st in self.tracks]

    def process(self, batch: list[FrameHands], flush: bool = False) -> dict[str, np.ndarray]:
        """:meth:`push` then :meth:`release` up to the batch's last frame; the rows that came out.

        One BLAS thread: the filters' and the hand model's matrices are tiny, and a second OpenBLAS
        thread only wakes up to compete with the landmarker (:func:`dahyf.backend.blas_threads`)."""
        with blas_threads(1):
            self.push(batch)
            return self.rows(self.release(batch[-1].index if batch else -1, flush))

    def rows(self, released: list[list[TrackSample]]) -> dict[str, np.ndarray]:
        """Take rows (take.ROW_FIELDS) of per-track samples, in frame then track order; joints from
        the hand model with each track's β (TrackState.betas)."""
        parts = []
        for st, samples in zip(self.tracks, released):
            if samples:
                parts.append(self._track_rows(st, samples, st.betas()))
        if not parts:
            return empty_rows()
        rows = concat_rows(parts)
        order = np.lexsort((rows["track"], rows["frame"]))
        return {k: v[order] for k, v in rows.items()}

    def _track_rows(self, st: TrackState, samples: list[TrackSample], betas: np.ndarray) -> dict[str, np.ndarray]:
        n = len(samples)
        pose = np.stack([s.pose for s in samples]).astype(np.float32)
        transl = np.stack([s.transl for s in samples]).astype(np.float32)
        betas = np.repeat(np.asarray(betas)[None].astype(np.float32), n, axis=0)
        joints3d = self.keypoints[st.side](pose, betas, transl)
        return {
            "track": np.full(n, st.index, np.int32),
            "frame": np.array([s.frame for s in samples], np.int64),
            "time_s": np.array([s.time_s for s in samples], np.float64),
            "pose": pose, "betas": betas, "transl": transl, "joints3d": joints3d,
            "joints2d_proj": project_points(joints3d, self.focal, self.image_size).astype(np.float32),
            "landmarks2d": np.stack([s.landmarks2d for s in samples]).astype(np.float32),
            "confidence": np.array([s.confidence for s in samples], np.float32),
            "filled": np.array([s.filled for s in samples], bool),
        }


#: Bytes of decoded frames the decoder may read ahead: 1 frame at 8K, 5 at 4K, 21 at 1080p, 64
#: (2 chunks) at 640x480. Frames are dropped once detection is done (FrameHands keeps no image).
#: 8K peak: 1.4 GB (benchmarks/memory_8k.json).
DECODE_AHEAD_BYTES = 128 * 2**20
#: Bytes of full RGB frames one batch may keep for an estimator that wants crops (two batches
#: live at once: the one being estimated and the one being detected).
CROP_BATCH_BYTES = 256 * 2**20


class CapturePipeline:
    """Runs one capture of a video file; see :meth:`run`.

    Parameters
    ----------
    estimator : object with ``predict(...)``, ``needs_crops``, ``device`` (see dahyf.net).
    hand_models : {'right': HandModel, 'left': HandModel} for the sides captured.
    hands : 'right', 'left' or 'both'.
    threshold : confidence below which a frame holds the last confident pose (flag ``filled``).
    smooth : 0 (none) .. 1 (strong) temporal smoothing.
    filter_kind : a name of FILTERS: 'zero_lag' (captures; rows emitted a few frames late) or
        'one_euro' (causal).
    chunk_frames : frames per batched forward and per emitted chunk (fewer at high resolution for an
        estimator that wants crops: CROP_BATCH_BYTES).
    focal : px, None for sqrt(W^2 + H^2).
    detector_options : keyword arguments for HandDetector.
    recover : offline coverage recovery (:mod:`.recovery`: backward re-tracking, region
        re-detection; gaps up to FILL_GAP_S interpolated, flagged ``filled``). Rows then come out
        RECOVER_WINDOW_S later; memory stays flat. False: the single forward pass.
    focal_pass : ``focal_pass(tracks) -> FocalEstimate`` (:func:`dahyf.capture.focal.estimate_focal`
        on one :class:`~dahyf.net.batch.HandBatch` of detections per track): the focal length is
        estimated from the hands of the first FOCAL_WINDOW_S of video (landmarks only are held
        meanwhile; the chunks carry the progress) before any hand is estimated; ``focal`` is the
        fall-back. None: ``focal`` (or the default) from the start.
    """

    def __init__(self, estimator, hand_models: dict, hands: str = "both", threshold: float = DEFAULT_THRESHOLD,
                 smooth: float = DEFAULT_SMOOTH, filter_kind: str = "zero_lag", chunk_frames: int = DEFAULT_CHUNK_FRAMES,
                 focal: float | None = None, detector_options: dict | None = None, recover: bool = False,
                 focal_pass: Callable | None = None):
        check_options(hands, filter_kind, smooth, threshold, focal)
        if chunk_frames < 1:
            raise CaptureError(f"chunk_frames must be >= 1, got {chunk_frames}.")
        self.estimator, self.hand_models = estimator, hand_models
        self.sides = capture_sides(hands)
        self.threshold, self.smooth, self.filter_kind = threshold, smooth, filter_kind
        self.chunk_frames, self.focal = chunk_frames, focal
        self.detector_options = detector_options or {}
        self.recover = bool(recover)
        self.focal_pass = focal_pass
        self._stages: PoseStages | None = None   # the running capture's stages (for its counts)
        self._recovery: CoverageRecovery | None = None
        self._keypoints = {side: keypoint_function(m) for side, m in hand_models.items()}
        self.timings = {"decode_s": 0.0, "detect_s": 0.0, "recover_s": 0.0, "focal_s": 0.0, "engine_s": 0.0,
                        "total_s": 0.0, "frames": 0}

    def stages(self, fps: float, image_size: tuple[int, int], focal: float, hold_for_beta: bool = True) -> PoseStages:
        """The :class:`PoseStages` of this pipeline's settings for a source of ``fps`` and ``image_size``
        (gaps filled when recovering)."""
        return PoseStages(self.estimator, self._keypoints, self.sides, self.threshold, self.filter_kind,
                          self.smooth, fps, image_size, focal, hold_for_beta, fill_gaps=self.recover)

    def finder(self, image_size: tuple[int, int], source_name: str) -> HandFinder:
        """The :class:`~.stages.HandFinder` of this pipeline's sides and detector options."""
        return HandFinder(self.sides, image_size, source_name, bool(getattr(self.estimator, "needs_crops", False)),
                          self.detector_options)

    def run(self, reader, cancel: threading.Event | None = None,
            progress: Callable[[int, int], None] | None = None, meta: dict | None = None) -> Iterator[Chunk]:
        """Stream a capture of ``reader`` (a VideoReader or anything with ``info`` and frame iteration)."""
        info = reader.info
        image_size = (int(info.width), int(info.height))
        focal = self._start_focal(image_size)
        frames_total = int(getattr(reader, "frames_total", 0) or 0)
        base = dict(fps=float(info.fps), image_size=image_size, focal=focal,
                    handedness=tuple(self.sides), meta=dict(meta or {}))
        t_start = time.perf_counter()
        finder = self.finder(image_size, info.name)
        # the focal pass holds the first FOCAL_WINDOW_S of detections (not for estimators that crop:
        # their frames' pixels would be held too); the stages start once the focal length is known
        held: list[FrameHands] | None = [] if self.focal_pass is not None and not finder.keep_rgb else None
        stages = self._stages = None if held is not None else self.stages(info.fps, image_size, focal)
        hold_frames = max(1, int(round(FOCAL_WINDOW_S * info.fps)))
        recovery = self._recovery = (CoverageRecovery(
            self.sides, info.fps, image_size, getattr(reader, "frames_between", None), finder.keep_rgb,
            self.detector_options, cancel, tracker=finder.tracker) if self.recover else None)
        decoder = ReadAhead(reader, maxsize=frames_within(DECODE_AHEAD_BYTES, image_size, 2 * self.chunk_frames))
        chunk_frames = (frames_within(CROP_BATCH_BYTES, image_size, self.chunk_frames) if finder.keep_rgb
                        else self.chunk_frames)
        decoder.start()
        frames_done = since_submit = 0
        cancelled = False
        # The estimator runs in one worker thread on chunk k while this thread detects in chunk
        # k + 1 (torch and MediaPipe both release the GIL); chunks still come out in order.
        worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dahyf-engine")
        pending = None   # (future, frames_done, end)
        try:
            batch: list[FrameHands] = []
            frames = decoder.frames()
            while True:
                frame = next(frames, None)
                if frame is not None:
                    t0 = time.perf_counter()
                    found = finder.find(frame)
                    self.timings["detect_s"] += time.perf_counter() - t0
                    batch += [found] if recovery is None else recovery.push(found, finder.last_rgb)
                    frames_done += 1
                    since_submit += 1
                    if cancel is not None and cancel.is_set():
                        cancelled = True
                end = frame is None or cancelled
                if end and recovery is not None:
                    batch += recovery.flush()
                if held is not None:
                    held += batch
                    batch = []
                    if end or (held and held[-1].index - held[0].index + 1 >= hold_frames):
                        focal = self._run_focal_pass(held, image_size, base)
                        stages = self._stages = self.stages(info.fps, image_size, focal)
                        batch, held = held, None
                # a chunk per chunk_frames frames decoded (rows come out RECOVER_WINDOW_S late when
                # recovering, and after the focal pass: until then the chunks are empty, but carry
                # the progress)
                if not (end or since_submit >= chunk_frames):
                    continue
                if stages is None:
                    since_submit = 0
                    yield self._progress_chunk(frames_done, frames_total, progress, base)
                    continue
                job = worker.submit(self._timed_process, stages, batch, end)
                batch, since_submit = [], 0
                if pending is not None:
                    yield self._collect(pending, frames_total, progress, cancelled=False, base=base)
                pending = (job, frames_done, end)
                if end:
                    # the decoder has finished: did it stop before the container's frame count?
                    ended_early = bool(not cancelled and getattr(reader, "ended_early", False))
                    final = {**base, "meta": {**base["meta"], "ended_early": ended_early}}
                    yield self._collect(pending, frames_total, progress, cancelled=cancelled, base=final)
                    pending = None
                    break
        finally:
            self._close(worker, decoder, finder, recovery)
            self.timings.update(decode_s=decoder.seconds, total_s=time.perf_counter() - t_start, frames=frames_done)

    def _close(self, worker: ThreadPoolExecutor, decoder: ReadAhead, finder: HandFinder,
               recovery: CoverageRecovery | None) -> None:
        """End a run: the estimator worker and the decoder stopped, the detectors closed."""
        worker.shutdown(wait=True, cancel_futures=True)
        decoder.shutdown()
        finder.close()
        if recovery is not None:
            recovery.close()
            self.timings["recover_s"] = recovery.counts.seconds

    def _start_focal(self, image_size: tuple[int, int]) -> float:
        """The focal length (px) the run starts with: the given one, else the default; checked."""
        try:
            return check_focal(self.focal or default_focal(image_size), image_size)
        except ValueError as exc:
            raise CaptureError(f"--focal: {exc}") from None

    @staticmethod
    def _progress_chunk(frames_done: int, frames_total: int, progress, base: dict) -> Chunk:
        """A chunk without rows that carries the progress (while the focal pass holds the hands)."""
        if progress is not None:
            progress(frames_done, frames_total)
        return Chunk(empty_rows(), frames_done, frames_total, **base)

    def _run_focal_pass(self, held: list[FrameHands], image_size: tuple[int, int], base: dict) -> float:
        """The focal length from the held frames' hands (``focal_pass``); ``base`` gets it and its meta."""
        from ..net.batch import HandBatch

        t0 = time.perf_counter()
        tracks = []
        for side in self.sides:
            dets = [fh.found[side] for fh in held if side in fh.found and fh.found[side].world_landmarks is not None]
            n = len(dets)
            tracks.append(None if not n else HandBatch(
                np.stack([d.landmarks for d in dets]).astype(np.float32), np.full(n, side == "right"),
                np.tile(np.asarray(image_size, np.float32), (n, 1)), np.full(n, base["focal"], np.float32),
                world_landmarks=np.stack([d.world_landmarks for d in dets]).astype(np.float32)))
        estimate = self.focal_pass(tracks)
        base["focal"] = focal = float(estimate.focal_px)
        base["meta"] = {**base["meta"], **estimate.to_meta()}
        self.timings["focal_s"] += time.perf_counter() - t0
        return focal

    def _collect(self, pending, frames_total, progress, cancelled: bool, base: dict) -> Chunk:
        job, done, end = pending
        rows = job.result()
        if progress is not None:
            progress(done, frames_total)
        if end:   # the estimator's dropped and unrefined rows, known once the last job is done
            counts = {"nonfinite_rows": self._stages.nonfinite_rows,
                      "refine_failed_rows": self._stages.refine_failed_rows}
            if self._recovery is not None:
                counts.update(self._recovery.counts.to_meta(),
                              gap_filled_rows=sum(t.filled_gap_rows for t in self._stages.tracks))
            if any(t.reproject is not None for t in self._stages.tracks):
                counts["continuity_fixed_rows"] = sum(t.spike_rows for t in self._stages.tracks)
                counts["end_trimmed_rows"] = sum(t.end_trimmed_rows for t in self._stages.tracks)
            base = {**base, "meta": {**base["meta"], **counts}}
        return Chunk(rows, done, frames_total, final=end, cancelled=cancelled, **base)

    def _timed_process(self, stages: PoseStages, batch: list[FrameHands], end: bool) -> dict[str, np.ndarray]:
        t0 = time.perf_counter()
        try:
            return stages.process(batch, flush=end)
        finally:
            self.timings["engine_s"] += time.perf_counter() - t0


def check_options(hands: str, filter_kind: str, smooth: float, threshold: float, focal: float | None) -> None:
    """Raise CaptureError, saying what is allowed, for an invalid capture option."""
    if hands not in HANDS_CHOICES:
        raise CaptureError(f"hands must be one of {', '.join(HANDS_CHOICES)}, got {hands!r}.")
    if filter_kind not in FILTER_KINDS:
        raise CaptureError(f"filter must be one of {', '.join(FILTER_KINDS)}, got {filter_kind!r}.")
    if not 0.0 <= smooth <= 1.0:
        raise CaptureError(f"smooth must be between 0 and 1, got {smooth}.")
    if not 0.0 <= threshold <= 1.0:
        raise CaptureError(f"threshold must be between 0 and 1, got {threshold}.")
    if focal is not None and not (math.isfinite(focal) and focal > 0):
        raise CaptureError(f"focal must be a positive number of pixels, got {focal}.")
