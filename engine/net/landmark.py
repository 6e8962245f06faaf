"""The landmark variant of DaHyF: the embedded default engine (DESIGN.md §3, "The embedded default").

MediaPipe's 21 hand landmarks play the role of SJCP's 2-D joints. The rest is DaHyF's head: the
joints' global direction encoding in the full image (GDM; crop-local coordinates for the LDM
ablation), their positional encoding γ(μ), an MLP to θ, β and a weak-perspective camera, the
CLIFF-style full-perspective translation, the projection of the MANO keypoints and the projection
confidence.

Everything here is array-API code (:mod:`dahyf.backend`): :class:`LandmarkEstimator` runs it on numpy
at capture time (no torch), and on torch on CUDA; training runs the same :func:`landmark_forward`
through the ``nn.Module`` shell ``dahyf.net.modules.LandmarkDaHyF``. Right hands only inside;
left hands are mirrored in and out.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import asdict, dataclass, fields

import numpy as np

from ..backend import asarray_like, blas_threads, device, is_torch_array, namespace, rows_finite, solve_batched
from ..constants import CROP_SIZE
from ..geometry import hand_size, project_points
from ..hand import kinematics as K
from ..hand.axes import model_axes
from ..hand.mirror import mirror_image_points, mirror_points, mirror_pose
from ..hand.tables import NUM_JOINTS, NUM_KEYPOINTS
from .batch import HandBatch
from .camera import weak_to_full_perspective
from .confidence import projection_confidence
from .encoding import global_direction, joint_mu, local_direction, positional_encoding
from .landmark_inputs import WORLD_DIM, apply_landmark_map, landmark_unmap, world_features
from .refine import refine_pose, validate_refine_options
from .regressor import regressor_forward

#: The crop around the landmarks: a square of side (longer side of their box) × CROP_PAD.
CROP_PAD = 1.3
#: Smallest crop side, px (guards degenerate landmark sets).
MIN_CROP_SIDE = 4.0
#: Fit θ and the translation to the landmarks after the network (:func:`dahyf.net.refine.refine_pose`)
#: unless the checkpoint's meta says otherwise (key ``refine_pose``).
REFINE_POSE_DEFAULT = True
#: The only hand-model kind a landmark checkpoint may name: the bundled open model its network is
#: trained on (no path ever: :data:`dahyf.net.checkpoint.HAND_MODEL_KINDS`). The capture's output hand
#: is the engine's, e.g. the user's MANO (``load_engine(hand_model=DIR)``).
CHECKPOINT_HAND_MODELS = ("open",)


@dataclass(frozen=True)
class LandmarkConfig:
    """Configuration of the landmark network (stored inside its checkpoint).

    direction : 'global' (GDM of the joints in the full image) or 'local' (LDM ablation).
    num_freqs : L of the positional encoding; width, depth : the MLP.
    crop_size : s_p, px; crop_pad : crop side / landmark box side.
    hand_model : the hand model the network was trained with ('open').
    world : the network also reads MediaPipe's world landmarks (:func:`world_features`).
    landmark_map : the checkpoint carries a landmark map (weight ``landmark_map``, (21, 21):
        MediaPipe keypoints = map @ model keypoints, ``dahyf.train.noise_calibration``); the
        estimator applies its inverse to the landmarks (and world landmarks) it is given.
    """

    direction: str = "global"
    num_freqs: int = 4
    width: int = 384
    depth: int = 3
    crop_size: int = CROP_SIZE
    crop_pad: float = CROP_PAD
    hand_model: str = "open"
    world: bool = False
    landmark_map: bool = False

    def __post_init__(self):
        if self.direction not in ("global", "local"):
            raise ValueError(f"direction must be 'global' or 'local', got {self.direction!r}")

    @property
    def in_dim(self) -> int:
        """Length of the feature vector: 42 crop coordinates + 21·2·2L encoding + 42 direction + 3
        (+ 63 world coordinates and 1 presence flag with ``world``)."""
        return NUM_KEYPOINTS * 2 * (2 + 2 * self.num_freqs) + 3 + (WORLD_DIM if self.world else 0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "LandmarkConfig":
        """The config of a checkpoint: known fields only, each of the right type; ValueError otherwise."""
        types = {"direction": str, "num_freqs": int, "width": int, "depth": int, "crop_size": int,
                 "crop_pad": (int, float), "hand_model": str, "world": bool, "landmark_map": bool}
        out = {}
        for f in fields(cls):
            if f.name not in d:
                continue
            v = d[f.name]
            if (isinstance(v, bool) and types[f.name] is not bool) or not isinstance(v, types[f.name]):
                raise ValueError(f"config.{f.name} must be {types[f.name]}, got {v!r}")
            out[f.name] = v
        for name in ("num_freqs", "width", "depth", "crop_size"):
            if name in out and not 1 <= out[name] <= 4096:
                raise ValueError(f"config.{name} = {out[name]} is out of range")
        if "crop_pad" in out and not 1.0 <= out["crop_pad"] <= 4.0:
            raise ValueError(f"config.crop_pad = {out['crop_pad']} is out of range [1, 4]")
        return cls(**out)


def landmark_crop(landmarks2d, pad: float = CROP_PAD):
    """The square crop around a landmark set.

    Parameters
    ----------
    landmarks2d : (B, 21, 2) px, image.
    pad : crop side / longer side of the landmarks' bounding box.

    Returns
    -------
    centre : (B, 2) px; side : (B,) px.
    """
    xp = namespace(landmarks2d)
    lo, hi = xp.min(landmarks2d, axis=1), xp.max(landmarks2d, axis=1)
    side = xp.clip(xp.max(hi - lo, axis=-1) * pad, min=MIN_CROP_SIDE)
    return (lo + hi) / 2, side


def encode_landmarks(config: LandmarkConfig, landmarks2d, image_size, focal, world=None, world_present=None):
    """The network's input features and the crop.

    Per sample: the crop-normalised joints ``(J2d − s_p/2)/s_p`` (42), their positional encoding
    ``γ(μ)`` with ``μ = (J2d − s_p/2)/f_crop`` (21·2·2L = 336 for L = 4), the direction code of the
    joints (GDM: ``(J_img − O)/f``; LDM: crop-local coordinates) (42), and the crop's own direction
    ``(C − O)/f`` and size ``s_i/f`` (3; the location is zeroed for LDM).

    With ``config.world``, MediaPipe's world landmarks follow (:func:`world_features`, 64).

    Parameters
    ----------
    landmarks2d : (B, 21, 2) px, image; image_size : (B, 2) px (W, H); focal : (B,) px.
    world : (B, 21, 3) m, world landmarks of right hands (model convention), or None;
    world_present : (B,) bool, which rows have them (None: all when ``world`` is given).

    Returns
    -------
    features (B, in_dim), joints_crop (B, 21, 2) px, crop_centre (B, 2) px, crop_side (B,) px.
    """
    xp = namespace(landmarks2d)
    cfg = config
    B = landmarks2d.shape[0]
    centre, side = landmark_crop(landmarks2d, cfg.crop_pad)
    ulc = centre - side[:, None] / 2
    joints_crop = (landmarks2d - ulc[:, None]) * (cfg.crop_size / side)[:, None, None]
    local = local_direction(joints_crop, cfg.crop_size)
    mu = joint_mu(joints_crop, focal * cfg.crop_size / side, cfg.crop_size)
    pe = positional_encoding(mu, cfg.num_freqs)
    if cfg.direction == "global":
        direction = global_direction(joints_crop, ulc, side, image_size, focal, cfg.crop_size)
        crop_dir = (centre - image_size / 2) / focal[:, None]
    else:
        direction = local
        crop_dir = xp.zeros_like(centre)
    n2 = NUM_KEYPOINTS * 2
    parts = [xp.reshape(local, (B, n2)), xp.reshape(pe, (B, n2 * 2 * cfg.num_freqs)),
             xp.reshape(direction, (B, n2)), crop_dir, (side / focal)[:, None]]
    if cfg.world:
        if world is None:
            world = xp.zeros((B, NUM_KEYPOINTS, 3), dtype=landmarks2d.dtype, device=device(landmarks2d))
            world_present = xp.zeros((B,), dtype=xp.bool, device=device(landmarks2d))
        elif world_present is None:
            world_present = xp.ones((B,), dtype=xp.bool, device=device(landmarks2d))
        parts.append(world_features(world, world_present))
    return xp.concat(parts, axis=1), joints_crop, centre, side


def landmark_forward(weights, config: LandmarkConfig, landmarks2d, image_size, focal, world=None,
                     world_present=None) -> dict:
    """Regress right hands from their landmarks (model keypoint convention: after the landmark map).

    Parameters
    ----------
    weights : mapping name → array of the network's weights (``regressor.*``, as the checkpoint).
    config : the network's :class:`LandmarkConfig`.
    landmarks2d : (B, 21, 2) px, image; image_size : (B, 2) px (W, H); focal : (B,) px.
    world, world_present : see :func:`encode_landmarks` (used with ``config.world``).

    Returns
    -------
    dict: rotmats (B, 16, 3, 3), betas (B, 10), weak_cam (B, 3), transl (B, 3) m,
    joints_crop (B, 21, 2) px, crop_centre (B, 2) px, crop_side (B,) px.
    """
    feats, joints_crop, centre, side = encode_landmarks(config, landmarks2d, image_size, focal, world, world_present)
    prefix = "regressor."
    reg = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
    rotmats, betas, weak_cam = regressor_forward(reg, feats, config.depth)
    transl = weak_to_full_perspective(weak_cam, centre, side, image_size, focal)
    return {"rotmats": rotmats, "betas": betas, "weak_cam": weak_cam, "transl": transl,
            "joints_crop": joints_crop, "crop_centre": centre, "crop_side": side}


def project_and_score(out: dict, keypoint_layer, image_size, focal, crop_size: int = CROP_SIZE) -> dict:
    """Add joints3d (B, 21, 3) m, joints2d_proj (B, 21, 2) px and confidence (B,) to a network output."""
    _, joints3d = keypoint_layer(out["rotmats"], out["betas"], out["transl"])
    proj = project_points(joints3d, focal, image_size)
    conf = projection_confidence(out["joints_crop"], proj, out["crop_centre"], out["crop_side"], crop_size)
    return {**out, "joints3d": joints3d, "joints2d_proj": proj, "confidence": conf}


def refine_translation(keypoints_model, landmarks2d, image_size, focal, transl0, depth_prior: float = 2.0):
    """Least-squares translation that best aligns the projected keypoints with the landmarks.

    Linearised pinhole constraints ``f (X_j + t_x) − (u_j − c_x)(Z_j + t_z) = 0`` (and y), each divided
    by the network's depth ``Z_j + t_z0`` so that residuals are in pixels; one prior row keeps
    ``t_z`` near ``t_z0``: a relative depth change δ costs ``depth_prior · δ · (landmark box side)`` px.

    Parameters
    ----------
    keypoints_model : (B, 21, 3) m, posed keypoints without translation.
    landmarks2d : (B, 21, 2) px; image_size : (B, 2) px; focal : (B,) px; transl0 : (B, 3) m.

    Returns
    -------
    (B, 3) m; NaN rows where the system cannot be solved.
    """
    xp = namespace(keypoints_model)
    uv = landmarks2d - image_size[:, None] / 2  # (B, 21, 2)
    f = xp.broadcast_to(focal[:, None], uv.shape[:2])
    X, Y, Z = keypoints_model[..., 0], keypoints_model[..., 1], keypoints_model[..., 2]
    tz0 = xp.clip(transl0[:, 2], min=1e-3)
    scale = 1 / xp.clip(Z + tz0[:, None], min=1e-3)
    zeros = xp.zeros_like(X)
    Ax = xp.stack([f, zeros, -uv[..., 0]], axis=-1) * scale[..., None]
    Ay = xp.stack([zeros, f, -uv[..., 1]], axis=-1) * scale[..., None]
    bx = (uv[..., 0] * Z - f * X) * scale
    by = (uv[..., 1] * Z - f * Y) * scale
    w = depth_prior * hand_size(landmarks2d) / tz0
    prior = xp.stack([xp.zeros_like(w), xp.zeros_like(w), w], axis=-1)[:, None]
    A = xp.concat([Ax, Ay, prior], axis=1)
    b = xp.concat([bx, by, (w * tz0)[:, None]], axis=1)
    At = xp.matrix_transpose(A)
    return solve_batched(At @ A, At @ b[..., None])[..., 0]


class LandmarkEstimator:
    """The estimator interface of the capture pipeline around the trained landmark network.

    Parameters
    ----------
    config : the network's :class:`LandmarkConfig`.
    weights : mapping name → numpy array (the checkpoint's weights).
    device : 'cpu' or a torch CUDA device string.
    backend : 'numpy' (default on the CPU: no torch) or 'torch' (default on CUDA; on the CPU it
        serves the numpy/torch agreement tests). The same code runs on both.
    refine : also fit the translation to the landmarks (:func:`refine_translation`).
    meta : the checkpoint's meta (``refine_pose``, ``refine_pose_options``, provenance).
    refine_pose : then fit θ and the translation to the landmarks with a prior towards the network's
        prediction (:func:`dahyf.net.refine.refine_pose`, batched Gauss-Newton); None: the checkpoint
        meta's ``refine_pose``, else :data:`REFINE_POSE_DEFAULT`. Its keyword options (iterations,
        priors) come from meta ``refine_pose_options`` (checked) and can be changed in ``refine_pose_options``.
        The confidence stays the network's (``confidence_from = "network"``): a fitted pose agrees
        with corrupted landmarks too, so scoring the fit would blur the confidence gate (measured in
        benchmarks/landmark_engine.md); ``"refined"`` scores the fitted pose instead.
    cpu_threads : BLAS threads ``predict`` uses on the CPU (restored afterwards; None: leave them);
        the computation is small, and more threads only cost time (:func:`dahyf.backend.blas_threads`).
    """

    needs_crops = False
    cpu_threads: int | None = 1

    def __init__(self, config: LandmarkConfig, weights: dict, device: str = "cpu", refine: bool = False,
                 meta: dict | None = None, refine_pose: bool | None = None, backend: str | None = None):
        from ..hand.model import load_hand_model

        if config.hand_model not in CHECKPOINT_HAND_MODELS:
            raise ValueError(f"hand_model {config.hand_model!r}: a landmark engine uses the bundled 'open' hand model")
        self.config = config
        self.device = str(device)
        self.meta = dict(meta or {})
        self.refine = bool(refine)
        self.refine_pose = bool(self.meta.get("refine_pose", REFINE_POSE_DEFAULT) if refine_pose is None else refine_pose)
        self.refine_pose_options: dict = validate_refine_options(self.meta.get("refine_pose_options", {}))
        self.confidence_from = "network"
        self.hand_model_name = config.hand_model
        model = load_hand_model(config.hand_model, "right")
        self.keypoints = model.keypoint_layer()
        #: (16, 3) the joints' flexion axes, for the fit's ``off_axis_prior`` (:func:`dahyf.net.refine.prior_matrix`)
        self.flex_axes = model_axes(model)[0]
        self.backend = backend or ("numpy" if self.device == "cpu" else "torch")
        if self.backend not in ("numpy", "torch") or (self.backend == "numpy" and self.device != "cpu"):
            raise ValueError(f"backend {self.backend!r} on device {self.device!r}: use numpy on the cpu, or torch")
        weights = dict(weights)
        if config.landmark_map:   # the estimator reads MediaPipe landmarks: keep the map's inverse
            weights["landmark_unmap"] = landmark_unmap(weights["landmark_map"])
        if self.backend == "numpy":
            self.weights = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        else:
            import torch

            self.weights = {k: torch.as_tensor(np.asarray(v, np.float32), device=self.device) for k, v in weights.items()}

    @classmethod
    def from_module(cls, net, **kwargs) -> "LandmarkEstimator":
        """The estimator of a (trained) ``dahyf.net.modules.LandmarkDaHyF``, e.g. during training."""
        weights = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
        return cls(net.config, weights, **kwargs)

    def _inputs(self, batch: HandBatch):
        like = next(iter(self.weights.values()))
        world = None
        if self.config.world and batch.world_landmarks is not None:
            world = asarray_like(batch.world_landmarks, like, dtype=like.dtype)
        return (asarray_like(batch.landmarks2d, like, dtype=like.dtype), batch.is_right,
                asarray_like(batch.image_size, like, dtype=like.dtype), asarray_like(batch.focal, like, dtype=like.dtype),
                world)

    def predict(self, batch: HandBatch) -> dict:
        """Hand pose, shape and placement from 2-D landmarks.

        Parameters
        ----------
        batch : the hands (:class:`~dahyf.net.batch.HandBatch`); landmarks2d (MediaPipe's), is_right,
            image_size and focal are used (the crop is derived from the landmarks, as in training), and
            world_landmarks when the network reads them (rows that are not finite count as absent).

        Returns
        -------
        dict of arrays (numpy on the CPU, tensors on CUDA): pose (B, 16, 3) rad axis-angle
        (flat_hand_mean, in the hand's own side convention), betas (B, 10), transl (B, 3) m,
        joints3d (B, 21, 3) m, joints2d_proj (B, 21, 2) px, confidence (B,); ``valid`` (B,) bool:
        every output of the row is finite (rows that are not must not be used); ``refine_failed``
        (B,) bool: the per-frame fit failed and the row keeps the network's prediction.
        Camera: OpenCV, principal point at the image centre.
        """
        if not isinstance(batch, HandBatch):
            raise TypeError("predict takes a dahyf.net.batch.HandBatch (HandBatch.of(landmarks2d, is_right, image_size, focal))")
        lm, is_right, size, f, world = self._inputs(batch)
        xp = namespace(lm)
        with _quiet(lm), blas_threads(self.cpu_threads if self.backend == "numpy" else None):
            return self._predict(xp, lm, asarray_like(is_right, lm, dtype=xp.bool), size, f, world)

    def _predict(self, xp, lm, right, size, f, world=None) -> dict:
        B = lm.shape[0]
        left = ~right
        width = size[:, None, 0]
        if self.config.landmark_map:
            lm = apply_landmark_map(lm, self.weights["landmark_unmap"])
            world = None if world is None else apply_landmark_map(world, self.weights["landmark_unmap"])
        lm_r = xp.where(left[:, None, None], mirror_image_points(lm, width), lm)
        present = None
        if world is not None:
            present = rows_finite(world)
            world = xp.where(left[:, None, None], mirror_points(world), world)
        out = landmark_forward(self.weights, self.config, lm_r, size, f, world, present)
        if self.refine:
            _, kp = self.keypoints(out["rotmats"], out["betas"])
            t = refine_translation(kp, lm_r, size, f, out["transl"])
            out["transl"] = xp.where(rows_finite(t)[:, None], t, out["transl"])
        out = project_and_score(out, self.keypoints, size, f, self.config.crop_size)
        failed = xp.zeros((B,), dtype=xp.bool)
        if self.refine_pose:
            rotmats, transl, failed = refine_pose(self.keypoints, out["rotmats"], out["betas"], out["transl"],
                                                  lm_r, size, f, flex_axes=self.flex_axes, **self.refine_pose_options)
            fitted = project_and_score({**out, "rotmats": rotmats, "transl": transl}, self.keypoints, size, f,
                                       self.config.crop_size)
            if self.confidence_from == "network":
                fitted["confidence"] = out["confidence"]
            out = fitted
        pose = xp.reshape(K.matrix_to_axis_angle(out["rotmats"]), (B, NUM_JOINTS, 3))
        pose = xp.astype(pose, lm.dtype)
        transl, joints3d, proj = out["transl"], out["joints3d"], out["joints2d_proj"]
        pose = xp.where(left[:, None, None], mirror_pose(pose), pose)
        transl = xp.where(left[:, None], mirror_points(transl), transl)
        joints3d = xp.where(left[:, None, None], mirror_points(joints3d), joints3d)
        proj = xp.where(left[:, None, None], mirror_image_points(proj, width), proj)
        res = {"pose": pose, "betas": out["betas"], "transl": transl, "joints3d": joints3d,
               "joints2d_proj": proj, "confidence": out["confidence"]}
        valid = xp.ones((B,), dtype=xp.bool)
        for v in res.values():
            valid = valid & rows_finite(v)
        res["valid"] = valid
        res["refine_failed"] = failed
        return res


@contextlib.contextmanager
def _quiet(like):
    """No gradients for tensors; no numpy warnings for the non-finite rows that ``valid`` reports."""
    if is_torch_array(like):
        import torch

        with torch.no_grad():
            yield
    else:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            yield


def build_estimator(config: dict, weights: dict, meta: dict, device: str = "cpu",
                    hand_model: str = "open") -> LandmarkEstimator:
    """Checkpoint builder of kind 'landmark' (see :mod:`dahyf.net.checkpoint`).

    ``hand_model`` is always 'open' here: the only kind a landmark checkpoint may name
    (:data:`CHECKPOINT_HAND_MODELS`; :func:`dahyf.net.checkpoint.network_hand_model`).
    """
    if hand_model not in CHECKPOINT_HAND_MODELS:
        raise ValueError(f"a landmark engine is built with the bundled 'open' hand model, not {hand_model!r}")
    cfg = LandmarkConfig.from_dict(config)
    expected = _weight_shapes(cfg)
    missing = sorted(set(expected) - set(weights))
    wrong = sorted(k for k in expected if k in weights and tuple(weights[k].shape) != expected[k])
    if missing or wrong or set(weights) - set(expected):
        raise ValueError(f"weights do not match the config (missing {missing[:3]}, wrong shape {wrong[:3]}, "
                         f"unexpected {sorted(set(weights) - set(expected))[:3]})")
    if cfg.landmark_map:
        m = np.asarray(weights["landmark_map"], np.float64)
        if not np.isfinite(m).all() or np.linalg.cond(m) > 1e4:
            raise ValueError("the checkpoint's landmark_map is not finite or not invertible; retrain the checkpoint")
    meta = dict(meta)
    refine = meta.get("refine", False)
    if not isinstance(refine, bool):
        raise ValueError(f"meta.refine must be true or false, got {refine!r}")
    if not isinstance(meta.get("refine_pose", REFINE_POSE_DEFAULT), bool):
        raise ValueError(f"meta.refine_pose must be true or false, got {meta['refine_pose']!r}")
    return LandmarkEstimator(cfg, weights, device=device, refine=refine, meta=meta)


def _weight_shapes(cfg: LandmarkConfig) -> dict[str, tuple]:
    """name → shape of every weight of the network of ``cfg``."""
    w = cfg.width
    shapes = {"regressor.inp.weight": (w, cfg.in_dim), "regressor.inp.bias": (w,),
              "regressor.norm.weight": (w,), "regressor.norm.bias": (w,),
              "regressor.head_rot.weight": (NUM_JOINTS * 6, w), "regressor.head_rot.bias": (NUM_JOINTS * 6,),
              "regressor.head_betas.weight": (10, w), "regressor.head_betas.bias": (10,),
              "regressor.head_cam.weight": (3, w), "regressor.head_cam.bias": (3,)}
    for i in range(cfg.depth):
        b = f"regressor.blocks.{i}"
        shapes.update({f"{b}.norm.weight": (w,), f"{b}.norm.bias": (w,), f"{b}.fc1.weight": (w, w),
                       f"{b}.fc1.bias": (w,), f"{b}.fc2.weight": (w, w), f"{b}.fc2.bias": (w,)})
    if cfg.landmark_map:
        shapes["landmark_map"] = (NUM_KEYPOINTS, NUM_KEYPOINTS)
    return shapes
