"""The focal length of a capture: given by the user, read from the container, self-calibrated from
the hands, or the default guess — always with an uncertainty and the source it came from.

``estimate_focal(tracks, image_size, metadata) -> FocalEstimate`` is a pure function
of the detections (no video decoding): the capture's focal pass calls it once per video, both
hands together (one camera, one focal length), and writes :meth:`FocalEstimate.to_meta` into the
take's meta.

Sources, in order:

1. ``user``: a focal length the user gave always wins (uncertainty 0): in pixels (``--focal``) or
   as the lens's 35 mm-equivalent focal length in mm (``--lens``; what phone spec sheets and camera
   settings give, converted like the container's value below).
2. ``metadata``: a 35 mm-equivalent focal length in the container (phones;
   :func:`dahyf.capture.mp4meta.read_camera_metadata`), converted on the picture's diagonal
   (35 mm-equivalent focal lengths are defined on the 43.27 mm diagonal of a 36 × 24 mm frame).
   Uncertainty :data:`METADATA_SIGMA` (the video may be a crop of the frame the value describes).
3. ``self-calibrated`` (experimental, only when asked for: ``self_calibrate=True`` /
   ``--self-calibrate``; measured unreliable, see below): the hands' own perspective. MediaPipe's
   world landmarks give each detected hand's metric 3-D shape, independent of any focal length; for
   candidate focal lengths each frame's shape is posed (a perspective-n-point fit: rotation and
   translation) onto its 2-D landmarks, and the focal length whose poses re-project best over the
   whole video wins. Only perspective separates focal length from distance, and it is strong only
   for hands near the camera relative to their size: each frame's curve is divided by its own best
   residual (frames whose residual grows fastest away from their best focal length weigh most), the
   curves are summed over both hands and all frames (one camera). The uncertainty combines a block
   bootstrap over the detections with how far the estimate moves when the world landmarks' depth is
   scaled by :data:`DEPTH_SCALES` (the bootstrap cannot see an error every frame shares, and
   MediaPipe's world depth is its least reliable part). The estimate is accepted only with a
   minimum inside the searched range and a relative uncertainty of at most :data:`MAX_SELF_SIGMA`
   (reported: at least :data:`SELF_SIGMA_FLOOR`). No estimator is needed: this runs on the
   detections alone.
   Why it is off by default (``benchmarks/focal_observability.py``, benchmarks/fidelity.md): its fits
   miss the rendered clips' true focal by a median 61 % (it declines on all of them); on 90-frame
   windows of one real video (one camera, one focal) they range from 642 px to the end of the search
   (4406 px) — they cannot all be right —, yet a 60-frame window of it (frames 280-340) was accepted
   at 665 px ± 13 %; even the exact 3-D hand against MediaPipe's 2-D landmarks misses by a median
   9 % — MediaPipe's systematic keypoint errors, not noise, set the limit.
4. ``default``: ``sqrt(W² + H²)`` (DESIGN.md §3) with the uncertainty :data:`DEFAULT_SIGMA`, and a
   note that says why nothing better was found (no lens given, none in the container; with the
   self-calibration asked for: far or frontal hands carry too little perspective).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..geometry import check_focal, default_focal, hand_size
from ..net.batch import HandBatch
from .settings import TYPICAL_LENSES

#: Diagonal of the 36 × 24 mm frame on which 35 mm-equivalent focal lengths are defined, mm.
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)
#: Relative uncertainty of a focal length read from the container (a video is often a crop —
#: aspect ratio, stabilisation — of the frame the 35 mm-equivalent value describes).
METADATA_SIGMA = 0.08
#: Relative uncertainty of the default focal length: cameras that film hands range from ~0.5 × the
#: diagonal (wide, head-mounted) to ~1.5 × (a tele lens), the default being 1 ×.
DEFAULT_SIGMA = 0.4
#: Candidate focal lengths of the self-calibration, as multiples of the image diagonal (log-spaced).
SEARCH_RANGE = (0.3, 3.0)
SEARCH_STEPS = 15
#: Detections the self-calibration needs, and the most it uses (the largest hands: the nearest).
MIN_DETECTIONS = 20
MAX_DETECTIONS = 96
#: Accept a self-calibration only when the bootstrap's relative spread is at most this.
MAX_SELF_SIGMA = 0.15
#: Smallest relative uncertainty reported for a self-calibrated focal length.
SELF_SIGMA_FLOOR = 0.1
#: Scales applied to the world landmarks' depth (about their centroid) to see how much the estimate
#: leans on it: MediaPipe's world depth is its least reliable part (measured against rendered clips
#: with exact ground truth, its depth extent is 0–100 % of the true one, benchmarks/fidelity.md).
DEPTH_SCALES = (0.5, 1.0, 1.5)
#: Detections per bootstrap block (neighbouring frames are not independent), and bootstrap draws.
BLOCK = 8
BOOTSTRAP = 200

SOURCES = ("user", "metadata", "self-calibrated", "default")


@dataclass(frozen=True)
class FocalEstimate:
    """A focal length and how it was found.

    focal_px : px; sigma_px : px, one standard deviation (0 for a focal length the user gave);
    source : one of :data:`SOURCES`; note : why (for the default: what was missing);
    detail : figures of the estimate (JSON-able), e.g. the metadata value or the fit's evidence.
    """

    focal_px: float
    sigma_px: float
    source: str
    note: str = ""
    detail: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")

    def to_meta(self) -> dict:
        """The take-meta entries: ``focal_px``, ``focal_sigma_px``, ``focal_source``, ``focal_note``,
        ``focal_detail``."""
        return {"focal_px": round(float(self.focal_px), 2), "focal_sigma_px": round(float(self.sigma_px), 2),
                "focal_source": self.source, "focal_note": self.note, "focal_detail": dict(self.detail)}


def focal_from_35mm(focal_35mm: float, image_size) -> float:
    """Focal length in px of a 35 mm-equivalent focal length (mm) for a picture of ``image_size``
    (W, H) px: ``f_px = f_35 · sqrt(W² + H²) / 43.27``."""
    return float(focal_35mm) * math.hypot(*image_size) / FULL_FRAME_DIAGONAL_MM


def lens_focal_px(lens_mm: float, image_size) -> float:
    """Focal length in px of a lens given by its 35 mm-equivalent focal length ``lens_mm`` (mm) for a
    picture of ``image_size`` (W, H) px (:func:`focal_from_35mm`), checked like a focal length in px.

    Raises
    ------
    ValueError
        Not a positive number, or a field of view too wide to be a camera's
        (:func:`dahyf.geometry.check_focal`), with a message in millimetres.
    """
    lens_mm = float(lens_mm)
    if not (math.isfinite(lens_mm) and lens_mm > 0):
        raise ValueError(f"lens must be a positive 35 mm-equivalent focal length in mm, got {lens_mm:g}.")
    f = focal_from_35mm(lens_mm, image_size)
    try:
        return check_focal(f, image_size)
    except ValueError:
        raise ValueError(
            f"a {lens_mm:g} mm lens (35 mm equivalent) is wider than any camera's. Give the lens's 35 mm-equivalent "
            f"focal length in mm ({TYPICAL_LENSES}).") from None


def user_estimate(image_size, focal: float | None = None, lens_mm: float | None = None) -> FocalEstimate | None:
    """The focal length the user gave — ``focal`` px or a ``lens_mm`` 35 mm-equivalent lens — as an
    estimate with uncertainty 0, or None when neither is given.

    Raises
    ------
    ValueError
        Both given, or an implausible value (the message says which unit was expected).
    """
    if focal is not None and lens_mm is not None:
        raise ValueError("give the focal length either in pixels or as a 35 mm-equivalent lens in mm, not both.")
    if lens_mm is not None:
        return FocalEstimate(lens_focal_px(lens_mm, image_size), 0.0, "user",
                             f"{float(lens_mm):g} mm lens (35 mm equivalent) given by the user",
                             {"lens_35mm": float(lens_mm)})
    if focal is not None:
        return FocalEstimate(check_focal(focal, image_size), 0.0, "user", "given by the user")
    return None


def guess_spread(meta: dict) -> float | None:
    """The relative uncertainty (e.g. 0.4) of a take's focal length when it is the default guess (take
    meta ``focal_source`` / ``focal_sigma_px`` / ``focal_px``), else None: the hands' distance then
    rests on a guess, which the front ends say, with how to give the lens."""
    if meta.get("focal_source") != "default" or not meta.get("focal_px"):
        return None
    return float(meta.get("focal_sigma_px", 0.0)) / float(meta["focal_px"])


def default_estimate(image_size, note: str, detail: dict | None = None) -> FocalEstimate:
    """The default focal length ``sqrt(W² + H²)`` with its large uncertainty and the reason it is used."""
    f = default_focal(tuple(image_size))
    return FocalEstimate(f, DEFAULT_SIGMA * f, "default", note, detail or {})


def estimate_focal(tracks: Sequence[HandBatch], image_size, metadata: dict | None = None, *,
                   user_focal: float | None = None, user_lens_mm: float | None = None,
                   self_calibrate: bool = True, seed: int = 0,
                   depth_scales: Sequence[float] = DEPTH_SCALES) -> FocalEstimate:
    """The focal length of one video (see the module docstring for the sources and their order).

    Parameters
    ----------
    tracks : the video's detections, one :class:`~dahyf.net.batch.HandBatch` per track with
        ``landmarks2d`` and ``world_landmarks`` (rows in frame order; both hands of the video
        together: one camera). Tracks without world landmarks are not used.
    image_size : (W, H) px of the upright frames.
    metadata : :func:`dahyf.capture.mp4meta.read_camera_metadata` of the file, or None.
    user_focal : px, the user's focal length (wins); user_lens_mm : mm, the user's lens as its 35 mm
        equivalent (wins; not together with ``user_focal``).
    self_calibrate : try the self-calibration when neither the user nor the container gives one.
    depth_scales : see :func:`self_calibrated`.
    seed : of the bootstrap (the result is deterministic for a seed).

    Raises
    ------
    ValueError
        ``user_focal`` or ``user_lens_mm`` implausible for the image size, or both given
        (:func:`user_estimate`).
    """
    size = (int(image_size[0]), int(image_size[1]))
    given = user_estimate(size, user_focal, user_lens_mm)
    if given is not None:
        return given
    mm = (metadata or {}).get("focal_35mm")
    if mm is not None:
        f = focal_from_35mm(mm, size)
        try:
            check_focal(f, size)
        except ValueError:
            pass
        else:
            return FocalEstimate(f, METADATA_SIGMA * f, "metadata",
                                 f"{mm:g} mm (35 mm equivalent) from the container",
                                 {"focal_35mm": float(mm), "key": str(metadata.get("focal_key", ""))})
    if not self_calibrate:
        return default_estimate(size, "no lens or focal length given and none in the container (self-calibration off)")
    return self_calibrated(tracks, size, seed=seed, depth_scales=depth_scales)


def pnp_residual_curve(landmarks2d: np.ndarray, shape3d: np.ndarray, image_size, focals: np.ndarray) -> np.ndarray:
    """How well each frame's 3-D hand shape, posed rigidly, re-projects onto its landmarks at each focal.

    Parameters
    ----------
    landmarks2d : (N, 21, 2) px; shape3d : (N, 21, 3) m, the hand's shape in any frame of reference
        (MediaPipe's world landmarks); image_size : (W, H) px; focals : (G,) px.

    Returns
    -------
    (N, G): mean keypoint distance of the best rigid pose's projection (perspective-n-point,
    principal point at the image centre) to the landmarks, in hand sizes; NaN where no pose was found.
    """
    import cv2

    W, H = image_size
    out = np.full((len(landmarks2d), len(focals)), np.nan)
    sizes = np.maximum(hand_size(np.asarray(landmarks2d, np.float64)), 1.0)
    for g, f in enumerate(focals):
        K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1.0]])
        for n, (uv, X) in enumerate(zip(np.asarray(landmarks2d, np.float64), np.asarray(shape3d, np.float64))):
            X = X - X.mean(0)
            try:
                ok, rv, tv = cv2.solvePnP(X, uv, K, None, flags=cv2.SOLVEPNP_SQPNP)
                if not ok:
                    continue
                rv, tv = cv2.solvePnPRefineLM(X, uv, K, None, rv, tv)
            except cv2.error:
                continue
            proj = cv2.projectPoints(X, rv, tv, K, None)[0][:, 0]
            if float(tv[2, 0]) > 0 and np.isfinite(proj).all():
                out[n, g] = np.linalg.norm(proj - uv, axis=-1).mean() / sizes[n]
    return out


def _pool(tracks: Sequence[HandBatch]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """landmarks2d (N, 21, 2), world landmarks (N, 21, 3) of every track that has them, and each
    row's bootstrap block id (blocks of :data:`BLOCK` neighbouring rows, never spanning tracks)."""
    lm, world, blocks, base = [], [], [], 0
    for t in tracks:
        if t is None or not len(t) or t.world_landmarks is None:
            continue
        lm.append(np.asarray(t.landmarks2d, np.float64))
        world.append(np.asarray(t.world_landmarks, np.float64))
        b = np.arange(len(t)) // BLOCK
        blocks.append(b + base)
        base += int(b.max()) + 1
    if not lm:
        return np.zeros((0, 21, 2)), np.zeros((0, 21, 3)), np.zeros(0, np.int64)
    return np.concatenate(lm), np.concatenate(world), np.concatenate(blocks)


def _curve_minimum(curve: np.ndarray, log_f: np.ndarray) -> tuple[int, float]:
    """Index of the smallest value of ``curve`` (G,) and its log focal refined by a parabola through
    its neighbours (the grid point itself at the ends)."""
    i = int(np.argmin(curve))
    if 0 < i < len(curve) - 1:
        y0, y1, y2 = curve[i - 1:i + 2]
        den = y0 - 2 * y1 + y2
        if den > 0:
            step = float(log_f[i + 1] - log_f[i])
            return i, float(log_f[i] + 0.5 * step * (y0 - y2) / den)
    return i, float(log_f[i])


def search_log_focals(image_size) -> np.ndarray:
    """(SEARCH_STEPS,) log of the candidate focal lengths (px) of the self-calibration: log-spaced over
    :data:`SEARCH_RANGE` times the image diagonal of ``image_size`` (W, H) px."""
    return np.log(default_focal(tuple(image_size))) + np.linspace(math.log(SEARCH_RANGE[0]),
                                                                  math.log(SEARCH_RANGE[1]), SEARCH_STEPS)


def pooled_minimum(res: np.ndarray, log_f: np.ndarray) -> tuple[int, float, np.ndarray]:
    """The focal length that re-projects a set of frames best: each frame's curve divided by its own
    best residual, averaged over the frames, and its minimum refined (:func:`_curve_minimum`).

    Parameters
    ----------
    res : (N, G) :func:`pnp_residual_curve` of N frames, finite and positive; log_f : (G,) log px.

    Returns
    -------
    The grid index of the minimum, its refined log focal (log px), and the normalised curves (N, G).
    """
    rel = res / res.min(1, keepdims=True)        # each frame's curve in units of its own best residual
    i, lf = _curve_minimum(rel.mean(0), log_f)
    return i, lf, rel


def self_calibrated(tracks: Sequence[HandBatch], image_size, seed: int = 0,
                    depth_scales: Sequence[float] = DEPTH_SCALES) -> FocalEstimate:
    """The hands' own perspective as a focal length, or the default when it is too weak to tell
    (see the module docstring; the returned note says which test failed).

    depth_scales : scales of the world landmarks' depth whose spread of estimates counts in the
        uncertainty; ``(1.0,)`` trusts MediaPipe's depth as it is (for shapes known to be exact).
    """
    size = (int(image_size[0]), int(image_size[1]))
    lm, world, blocks = _pool(tracks)
    if len(lm) < MIN_DETECTIONS:
        return default_estimate(size, f"{len(lm)} hand detections with world landmarks: at least "
                                      f"{MIN_DETECTIONS} are needed to self-calibrate")
    if len(lm) > MAX_DETECTIONS:   # the largest hands (nearest relative to their size) constrain f most
        keep = np.sort(np.argsort(-hand_size(lm), kind="stable")[:MAX_DETECTIONS])
        lm, world, blocks = lm[keep], world[keep], blocks[keep]
    log_f = search_log_focals(size)
    centred = world - world.mean(1, keepdims=True)
    res = pnp_residual_curve(lm, centred, size, np.exp(log_f))
    ok = np.isfinite(res).all(1) & (res.min(1) > 0)
    res, blocks, lm, centred = res[ok], blocks[ok], lm[ok], centred[ok]
    if len(res) < MIN_DETECTIONS:
        return default_estimate(size, "too few detections could be posed to self-calibrate")
    i, lf, rel = pooled_minimum(res, log_f)
    ub = np.unique(blocks)
    rows_of = [np.nonzero(blocks == b)[0] for b in ub]
    rng = np.random.default_rng(seed)
    boot = [_curve_minimum(rel[np.concatenate([rows_of[k] for k in rng.integers(0, len(ub), len(ub))])].mean(0),
                           log_f)[1] for _ in range(BOOTSTRAP)]
    boot_spread = float(0.5 * (np.percentile(boot, 84) - np.percentile(boot, 16)))
    detail = {"detections": int(len(res)), "fit_focal_px": round(float(math.exp(lf)), 1),
              "bootstrap_rel_sigma": round(boot_spread, 3), "residual_per_hand_size": round(float(res[:, i].mean()), 4),
              "search_px": [round(float(math.exp(log_f[0])), 1), round(float(math.exp(log_f[-1])), 1)]}
    if not 0 < i < len(log_f) - 1:
        return default_estimate(size, "the hands' fit keeps improving towards the end of the searched focal lengths: "
                                      "too little perspective to tell (far or frontal hands)", detail)
    spread = boot_spread
    if boot_spread <= MAX_SELF_SIGMA and any(c != 1.0 for c in depth_scales):
        # how far the estimate moves with the depth the world landmarks give the hand (their least
        # reliable part): a hand's perspective only tells f as well as its depth extent is known
        by_depth = []
        for c in depth_scales:
            r = res if c == 1.0 else pnp_residual_curve(lm, centred * (1.0, 1.0, c), size, np.exp(log_f))
            r = np.where(np.isfinite(r), r, np.nanmax(r))
            by_depth.append(_curve_minimum((r / np.maximum(r.min(1, keepdims=True), 1e-12)).mean(0), log_f)[1])
        depth_spread = float(0.5 * (max(by_depth) - min(by_depth)))
        spread = math.hypot(boot_spread, depth_spread)
        detail["depth_scale_rel_sigma"] = round(depth_spread, 3)
        detail["fit_focal_px_by_depth_scale"] = {f"{c:g}": round(float(math.exp(v)), 1)
                                                 for c, v in zip(depth_scales, by_depth)}
    detail["rel_sigma"] = round(spread, 3)
    if spread > MAX_SELF_SIGMA:
        return default_estimate(size, f"the hands' perspective is too weak to tell the focal length (uncertainty "
                                      f"±{100 * spread:.0f} %: far or frontal hands, or MediaPipe's depth too uncertain)",
                                detail)
    f = float(math.exp(lf))
    try:
        check_focal(f, size)
    except ValueError:
        return default_estimate(size, "the self-calibrated focal length is implausible", detail)
    return FocalEstimate(f, max(spread, SELF_SIGMA_FLOOR) * f, "self-calibrated",
                         "from the hands' perspective over the video (MediaPipe world landmarks)", detail)
