"""The capture engine: an estimator + hand models + the streaming pipeline.

    engine = dahyf.load_engine()                       # bundled default (landmark) engine
    for chunk in engine.stream("video.mp4"): ...       # finished rows, chunk by chunk
    take = engine.capture("video.mp4", out="take.npz")
"""
from __future__ import annotations

import importlib.util
import os
import sys
import threading
from pathlib import Path
from typing import Callable, Iterator

from ..assets import DEFAULT_CHECKPOINT
from .errors import CaptureError
from ..hand.tables import SIDES
from .settings import DEFAULT_CHUNK_FRAMES, DEFAULT_SMOOTH, DEFAULT_THRESHOLD, capture_sides
from .pipeline import CapturePipeline, Chunk, check_options
from .take import Take
from .video import VideoReader



def _cuda_available() -> bool:
    """Whether torch is installed and sees a CUDA GPU. torch is imported only where a GPU may be
    (an NVIDIA driver on Linux, or Windows): CPU-only machines never pay for the import."""
    if sys.platform == "darwin" or (sys.platform.startswith("linux") and not os.path.exists("/dev/nvidiactl")):
        return False
    try:
        if importlib.util.find_spec("torch") is None:
            return False
        import torch
    except ImportError:   # not installed, or broken: no CUDA path
        return False
    return bool(torch.cuda.is_available())


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' when available else 'cpu'; 'cuda' without a GPU (or without torch) is an error."""
    device = (device or "auto").lower()
    if device == "auto":
        return "cuda" if _cuda_available() else "cpu"
    if device.startswith("cuda") and not _cuda_available():
        raise CaptureError("--device cuda was asked for but PyTorch sees no CUDA GPU (or PyTorch is not installed). "
                           "Use --device cpu (or auto).")
    if device != "cpu" and not device.startswith("cuda"):
        raise CaptureError(f"Unknown device {device!r}: use auto, cpu or cuda.")
    return device


def default_recover(filter: str) -> bool:
    """Whether a capture with ``filter`` recovers coverage by default: offline (zero-lag) captures
    do; a causal filter means the single-pass online mode."""
    from .filters import FILTER_KINDS

    return not FILTER_KINDS[filter].causal


class Engine:
    """A loaded capture engine. Use :func:`load_engine` to make one.

    Parameters
    ----------
    estimator : the per-frame estimator (``predict``, ``needs_crops``, ``device``).
    hand_model : 'open' or a folder with MANO_RIGHT.pkl / MANO_LEFT.pkl; the hand model the
        joints and preview are computed with.
    name : engine name stored in each take (checkpoint file name).
    """

    def __init__(self, estimator, hand_model: str = "open", name: str = "engine"):
        self.estimator = estimator
        self.hand_model = str(hand_model)
        self.name = name
        self._models: dict = {}
        self.last_timings: dict = {}

    @property
    def device(self):
        return getattr(self.estimator, "device", "cpu")

    def hand_models(self, sides=SIDES) -> dict:
        """{side: HandModel} (loaded once, CPU)."""
        from ..hand.mano_io import ModelFileError
        from ..hand.model import load_hand_model

        for side in sides:
            if side not in self._models:
                try:
                    self._models[side] = load_hand_model(self.hand_model, side)
                except (ModelFileError, FileNotFoundError, OSError) as exc:
                    raise CaptureError(f"Cannot load the {side} hand model {self.hand_model!r}: {exc}") from exc
        return {s: self._models[s] for s in sides}

    def stream(self, video, hands: str = "both", frame_range=None, threshold: float = DEFAULT_THRESHOLD,
               smooth: float = DEFAULT_SMOOTH, chunk_frames: int = DEFAULT_CHUNK_FRAMES, cancel: threading.Event | None = None,
               progress: Callable[[int, int], None] | None = None, filter: str = "zero_lag",
               focal: float | None = None, recover: bool | None = None,
               lens_mm: float | None = None, self_calibrate: bool = False) -> Iterator[Chunk]:
        """Capture a video chunk by chunk (memory flat in the video's length).

        Parameters
        ----------
        video : path of a video file, or an opened source with ``info`` and frame iteration.
        hands : 'right', 'left' or 'both' (tracks: right first).
        frame_range : (start, end) frame indices, end exclusive; None for the whole video.
        threshold : confidence gate in [0, 1].
        smooth : temporal smoothing in [0, 1] (0: none).
        chunk_frames : frames per chunk / batched forward.
        cancel : set it to stop; the chunks received so far form a valid take.
        progress : called as ``progress(frames_done, frames_total)`` after each chunk.
        filter : 'zero_lag' (default, captures) or 'one_euro' (causal, live use).
        focal : px; None: the container's 35 mm-equivalent focal length when it has one, else
            sqrt(W^2 + H^2) (:func:`dahyf.capture.focal.estimate_focal`; the take's meta says which,
            with its uncertainty).
        lens_mm : the camera's lens as its 35 mm-equivalent focal length, mm (a phone's main camera
            ~24-28), converted on the picture's diagonal; instead of ``focal``, not with it.
        self_calibrate : experimental: with neither focal nor lens given nor one in the container, an
            offline capture estimates the focal from the first 3 s of hands
            (:func:`dahyf.capture.focal.self_calibrated`) and uses it when its spread is small. Off by
            default: measured unreliable (``benchmarks/focal_observability.py``: its fits miss the rendered
            clips' true focal by a median 61 %; on windows of one real video they range 642-4406 px).
        recover : offline coverage recovery (:mod:`dahyf.capture.recovery`: hands the forward pass
            missed are followed back and looked for where the neighbouring frames put them; gaps of
            up to 0.3 s with the hand on both sides interpolated, flagged ``filled``). None (default):
            on with the zero-lag filter, off with a causal one (the single-pass online mode).

        Yields
        ------
        Chunk: finished rows in frame order, ``frames_done`` / ``frames_total``; the last one has
        ``final=True``.

        Raises
        ------
        CaptureError
            Unreadable video or invalid option (before anything is yielded).
        """
        from .. import __version__

        check_options(hands, filter, smooth, threshold, focal)
        sides = capture_sides(hands)
        models = self.hand_models(sides)
        recover = default_recover(filter) if recover is None else bool(recover)
        reader = VideoReader(video, frame_range) if isinstance(video, (str, Path)) else video
        try:
            camera = estimate_camera_focal(reader, focal, lens_mm)
        except CaptureError:
            reader.close()
            raise
        focal_pass = None
        if self_calibrate and recover and camera.source == "default":   # offline: from the first hands seen
            from .focal import estimate_focal

            size = (int(reader.info.width), int(reader.info.height))
            focal_pass = lambda tracks: estimate_focal(tracks, size)   # noqa: E731
        pipeline = CapturePipeline(self.estimator, models, hands=hands, threshold=threshold,
                                   smooth=smooth, filter_kind=filter, chunk_frames=chunk_frames,
                                   focal=camera.focal_px, recover=recover, focal_pass=focal_pass)
        meta = {"source": reader.info.name, "engine": self.name, "threshold": threshold,
                "smooth": smooth, "filter": filter, "recover": recover, "hand_model": self.hand_model,
                "dahyf_version": __version__, "frame_range": list(frame_range) if frame_range else None,
                "rotation": reader.info.rotation, **camera.to_meta()}
        try:
            yield from pipeline.run(reader, cancel=cancel, progress=progress, meta=meta)
        finally:
            self.last_timings = dict(pipeline.timings)
            reader.close()

    def live(self, source, **options):
        """A :class:`~.live.LiveCapture` of ``source`` (camera index, device path, URL or video file
        played in real time); ``options``: hands, threshold, smooth, filter, mirror, focal ...
        Call ``start()`` on it."""
        from .live import LiveCapture

        return LiveCapture(self, source, **options)

    def capture(self, video, hands: str = "both", frame_range=None, threshold: float = DEFAULT_THRESHOLD,
                smooth: float = DEFAULT_SMOOTH, chunk_frames: int = DEFAULT_CHUNK_FRAMES, cancel: threading.Event | None = None,
                progress: Callable[[int, int], None] | None = None, out=None, filter: str = "zero_lag",
                focal: float | None = None, recover: bool | None = None,
                lens_mm: float | None = None, self_calibrate: bool = False) -> Take:
        """Run :meth:`stream` to the end and collect a :class:`Take` (saved to ``out`` if given).

        Raises
        ------
        CaptureError
            Bad video, or no hand found (nothing is written then).
        """
        chunks = list(self.stream(video, hands=hands, frame_range=frame_range, threshold=threshold,
                                  smooth=smooth, chunk_frames=chunk_frames, cancel=cancel,
                                  progress=progress, filter=filter, focal=focal, lens_mm=lens_mm,
                                  recover=recover, self_calibrate=self_calibrate))
        take = Take.from_chunks(chunks)
        if take.meta["frames_done"] == 0:
            where = f" in frames {frame_range[0]}:{frame_range[1] or ''}" if frame_range else ""
            raise CaptureError(
                f"{take.meta.get('source', video)}: no frame could be decoded{where}. The file may be truncated "
                "or damaged, or the frame range lies past its end: check the range, or re-export the video.")
        if len(take) == 0 and take.meta.get("nonfinite_rows"):
            raise CaptureError(
                f"{self.name}: the engine gave non-finite values (NaN or inf) for all {take.meta['nonfinite_rows']} "
                "hands it saw, so no take was written. The checkpoint is broken: retrain it, or use the bundled engine.")
        if len(take) == 0:
            which = "no hand" if hands == "both" else f"no {hands} hand"
            hint = "" if hands == "both" else " (try --hands both)"
            raise CaptureError(
                f"{take.meta.get('source', video)}: {which} was found in {take.meta['frames_done']} frames{hint}. "
                "Make sure the hand is visible, in focus and reasonably lit.")
        if out is not None:
            take.save(out)
        return take


def estimate_camera_focal(reader, focal: float | None, lens_mm: float | None = None):
    """The focal length of a capture before any hand is seen: the user's (``focal`` px or a
    ``lens_mm`` 35 mm-equivalent lens), the container's (:mod:`dahyf.capture.mp4meta`), or the default
    (:func:`dahyf.capture.focal.estimate_focal`).

    Raises
    ------
    CaptureError
        An implausible ``focal`` (px given where millimetres were meant) or ``lens_mm``.
    """
    from .focal import estimate_focal
    from .mp4meta import read_camera_metadata

    info = reader.info
    size = (int(info.width), int(info.height))
    given = focal is not None or lens_mm is not None
    camera = read_camera_metadata(info.path) if not given and getattr(info, "path", None) else {}
    try:
        return estimate_focal([], size, camera, user_focal=focal, user_lens_mm=lens_mm, self_calibrate=False)
    except ValueError as exc:
        raise CaptureError(f"{'--lens' if lens_mm is not None else '--focal'}: {exc}") from None


def load_engine(checkpoint=None, device: str = "auto", hand_model: str = "open") -> Engine:
    """Load a capture engine.

    Parameters
    ----------
    checkpoint : path of an engine checkpoint (.npz; older .pt files need torch); None for the bundled default.
    device : 'auto' (CUDA when available), 'cpu' or 'cuda'.
    hand_model : 'open' (bundled) or a folder with the MANO pickles: the hand of the capture's output,
        and the MANO model of a checkpoint trained with MANO (which needs it).

    Raises
    ------
    CaptureError
        Missing or unreadable checkpoint, a MANO checkpoint without a MANO folder, or an unavailable device.
    """
    dev = resolve_device(device)
    path = Path(checkpoint).expanduser() if checkpoint is not None else DEFAULT_CHECKPOINT
    if not path.is_file():
        if checkpoint is None:
            raise CaptureError(
                f"The bundled engine {path.name} is missing from {path.parent}. Reinstall dahyf, or train it "
                "with `dahyf train landmark` and pass --checkpoint.")
        raise CaptureError(f"Checkpoint not found: {path}. Check the path.")
    try:
        from ..net.checkpoint import load_checkpoint
    except ImportError as exc:
        raise CaptureError(f"This dahyf install has no network code ({exc}); reinstall dahyf.") from exc
    from ..net.checkpoint import CheckpointError

    try:
        estimator = load_checkpoint(path, dev, hand_model=hand_model)
    except CaptureError:
        raise
    except CheckpointError as exc:  # its message already names the file and what to do
        raise CaptureError(str(exc)) from exc
    except Exception as exc:
        raise CaptureError(f"Could not load the engine checkpoint {path}: {exc}. "
                           "Use a checkpoint written by `dahyf train`.") from exc
    return Engine(estimator, hand_model=hand_model, name=path.name)
