"""The add-on's only door to the DaHyF engine (``dahyf``): loading models and reading takes.

Everything here is Blender-free except that it reads the preferences object. Errors the user can
fix become :class:`UserError` with a message that says what to do.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from dahyf.errors import DaHyFUserError


class UserError(DaHyFUserError):
    """Something the user can fix (a path, a setting); the message says how."""


def describe_error(exc: BaseException, what: str = "Capture") -> str:
    """User-facing text of an error: a :class:`~dahyf.errors.DaHyFUserError`'s message is already so;
    anything else is an internal failure, named as one (``what`` failed: type, message)."""
    if isinstance(exc, DaHyFUserError):
        return str(exc)
    return f"{what} failed ({type(exc).__name__}: {exc}). See the system console for details."


def hand_model_source(prefs) -> str:
    """'open', or the MANO folder from the preferences (checked)."""
    folder = (getattr(prefs, "mano_folder", "") or "").strip()
    if not folder:
        return "open"
    folder = os.path.abspath(os.path.expanduser(folder))
    if not os.path.isdir(folder):
        raise UserError(f"MANO folder not found: {folder}. Fix it in Preferences > Add-ons > DaHyF, "
                        "or clear it to use the bundled open hand model.")
    missing = [n for n in ("MANO_RIGHT.pkl", "MANO_LEFT.pkl") if not os.path.isfile(os.path.join(folder, n))]
    if missing:
        raise UserError(f"MANO folder {folder} lacks {' and '.join(missing)}. Point it to the folder that "
                        "holds both files (from https://mano.is.tue.mpg.de), or clear it to use the bundled "
                        "open hand model.")
    return folder


def load_hand(prefs, side: str):
    """The hand model of ``side`` ('right' | 'left') chosen in the preferences."""
    import dahyf

    try:
        return dahyf.load_hand_model(hand_model_source(prefs), side)
    except dahyf.ModelFileError as exc:
        raise UserError(str(exc)) from None


def engine_device(prefs) -> str:
    return {"AUTO": "auto", "CPU": "cpu", "CUDA": "cuda"}[getattr(prefs, "device", "AUTO")]


def load_engine(prefs):
    """The capture engine with the preferences' checkpoint, device and hand model."""
    import dahyf

    checkpoint = (getattr(prefs, "checkpoint", "") or "").strip() or None
    if checkpoint and not os.path.isfile(os.path.expanduser(checkpoint)):
        raise UserError(f"Checkpoint not found: {checkpoint}. Fix it in Preferences > Add-ons > DaHyF, "
                        "or clear it to use the bundled engine.")
    return dahyf.load_engine(checkpoint=checkpoint, device=engine_device(prefs), hand_model=hand_model_source(prefs))


@dataclass
class Rows:
    """Plain-array view of a Take or of a streamed chunk (rows of all tracks, see ``dahyf.Take``)."""

    fps: float
    image_size: tuple[int, int]
    focal: float
    handedness: tuple[str, ...]
    track: np.ndarray
    frame: np.ndarray
    pose: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    confidence: np.ndarray
    filled: np.ndarray

    @property
    def num_rows(self) -> int:
        return len(self.frame)

    def select(self, track: int) -> "Rows":
        """The rows of one track, sorted by frame."""
        idx = np.nonzero(self.track == track)[0]
        idx = idx[np.argsort(self.frame[idx], kind="stable")]
        return Rows(self.fps, self.image_size, self.focal, self.handedness, self.track[idx], self.frame[idx],
                    self.pose[idx], self.betas[idx], self.transl[idx], self.confidence[idx], self.filled[idx])


def as_rows(take) -> Rows:
    """A ``dahyf.Take`` or a streamed chunk (both carry ``rows`` and the take header) as :class:`Rows`."""
    r = take.rows
    n = len(r["frame"])
    W, H = (int(v) for v in take.image_size)
    return Rows(
        fps=float(take.fps), image_size=(W, H), focal=float(take.focal),
        handedness=tuple(str(h) for h in take.handedness),
        track=np.asarray(r["track"], dtype=np.int64).reshape(n),
        frame=np.asarray(r["frame"], dtype=np.int64).reshape(n),
        pose=np.asarray(r["pose"], dtype=np.float64).reshape(n, 16, 3),
        betas=np.asarray(r["betas"], dtype=np.float64).reshape(n, np.shape(r["betas"])[-1]),
        transl=np.asarray(r["transl"], dtype=np.float64).reshape(n, 3),
        confidence=np.asarray(r["confidence"], dtype=np.float64).reshape(n),
        filled=np.asarray(r["filled"], dtype=bool).reshape(n),
    )
