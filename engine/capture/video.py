"""Video decoding for capture: OpenCV (FFmpeg backend), rotation metadata, real timestamps.

``open_video(path)`` checks the file and returns a :class:`VideoReader` that yields
:class:`Frame` objects (index, time in seconds from the container's timestamps, BGR image
already turned upright). Memory is one frame at a time; :class:`ReadAhead` decodes ahead in a
thread, bounded in bytes (:func:`frames_within`).
"""
from __future__ import annotations

import math
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from .errors import CaptureError

#: Fallback frame rate (frames/s) when a container reports none.
DEFAULT_FPS = 30.0


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a video before decoding it.

    width, height : px of the upright frames (after applying rotation metadata).
    fps : nominal frames/s from the container (DEFAULT_FPS when the container has none).
    frame_count : frames in the container, 0 when unknown (some streams do not say).
    rotation : degrees of rotation metadata the decoder applied (0, 90, 180, 270).
    """

    path: str
    width: int
    height: int
    fps: float
    frame_count: int
    rotation: int

    @property
    def name(self) -> str:
        return Path(self.path).name


@dataclass
class Frame:
    """One decoded frame: ``index`` (0-based in the file), ``time_s`` (s), ``image`` (H, W, 3) uint8 BGR."""

    index: int
    time_s: float
    image: np.ndarray


#: Bytes of decoded frames FFmpeg's decoding threads may hold together. Each frame thread keeps a
#: frame in flight: at 7680x4320 a thread costs ~80 MB (24 frames read with 1 / 2 / 4 / 8 / 16 threads:
#: peak 583 / 591 / 755 / 1147 / 1778 MB), so an 8K video on a 16-core machine would hold 1.2 GB
#: more than on 2 cores for no gain (capture is bound by detection, not decoding).
DECODER_THREADS_BYTES = 512 * 2**20
#: The most decoding threads at any size (FFmpeg's own automatic limit).
DECODER_THREADS_MAX = 16


def decoder_threads(width: int, height: int, cores: int) -> int:
    """FFmpeg decoding threads for frames of ``width`` x ``height`` px on ``cores`` CPU cores: one per
    core, at most :data:`DECODER_THREADS_MAX`, and no more than :data:`DECODER_THREADS_BYTES` of
    BGR frames (8K: 5 threads, 4K: 16); at least 1."""
    frame_bytes = max(int(width) * int(height) * 3, 1)
    return max(1, min(int(cores), DECODER_THREADS_MAX, DECODER_THREADS_BYTES // frame_bytes))


def _open_capture(path: str) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    if cap.isOpened():
        # opened once to read the frame size; again with the thread count when it must be lower
        cores = os.cpu_count() or 1
        threads = decoder_threads(cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT), cores)
        if threads < min(cores, DECODER_THREADS_MAX):
            cap.release()
            cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, threads])
    if cap.isOpened():
        # Turn frames upright from the container's rotation metadata (phone videos). Set it
        # explicitly instead of relying on the backend default.
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


def check_video_path(path) -> Path:
    """Check that ``path`` names a readable, non-empty file; raise CaptureError otherwise."""
    p = Path(path).expanduser()
    if not p.exists():
        raise CaptureError(f"Video not found: {p}. Check the path (and the current directory).")
    if p.is_dir():
        raise CaptureError(f"{p} is a folder, not a video file. Give the path of a video file (.mp4, .mov, ...).")
    if not os.access(p, os.R_OK):
        raise CaptureError(f"Cannot read {p}: permission denied. Check the file's permissions.")
    if p.stat().st_size == 0:
        raise CaptureError(f"{p} is empty (0 bytes). The recording or copy did not finish; use the original file.")
    return p


class VideoReader:
    """Decode a video frame by frame.

    Parameters
    ----------
    path : the video file.
    frame_range : optional (start, end) frame indices, end exclusive (None: to the end).

    Raises
    ------
    CaptureError
        Missing, empty, unreadable, non-video or corrupt file (no decodable first frame).
    """

    def __init__(self, path, frame_range: tuple[int, int | None] | None = None):
        p = check_video_path(path)
        self.path = str(p)
        cap = _open_capture(self.path)
        if not cap.isOpened():
            raise CaptureError(
                f"{p.name} is not a video OpenCV/FFmpeg can read (unknown format or not a video). "
                "Convert it to an H.264 .mp4 (for example `ffmpeg -i input output.mp4`) and try again."
            )
        ok, first = cap.read()
        if not ok or first is None or first.size == 0:
            cap.release()
            raise CaptureError(
                f"{p.name}: no frame could be decoded (corrupt, truncated or an unsupported codec). "
                "Re-export or convert the video to H.264 .mp4 and try again."
            )
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not math.isfinite(fps) or fps <= 0 or fps > 1000:
            fps = DEFAULT_FPS
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        count = max(count, 0)
        rotation = int(round(cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0)) % 360
        h, w = first.shape[:2]
        self.info = VideoInfo(self.path, int(w), int(h), fps, count, rotation)
        self._cap = cap
        self._first = (first, float(cap.get(cv2.CAP_PROP_POS_MSEC)))
        start, end = (frame_range or (0, None))
        start = int(start or 0)
        if start < 0 or (end is not None and end <= start):
            cap.release()
            raise CaptureError(f"Invalid frame range {frame_range}: need 0 <= start < end.")
        if count and start >= count:
            cap.release()
            raise CaptureError(f"Frame range starts at {start} but {p.name} has only {count} frames.")
        self.start, self.end = start, (None if end is None else int(end))
        self.ended_early = False  # set when decoding stops before the container's frame count

    @property
    def frames_total(self) -> int:
        """Frames this reader will yield (0 when the container does not say)."""
        end = self.info.frame_count if self.end is None else (
            min(self.end, self.info.frame_count) if self.info.frame_count else self.end)
        return max(end - self.start, 0) if end else 0

    def __iter__(self) -> Iterator[Frame]:
        if self._cap is None or self._first is None:
            raise RuntimeError("a VideoReader can be iterated once")
        cap = self._cap
        image, msec = self._first
        self._first = None
        fps = self.info.fps
        index, last_time = 0, -math.inf
        try:
            while self.end is None or index < self.end:
                if index >= self.start:
                    # The container's timestamp of this frame (variable frame rate safe); fall back
                    # to a nominal step when a stream has none or they do not increase.
                    t = msec / 1000.0 if (msec is not None and math.isfinite(msec)) else -math.inf
                    if not t > last_time or (index > 0 and t <= 0.0):
                        t = index / fps if last_time == -math.inf else last_time + 1.0 / fps
                    last_time = t
                    yield Frame(index, t, image)
                index += 1
                if index < self.start:
                    if not cap.grab():  # skip without converting the pixels
                        break
                    continue
                ok, image = cap.read()
                if not ok or image is None:
                    break
                msec = float(cap.get(cv2.CAP_PROP_POS_MSEC))
        finally:
            expected = self.info.frame_count if self.end is None else min(self.end, self.info.frame_count or self.end)
            if expected and index < expected - 1:
                self.ended_early = True
            self.close()

    def frames_between(self, start: int, end: int) -> Iterator[Frame]:
        """Frames ``start`` .. ``end - 1`` (file indices) decoded again, by a seek in a capture of
        their own (offline coverage recovery re-reads short stretches while the stream goes on);
        ``time_s`` from the container. A seek can land elsewhere in some files: callers compare the
        timestamps with the first pass's."""
        cap = _open_capture(self.path)
        try:
            if start > 0:
                cap.set(cv2.CAP_PROP_POS_FRAMES, int(start))
            for index in range(int(start), int(end)):
                ok, image = cap.read()
                if not ok or image is None:
                    return
                yield Frame(index, float(cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0, image)
        finally:
            cap.release()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_video(path, frame_range=None) -> VideoReader:
    """Open and check a video; see :class:`VideoReader`."""
    return VideoReader(path, frame_range)


def frames_within(budget_bytes: int, image_size: tuple[int, int], most: int) -> int:
    """How many (H, W, 3) uint8 frames of ``image_size`` (W, H) px fit in ``budget_bytes``: 1 to ``most``."""
    w, h = image_size
    return int(max(1, min(most, budget_bytes // max(1, w * h * 3))))


class ReadAhead(threading.Thread):
    """Reads a reader's frames ahead in a thread, into a bounded queue (decoding overlaps detection).

    ``maxsize`` frames at most: give it :func:`frames_within` of a byte budget (the capture
    pipeline's DECODE_AHEAD_BYTES), so that the queue is bounded in bytes, not only in frames (64 8K
    frames are 6.4 GB). ``frames()`` yields them (and raises what the reader raised); ``shutdown()``
    stops the thread; ``seconds`` is the time spent decoding.
    """

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
