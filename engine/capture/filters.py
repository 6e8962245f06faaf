"""Temporal filters for hand poses: rotations are filtered on SO(3), never on axis-angle components.

Every track filter implements :class:`PoseFilter` (push / advance_to / flush of :class:`PoseSample`
rows) and is listed in :data:`FILTER_KINDS`, so the capture pipeline builds any of them from a
name and a 0..1 smoothing strength without knowing which it is. Two filters:

- :class:`OneEuroFilter` / :class:`OneEuroRotationFilter` — causal (live use). The One-Euro
  filter (Casiez, Roussel & Vogel, CHI 2012) is an exponential smoother whose cut-off frequency
  rises with speed: ``fc = min_cutoff + beta * |speed|``, ``alpha = 1 / (1 + tau / dt)``,
  ``tau = 1 / (2 pi fc)``. On SO(3) the step is taken along the geodesic:
  ``R <- R_prev exp(alpha log(R_prev^T R))``.
- :func:`centred_smooth` — zero-lag, for captures: each frame becomes the value at its own time of
  a Gaussian-weighted least-squares polynomial over a centred window (degree 0: a weighted mean;
  captures use degree 2, which follows accelerating motion — fast waves, turns — where a mean
  lags into the past and the future alike). Rotations are fitted in the tangent space at the
  frame's own rotation (one Gauss-Newton step): ``R_t exp(sum_i e_i log(R_t^T R_i))`` with the
  fit's equivalent kernel ``e`` (:func:`local_polynomial_weights`). The window is symmetric, so
  there is no phase lag; a stream emits each frame ``half_window`` frames late (see
  :class:`CentredSmoother`), with memory independent of the video length.

Rotations are handled as unit quaternions (w, x, y, z) internally.
"""
from __future__ import annotations

import dataclasses
import math
from collections import deque
from typing import ClassVar, Protocol

import numpy as np

from ..hand import quaternion as Q

#: Gaussian width of the zero-lag smoother at smooth = 1, in seconds.
SMOOTH_SIGMA_S = 0.15
#: The zero-lag smoother of captures fits a local quadratic (degree 2), which follows accelerating
#: (fast, turning) motion that a local mean averages away; its Gaussian is this much wider than a
#: local mean's at the same ``smooth``, which keeps the jitter reduction on slow motion
#: (benchmarks/fidelity.md, "Smoothing").
SMOOTH_DEGREE = 2
QUADRATIC_WIDTH = 1.75
#: One-Euro parameters at smooth = 1: min_cutoff Hz (smooth scales the cut-off down); the speed
#: coefficients in the units of each signal: rotations Hz per rad/s (finger joints turn at 1-10
#: rad/s), translation Hz per m/s (a hand moves at 0.05-1 m/s). With the rotations' 0.3 the
#: translation hardly opened up and lagged 2 frames on the real test video (live, smooth 0.5); 3.0
#: gives 0-1 frame at 52-59 % less jitter than the raw landmarks (BENCHMARKS.md, live capture).
ONE_EURO_MIN_CUTOFF_HZ = 1.0
ONE_EURO_BETA = 0.3
ONE_EURO_BETA_TRANSL = 3.0


# --- the interface ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PoseSample:
    """One track's pose at one frame, as it goes through a filter.

    frame : frame index (increasing along a track; gaps allowed).
    time_s : s, the frame's timestamp.
    pose : (J, 3) rad axis-angle rotations (MANO pose, J = 16).
    transl : (D,) vector (translation, m).

    Filters return copies made with ``dataclasses.replace(sample, pose=..., transl=...)``, so a
    subclass's extra fields (landmarks, confidence ...) travel through unchanged.
    """

    frame: int
    time_s: float
    pose: np.ndarray
    transl: np.ndarray


class PoseFilter(Protocol):
    """A per-track temporal filter of :class:`PoseSample` rows (frames pushed in increasing order).

    ``push``, ``advance_to`` and ``flush`` return the rows that became final, in frame order; every
    row pushed comes out exactly once. ``lag``: frames a row is held back (0 for causal filters).
    """

    #: True when every row comes out of the ``push`` that put it in (usable live).
    causal: ClassVar[bool]
    lag: int

    @classmethod
    def from_smoothing(cls, smooth: float, fps: float) -> "PoseFilter":
        """The filter for a smoothing strength ``smooth`` in [0, 1] (0: none) at ``fps`` frames/s."""

    def push(self, sample: PoseSample) -> list[PoseSample]: ...

    def advance_to(self, frame: int) -> list[PoseSample]:
        """The stream has reached ``frame`` (even without a row of this track there)."""

    def flush(self) -> list[PoseSample]:
        """End of the stream: every row still held."""


# --- SO(3) helpers (numpy, any leading shape) -----------------------------------------------------
def so3_log_relative(q_ref: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Rotation vector (..., 3) rad of ``R_ref^T R`` (the tangent of ``q`` at ``q_ref``)."""
    return Q.to_axis_angle(Q.multiply(Q.conjugate(q_ref), q))


def so3_exp_apply(q_ref: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``R_ref exp(v)`` as a quaternion: step from ``q_ref`` along tangent ``v`` (..., 3) rad."""
    return Q.multiply(q_ref, Q.from_axis_angle(v))


# --- zero-lag centred smoother --------------------------------------------------------------------
def gaussian_weights(sigma: float, half_window: int) -> np.ndarray:
    """(2 h + 1,) Gaussian weights over frame offsets -h..h (not normalised)."""
    if sigma <= 0:
        w = np.zeros(2 * half_window + 1)
        w[half_window] = 1.0
        return w
    d = np.arange(-half_window, half_window + 1, dtype=np.float64)
    return np.exp(-0.5 * (d / sigma) ** 2)


def local_polynomial_weights(offsets: np.ndarray, g: np.ndarray, degree: int) -> np.ndarray:
    """Equivalent kernel of a weighted least-squares polynomial evaluated at offset 0.

    Parameters
    ----------
    offsets : (K,) frame offsets of the window's rows from the centre row (0 among them).
    g : (K,) non-negative weights (the Gaussian).
    degree : polynomial degree; lowered when fewer distinct weighted offsets than ``degree + 1``.

    Returns
    -------
    (K,) weights e summing to 1 (some may be negative for degree ≥ 2): ``value(0) = e @ values``.
    """
    k = np.asarray(offsets, np.float64)
    g = np.asarray(g, np.float64)
    degree = min(int(degree), len(np.unique(k[g > 1e-9 * g.max()])) - 1)
    if degree <= 0:
        return g / g.sum()
    X = np.vander(k, degree + 1, increasing=True)                # (K, degree + 1): 1, k, k², ...
    return np.linalg.solve(X.T @ (g[:, None] * X), X.T * g)[0]


def centred_smooth(frames: np.ndarray, rot: np.ndarray, vec: np.ndarray, sigma: float,
                   half_window: int, degree: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Zero-lag smoothing of one track (offline form of :class:`CentredSmoother`).

    Parameters
    ----------
    frames : (N,) int frame indices, increasing (gaps allowed: only frames within
        ``half_window`` of each other are averaged).
    rot : (N, J, 3) rad axis-angle rotations (e.g. MANO pose, J = 16).
    vec : (N, D) vectors (e.g. translation, m).
    sigma : Gaussian width in frames; 0 returns the input.
    half_window : frames on each side.
    degree : 0 (weighted mean) or the local polynomial's degree (see the module docstring).

    Returns
    -------
    (rot (N, J, 3) rad, vec (N, D)) smoothed.
    """
    frames = np.asarray(frames)
    q = Q.from_axis_angle(rot)
    vec = np.asarray(vec, dtype=np.float64)
    w_table = gaussian_weights(sigma, half_window)
    out_r = np.empty_like(np.asarray(rot, dtype=np.float64))
    out_v = np.empty_like(vec)
    for i in range(len(frames)):
        lo = np.searchsorted(frames, frames[i] - half_window, side="left")
        hi = np.searchsorted(frames, frames[i] + half_window, side="right")
        d = frames[lo:hi] - frames[i]
        w = local_polynomial_weights(d, w_table[d + half_window], degree)
        out_r[i], out_v[i] = _weighted_mean(q[i], q[lo:hi], vec[lo:hi], w)
    return out_r, out_v


def _weighted_mean(q_centre: np.ndarray, q_win: np.ndarray, v_win: np.ndarray, w: np.ndarray):
    """One Gauss-Newton step of the weighted Karcher mean from ``q_centre``; plain mean for vectors.
    ``w`` (K,) sums to 1 (a local polynomial's kernel may hold negative weights)."""
    tangent = so3_log_relative(q_centre[None], q_win)            # (K, J, 3)
    step = np.einsum("k,kjc->jc", w, tangent)
    return Q.to_axis_angle(so3_exp_apply(q_centre, step)), w @ v_win


class CentredSmoother:
    """Streaming zero-lag smoother for one track (a :class:`PoseFilter`).

    ``push(sample)`` and ``flush()`` return the rows that are final: a row at frame t is final
    once a row at frame >= t + half_window has arrived (or the stream ended, or ``advance_to`` says
    the video has moved past it). Memory: at most 2 * half_window + 1 rows.

    Parameters
    ----------
    sigma : Gaussian width in frames (0: no smoothing).
    half_window : frames on each side (default ceil(2.5 sigma)).
    degree : 0 (weighted mean) or the degree of the local polynomial (see the module docstring).
    """

    causal = False

    def __init__(self, sigma: float, half_window: int | None = None, degree: int = 0):
        self.sigma = float(sigma)
        self.degree = int(degree)
        self.half_window = int(math.ceil(2.5 * sigma)) if half_window is None else int(half_window)
        self._w = gaussian_weights(self.sigma, self.half_window)
        self._buf: deque = deque()   # (frame, quat (J,4), vec (D,), sample)
        self._next = 0               # index in _buf of the next row to emit

    @classmethod
    def from_smoothing(cls, smooth: float, fps: float) -> "CentredSmoother":
        """Local quadratic (SMOOTH_DEGREE) with Gaussian σ = smooth × SMOOTH_SIGMA_S × QUADRATIC_WIDTH seconds."""
        return cls(sigma=smooth * SMOOTH_SIGMA_S * QUADRATIC_WIDTH * fps, degree=SMOOTH_DEGREE)

    @property
    def lag(self) -> int:
        """Frames between a row's arrival and its emission."""
        return self.half_window

    def push(self, sample: PoseSample) -> list[PoseSample]:
        """Add the row of ``sample.frame`` (frames increasing); returns the rows that became final."""
        self._buf.append((int(sample.frame), Q.from_axis_angle(sample.pose), np.asarray(sample.transl, np.float64),
                          sample))
        return self.advance_to(sample.frame)

    def advance_to(self, frame: int) -> list[PoseSample]:
        """Emit the rows at frames <= ``frame - half_window`` (the video has reached ``frame``)."""
        return self._emit(lambda f: f + self.half_window <= frame)

    def flush(self) -> list[PoseSample]:
        """End of the stream: every row not emitted yet, smoothed over what the window holds."""
        return self._emit(lambda f: True)

    def _emit(self, ready) -> list[PoseSample]:
        out = []
        while self._next < len(self._buf) and ready(self._buf[self._next][0]):
            out.append(self._smooth_row(self._next))
            self._next += 1
        # drop rows no longer needed by any future window
        while self._buf and self._next > 0 and (
                self._next >= len(self._buf)
                or self._buf[0][0] < self._buf[self._next][0] - self.half_window):
            self._buf.popleft()
            self._next -= 1
        return out

    def _smooth_row(self, i: int) -> PoseSample:
        f, q, _, sample = self._buf[i]
        rows = [r for r in self._buf if abs(r[0] - f) <= self.half_window]
        d = np.array([r[0] - f for r in rows])
        w = local_polynomial_weights(d, self._w[d + self.half_window], self.degree)
        rot, vec = _weighted_mean(q, np.stack([r[1] for r in rows]), np.stack([r[2] for r in rows]), w)
        return dataclasses.replace(sample, pose=rot, transl=vec)


# --- One-Euro (causal) ----------------------------------------------------------------------------
def _alpha(cutoff: float, dt: float) -> float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One-Euro filter for vectors (Casiez et al. 2012).

    Parameters
    ----------
    min_cutoff : Hz, cut-off at rest (lower: smoother, more lag when slow).
    beta : speed coefficient (higher: less lag when fast).
    d_cutoff : Hz, cut-off of the speed estimate.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self._x = self._dx = self._t = None

    def __call__(self, t: float, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or t <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self._t
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.linalg.norm(self._dx, axis=-1, keepdims=True)
        a = 1.0 / (1.0 + 1.0 / (2.0 * math.pi * cutoff * dt))
        self._x = self._x + a * (x - self._x)
        self._t = t
        return self._x.copy()


class OneEuroRotationFilter:
    """One-Euro filter for (J, 3) axis-angle rotations, stepping along SO(3) geodesics.

    Speed is the angular velocity (rad/s) of each rotation; each joint gets its own cut-off.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self._q = self._w = self._t = None

    def __call__(self, t: float, rot: np.ndarray) -> np.ndarray:
        q = Q.from_axis_angle(rot)
        if self._q is None or t <= self._t:
            self._q, self._w, self._t = q, np.zeros(q.shape[:-1] + (3,)), t
            return Q.to_axis_angle(q)
        dt = t - self._t
        delta = so3_log_relative(self._q, q)                      # (J, 3) rad
        self._w = self._w + _alpha(self.d_cutoff, dt) * (delta / dt - self._w)
        cutoff = self.min_cutoff + self.beta * np.linalg.norm(self._w, axis=-1, keepdims=True)
        a = 1.0 / (1.0 + 1.0 / (2.0 * math.pi * cutoff * dt))
        self._q = so3_exp_apply(self._q, a * delta)
        self._t = t
        return Q.to_axis_angle(self._q)


class OneEuroPoseFilter:
    """Causal One-Euro filter of a track (a :class:`PoseFilter`): rotations on SO(3), translation
    as a vector, both driven by the samples' timestamps; each row comes out of its own ``push``."""

    causal = True
    lag = 0

    def __init__(self, min_cutoff: float = ONE_EURO_MIN_CUTOFF_HZ, beta: float = ONE_EURO_BETA,
                 beta_transl: float = ONE_EURO_BETA_TRANSL):
        self.rot_filter = OneEuroRotationFilter(min_cutoff, beta)
        self.vec_filter = OneEuroFilter(min_cutoff, beta_transl)

    @classmethod
    def from_smoothing(cls, smooth: float, fps: float) -> "OneEuroPoseFilter":
        """Cut-off ONE_EURO_MIN_CUTOFF_HZ / smooth (no smoothing at 0); ``fps`` is not needed."""
        cutoff = ONE_EURO_MIN_CUTOFF_HZ / max(smooth, 1e-3) if smooth > 0 else 1e6
        return cls(cutoff, ONE_EURO_BETA, ONE_EURO_BETA_TRANSL)

    def push(self, sample: PoseSample) -> list[PoseSample]:
        return [dataclasses.replace(sample, pose=self.rot_filter(sample.time_s, sample.pose),
                                    transl=self.vec_filter(sample.time_s, sample.transl))]

    def advance_to(self, frame: int) -> list[PoseSample]:
        return []

    def flush(self) -> list[PoseSample]:
        return []


#: Filter name -> class (each a :class:`PoseFilter`); a new filter plugs in by adding itself here.
FILTER_KINDS: dict[str, type] = {"zero_lag": CentredSmoother, "one_euro": OneEuroPoseFilter}


def make_filter(kind: str, smooth: float, fps: float) -> PoseFilter:
    """The :class:`PoseFilter` named ``kind`` (see FILTER_KINDS) for smoothing ``smooth`` at ``fps``."""
    return FILTER_KINDS[kind].from_smoothing(smooth, fps)
