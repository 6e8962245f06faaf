"""The streaming capture pipeline (DESIGN.md §4).

frames (decoder thread) -> MediaPipe landmarks + handedness -> one track per hand -> crops (only
for estimators that want them) -> batched estimator forward -> per-track β (median) ->
confidence gate -> temporal filter on SO(3) -> chunks of finished rows, in frame order.

Memory does not grow with the video: the decoder queue, one chunk of frames and the smoother's
window are all that is held.
"""
from __future__ import annotations

import math
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterator

import cv2
import numpy as np
import torch

from .crops import CROP_SIZE, crop_box, hand_boxes
from .errors import CaptureError
from .filters import CentredSmoother, OneEuroFilter, OneEuroRotationFilter
from .settings import DEFAULT_CHUNK_FRAMES, DEFAULT_SMOOTH, DEFAULT_THRESHOLD
from .take import ROW_FIELDS, concat_rows, empty_rows
from .tracking import SIDES, HandDetector, HandTracker

#: Gaussian width of the zero-lag smoother at smooth = 1, in seconds.
SMOOTH_SIGMA_S = 0.15
#: One-Euro parameters at smooth = 1 (min_cutoff Hz, beta); smooth scales the cut-off down.
ONE_EURO_MIN_CUTOFF_HZ = 1.0
ONE_EURO_BETA = 0.3
#: A track's β is the median over its first BETA_SAMPLES confident frames, or over what it has
#: BETA_WINDOW_S seconds after its first frame, whichever comes first; its rows wait until then,
#: so every row of a track carries the same β (and rows still stream, with bounded memory).
BETA_SAMPLES = 30
BETA_WINDOW_S = 2.0

HANDS_CHOICES = ("right", "left", "both")
FILTERS = ("zero_lag", "one_euro")


def default_focal(width: int, height: int) -> float:
    """Focal length in px when unknown: sqrt(W^2 + H^2) (DESIGN.md §3)."""
    return float(math.hypot(width, height))


def project(points: np.ndarray, focal: float, image_size: tuple[int, int]) -> np.ndarray:
    """Pinhole projection, OpenCV camera, principal point at the image centre.

    points : (..., 3) m camera coordinates; returns (..., 2) px.
    """
    w, h = image_size
    z = np.maximum(points[..., 2:3], 1e-6)
    return points[..., :2] / z * focal + np.array([w / 2.0, h / 2.0])


def keypoint_function(hand_model) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """``f(pose (N,16,3) rad, betas (N,10), transl (N,3) m) -> keypoints (N,21,3) m`` of a hand model.

    Uses the fingertip-only skinning of dahyf.net.landmark.KeypointLayer (same result as the
    full model's keypoints, a fraction of the cost).
    """
    from ..hand import kinematics as K
    from ..hand.tables import NUM_JOINTS
    from ..net.landmark import KeypointLayer

    layer = KeypointLayer(hand_model).eval()

    def keypoints(pose, betas, transl):
        with torch.inference_mode():
            rot = K.batch_rodrigues(torch.from_numpy(np.ascontiguousarray(pose, np.float32)).reshape(-1, 3))
            _, kp = layer(rot.reshape(len(pose), NUM_JOINTS, 3, 3), torch.from_numpy(np.asarray(betas, np.float32)),
                          torch.from_numpy(np.asarray(transl, np.float32)))
        return kp.float().numpy()

    return keypoints


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


class _TrackState:
    """Per-track post-processing: β median, confidence gate, temporal filter."""

    def __init__(self, index: int, side: str, threshold: float, filter_kind: str, smooth: float, fps: float):
        self.index, self.side, self.threshold = index, side, threshold
        self.filter_kind = filter_kind
        self._betas: list[np.ndarray] = []
        self._betas_any: list[np.ndarray] = []
        self._beta_median: np.ndarray | None = None
        self._held: tuple[np.ndarray, np.ndarray] | None = None
        self.first_frame: int | None = None
        self.frozen = False
        self.pending: list = []          # filtered rows waiting for β to be fixed
        self.beta_window = max(1, int(round(BETA_WINDOW_S * fps)))
        if filter_kind == "zero_lag":
            self.smoother = CentredSmoother(sigma=smooth * SMOOTH_SIGMA_S * fps)
        else:
            cutoff = ONE_EURO_MIN_CUTOFF_HZ / max(smooth, 1e-3) if smooth > 0 else 1e6
            self.rot_filter = OneEuroRotationFilter(cutoff, ONE_EURO_BETA)
            self.vec_filter = OneEuroFilter(cutoff, ONE_EURO_BETA)

    @property
    def lag(self) -> int:
        return self.smoother.lag if self.filter_kind == "zero_lag" else 0

    def betas(self) -> np.ndarray:
        """(10,) the track's β (see BETA_SAMPLES); fixed once :meth:`freeze` ran."""
        if self._beta_median is None:
            raise RuntimeError("β is not fixed yet")
        return self._beta_median

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
        return math.inf if (self.frozen or self.first_frame is None) else self.first_frame - 1

    def take_pending(self, until: float) -> list:
        n = 0
        while n < len(self.pending) and self.pending[n][0] <= until:
            n += 1
        out, self.pending = self.pending[:n], self.pending[n:]
        return out

    def push(self, frame: int, time_s: float, pose, betas, transl, conf: float, payload: dict) -> list:
        if self.first_frame is None:
            self.first_frame = frame
        if len(self._betas_any) < BETA_SAMPLES:
            self._betas_any.append(betas)
        confident = conf >= self.threshold
        if confident:
            if not self.frozen and len(self._betas) < BETA_SAMPLES:
                self._betas.append(betas)
            self._held = (pose, transl)
        elif self._held is not None:
            pose, transl = self._held   # confidence gate: hold the last confident pose
        payload["filled"] = not confident
        payload["time_s"] = time_s
        if self.filter_kind == "zero_lag":
            return self.smoother.push(frame, pose, transl, payload)
        return [(frame, self.rot_filter(time_s, pose), self.vec_filter(time_s, transl), payload)]

    def advance_to(self, frame: int) -> list:
        return self.smoother.advance_to(frame) if self.filter_kind == "zero_lag" else []

    def flush(self) -> list:
        return self.smoother.flush() if self.filter_kind == "zero_lag" else []


class _Decoder(threading.Thread):
    """Reads frames ahead into a bounded queue (decoding overlaps detection)."""

    _END = object()

    def __init__(self, reader, maxsize: int):
        super().__init__(daemon=True, name="dahyf-decode")
        self.reader, self.q = reader, queue.Queue(maxsize=maxsize)
        self.stop = threading.Event()
        self.seconds = 0.0

    def run(self):
        try:
            it = iter(self.reader)
            while not self.stop.is_set():
                t0 = time.perf_counter()
                try:
                    frame = next(it)
                except StopIteration:
                    break
                self.seconds += time.perf_counter() - t0
                while not self.stop.is_set():
                    try:
                        self.q.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # forwarded to the consumer
            self.q.put(exc)
        finally:
            self.reader.close()
            self.q.put(self._END)

    def frames(self):
        while True:
            item = self.q.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def shutdown(self):
        self.stop.set()
        while self.is_alive():
            try:
                self.q.get(timeout=0.05)
            except queue.Empty:
                pass


class CapturePipeline:
    """Runs one capture; see :meth:`run`.

    Parameters
    ----------
    estimator : object with ``predict(...)``, ``needs_crops``, ``device`` (see dahyf.net).
    hand_models : {'right': HandModel, 'left': HandModel} for the sides captured.
    hands : 'right', 'left' or 'both'.
    threshold : confidence below which a frame holds the last confident pose (flag ``filled``).
    smooth : 0 (none) .. 1 (strong) temporal smoothing.
    filter_kind : 'zero_lag' (captures; rows emitted a few frames late) or 'one_euro' (causal).
    chunk_frames : frames per batched forward and per emitted chunk.
    focal : px, None for sqrt(W^2 + H^2).
    detector_options : keyword arguments for HandDetector.
    """

    def __init__(self, estimator, hand_models: dict, hands: str = "both", threshold: float = DEFAULT_THRESHOLD,
                 smooth: float = DEFAULT_SMOOTH, filter_kind: str = "zero_lag", chunk_frames: int = DEFAULT_CHUNK_FRAMES,
                 focal: float | None = None, detector_options: dict | None = None):
        if hands not in HANDS_CHOICES:
            raise CaptureError(f"hands must be one of {', '.join(HANDS_CHOICES)}, got {hands!r}.")
        if filter_kind not in FILTERS:
            raise CaptureError(f"filter must be one of {', '.join(FILTERS)}, got {filter_kind!r}.")
        if not 0.0 <= smooth <= 1.0:
            raise CaptureError(f"smooth must be between 0 and 1, got {smooth}.")
        if not 0.0 <= threshold <= 1.0:
            raise CaptureError(f"threshold must be between 0 and 1, got {threshold}.")
        if chunk_frames < 1:
            raise CaptureError(f"chunk_frames must be >= 1, got {chunk_frames}.")
        if focal is not None and not (math.isfinite(focal) and focal > 0):
            raise CaptureError(f"focal must be a positive number of pixels, got {focal}.")
        self.estimator, self.hand_models = estimator, hand_models
        self.sides = SIDES if hands == "both" else (hands,)
        self.threshold, self.smooth, self.filter_kind = threshold, smooth, filter_kind
        self.chunk_frames, self.focal = chunk_frames, focal
        self.detector_options = detector_options or {}
        self._keypoints = {side: keypoint_function(m) for side, m in hand_models.items()}
        self.timings = {"decode_s": 0.0, "detect_s": 0.0, "engine_s": 0.0, "total_s": 0.0, "frames": 0}

    def run(self, reader, cancel: threading.Event | None = None,
            progress: Callable[[int, int], None] | None = None, meta: dict | None = None) -> Iterator[Chunk]:
        """Stream a capture of ``reader`` (a VideoReader or anything with ``info`` and frame iteration)."""
        info = reader.info
        image_size = (int(info.width), int(info.height))
        focal = float(self.focal or default_focal(*image_size))
        frames_total = int(getattr(reader, "frames_total", 0) or 0)
        states = [_TrackState(i, s, self.threshold, self.filter_kind, self.smooth, info.fps)
                  for i, s in enumerate(self.sides)]
        base = dict(fps=float(info.fps), image_size=image_size, focal=focal,
                    handedness=tuple(self.sides), meta=dict(meta or {}))
        t_start = time.perf_counter()
        detector = HandDetector(**self.detector_options)
        tracker = HandTracker()
        decoder = _Decoder(reader, maxsize=2 * self.chunk_frames)
        decoder.start()
        frames_done = 0
        cancelled = False
        # The estimator runs in one worker thread on chunk k while this thread detects in chunk
        # k + 1 (torch and MediaPipe both release the GIL); chunks still come out in order.
        worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dahyf-engine")
        pending = None   # (future, frames_done, end)
        try:
            batch: list = []  # (frame, rgb or None, {side: Detection})
            frames = decoder.frames()
            while True:
                frame = next(frames, None)
                if frame is not None:
                    t0 = time.perf_counter()
                    rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
                    if frame.image.shape[1::-1] != image_size:
                        raise CaptureError(
                            f"{info.name}: frame {frame.index} is {frame.image.shape[1]}x{frame.image.shape[0]} "
                            f"but the video started at {image_size[0]}x{image_size[1]}; videos whose frame size "
                            "changes are not supported. Re-encode it at one size.")
                    found = tracker.update(frame.index, detector.detect(rgb))
                    found = {s: d for s, d in found.items() if s in self.sides}
                    self.timings["detect_s"] += time.perf_counter() - t0
                    batch.append((frame, rgb if (found and self.estimator.needs_crops) else None, found))
                    frames_done += 1
                    if cancel is not None and cancel.is_set():
                        cancelled = True
                end = frame is None or cancelled
                if not (end or len(batch) >= self.chunk_frames):
                    continue
                job = worker.submit(self._timed_process, batch, states, image_size, focal, end)
                batch = []
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
            worker.shutdown(wait=True, cancel_futures=True)
            decoder.shutdown()
            detector.close()
            self.timings["decode_s"] = decoder.seconds
            self.timings["total_s"] = time.perf_counter() - t_start
            self.timings["frames"] = frames_done

    def _collect(self, pending, frames_total, progress, cancelled: bool, base: dict) -> Chunk:
        job, done, end = pending
        rows = job.result()
        if progress is not None:
            progress(done, frames_total)
        return Chunk(rows, done, frames_total, final=end, cancelled=cancelled, **base)

    def _timed_process(self, batch, states, image_size, focal, end: bool):
        t0 = time.perf_counter()
        try:
            if batch:
                return self._process(batch, states, image_size, focal, flush=end)
            return self._release(states, image_size, focal, -1, flush=True)
        finally:
            self.timings["engine_s"] += time.perf_counter() - t0

    # --- one chunk ------------------------------------------------------------------------------
    def _process(self, batch, states, image_size, focal, flush: bool) -> dict[str, np.ndarray]:
        items = [(f, rgb, side, det) for f, rgb, found in batch for side, det in found.items()]
        by_side = {s.side: s for s in states}
        if items:
            pred = self._predict(items, image_size, focal)
            for i, (f, _, side, det) in enumerate(items):
                st = by_side[side]
                payload = {"frame": f.index, "landmarks2d": det.landmarks, "confidence": float(pred["confidence"][i])}
                st.pending += st.push(f.index, f.time_s, pred["pose"][i], pred["betas"][i],
                                      pred["transl"][i], float(pred["confidence"][i]), payload)
        last = batch[-1][0].index if batch else -1
        return self._release(states, image_size, focal, last, flush)

    def _release(self, states, image_size, focal, last: int, flush: bool) -> dict[str, np.ndarray]:
        """Move filtered rows out of the tracks, in frame order, once every track's β is fixed."""
        for st in states:
            st.pending += st.flush() if flush else st.advance_to(last)
            st.maybe_freeze(last, force=flush)
        until = min(st.ready_until() for st in states)
        return self._finish([st.take_pending(until) for st in states], states, image_size, focal)

    def _predict(self, items, image_size, focal) -> dict[str, np.ndarray]:
        est = self.estimator
        dev = getattr(est, "device", "cpu")
        lm = np.stack([d.landmarks for _, _, _, d in items]).astype(np.float32)
        B = len(items)
        kwargs = {}
        if getattr(est, "needs_crops", False):
            boxes = hand_boxes(lm)
            crops = np.stack([crop_box(rgb, b, CROP_SIZE) for (_, rgb, _, _), b in zip(items, boxes)])
            kwargs = {"crops": torch.from_numpy(crops).to(dev), "boxes": torch.from_numpy(boxes).to(dev)}
        with torch.inference_mode():
            out = est.predict(
                torch.from_numpy(lm).to(dev),
                torch.tensor([s == "right" for _, _, s, _ in items], dtype=torch.bool, device=dev),
                torch.tensor([image_size] * B, dtype=torch.float32, device=dev),
                torch.full((B,), focal, dtype=torch.float32, device=dev),
                **kwargs)
        return {k: out[k].detach().float().cpu().numpy() for k in ("pose", "betas", "transl", "confidence")}

    def _finish(self, emitted, states, image_size, focal) -> dict[str, np.ndarray]:
        """Turn emitted (frame, pose, transl, payload) rows into take rows; joints from the hand model."""
        parts = []
        for st, rows in zip(states, emitted):
            if not rows:
                continue
            n = len(rows)
            pose = np.stack([r[1] for r in rows]).astype(np.float32)
            transl = np.stack([r[2] for r in rows]).astype(np.float32)
            betas = np.repeat(st.betas()[None].astype(np.float32), n, axis=0)
            joints3d = self._keypoints[st.side](pose, betas, transl)
            parts.append({
                "track": np.full(n, st.index, np.int32),
                "frame": np.array([r[0] for r in rows], np.int64),
                "time_s": np.array([r[3]["time_s"] for r in rows], np.float64),
                "pose": pose, "betas": betas, "transl": transl, "joints3d": joints3d,
                "joints2d_proj": project(joints3d, focal, image_size).astype(np.float32),
                "landmarks2d": np.stack([r[3]["landmarks2d"] for r in rows]).astype(np.float32),
                "confidence": np.array([r[3]["confidence"] for r in rows], np.float32),
                "filled": np.array([r[3]["filled"] for r in rows], bool),
            })
        if not parts:
            return empty_rows()
        rows = concat_rows(parts)
        order = np.lexsort((rows["track"], rows["frame"]))
        return {k: v[order] for k, v in rows.items()}
