"""Live frame sources: a camera, a network stream, or a video file played at its real frame rate.

A :class:`LiveSource` reads frames on its own thread into a one-frame slot: a consumer that falls
behind gets the newest frame, and the frames it never took are counted as dropped, never queued
(latency first). A video file goes through the same code path, each frame published at its own
timestamp (real time), which is how tests and benchmarks exercise live capture without a camera.
"""
from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2

from .errors import CaptureError
from .video import DEFAULT_FPS, Frame, VideoInfo, VideoReader

#: URL schemes handed to FFmpeg as network streams.
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
#: A camera that stops delivering frames for this long counts as lost (unplugged, stalled).
STALL_S = 5.0


@dataclass
class LiveFrame(Frame):
    """A :class:`~.video.Frame` (index, time_s from the source's start, BGR image) plus
    ``t_capture``: ``time.perf_counter()`` when it became available (latency starts here)."""

    t_capture: float = 0.0


class SourceLost(CaptureError):
    """A live source stopped delivering frames (camera unplugged, stream cut)."""


def parse_source(text) -> int | str:
    """``'0'`` / ``0`` → camera index 0; anything else (device path, file, URL) as a string."""
    if isinstance(text, int):
        return text
    text = str(text).strip()
    return int(text) if re.fullmatch(r"\d+", text) else text


def source_kind(source: int | str) -> str:
    """'camera' (index or /dev/video*), 'stream' (a URL) or 'file'."""
    if isinstance(source, int) or str(source).startswith("/dev/video"):
        return "camera"
    scheme = str(source).split("://", 1)[0].lower() if "://" in str(source) else ""
    return "stream" if scheme in STREAM_SCHEMES else "file"


def _open_device(source: int | str, kind: str, size: tuple[int, int] | None) -> cv2.VideoCapture:
    what = f"camera {source}" if kind == "camera" else f"stream {source}"
    cap = cv2.VideoCapture(source) if kind == "camera" else cv2.VideoCapture(str(source), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        if kind == "camera":
            raise CaptureError(f"Cannot open {what}: it is not connected, or another program is using it. "
                               "Close other camera apps, check the index (0 is the first camera) and try again.")
        raise CaptureError(f"Cannot open {what}: check the address, that the stream is running and that this "
                           "machine can reach it.")
    if size is not None:
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
    cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)   # fewer stale frames in the driver, where supported
    return cap


class LiveSource:
    """Frames of ``source`` on a thread of their own; :meth:`get` hands out the newest one.

    Parameters
    ----------
    source : camera index (int or digits), ``/dev/videoN``, a URL (rtsp://, http:// ...) or a
        video file (played at its real frame rate).
    mirror : flip every frame left-right (selfie view; the rig then moves like the performer's
        reflection; also undoes a camera that mirrors on its own).
    size : (W, H) px to ask a camera for (None: its default).

    Raises
    ------
    CaptureError
        The source cannot be opened or gives no first frame (message says what to do).
    """

    def __init__(self, source, mirror: bool = False, size: tuple[int, int] | None = None):
        self.source = parse_source(source)
        self.kind = source_kind(self.source)
        self.mirror = mirror
        self._reader = self._cap = None
        if self.kind == "file":
            self._reader = VideoReader(self.source)   # checks the file, says what is wrong
            self.info = self._reader.info
        else:
            self._cap = _open_device(self.source, self.kind, size)
            ok, first = self._cap.read()
            if not ok or first is None:
                self._cap.release()
                raise CaptureError(f"{self.name}: opened, but no frame arrived. The camera may be in use by another "
                                   "program or still starting; try again, or pick another source.")
            fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
            fps = fps if math.isfinite(fps) and 0 < fps <= 1000 else DEFAULT_FPS
            self.info = VideoInfo(self.name, first.shape[1], first.shape[0], fps, 0, 0)
            self._first = first
        self._cond = threading.Condition()
        self._slot: LiveFrame | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.frames_in = 0        # frames the source delivered
        self.frames_taken = 0     # frames handed out by get()
        self.ended = False        # no more frames will come
        self.error: BaseException | None = None
        self.t_start = 0.0

    @property
    def name(self) -> str:
        return f"camera {self.source}" if self.kind == "camera" else (
            str(self.source) if self.kind == "stream" else Path(str(self.source)).name)

    @property
    def frames_dropped(self) -> int:
        """Frames that were replaced by a newer one before anyone took them."""
        with self._cond:
            return self.frames_in - self.frames_taken - (self._slot is not None)

    # --- the reading thread -------------------------------------------------------------------------
    def start(self) -> "LiveSource":
        self.t_start = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name="dahyf-live-source", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for index, time_s, image in (self._file_frames() if self.kind == "file" else self._device_frames()):
                if self._stop.is_set():
                    break
                self._publish(index, time_s, image)
        except BaseException as exc:  # handed to the consumer by get()
            self.error = exc
        finally:
            self._close()
            with self._cond:
                self.ended = True
                self._cond.notify_all()

    def _file_frames(self):
        """The file's frames, each released at its own timestamp after the start (real time).

        A file that stops decoding before the frame count its container announces (truncated,
        damaged, still being copied) fails like an unplugged camera: SourceLost.
        """
        index = -1
        for f in self._reader:
            delay = self.t_start + f.time_s - time.perf_counter()
            if delay > 0 and self._stop.wait(delay):
                return
            index = f.index
            yield f.index, f.time_s, f.image
        if self._reader.ended_early and not self._stop.is_set():
            raise SourceLost(f"{self.name} stopped decoding after frame {index}, before the end its container "
                             "announces (truncated or damaged). What was recorded so far is kept.")

    def _device_frames(self):
        index, image = 0, self._first
        self._first = None
        while True:
            yield index, time.perf_counter() - self.t_start, image
            if self._stop.is_set():
                return
            ok, image = self._cap.read()
            if not ok or image is None:
                raise SourceLost(f"{self.name} stopped sending frames after {index + 1} (unplugged, or the stream "
                                 "ended). What was recorded so far is kept; reconnect it and start again.")
            index += 1

    def _publish(self, index: int, time_s: float, image) -> None:
        if self.mirror:
            image = cv2.flip(image, 1)
        frame = LiveFrame(index, time_s, image, time.perf_counter())
        with self._cond:
            self._slot = frame   # an untaken older frame is dropped here
            self.frames_in += 1
            self._cond.notify_all()

    # --- the consumer ------------------------------------------------------------------------------
    def get(self, timeout: float = 0.5) -> LiveFrame | None:
        """The newest frame not handed out yet; waits up to ``timeout`` s. None: nothing new (check
        :attr:`ended`).

        Raises
        ------
        SourceLost, CaptureError
            The source failed (after the frames before the failure were handed out); also when a
            camera or stream sent nothing for STALL_S seconds.
        """
        with self._cond:
            if self._slot is None and not self.ended:
                self._cond.wait(timeout)
            frame, self._slot = self._slot, None
            if frame is not None:
                self.frames_taken += 1
                return frame
            if self.ended and self.error is not None:
                raise self.error
        return None

    def check_stalled(self, last_frame_at: float) -> None:
        """Raise SourceLost when a camera or stream has sent nothing since ``last_frame_at`` + STALL_S."""
        if self.kind != "file" and not self.ended and time.perf_counter() - last_frame_at > STALL_S:
            raise SourceLost(f"{self.name} sent no frame for {STALL_S:.0f} s (unplugged or stalled). What was "
                             "recorded so far is kept; reconnect it and start again.")

    def stop(self) -> None:
        """Stop reading (the thread ends after the frame it is reading) and release the source."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        if self._thread is None or not self._thread.is_alive():
            self._close()

    def _close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        if self._cap is not None:
            self._cap.release()
