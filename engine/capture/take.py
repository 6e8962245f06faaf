"""The Take: the result of a capture, one row per (track, frame), saved as ``.npz`` + ``.json``.

See docs/take_format.md for the file format. Saving is atomic: both files are written to
temporary names in the target folder and renamed into place (the ``.json`` sidecar first, the
``.npz`` last), so a crash never leaves a complete-looking but half-written take.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from ..fileio import user_file_mode  # noqa: F401  (re-exported: preview.py)
from .errors import CaptureError

#: Take format version, stored in every file.
FORMAT_VERSION = 1

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

    def save(self, path) -> Path:
        """Write ``path`` (.npz) and its ``.json`` sidecar atomically; returns the .npz path."""
        path = Path(path).expanduser()
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.is_dir():
            raise CaptureError(f"Cannot write {path}: folder {folder} does not exist. Create it first.")
        arrays = {k: np.asarray(v, dtype=ROW_FIELDS[k][1]) for k, v in self.rows.items()}
        arrays.update(
            fps=np.float64(self.fps), image_size=np.asarray(self.image_size, np.int32),
            focal=np.float64(self.focal), handedness=np.asarray(self.handedness, dtype="<U5"),
            format_version=np.int32(FORMAT_VERSION),
            meta_json=np.asarray(json.dumps(self.meta, sort_keys=True)))
        sidecar = path.with_suffix(".json")
        tmp_npz = tmp_json = None
        try:
            fd, tmp_npz = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz.partial", dir=folder)
            with os.fdopen(fd, "wb") as fh:
                np.savez_compressed(fh, **arrays)
                fh.flush()
                os.fsync(fh.fileno())
            fd, tmp_json = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".json.partial", dir=folder)
            with os.fdopen(fd, "w") as fh:
                json.dump(self.summary(), fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            mode = user_file_mode()  # mkstemp makes 0600 files; a take is an ordinary user file
            os.chmod(tmp_json, mode)
            os.chmod(tmp_npz, mode)
            os.replace(tmp_json, sidecar)
            tmp_json = None
            os.replace(tmp_npz, path)
            tmp_npz = None
        except OSError as exc:
            raise CaptureError(f"Could not write the take {path}: {exc}. Check free disk space and permissions.") from exc
        finally:
            for tmp in (tmp_npz, tmp_json):
                if tmp is not None and os.path.exists(tmp):
                    os.unlink(tmp)
        return path

    @classmethod
    def load(cls, path) -> "Take":
        """Read a take written by :meth:`save` (no pickles)."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise CaptureError(f"Take not found: {path}.")
        try:
            with np.load(path, allow_pickle=False) as z:
                version = int(z["format_version"]) if "format_version" in z else 0
                if version != FORMAT_VERSION:
                    raise CaptureError(f"{path.name}: take format version {version}, this dahyf reads {FORMAT_VERSION}. "
                                       "Re-capture the video with this version.")
                rows = {k: z[k] for k in ROW_FIELDS}
                take = cls(float(z["fps"]), tuple(int(x) for x in z["image_size"]), float(z["focal"]),
                           tuple(str(h) for h in z["handedness"]), rows, json.loads(str(z["meta_json"])))
        except CaptureError:
            raise
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            raise CaptureError(f"{path.name} is not a readable dahyf take ({exc}). Re-capture the video.") from exc
        take.validate()
        return take

    def validate(self) -> None:
        """Check shapes and dtypes of the rows; raise CaptureError when inconsistent."""
        n = len(self.rows.get("frame", ()))
        for k, (shape, _) in ROW_FIELDS.items():
            a = self.rows.get(k)
            if a is None or a.shape != (n,) + shape:
                raise CaptureError(f"take field {k!r} has shape {None if a is None else a.shape}, "
                                   f"expected {(n,) + shape}.")
        if n and (self.rows["track"].min() < 0 or self.rows["track"].max() >= self.num_tracks):
            raise CaptureError("take has rows for a track that is not in its handedness list.")
