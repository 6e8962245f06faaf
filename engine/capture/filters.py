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
#: Final rows the capture's zero-lag smoother collects before handing them out in one vectorised
#: step (the pipeline's ``advance_to`` at each chunk's end hands out the rest).
EMIT_BATCH = 32
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


class _KernelTable:
    """Equivalent kernels of one smoother (Gaussian ``sigma``, ``half_window``, ``degree``) by the
    window's pattern of present offsets, computed once each: inside a track every window has the
    same pattern, so a capture solves a handful of small systems instead of one per row."""

    def __init__(self, sigma: float, half_window: int, degree: int, size: int = 512):
        self.g = gaussian_weights(sigma, half_window)
        self.half_window, self.degree, self.size = half_window, degree, size
        self._cache: dict[bytes, np.ndarray] = {}

    def __call__(self, present: np.ndarray) -> np.ndarray:
        """(2h + 1,) kernel over offsets -h..h for ``present`` (2h + 1,) bool (0 where absent)."""
        key = np.packbits(present).tobytes()
        e = self._cache.get(key)
        if e is None:
            d = np.flatnonzero(present) - self.half_window
            e = np.zeros(len(present))
            e[present] = local_polynomial_weights(d, self.g[present], self.degree)
            if len(self._cache) >= self.size:
                self._cache.clear()
            self._cache[key] = e
        return e


def _smooth_rows(frames: np.ndarray, q: np.ndarray, vec: np.ndarray, rows: np.ndarray,
                 kernels: _KernelTable) -> tuple[np.ndarray, np.ndarray]:
    """The zero-lag smoother's value at ``rows`` (R,) of one track's window, all at once.

    frames (N,) int increasing; q (N, J, 4) quaternions; vec (N, D); rows index into them. Each row
    is fitted over the rows within ``half_window`` frames of it, in the tangent space at its own
    rotation (one Gauss-Newton step of the weighted Karcher mean with the kernel's weights).
    Returns (rot (R, J, 3) rad axis-angle, vec (R, D)).
    """
    h = kernels.half_window
    offs = np.arange(-h, h + 1)
    target = frames[rows, None] + offs[None]                               # (R, K) wanted frames
    pos = np.clip(np.searchsorted(frames, target), 0, len(frames) - 1)     # where they would be
    present = frames[pos] == target                                        # (R, K)
    w = np.stack([kernels(m) for m in present])                            # (R, K), 0 where absent
    qc = q[rows]                                                           # (R, J, 4)
    tangent = so3_log_relative(qc[:, None], q[pos])                        # (R, K, J, 3)
    step = np.einsum("rk,rkjc->rjc", w, tangent)
    return Q.to_axis_angle(so3_exp_apply(qc, step)), np.einsum("rk,rkd->rd", w, vec[pos])


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
    vec = np.asarray(vec, dtype=np.float64)
    if len(frames) == 0:
        return np.asarray(rot, np.float64).copy(), vec.copy()
    return _smooth_rows(frames, Q.from_axis_angle(rot), vec, np.arange(len(frames)),
                        _KernelTable(sigma, half_window, degree))


class CentredSmoother:
    """Streaming zero-lag smoother for one track (a :class:`PoseFilter`).

    A row at frame t is final once the stream has reached frame t + half_window (a later row
    arrived, ``advance_to`` said so, or the stream ended). Final rows are computed together, in
    one vectorised step: ``push`` hands them out once ``batch`` of them are waiting (``advance_to``
    and ``flush`` at once), so a capture pays the numpy overhead per chunk, not per row. Memory:
    at most 2 * half_window + batch + 1 rows.

    Parameters
    ----------
    sigma : Gaussian width in frames (0: no smoothing).
    half_window : frames on each side (default ceil(2.5 sigma)).
    degree : 0 (weighted mean) or the degree of the local polynomial (see the module docstring).
    batch : final rows ``push`` collects before it hands them out (1: each as soon as it is final).
    """

    causal = False

    def __init__(self, sigma: float, half_window: int | None = None, degree: int = 0, batch: int = 1):
        self.sigma = float(sigma)
        self.degree = int(degree)
        self.half_window = int(math.ceil(2.5 * sigma)) if half_window is None else int(half_window)
        self.batch = max(1, int(batch))
        self._kernels = _KernelTable(self.sigma, self.half_window, self.degree)
        self._frames: list[int] = []
        self._q: list[np.ndarray] = []       # (J, 4) quaternion per buffered row
        self._v: list[np.ndarray] = []       # (D,) vector per buffered row
        self._samples: list[PoseSample] = []
        self._next = 0                       # index of the next row to emit
        self._last = -math.inf               # the stream has reached this frame

    @classmethod
    def from_smoothing(cls, smooth: float, fps: float) -> "CentredSmoother":
        """Local quadratic (SMOOTH_DEGREE) with Gaussian σ = smooth × SMOOTH_SIGMA_S × QUADRATIC_WIDTH
        seconds; rows handed out in batches of EMIT_BATCH."""
        return cls(sigma=smooth * SMOOTH_SIGMA_S * QUADRATIC_WIDTH * fps, degree=SMOOTH_DEGREE, batch=EMIT_BATCH)

    @property
    def lag(self) -> int:
        """Frames between a row's arrival and its emission (at least)."""
        return self.half_window

    def push(self, sample: PoseSample) -> list[PoseSample]:
        """Add the row of ``sample.frame`` (frames increasing); returns rows that became final
        (once ``batch`` of them are waiting)."""
        self._frames.append(int(sample.frame))
        self._q.append(Q.from_axis_angle(sample.pose))
        self._v.append(np.asarray(sample.transl, np.float64))
        self._samples.append(sample)
        self._last = max(self._last, int(sample.frame))
        if self._ready(self._last) - self._next < self.batch:
            return []
        return self._emit(self._ready(self._last))

    def advance_to(self, frame: int) -> list[PoseSample]:
        """Emit the rows at frames <= ``frame - half_window`` (the video has reached ``frame``)."""
        self._last = max(self._last, frame)
        return self._emit(self._ready(self._last))

    def flush(self) -> list[PoseSample]:
        """End of the stream: every row not emitted yet, smoothed over what the window holds."""
        return self._emit(len(self._frames))

    def _ready(self, frame: float) -> int:
        """Number of buffered rows (from the start of the buffer) final once the stream is at ``frame``."""
        n = self._next
        while n < len(self._frames) and self._frames[n] + self.half_window <= frame:
            n += 1
        return n

    def _emit(self, until: int) -> list[PoseSample]:
        if until <= self._next:
            return []
        frames = np.asarray(self._frames)
        rows = np.arange(self._next, until)
        rot, vec = _smooth_rows(frames, np.stack(self._q), np.stack(self._v), rows, self._kernels)
        out = [dataclasses.replace(self._samples[i], pose=r, transl=v) for i, r, v in zip(rows, rot, vec)]
        self._next = until
        # drop rows no longer needed by any future window
        keep_from = self._next
        first_needed = self._frames[self._next] - self.half_window if self._next < len(self._frames) else math.inf
        while keep_from > 0 and self._frames[keep_from - 1] >= first_needed:
            keep_from -= 1
        if keep_from:
            del self._frames[:keep_from], self._q[:keep_from], self._v[:keep_from], self._samples[:keep_from]
            self._next -= keep_from
        return out


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
