"""The Take: the result of a capture, one row per (track, frame), saved as ``.npz`` + ``.json``.

See docs/take_format.md for the file format. Saving is atomic (dahyf.fileio): both files are
written to temporary names in the target folder and renamed into place, the ``.npz`` first and the
``.json`` sidecar last, under a lock that keeps two writers of one take apart. Loading trusts
nothing: member sizes are checked before decompressing, then every dtype, shape, finite value and
range (:meth:`Take.validate`).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from ..fileio import (
    DamagedFileError, OutputBusyError, OutputExistsError, UnsafeFileError, atomic_write, output_lock, read_npz,
)
from ..hand.tables import SIDES
from .errors import CaptureError

#: Take format version, stored in every file.
FORMAT_VERSION = 1

# --- what Take.load accepts (docs/take_format.md, "Limits") ------------------------------------
#: Uncompressed size of a take file, all arrays together: about 620 000 rows (two hands, 86 min at 60 fps).
MAX_TAKE_BYTES = 512 * 2**20
#: Most tracks in a take (a capture has one per hand).
MAX_TRACKS = 16
#: Frame rate, frames/s: 0 < fps <= MAX_FPS.
MAX_FPS = 1000.0
#: Image side, px.
MAX_IMAGE_SIDE = 65536
#: Largest frame index: Blender's last frame (1 048 574), 4.8 h at 60 fps.
MAX_FRAME = 1_048_574
#: Largest |time_s|, s.
MAX_TIME_S = 1e7
#: Largest rotation per joint, rad (an axis-angle vector's length; captures give at most π).
MAX_ROTATION_RAD = 4 * math.pi
#: Largest |β| component (MANO's shape space is about ±3).
MAX_ABS_BETA = 50.0
#: Largest |coordinate| of transl / joints3d, m.
MAX_ABS_METRES = 1000.0
#: Focal length, px: 0 < focal <= MAX_FOCAL_FACTOR · max(W, H).
MAX_FOCAL_FACTOR = 1000.0

#: Per-row arrays: name -> (trailing shape, dtype).
ROW_FIELDS: dict[str, tuple[tuple[int, ...], str]] = {
    "track": ((), "int32"),
    "frame": ((), "int64"),
    "time_s": ((), "float64"),
    "pose": ((16, 3), "float32"),
    "betas": ((10,), "float32"),
    "transl": ((3,), "float32"),
    "joints3d": ((21, 3), "float32"),
    "joints2d_proj": ((21, 2), "float32"),
    "landmarks2d": ((21, 2), "float32"),
    "confidence": ((), "float32"),
    "filled": ((), "bool"),
}


def empty_rows() -> dict[str, np.ndarray]:
    """A dict of zero-length per-row arrays with the right shapes and dtypes."""
    return {k: np.zeros((0,) + shape, dtype=dt) for k, (shape, dt) in ROW_FIELDS.items()}


def concat_rows(parts: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate per-row dicts (ROW_FIELDS, (n_i, ...) each) into one (sum n_i, ...), in the given order."""
    parts = [p for p in parts if len(p["frame"])]
    if not parts:
        return empty_rows()
    return {k: np.concatenate([p[k] for p in parts]).astype(dt, copy=False)
            for k, (_, dt) in ROW_FIELDS.items()}


class _RowAccess:
    """Per-row arrays as attributes (``take.pose`` is ``take.rows['pose']``) and ``len`` = rows."""

    def __getattr__(self, name):
        rows = self.__dict__.get("rows")
        if rows is not None and name in rows:
            return rows[name]
        raise AttributeError(name)

    def __len__(self) -> int:
        return len(self.rows["frame"])


@dataclass
class TrackRows(_RowAccess):
    """The rows of one track (a view of a Take); same per-row arrays, sorted by frame."""

    index: int
    handedness: str
    rows: dict[str, np.ndarray]


@dataclass
class Take(_RowAccess):
    """A captured take.

    Attributes
    ----------
    fps : frames/s of the source video (nominal; ``time_s`` holds the real timestamps).
    image_size : (W, H) px of the upright frames.
    focal : px, the focal length used (sqrt(W^2 + H^2) when unknown).
    handedness : (T,) 'right' / 'left' per track.
    rows : per-row arrays, see ROW_FIELDS: track (N,), frame (N,), time_s (N,) s, pose (N, 16, 3)
        rad MANO axis-angle (flat_hand_mean, the hand's own side), betas (N, 10), transl (N, 3) m
        camera (OpenCV) coordinates, joints3d (N, 21, 3) m, joints2d_proj (N, 21, 2) px,
        landmarks2d (N, 21, 2) px, confidence (N,), filled (N,) bool.
    meta : source, engine, threshold, smooth, hand_model, dahyf_version, frames, ...
    """

    fps: float
    image_size: tuple[int, int]
    focal: float
    handedness: tuple[str, ...]
    rows: dict[str, np.ndarray] = field(default_factory=empty_rows)
    meta: dict = field(default_factory=dict)

    # --- accessors ------------------------------------------------------------------------------
    @property
    def num_tracks(self) -> int:
        return len(self.handedness)

    def track_rows(self, track: int) -> TrackRows:
        """Rows of track ``track`` (0-based), sorted by frame."""
        if not 0 <= track < self.num_tracks:
            raise IndexError(f"take has {self.num_tracks} tracks, no track {track}")
        sel = np.flatnonzero(self.rows["track"] == track)
        sel = sel[np.argsort(self.rows["frame"][sel], kind="stable")]
        return TrackRows(track, self.handedness[track], {k: v[sel] for k, v in self.rows.items()})

    def tracks(self) -> list[TrackRows]:
        return [self.track_rows(i) for i in range(self.num_tracks)]

    def track_for(self, side: str) -> TrackRows | None:
        """The first track with handedness ``side`` ('right' / 'left'), or None."""
        for i, h in enumerate(self.handedness):
            if h == side:
                return self.track_rows(i)
        return None

    # --- construction ---------------------------------------------------------------------------
    @classmethod
    def from_chunks(cls, chunks: Iterable, meta: dict | None = None) -> "Take":
        """Collect the chunks of ``Engine.stream`` (all, or the ones received before a cancel)."""
        chunks = list(chunks)
        if not chunks:
            raise CaptureError("No frames were captured, so there is no take to build.")
        last = chunks[-1]
        rows = concat_rows(c.rows for c in chunks)
        order = np.lexsort((rows["track"], rows["frame"]))
        rows = {k: v[order] for k, v in rows.items()}
        m = dict(last.meta)
        m.update(meta or {})
        m["frames_done"] = int(last.frames_done)
        m["cancelled"] = bool(getattr(last, "cancelled", False))
        m["complete"] = bool(last.final) and not m["cancelled"]
        return cls(float(last.fps), tuple(int(x) for x in last.image_size), float(last.focal),
                   tuple(last.handedness), rows, m)

    # --- I/O --------------------------------------------------------------------------------------
    def summary(self) -> dict:
        """The readable part written to the ``.json`` sidecar."""
        tracks = []
        for t in self.tracks():
            n = len(t)
            tracks.append({
                "track": t.index, "handedness": t.handedness, "rows": n,
                "first_frame": int(t.frame[0]) if n else None,
                "last_frame": int(t.frame[-1]) if n else None,
                "filled": int(t.filled.sum()),
                "mean_confidence": float(t.confidence.mean()) if n else None,
                "betas": [float(b) for b in t.betas[0]] if n else None,
            })
        return {"format": "dahyf-take", "format_version": FORMAT_VERSION, "fps": self.fps,
                "image_size": list(self.image_size), "focal": self.focal,
                "handedness": list(self.handedness), "rows": len(self), "tracks": tracks,
                "fields": {k: ["N", *shape] for k, (shape, _) in ROW_FIELDS.items()},
                "meta": self.meta}

    @property
    def source_name(self) -> str:
        """The video's file name from ``meta['source']``, as data: the last path component only ('' if none).

        Never a path: a take may come from anywhere, so its ``source`` must not make a program
        open another file or contact a host. Look for this name beside the take, or ask the user.
        """
        src = self.meta.get("source")
        if not isinstance(src, str):
            return ""
        name = src.replace("\\", "/").rsplit("/", 1)[-1]
        if name in ("", ".", "..") or any(ord(c) < 32 for c in name) or ":" in name:
            return ""
        return name

    def save(self, path, overwrite: bool = True) -> Path:
        """Write ``path`` (.npz) and its ``.json`` sidecar atomically; returns the .npz path.

        The take is validated first (a take this method writes always loads). The ``.npz`` is
        renamed into place first and the sidecar last, under :func:`dahyf.fileio.output_lock`.

        Raises
        ------
        CaptureError
            Invalid take, missing or unwritable folder, ``overwrite`` False and the take or its
            sidecar exists, another writer holds the take, disk full.
        """
        path = Path(path).expanduser()
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.is_dir():
            raise CaptureError(f"Cannot write {path}: folder {folder} does not exist. Create it first.")
        sidecar = path.with_suffix(".json")
        for p in (path, sidecar):
            if p.is_dir():
                raise CaptureError(f"Could not write the take {path}: {p} is a folder. Choose another name.")
        self.validate()
        arrays = {k: np.asarray(v, dtype=ROW_FIELDS[k][1]) for k, v in self.rows.items()}
        try:
            meta_json = json.dumps(self.meta, sort_keys=True, allow_nan=False)
            summary = json.dumps(self.summary(), indent=1, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise CaptureError(f"Cannot write {path.name}: its metadata is not plain JSON data ({exc}).") from None
        arrays.update(
            fps=np.float64(self.fps), image_size=np.asarray(self.image_size, np.int32),
            focal=np.float64(self.focal), handedness=np.asarray(self.handedness, dtype="<U5"),
            format_version=np.int32(FORMAT_VERSION), meta_json=np.asarray(meta_json))
        try:
            with output_lock(path):
                if not overwrite:
                    for p in (path, sidecar):
                        if p.exists():
                            raise OutputExistsError(
                                f"{p} already exists; the take was not written. Choose another name, or allow "
                                "overwriting (dahyf capture --force, Take.save(..., overwrite=True)).")
                # the inner block commits first: the .npz is in place before the sidecar is
                with atomic_write(sidecar, "w") as fj, atomic_write(path, "wb") as fn:
                    np.savez_compressed(fn, **arrays)
                    fj.write(summary)
        except (OutputExistsError, OutputBusyError) as exc:
            raise CaptureError(str(exc)) from None
        except OSError as exc:
            raise CaptureError(f"Could not write the take {path}: {exc}. Check free disk space and permissions.") from exc
        return path

    @classmethod
    def load(cls, path) -> "Take":
        """Read and validate a take written by :meth:`save` (no pickles; sizes checked before decompressing).

        Raises
        ------
        CaptureError
            Missing, damaged, oversized, foreign or invalid file; the message says what is wrong.
        """
        path = Path(path).expanduser()
        if not path.is_file():
            raise CaptureError(f"Take not found: {path}.")
        try:
            z = read_npz(path, MAX_TAKE_BYTES)
        except DamagedFileError as exc:
            raise CaptureError(f"{exc} It is not a readable dahyf take: re-capture the video.") from None
        except UnsafeFileError as exc:
            raise CaptureError(f"{exc} This is not a take written by dahyf.") from None
        except OSError as exc:
            raise CaptureError(f"Cannot read the take {path}: {exc.strerror or exc}.") from None
        version = z.get("format_version")
        if version is None or version.shape != () or version.dtype.kind not in "iu" or int(version) != FORMAT_VERSION:
            found = int(version) if (version is not None and version.shape == () and version.dtype.kind in "iu") else 0
            raise CaptureError(f"{path.name}: take format version {found}, this dahyf reads {FORMAT_VERSION}. "
                               "Re-capture the video with this version.")
        missing = [k for k in ("fps", "image_size", "focal", "handedness", "meta_json", *ROW_FIELDS) if k not in z]
        if missing:
            raise CaptureError(f"{path.name} is not a complete dahyf take: missing {', '.join(missing)}.")
        try:
            meta = json.loads(_scalar(z["meta_json"], "U", "meta_json"))
            if not isinstance(meta, dict):
                raise CaptureError(f"take metadata is a JSON {type(meta).__name__}, not an object")
            handedness = z["handedness"]
            if handedness.dtype.kind != "U" or handedness.ndim != 1:
                raise CaptureError(f"'handedness' is {handedness.dtype} {handedness.shape}, not a list of names")
            size = z["image_size"]
            if size.shape != (2,) or size.dtype.kind not in "iu":
                raise CaptureError(f"'image_size' is {size.dtype} {size.shape}, not two integers")
            take = cls(_scalar(z["fps"], "fiu", "fps"), (int(size[0]), int(size[1])),
                       _scalar(z["focal"], "fiu", "focal"), tuple(str(h) for h in handedness),
                       {k: z[k] for k in ROW_FIELDS}, meta)
            take.validate()
        except CaptureError as exc:
            raise CaptureError(f"{path.name} is not a valid dahyf take: {exc}") from None
        except (ValueError, RecursionError) as exc:  # meta_json that is not JSON, or nested too deeply
            raise CaptureError(f"{path.name} is not a valid dahyf take: unreadable metadata ({type(exc).__name__}).") from None
        return take

    def validate(self) -> None:
        """Check the header values and every row array (dtype kind, shape, finite values, ranges).

        Arrays of a compatible dtype (e.g. float64 poses) are converted to the canonical one of
        ROW_FIELDS in place. Limits: the MAX_* constants of this module. Raises CaptureError.
        """
        fps, focal = self.fps, self.focal
        if not (isinstance(fps, (int, float)) and math.isfinite(fps) and 0 < fps <= MAX_FPS):
            raise CaptureError(f"fps is {fps!r}; it must be a number of frames/s in (0, {MAX_FPS:g}].")
        size = self.image_size
        if not (len(size) == 2 and all(isinstance(v, (int, np.integer)) and 1 <= v <= MAX_IMAGE_SIDE for v in size)):
            raise CaptureError(f"image_size is {size!r}; it must be (W, H) with 1 to {MAX_IMAGE_SIDE} px each.")
        if not (isinstance(focal, (int, float)) and math.isfinite(focal)
                and 0 < focal <= MAX_FOCAL_FACTOR * max(size)):
            raise CaptureError(f"focal is {focal!r} px; it must be positive and at most {MAX_FOCAL_FACTOR:g} × the "
                               "image's larger side.")
        if not (1 <= self.num_tracks <= MAX_TRACKS and all(h in SIDES for h in self.handedness)):
            raise CaptureError(f"handedness is {list(self.handedness)[:MAX_TRACKS + 1]!r}; it must list 1 to "
                               f"{MAX_TRACKS} tracks, each 'right' or 'left'.")
        if not isinstance(self.meta, dict):
            raise CaptureError(f"meta is a {type(self.meta).__name__}, not a dict.")
        rows = self.rows
        first = rows.get("frame")
        n = len(first) if isinstance(first, np.ndarray) and first.ndim >= 1 else 0
        for k, (shape, dt) in ROW_FIELDS.items():
            a = rows.get(k)
            if not isinstance(a, np.ndarray) or a.shape != (n,) + shape:
                raise CaptureError(f"field {k!r} has shape {getattr(a, 'shape', None)}, expected {(n,) + shape}.")
            want = np.dtype(dt).kind
            ok = a.dtype.kind in ({"f": "fiu", "i": "iu", "b": "b"}[want])
            if not ok:
                raise CaptureError(f"field {k!r} holds {a.dtype} values; expected {dt}.")
            if want == "f" and a.dtype.kind == "f" and not np.isfinite(a).all():
                raise CaptureError(f"field {k!r} holds NaN or infinite values in {int((~np.isfinite(a)).any(axis=tuple(range(1, a.ndim))).sum())} rows.")
        if n:
            _in_range(rows["track"], 0, self.num_tracks - 1, "track", "a track index of handedness")
            _in_range(rows["frame"], 0, MAX_FRAME, "frame", "a frame index")
            _in_range(rows["time_s"], -MAX_TIME_S, MAX_TIME_S, "time_s", "a time in seconds")
            _in_range(rows["betas"], -MAX_ABS_BETA, MAX_ABS_BETA, "betas", "a MANO shape value")
            _in_range(rows["transl"], -MAX_ABS_METRES, MAX_ABS_METRES, "transl", "a position in metres")
            _in_range(rows["joints3d"], -MAX_ABS_METRES, MAX_ABS_METRES, "joints3d", "a position in metres")
            _in_range(rows["confidence"], -1.0 - 1e-3, 1.0 + 1e-3, "confidence", "a confidence in [-1, 1]")
            angle = np.linalg.norm(rows["pose"].astype(np.float64), axis=-1)
            _in_range(angle, 0.0, MAX_ROTATION_RAD, "pose", "a joint rotation (rad)")
        for k, (_, dt) in ROW_FIELDS.items():
            rows[k] = rows[k].astype(dt, copy=False)


def _scalar(a: np.ndarray, kinds: str, name: str):
    """The Python value of a 0-d array of one of the dtype ``kinds``; CaptureError otherwise."""
    if not isinstance(a, np.ndarray) or a.shape != () or a.dtype.kind not in kinds:
        raise CaptureError(f"{name!r} is {getattr(a, 'dtype', type(a).__name__)} {getattr(a, 'shape', '')}, "
                           "not a single value")
    return str(a) if a.dtype.kind == "U" else float(a)


def _in_range(a: np.ndarray, lo: float, hi: float, name: str, what: str) -> None:
    """Raise CaptureError unless every value of ``a`` lies in [lo, hi] (checked before any dtype conversion)."""
    bad = (a < lo) | (a > hi)
    if bad.any():
        v = a[bad].flat[0].item()  # a Python number: numpy 2 writes np.int64(5) for repr(v)
        raise CaptureError(f"field {name!r} holds {v!r}, which is not {what} (allowed: {lo:g} to {hi:g}).")
