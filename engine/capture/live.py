"""Live capture: a camera (or stream, or a file in real time) drives hand poses with low latency.

    live = dahyf.load_engine().live(0, hands="right")       # camera 0; a file or URL works too
    live.start(); live.record()
    pose = live.latest()                                    # newest LivePose (any thread)
    take = live.stop()                                      # the recorded Take (None if not recording)

The engine runs on a thread of its own; per frame it runs the same stages as file capture
(:class:`~.stages.HandFinder`, then :class:`~.pipeline.PoseStages` with a causal filter and rows
released at once), so a recorded take has the file capture's format and checks. Frames that arrive
while a frame is being processed replace each other (:class:`~.live_source.LiveSource`): latency
stays one frame's processing, whatever the load.
"""
from __future__ import annotations

import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..geometry import default_focal
from .errors import CaptureError
from .filters import FILTER_KINDS
from .focal import default_estimate, user_estimate
from .live_source import LiveSource
from .pipeline import CapturePipeline, PoseStages, check_options
from .settings import DEFAULT_LIVE_SMOOTH, DEFAULT_THRESHOLD, capture_sides
from .stages import TrackSample
from .take import Take

#: Default causal filter of live capture.
DEFAULT_LIVE_FILTER = "one_euro"
#: Latencies kept for the statistics (the last ones; ~5 min at 30 frames/s).
LATENCY_WINDOW = 9000


@dataclass
class LivePose:
    """The result of one processed frame.

    index, time_s : the source frame and its timestamp (s since the source started).
    rows : take rows of this frame (take.ROW_FIELDS; one per track seen, β provisional until fixed).
    latency_s : from the frame's arrival to this result (s).
    image : the frame (BGR, mirrored when asked), for previews; None unless ``keep_images``.
    """

    index: int
    time_s: float
    rows: dict[str, np.ndarray]
    latency_s: float
    image: np.ndarray | None = None

    def track(self, t: int) -> dict[str, np.ndarray] | None:
        """The row of track ``t`` in this frame (arrays without the row axis), or None."""
        sel = np.flatnonzero(self.rows["track"] == t)
        return {k: v[sel[0]] for k, v in self.rows.items()} if len(sel) else None


@dataclass
class _Recording:
    first_index: int | None = None
    first_time: float = 0.0
    samples: list[list[TrackSample]] = field(default_factory=list)
    frames: int = 0
    dropped_at_start: int = 0


class LiveCapture:
    """One live session of an :class:`~.engine.Engine` on a :class:`~.live_source.LiveSource`.

    Parameters
    ----------
    engine : a loaded Engine.
    source : camera index, device path, URL or video file (see LiveSource).
    hands : 'right', 'left' or 'both'.
    threshold : confidence gate, as in file capture.
    smooth : 0..1 strength of the causal filter.
    filter : a causal filter of filters.FILTER_KINDS (default One-Euro).
    mirror : flip frames left-right (selfie).
    focal : px; None for sqrt(W^2 + H^2). Checked as in file capture
        (:func:`dahyf.geometry.check_focal`: below 0.1·max(W, H) px it is refused as a likely lens
        focal length in mm), once the source's frame size is known.
    lens_mm : the camera's lens as its 35 mm-equivalent focal length, mm; instead of ``focal``.
    keep_images : attach each processed frame to its LivePose (previews).
    size : (W, H) to ask a camera for.
    """

    def __init__(self, engine, source, hands: str = "right", threshold: float = DEFAULT_THRESHOLD,
                 smooth: float = DEFAULT_LIVE_SMOOTH, filter: str = DEFAULT_LIVE_FILTER, mirror: bool = False,
                 focal: float | None = None, keep_images: bool = False, size: tuple[int, int] | None = None,
                 lens_mm: float | None = None):
        check_options(hands, filter, smooth, threshold, focal)
        if not FILTER_KINDS[filter].causal:
            causal = ", ".join(k for k, c in FILTER_KINDS.items() if c.causal)
            raise CaptureError(f"live capture needs a causal filter ({causal}), got {filter!r}.")
        self.engine, self.hands, self.mirror = engine, hands, mirror
        self.threshold, self.smooth, self.filter, self.focal = threshold, smooth, filter, focal
        self.keep_images = keep_images
        sides = capture_sides(hands)
        self._pipeline = CapturePipeline(engine.estimator, engine.hand_models(sides), hands=hands,
                                         threshold=threshold, smooth=smooth, filter_kind=filter, focal=focal)
        self.source = LiveSource(source, mirror=mirror, size=size)
        self.handedness = self._pipeline.sides
        info = self.source.info
        self.fps, self.image_size = float(info.fps), (int(info.width), int(info.height))
        try:   # the file capture's check and message
            given = user_estimate(self.image_size, focal, lens_mm)
        except ValueError as exc:
            self.source.stop()
            raise CaptureError(f"{'--lens' if lens_mm is not None else '--focal'}: {exc}") from None
        self.focal_px = given.focal_px if given is not None else default_focal(self.image_size)
        self.focal_meta = (given or default_estimate(self.image_size, "no focal length given")).to_meta()
        self._lock = threading.Lock()
        self._latest: LivePose | None = None
        self._new = threading.Condition(self._lock)
        self._latencies: deque = deque(maxlen=LATENCY_WINDOW)
        self._recording: _Recording | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stages: PoseStages | None = None
        self.processed = 0
        self.error: BaseException | None = None
        self.t_start = self.t_end = None

    # --- control (any thread) ----------------------------------------------------------------------
    def start(self) -> "LiveCapture":
        """Start the source and the engine threads. The hand landmarker is made first, so the source's
        clock starts when the engine is ready (a file's first second is not lost to start-up)."""
        self._stages = self._pipeline.stages(self.fps, self.image_size, self.focal_px, hold_for_beta=False)
        finder = self._pipeline.finder(self.image_size, self.source.name)
        self.t_start = time.perf_counter()
        self.source.start()
        self._thread = threading.Thread(target=self._run, args=(finder,), name="dahyf-live-engine", daemon=True)
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        """True while the engine thread works (False after stop, the source's end or an error)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def recording(self) -> bool:
        return self._recording is not None

    def record(self) -> None:
        """Start recording a take from the next processed frame (a running recording goes on)."""
        with self._lock:
            if self._recording is None:
                self._recording = _Recording(samples=[[] for _ in self.handedness],
                                             dropped_at_start=self.source.frames_dropped)

    def stop_recording(self) -> Take | None:
        """End the recording; its take (None when nothing was recording, or no hand was recorded)."""
        with self._lock:
            rec, self._recording = self._recording, None
        return None if rec is None else self._take(rec)

    def latest(self) -> LivePose | None:
        """The newest result (never blocks for long)."""
        with self._lock:
            return self._latest

    def wait(self, after: int = -1, timeout: float = 1.0) -> LivePose | None:
        """Block until a result newer than frame ``after`` (or the end); the newest result.

        Pass the index of the last result you have: with the default, any result returns at once.
        """
        with self._new:
            self._new.wait_for(lambda: (self._latest is not None and self._latest.index > after) or not self.running,
                               timeout)
            return self._latest

    def join(self, timeout: float | None = None) -> bool:
        """Block until the session ends by itself (the source's end or an error); True if it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def stop(self) -> Take | None:
        """Stop the session; returns the recorded take if a recording was running (else None)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10.0)
        self.source.stop()
        return self.stop_recording()

    # --- the engine thread --------------------------------------------------------------------------
    def _run(self, finder) -> None:
        last_at = time.perf_counter()
        try:
            while not self._stop.is_set():
                frame = self.source.get(timeout=0.25)
                if frame is None:
                    if self.source.ended:
                        break
                    self.source.check_stalled(last_at)
                    continue
                last_at = time.perf_counter()
                self._process(finder, frame)
        except BaseException as exc:  # kept for the caller; what was recorded stays
            if not isinstance(exc, CaptureError):
                traceback.print_exc()
            self.error = exc
        finally:
            finder.close()
            self.t_end = time.perf_counter()
            with self._new:
                self._new.notify_all()

    def _process(self, finder, frame) -> None:
        stages = self._stages
        stages.push([finder.find(frame)])
        released = stages.release(frame.index)
        rows = stages.rows(released)
        t_ready = time.perf_counter()
        pose = LivePose(frame.index, frame.time_s, rows, t_ready - frame.t_capture,
                        frame.image if self.keep_images else None)
        with self._new:
            rec = self._recording
            if rec is not None:
                if rec.first_index is None:
                    rec.first_index, rec.first_time = frame.index, frame.time_s
                rec.frames += 1
                for samples, got in zip(rec.samples, released):
                    samples += got
            self._latest = pose
            self._latencies.append(pose.latency_s)
            self.processed += 1
            self._new.notify_all()

    # --- results ------------------------------------------------------------------------------------
    def _take(self, rec: _Recording) -> Take | None:
        """The recorded rows as a Take: each track's final β (as in file capture), frames and times
        counted from the first recorded frame."""
        from .. import __version__

        if not any(rec.samples):
            return None
        # β: each track's fixed β, or the median so far (the same rule, over fewer frames)
        rows = self._stages.rows(rec.samples)
        rows["frame"] = rows["frame"] - rec.first_index
        rows["time_s"] = rows["time_s"] - rec.first_time
        frames_span = int(rows["frame"].max()) + 1
        meta = {"source": self.source.name, "live": True, "engine": self.engine.name, "threshold": self.threshold,
                "smooth": self.smooth, "filter": self.filter, "mirror": self.mirror,
                "hand_model": self.engine.hand_model, "dahyf_version": __version__, "frame_range": None,
                "rotation": 0, "first_source_frame": int(rec.first_index), "frames_processed": rec.frames,
                "frames_done": frames_span, "complete": self.error is None, "cancelled": False,
                "ended_early": self.error is not None,
                "error": None if self.error is None else str(self.error), **self.focal_meta}
        return Take(self.fps, self.image_size, self.focal_px, tuple(self.handedness), rows, meta)

    def stats(self) -> dict:
        """Frames in / processed / dropped, latency percentiles (ms, frame arrival → pose ready), fps."""
        lat = np.array(self._latencies) * 1e3
        end = self.t_end or time.perf_counter()
        wall = max(end - (self.t_start or end), 1e-9)
        pct = {f"p{p}": float(np.percentile(lat, p)) if len(lat) else None for p in (50, 90, 95, 99)}
        frames_in = self.source.frames_in
        return {"source": self.source.name, "image_size": list(self.image_size), "source_fps": self.fps,
                "hands": self.hands, "frames_in": frames_in, "frames_processed": self.processed,
                "frames_dropped": self.source.frames_dropped,
                "processed_share": self.processed / frames_in if frames_in else None,
                "latency_ms": {**pct, "max": float(lat.max()) if len(lat) else None},
                "fps": self.processed / wall, "wall_s": wall,
                "error": None if self.error is None else str(self.error)}
