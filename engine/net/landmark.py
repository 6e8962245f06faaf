"""The landmark variant of DaHyF: the embedded default engine (DESIGN.md §3, "The embedded default").

MediaPipe's 21 hand landmarks play the role of SJCP's 2-D joints. The rest is DaHyF's head: the
joints' global direction encoding in the full image (GDM; crop-local coordinates for the LDM
ablation), their positional encoding γ(μ), an MLP to θ, β and a weak-perspective camera, the
CLIFF-style full-perspective translation, the projection of the MANO keypoints and the projection
confidence.

``LandmarkDaHyF`` is the network (right hands only); ``LandmarkEstimator`` wraps it with the hand
model, handles left hands by mirroring, and exposes the estimator interface the capture pipeline uses.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..hand import kinematics as K
from ..hand.mirror import mirror_image_points, mirror_points, mirror_pose
from ..hand.tables import KEYPOINT_SOURCES, NUM_JOINTS, NUM_KEYPOINTS
from .camera import default_focal, project_points, weak_to_full_perspective
from .confidence import projection_confidence
from .encoding import CROP_SIZE, global_direction, joint_mu, local_direction, positional_encoding
from .refine import refine_pose
from .regressor import Regressor

#: The crop around the landmarks: a square of side (longer side of their box) × CROP_PAD.
CROP_PAD = 1.3
#: Smallest crop side, px (guards degenerate landmark sets).
MIN_CROP_SIDE = 4.0
#: Fit θ and the translation to the landmarks after the network (:func:`dahyf.net.refine.refine_pose`)
#: unless the checkpoint's meta says otherwise (key ``refine_pose``).
REFINE_POSE_DEFAULT = True


@dataclass(frozen=True)
class LandmarkConfig:
    """Configuration of :class:`LandmarkDaHyF` (stored inside its checkpoint).

    direction : 'global' (GDM of the joints in the full image) or 'local' (LDM ablation).
    num_freqs : L of the positional encoding; width, depth : the MLP.
    crop_size : s_p, px; crop_pad : crop side / landmark box side.
    hand_model : the hand model the network was trained with ('open' or a path).
    """

    direction: str = "global"
    num_freqs: int = 4
    width: int = 384
    depth: int = 3
    crop_size: int = CROP_SIZE
    crop_pad: float = CROP_PAD
    hand_model: str = "open"

    def to_dict(self) -> dict:
        return asdict(self)


def landmark_crop(landmarks2d: torch.Tensor, pad: float = CROP_PAD) -> tuple[torch.Tensor, torch.Tensor]:
    """The square crop around a landmark set.

    Parameters
    ----------
    landmarks2d : (B, 21, 2) px, image.
    pad : crop side / longer side of the landmarks' bounding box.

    Returns
    -------
    centre : (B, 2) px; side : (B,) px.
    """
    lo, hi = landmarks2d.amin(1), landmarks2d.amax(1)
    side = ((hi - lo).amax(-1) * pad).clamp(min=MIN_CROP_SIDE)
    return (lo + hi) / 2, side


class KeypointLayer(nn.Module):
    """The 16 joints and 21 keypoints of a MANO-format hand from rotation matrices, cheaply.

    Same result as ``HandModel(pose, betas, transl).keypoints`` but skins only the 5 fingertip
    vertices (the rest joints are linear in β, so ``J_regressor`` is folded into the buffers).
    """

    def __init__(self, hand_model):
        super().__init__()
        tips = hand_model.tip_vertex_ids
        V = hand_model.v_template.shape[0]
        posedirs = hand_model.posedirs.reshape(-1, V, 3)  # (135, V, 3)
        self.register_buffer("j_template", hand_model.J_regressor @ hand_model.v_template)
        self.register_buffer("j_shapedirs", torch.einsum("jv,vkl->jkl", hand_model.J_regressor, hand_model.shapedirs))
        self.register_buffer("tip_template", hand_model.v_template[tips])
        self.register_buffer("tip_shapedirs", hand_model.shapedirs[tips])
        self.register_buffer("tip_posedirs", posedirs[:, tips].reshape(posedirs.shape[0], -1))
        self.register_buffer("tip_weights", hand_model.lbs_weights[tips])
        self.side = hand_model.side

    def forward(self, rotmats: torch.Tensor, betas: torch.Tensor,
                transl: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """rotmats (B, 16, 3, 3), betas (B, 10), transl (B, 3) m → joints (B, 16, 3), keypoints (B, 21, 3) m."""
        joints, keypoints, _ = self.posed(rotmats, betas, transl)
        return joints, keypoints

    def posed(self, rotmats: torch.Tensor, betas: torch.Tensor, transl: torch.Tensor | None = None):
        """:meth:`forward` plus the joints' world transforms (B, 16, 4, 4) (rotation part = world rotation)."""
        rest = self.j_template + K.blend_shapes(betas, self.j_shapedirs)
        joints, transforms = K.forward_kinematics(rotmats, rest, list(_PARENTS))
        tips = self.tip_template + K.blend_shapes(betas, self.tip_shapedirs)
        tips = tips + (K.pose_feature(rotmats) @ self.tip_posedirs).reshape(tips.shape)
        tips = K.skin(tips, self.tip_weights, transforms)
        if transl is not None:
            joints = joints + transl[:, None]
            tips = tips + transl[:, None]
        keypoints = torch.cat([joints, tips], dim=1)[:, list(KEYPOINT_SOURCES)]
        return joints, keypoints, transforms


from ..hand.tables import PARENTS as _PARENTS  # noqa: E402


class LandmarkDaHyF(nn.Module):
    """Landmarks → θ, β, weak camera, full-perspective translation (right hands).

    Input features per sample: the crop-normalised joints ``(J2d − s_p/2)/s_p`` (42), their positional
    encoding ``γ(μ)`` with ``μ = (J2d − s_p/2)/f_crop`` (21·2·2L = 336 for L = 4), the direction code
    of the joints (GDM: ``(J_img − O)/f``; LDM: crop-local coordinates) (42), and the crop's own
    direction ``(C − O)/f`` and size ``s_i/f`` (3; the location is zeroed for LDM).
    """

    def __init__(self, config: LandmarkConfig = LandmarkConfig()):
        super().__init__()
        if config.direction not in ("global", "local"):
            raise ValueError(f"direction must be 'global' or 'local', got {config.direction!r}")
        self.config = config
        in_dim = NUM_KEYPOINTS * 2 * (2 + 2 * config.num_freqs) + 3
        self.regressor = Regressor(in_dim, config.width, config.depth)

    def encode(self, landmarks2d: torch.Tensor, image_size: torch.Tensor, focal: torch.Tensor):
        """The input feature vector and the crop. Returns (features (B, D), joints_crop (B, 21, 2) px,
        crop_centre (B, 2) px, crop_side (B,) px)."""
        cfg = self.config
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
            crop_dir = torch.zeros_like(centre)
        feats = torch.cat([local.flatten(1), pe.flatten(1), direction.flatten(1), crop_dir,
                           (side / focal)[:, None]], dim=1)
        return feats, joints_crop, centre, side

    def forward(self, landmarks2d: torch.Tensor, image_size: torch.Tensor, focal: torch.Tensor) -> dict:
        """Regress a right hand from its landmarks.

        Parameters
        ----------
        landmarks2d : (B, 21, 2) px, image; image_size : (B, 2) px (W, H); focal : (B,) px.

        Returns
        -------
        dict: rotmats (B, 16, 3, 3), betas (B, 10), weak_cam (B, 3), transl (B, 3) m,
        joints_crop (B, 21, 2) px, crop_centre (B, 2) px, crop_side (B,) px.
        """
        feats, joints_crop, centre, side = self.encode(landmarks2d, image_size, focal)
        rotmats, betas, weak_cam = self.regressor(feats)
        transl = weak_to_full_perspective(weak_cam, centre, side, image_size, focal)
        return {"rotmats": rotmats, "betas": betas, "weak_cam": weak_cam, "transl": transl,
                "joints_crop": joints_crop, "crop_centre": centre, "crop_side": side}


def project_and_score(out: dict, keypoint_layer: KeypointLayer, image_size: torch.Tensor, focal: torch.Tensor,
                      crop_size: int = CROP_SIZE) -> dict:
    """Add joints3d (B, 21, 3) m, joints2d_proj (B, 21, 2) px and confidence (B,) to a network output."""
    _, joints3d = keypoint_layer(out["rotmats"], out["betas"], out["transl"])
    proj = project_points(joints3d, focal, image_size)
    conf = projection_confidence(out["joints_crop"], proj, out["crop_centre"], out["crop_side"], crop_size)
    return {**out, "joints3d": joints3d, "joints2d_proj": proj, "confidence": conf}


def refine_translation(keypoints_model: torch.Tensor, landmarks2d: torch.Tensor, image_size: torch.Tensor,
                       focal: torch.Tensor, transl0: torch.Tensor, depth_prior: float = 2.0) -> torch.Tensor:
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
    (B, 3) m.
    """
    uv = landmarks2d - image_size[:, None] / 2  # (B, 21, 2)
    f = focal[:, None].expand(-1, uv.shape[1])
    X, Y, Z = keypoints_model.unbind(-1)
    tz0 = transl0[:, 2].clamp(min=1e-3)
    scale = 1 / (Z + tz0[:, None]).clamp(min=1e-3)
    zeros = torch.zeros_like(X)
    Ax = torch.stack([f, zeros, -uv[..., 0]], -1) * scale[..., None]
    Ay = torch.stack([zeros, f, -uv[..., 1]], -1) * scale[..., None]
    bx = (uv[..., 0] * Z - f * X) * scale
    by = (uv[..., 1] * Z - f * Y) * scale
    side = (landmarks2d.amax(1) - landmarks2d.amin(1)).amax(-1)
    w = depth_prior * side / tz0
    prior = torch.stack([torch.zeros_like(w), torch.zeros_like(w), w], -1)[:, None]
    A = torch.cat([Ax, Ay, prior], 1)
    b = torch.cat([bx, by, (w * tz0)[:, None]], 1)
    At = A.transpose(1, 2)
    return torch.linalg.solve(At @ A, At @ b[..., None])[..., 0]


class LandmarkEstimator:
    """The estimator interface of the capture pipeline around a trained :class:`LandmarkDaHyF`.

    Parameters
    ----------
    net : the trained network.
    hand_model_name : the hand model it was trained with ('open' or a path).
    device : torch device string.
    refine : also fit the translation to the landmarks (:func:`refine_translation`).
    refine_pose : then fit θ and the translation to the landmarks with a prior towards the network's
        prediction (:func:`dahyf.net.refine.refine_pose`, batched Gauss-Newton); None: the checkpoint
        meta's ``refine_pose``, else :data:`REFINE_POSE_DEFAULT`. Its keyword options (iterations,
        priors) come from meta ``refine_pose_options`` and can be changed in ``refine_pose_options``.
        The confidence stays the network's (``confidence_from = "network"``): a fitted pose agrees
        with corrupted landmarks too, so scoring the fit would blur the confidence gate (measured in
        benchmarks/landmark_engine.md); ``"refined"`` scores the fitted pose instead.
    cpu_threads : torch intra-op threads used by ``predict`` on the CPU (restored afterwards);
        the network is small, and extra threads only cost time on a busy machine (measured 10× slower
        with 2 threads on a loaded 2-core CPU). None leaves torch's setting alone.
    """

    needs_crops = False
    cpu_threads: int | None = 1

    def __init__(self, net: LandmarkDaHyF, hand_model_name: str = "open", device: str = "cpu", refine: bool = False,
                 meta: dict | None = None, refine_pose: bool | None = None):
        from ..hand.model import load_hand_model

        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.hand_model_name = hand_model_name
        self.refine = refine
        self.meta = dict(meta or {})
        self.refine_pose = bool(self.meta.get("refine_pose", REFINE_POSE_DEFAULT) if refine_pose is None else refine_pose)
        self.refine_pose_options: dict = dict(self.meta.get("refine_pose_options", {}))
        self.confidence_from = "network"
        self.keypoints = KeypointLayer(load_hand_model(hand_model_name, "right")).to(self.device)

    @property
    def config(self) -> LandmarkConfig:
        return self.net.config

    def predict(self, landmarks2d, is_right, image_size, focal=None, crops=None, boxes=None) -> dict:
        """See :meth:`_predict` (this wrapper only pins the CPU thread count)."""
        if self.device.type != "cpu" or self.cpu_threads is None:
            return self._predict(landmarks2d, is_right, image_size, focal)
        previous = torch.get_num_threads()
        torch.set_num_threads(self.cpu_threads)
        try:
            return self._predict(landmarks2d, is_right, image_size, focal)
        finally:
            torch.set_num_threads(previous)

    @torch.no_grad()
    def _predict(self, landmarks2d, is_right, image_size, focal=None) -> dict:
        """Hand pose, shape and placement from 2-D landmarks.

        Parameters
        ----------
        landmarks2d : (B, 21, 2) px, image, MediaPipe order.
        is_right : (B,) bool, handedness.
        image_size : (B, 2) px, (W, H).
        focal : (B,) px; None → ``sqrt(W² + H²)``.
        crops, boxes : ignored (the crop is derived from the landmarks, as in training).

        Returns
        -------
        dict of tensors on ``self.device``: pose (B, 16, 3) rad axis-angle (flat_hand_mean, in the
        hand's own side convention), betas (B, 10), transl (B, 3) m, joints3d (B, 21, 3) m,
        joints2d_proj (B, 21, 2) px, confidence (B,). Camera: OpenCV, principal point at the image centre.
        """
        dev = self.device
        lm = torch.as_tensor(landmarks2d, dtype=torch.float32, device=dev)
        if lm.ndim != 3 or lm.shape[1:] != (NUM_KEYPOINTS, 2):
            raise ValueError(f"landmarks2d must be (B, 21, 2) px, got {tuple(lm.shape)}")
        B = lm.shape[0]
        right = torch.as_tensor(is_right, dtype=torch.bool, device=dev).reshape(B)
        size = torch.as_tensor(image_size, dtype=torch.float32, device=dev).reshape(-1, 2).expand(B, 2)
        f = default_focal(size) if focal is None else torch.as_tensor(focal, dtype=torch.float32, device=dev).reshape(-1).expand(B)
        if not torch.isfinite(lm).all():
            raise ValueError("landmarks2d contains NaN or inf values")
        left = ~right
        lm_r = torch.where(left[:, None, None], mirror_image_points(lm, size[:, None, 0]), lm)
        out = self.net(lm_r, size, f)
        if self.refine:
            _, kp = self.keypoints(out["rotmats"], out["betas"])
            out["transl"] = refine_translation(kp, lm_r, size, f, out["transl"])
        out = project_and_score(out, self.keypoints, size, f, self.net.config.crop_size)
        if self.refine_pose:
            rotmats, transl = refine_pose(self.keypoints, out["rotmats"], out["betas"], out["transl"], lm_r, size, f,
                                          **self.refine_pose_options)
            fitted = project_and_score({**out, "rotmats": rotmats, "transl": transl}, self.keypoints, size, f,
                                       self.net.config.crop_size)
            if self.confidence_from == "network":
                fitted["confidence"] = out["confidence"]
            out = fitted
        pose = K.matrix_to_axis_angle(out["rotmats"]).reshape(B, NUM_JOINTS, 3)
        transl, joints3d, proj = out["transl"], out["joints3d"], out["joints2d_proj"]
        pose = torch.where(left[:, None, None], mirror_pose(pose), pose)
        transl = torch.where(left[:, None], mirror_points(transl), transl)
        joints3d = torch.where(left[:, None, None], mirror_points(joints3d), joints3d)
        proj = torch.where(left[:, None, None], mirror_image_points(proj, size[:, None, 0]), proj)
        return {"pose": pose, "betas": out["betas"], "transl": transl, "joints3d": joints3d,
                "joints2d_proj": proj, "confidence": out["confidence"]}


def build_estimator(config: dict, state_dict: dict, meta: dict, device: str = "cpu",
                    refine: bool | None = None) -> LandmarkEstimator:
    """Checkpoint builder of kind 'landmark' (see :mod:`dahyf.net.checkpoint`)."""
    known = set(LandmarkConfig.__dataclass_fields__)
    cfg = LandmarkConfig(**{k: v for k, v in config.items() if k in known})
    net = LandmarkDaHyF(cfg)
    net.load_state_dict(state_dict)
    if refine is None:
        refine = bool(meta.get("refine", False))
    return LandmarkEstimator(net, cfg.hand_model, device=device, refine=refine, meta=meta)
