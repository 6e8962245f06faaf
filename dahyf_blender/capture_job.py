"""One capture from a video: input checks, the engine stream, keying of its chunks, the Take.

:class:`CaptureJob` runs synchronously (:meth:`CaptureJob.run`, for ``EXEC_DEFAULT``) or with the
engine on a worker thread whose chunks the main thread keys (:meth:`start_thread` /
:meth:`step`, driven by the modal operator in :mod:`.ops_capture`). Only the main thread touches
bpy. A failure or a video without hands removes whatever the capture created.
"""
from __future__ import annotations

import os
import queue
import threading
import traceback
from types import SimpleNamespace

import bpy

from . import compat, engine_api, paths, session
from dahyf.capture.settings import DEFAULT_CHUNK_FRAMES, capture_sides

from .prefs import DEFAULTS, get_prefs

#: A requested hand seen on fewer than this share of the decoded frames gets a warning (a left
#: hand captured as 'right' shows up as a short ghost track, not as an error).
MIN_SIDE_COVERAGE = 0.5


def prefs_snapshot(prefs) -> SimpleNamespace:
    """Plain copy of the preferences (no bpy data): the engine reads them on the worker thread."""
    return SimpleNamespace(**{name: getattr(prefs, name, default) for name, default in vars(DEFAULTS).items()})


def side_coverage_notes(take, frames_decoded: int, hands: str) -> list[str]:
    """Warnings for requested hands that the take holds on less than :data:`MIN_SIDE_COVERAGE` of the frames.

    Parameters
    ----------
    take : ``dahyf.Take`` (or anything with ``handedness`` and per-row ``track``).
    frames_decoded : video frames the capture went through.
    hands : 'right' | 'left' | 'both' (as requested). With one side asked for, that side is
        checked even when it is missing; with 'both', only a side that was found (one hand in the
        video is normal, a hand seen for a few frames may be a misdetection).
    """
    if frames_decoded <= 0:
        return []
    import numpy as np

    track = np.asarray(take.rows["track"])
    notes = []
    for side in capture_sides(hands):
        tracks = [t for t, h in enumerate(take.handedness) if h == side]
        n = int(np.isin(track, tracks).sum())
        if n >= MIN_SIDE_COVERAGE * frames_decoded or (hands == "both" and n == 0):
            continue
        other = "left" if side == "right" else "right"
        fix = (f"if the video shows a {other} hand, set Hands to {other.title()} or Both"
               if hands != "both" else "check it is not a misdetection (delete its rig if so)")
        notes.append(f"The {side} hand was found in only {n} of {frames_decoded} frames: {fix}.")
    return notes


def focal_note(meta: dict) -> str:
    """A line for the artist when the capture's focal length (and so the hands' distance from the
    camera) is the default guess (take meta ``focal_source`` / ``focal_sigma_px`` / ``focal_px``); ''
    when it came from the artist, the video file or the hands' own perspective."""
    from dahyf.capture.focal import guess_spread

    spread = guess_spread(meta)
    if spread is None:
        return ""
    return (f"The hands' distance from the camera rests on a guessed lens (±{100 * spread:.0f} %): the video "
            "does not say which lens filmed it. For true distances set Lens (35 mm equiv.) in the DaHyF panel "
            "and capture again.")


class CaptureJob:
    """One capture: validation, the engine stream, keying of its chunks, the resulting Take.

    Parameters
    ----------
    context : bpy.types.Context.
    video : path of the video file (``//`` = relative to the saved .blend).
    hands : 'right' | 'left' | 'both'.
    frame_range : (start, end) video frames, end exclusive, or None for the whole video.
    threshold, smooth : engine confidence threshold and smoothing (0..1).
    key_location : key the wrist translation.
    take_path : where to save the take (.npz + .json; ``//`` allowed); '' for nowhere.
    chunk_frames : video frames per engine chunk (one keying step each).
    lens_mm : the camera's lens as its 35 mm-equivalent focal length, mm; None: the video's own value,
        else the engine's estimate or guess (:func:`focal_note` says so after the capture).

    Raises
    ------
    engine_api.UserError
        Before touching the scene, when the input cannot work (missing video, bad MANO folder...).
    """

    def __init__(self, context, video: str, hands: str = "both", frame_range=None, threshold: float = DEFAULTS.threshold,
                 smooth: float = DEFAULTS.smoothing, key_location: bool = True, take_path: str = "",
                 chunk_frames: int = DEFAULT_CHUNK_FRAMES, lens_mm: float | None = None):
        compat.check_blender_version()
        self.prefs = prefs_snapshot(get_prefs(context))  # plain values: the worker thread reads them
        if not video:
            raise engine_api.UserError("No video chosen. Pick a video file in the DaHyF panel.")
        video = paths.absolute(video, "Video")
        if not os.path.isfile(video):
            raise engine_api.UserError(f"Video not found: {video}. Pick an existing video file.")
        if take_path:
            take_path = paths.absolute(take_path, "Save take")
            folder = os.path.dirname(take_path)
            if not os.path.isdir(folder):
                raise engine_api.UserError(f"Cannot save the take to {take_path}: folder {folder} does not exist. "
                                           "Create it, or choose another 'Save take' path.")
        if frame_range is not None and not (0 <= frame_range[0] < frame_range[1]):
            raise engine_api.UserError(f"Invalid frame range {frame_range}: need 0 <= start < end.")
        sides = capture_sides(hands)
        for side in sides:  # fails early, with the preferences' message, on a wrong MANO folder
            engine_api.load_hand(self.prefs, side)
        self.video, self.hands, self.frame_range = video, hands, frame_range
        self.threshold, self.smooth, self.take_path = threshold, smooth, take_path
        self.chunk_frames = chunk_frames
        if lens_mm is not None and not (lens_mm > 0):
            raise engine_api.UserError(f"Lens {lens_mm:g} mm: set the camera's 35 mm-equivalent focal length in mm, "
                                       "or 0 for automatic.")
        self.lens_mm = lens_mm
        self.session = session.TakeSession(context, self.prefs, video, key_location=key_location)
        self.cancel = threading.Event()
        self.chunks: list = []
        self.frames_done = 0
        self.frames_total = 0
        self.take = None
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None

    # --- the work ---------------------------------------------------------------------------------
    def stream(self):
        """The engine's chunks (runs on the worker thread in modal mode; no bpy here)."""
        engine = engine_api.load_engine(self.prefs)
        yield from engine.stream(self.video, hands=self.hands, frame_range=self.frame_range,
                                 threshold=self.threshold, smooth=self.smooth, chunk_frames=self.chunk_frames,
                                 cancel=self.cancel, lens_mm=self.lens_mm)

    def apply(self, chunk) -> None:
        """Key one chunk (main thread)."""
        self.chunks.append(chunk)
        self.frames_done = int(getattr(chunk, "frames_done", self.frames_done))
        self.frames_total = int(getattr(chunk, "frames_total", self.frames_total) or 0)
        self.session.add_rows(engine_api.as_rows(chunk))

    def run(self):
        """Synchronous capture (EXEC_DEFAULT): stream, key, finish. Returns the Take."""
        try:
            for chunk in self.stream():
                self.apply(chunk)
        except BaseException:
            self.session.rollback()
            raise
        return self.finish()

    # --- modal driving ----------------------------------------------------------------------------
    def start_thread(self) -> None:
        """Start the engine on a worker thread; :meth:`step` collects its chunks."""
        def worker():
            try:
                for chunk in self.stream():
                    self._queue.put(("chunk", chunk))
                self._queue.put(("done", None))
            except BaseException as exc:  # reported on the main thread, never swallowed
                traceback.print_exc()
                self._queue.put(("error", exc))

        self._thread = threading.Thread(target=worker, name="dahyf-capture", daemon=True)
        self._thread.start()

    def step(self, max_chunks: int = 8) -> bool:
        """Key the chunks that arrived (main thread). True when the stream has ended.

        Raises the worker's exception, if any (the caller rolls back with :meth:`abort`).
        """
        for _ in range(max_chunks):
            try:
                kind, payload = self._queue.get_nowait()
            except queue.Empty:
                return False
            if kind == "chunk":
                self.apply(payload)
            elif kind == "error":
                raise payload
            else:
                return True
        return False

    @property
    def progress(self) -> float:
        """0..1 share of the video decoded so far (0 while unknown)."""
        return min(1.0, self.frames_done / self.frames_total) if self.frames_total else 0.0

    def finish(self):
        """Close the capture: build (and save) the Take; no rows at all → roll back and raise."""
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.session.flush()
        if self.session.num_frames == 0:
            self.session.rollback()
            if self.cancel.is_set():
                raise engine_api.UserError("Capture cancelled before any hand frame was keyed; the scene is unchanged.")
            where = f" (frames {self.frame_range[0]}-{self.frame_range[1] - 1})" if self.frame_range else ""
            raise engine_api.UserError(
                f"No {'hands' if self.hands == 'both' else self.hands + ' hand'} found in "
                f"{os.path.basename(self.video)}{where}. Use a video where the hand is clearly visible, "
                "check the Hands setting, or lower the confidence threshold.")
        import dahyf

        meta = {"source": self.video, "take": self.session.take_name, "cancelled": self.cancel.is_set()}
        try:
            self.take = dahyf.Take.from_chunks(self.chunks, meta=meta)
            if self.take_path:
                self.take.save(self.take_path)
        except BaseException:  # e.g. the take folder vanished or the disk is full: leave nothing behind
            self.session.rollback()
            raise
        return self.take

    def notes(self) -> list[str]:
        """Warnings about the finished take (a requested hand seen on few frames)."""
        return side_coverage_notes(self.take, self.frames_done, self.hands) if self.take is not None else []

    def focal_note(self) -> str:
        """What the hands' distance rests on, when it is a guess ('' otherwise): the artist can give the lens."""
        return focal_note(self.take.meta) if self.take is not None else ""

    def abort(self) -> None:
        """Stop the worker and remove everything this capture created."""
        self.cancel.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.session.rollback()


def default_take_path(job: CaptureJob) -> str:
    """Where a capture's take goes when no path is given: next to the saved .blend, else nowhere ('')."""
    if not bpy.data.filepath:
        return ""
    return os.path.join(os.path.dirname(bpy.data.filepath), job.session.take_name + ".npz")
