"""The DaHyF image network (DESIGN.md §3): backbone → direction-conditioned convolutions → SJCP → PE → regressor → MANO.

``DaHyF(cfg)(images, boxes, image_size, focal)`` returns a dict of tensors:

=================  ===============  ===========================================================
key                shape            meaning
=================  ===============  ===========================================================
pose               (B, 16, 3) rad   MANO θ, axis-angle, flat_hand_mean convention
rotmats            (B, 16, 3, 3)    the same rotations as matrices (what the losses use)
betas              (B, 10)          MANO β
weak_cam           (B, 3)           (s, t_x, t_y) crop weak-perspective camera
cam_t              (B, 3) m         full-perspective translation in the image's camera (CLIFF)
joints3d           (B, 21, 3) m     keypoints in camera coordinates (model + cam_t)
vertices           (B, V, 3) m      mesh in camera coordinates
joints2d           (B, 21, 2) px    2-D joints in the 224 crop (SJCP / heatmap head; the
                                    projection mapped into the crop when the row has no joint head)
joints2d_proj      (B, 21, 2) px    joints3d projected into the full image
confidence         (B,)             projection confidence (cosine similarity; 1 without a joint head)
simcc_x, simcc_y   (B, 21, 672)     SJCP logits (SJCP rows only)
heatmaps           (B, 21, 56, 56)  heatmaps (heatmap rows only)
=================  ===============  ===========================================================

The direction map enters *before* the convolution stages it conditions (``DirectionMapFusion``):
on the stride-4 map ahead of the 2-D joint head and on the stride-32 map ahead of the pooling that
feeds the regressor. The regressor reads the pooled image features ⊕ the 2-D joints (the hybrid
feature): their positional encoding V_PE (21 × 2 × 2L = 336) in the full model, the plain
μ = (J2d − s_p/2)/f (42) in the rows without PE.

A frozen :class:`DaHyFConfig` selects each row of the paper's Table 4 (see ``dahyf.train.configs``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from ..constants import CROP_SIZE
from ..geometry import default_focal, project_points
from ..hand import kinematics as K
from ..hand.tables import KEYPOINT_CONVENTIONS, KEYPOINT_SOURCES
from .backbones import build_backbone
from .checkpoint import HAND_MODEL_KINDS
from .camera import weak_to_full_perspective
from .confidence import projection_confidence
from .direction_map import DirectionMapFusion
from .encoding import NUM_FREQS, joint_mu, positional_encoding
from .heatmap import HeatmapHead
from .modules import Regressor
from .simcc import SPLIT_RATIO, SIGMA_PX, SimCCHead, at_least_float32

JOINT_HEADS = ("none", "heatmap", "simcc")
#: ImageNet mean / std the readers normalise crops with (RGB, 0..1 scale).
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)
#: Channels of the direction-conditioned stages: before the joint head (stride 4) and the regressor (stride 32).
JOINT_STAGE_CHANNELS = 64
REGRESSOR_STAGE_CHANNELS = 512


@dataclass(frozen=True)
class DaHyFConfig:
    """One DaHyF variant (a row of Table 4 with a backbone).

    Attributes
    ----------
    name : row name ('full', 'baseline', ...).
    backbone : 'hrnet_w64' (paper), 'resnet50' (ablation), 'light' (CPU).
    direction_map : 'gdm', 'ldm' or 'none' — concatenated ahead of both conditioned convolution stages.
    joint_head : 'simcc' (SJCP), 'heatmap' (ablation) or 'none'. With a head, its 2-D joints are fed
        to the regressor (the hybrid feature).
    positional_encoding : feed V_PE = γ(μ) (336 for L = 4) instead of μ itself (42).
    contrastive : train the projection confidence with L_c (last ``contrastive_epochs`` epochs).
    crop_size : s_p, px; split_ratio : SimCC s; sigma_px : SimCC label σ, px; num_freqs : L.
    regressor_width, regressor_depth : the regressor MLP (``dahyf.net.modules.Regressor``: width, residual blocks).
    hand_model : the kind of hand model the network uses, 'open' (the bundled model) or 'mano' (the real
        MANO, given as ``DaHyF(cfg, hand=load_hand_model(MANO_DIR, "right"))``); stored in checkpoints,
        never a path (:data:`dahyf.net.checkpoint.HAND_MODEL_KINDS`).
    keypoints : fingertip convention of the 21 keypoints: 'model' (the hand model's own tips) or a
        name of ``dahyf.hand.tables.KEYPOINT_CONVENTIONS`` ('mano', 'freihand', 'ho3d'; MANO's mesh).
    """

    name: str = "full"
    backbone: str = "hrnet_w64"
    direction_map: str = "gdm"
    joint_head: str = "simcc"
    positional_encoding: bool = True
    contrastive: bool = True
    crop_size: int = CROP_SIZE
    split_ratio: float = SPLIT_RATIO
    sigma_px: float = SIGMA_PX
    num_freqs: int = NUM_FREQS
    regressor_width: int = 1024
    regressor_depth: int = 2
    hand_model: str = "open"
    keypoints: str = "model"

    def __post_init__(self):
        if self.joint_head not in JOINT_HEADS:
            raise ValueError(f"joint_head must be one of {JOINT_HEADS}, got {self.joint_head!r}")
        if self.positional_encoding and self.joint_head == "none":
            raise ValueError("positional_encoding needs 2-D joints: set joint_head to 'simcc' or 'heatmap'")
        if self.hand_model not in HAND_MODEL_KINDS:
            raise ValueError(f"hand_model must be one of {HAND_MODEL_KINDS} (the kind, never a path: the MANO "
                             f"files are given to DaHyF(cfg, hand=...)), got {self.hand_model!r}")
        if self.keypoints != "model" and self.keypoints not in KEYPOINT_CONVENTIONS:
            raise ValueError(f"keypoints must be 'model' or one of {sorted(KEYPOINT_CONVENTIONS)}, got {self.keypoints!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DaHyFConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown DaHyFConfig fields {sorted(unknown)}: this checkpoint was written by a newer dahyf")
        return cls(**d)

    @property
    def joint_feature_dims(self) -> int:
        """Length of the 2-D joint feature fed to the regressor: V_PE (21 × 2 × 2L = 336), μ (42) or 0."""
        if self.joint_head == "none":
            return 0
        return 21 * 2 * (2 * self.num_freqs if self.positional_encoding else 1)

    @property
    def pe_dims(self) -> int:
        """Length of V_PE: 21 joints × 2 coordinates × 2L (336 for L = 4)."""
        return 21 * 2 * 2 * self.num_freqs


def hand_from_rotmats(hand, rot_mats: torch.Tensor, betas: torch.Tensor, tip_vertex_ids=None) -> tuple[torch.Tensor, torch.Tensor]:
    """vertices (B, V, 3) m and keypoints (B, 21, 3) m (model coordinates) of ``hand`` posed by rotation
    matrices (B, 16, 3, 3) — the hand model's one forward with ``pose2rot=False`` — with the fingertips
    ``tip_vertex_ids`` (5,) (default: the model's own)."""
    out = hand(rot_mats, betas, pose2rot=False)
    if tip_vertex_ids is None:
        return out.vertices, out.keypoints
    return out.vertices, torch.cat([out.joints, out.vertices[:, list(tip_vertex_ids)]], dim=1)[:, list(KEYPOINT_SOURCES)]


def tip_vertex_ids(cfg: DaHyFConfig, hand) -> tuple[int, ...] | None:
    """The fingertip vertices of ``cfg.keypoints`` on ``hand`` (None: the model's own tips).

    A dataset convention names vertices of MANO's 778-vertex mesh: another mesh is refused.
    """
    if cfg.keypoints == "model":
        return None
    if hand.num_vertices != 778:
        raise ValueError(f"keypoints={cfg.keypoints!r} names fingertip vertices of MANO's 778-vertex mesh, but the hand "
                         f"model {hand.name!r} has {hand.num_vertices}: train with real MANO (--mano DIR)")
    return KEYPOINT_CONVENTIONS[cfg.keypoints].tip_vertex_ids


class DaHyF(nn.Module):
    """The DaHyF network; see the module docstring for inputs and outputs.

    Parameters
    ----------
    cfg : the variant.
    hand : the ``HandModel`` (right hand) of the kind ``cfg.hand_model``; None loads the bundled one for
        'open' (a 'mano' network must be given its MANO model). It is not part of the state dict:
        checkpoints hold the network only.
    """

    def __init__(self, cfg: DaHyFConfig | None = None, hand=None):
        super().__init__()
        self.cfg = cfg = cfg or DaHyFConfig()
        self.backbone = build_backbone(cfg.backbone)
        cf, cc = self.backbone.fine_channels, self.backbone.coarse_channels
        jc, rc = min(cf, JOINT_STAGE_CHANNELS), min(cc, REGRESSOR_STAGE_CHANNELS)
        self.regressor_stage = DirectionMapFusion(cfg.direction_map, cc, rc, num_convs=2, crop_size=cfg.crop_size)
        fs = cfg.crop_size // 4
        self.joint_stage, self.joint_head = None, None
        if cfg.joint_head != "none":
            self.joint_stage = DirectionMapFusion(cfg.direction_map, cf, jc, num_convs=1, crop_size=cfg.crop_size)
            self.joint_head = (SimCCHead(jc, 21, fs, cfg.crop_size, cfg.split_ratio) if cfg.joint_head == "simcc"
                               else HeatmapHead(jc, 21, cfg.crop_size))
        self.regressor = Regressor(rc + cfg.joint_feature_dims, cfg.regressor_width, cfg.regressor_depth)
        if hand is None:
            if cfg.hand_model != "open":
                raise ValueError(f"a network of hand_model {cfg.hand_model!r} needs its hand model: "
                                 "DaHyF(cfg, hand=load_hand_model(MANO_DIR, 'right'))")
            from ..hand.model import load_hand_model

            hand = load_hand_model("open", "right")
        elif (hand.name == "open") != (cfg.hand_model == "open"):
            raise ValueError(f"hand_model is {cfg.hand_model!r} but the hand model given is {hand.name!r}: set "
                             "DaHyFConfig.hand_model to 'open' for the bundled model, 'mano' for a MANO file")
        self._hand = [hand]  # not a module: not in state_dict; it computes on the device and dtype it is given
        self.tip_vertex_ids = tip_vertex_ids(cfg, hand)

    @property
    def hand(self):
        return self._hand[0]

    def regressor_input(self, images: torch.Tensor, boxes: torch.Tensor, image_size: torch.Tensor,
                        focal: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The hybrid feature (B, C + joint dims) and the joint head's outputs (see :meth:`forward`)."""
        cfg = self.cfg
        feats = self.backbone(images)
        x = self.regressor_stage(feats.coarse, boxes, image_size, focal).mean(dim=(2, 3))
        out: dict[str, torch.Tensor] = {}
        if self.joint_head is not None:
            out.update(self.joint_head(self.joint_stage(feats.fine, boxes, image_size, focal)))
            mu = joint_mu(at_least_float32(out["joints2d"]), focal * cfg.crop_size / boxes[:, 2], cfg.crop_size)
            jf = positional_encoding(mu, cfg.num_freqs) if cfg.positional_encoding else mu
            x = torch.cat([x, jf.flatten(1).to(x.dtype)], dim=1)
        return x, out

    def forward(self, images: torch.Tensor, boxes: torch.Tensor, image_size: torch.Tensor,
                focal: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """images (B,3,s_p,s_p) normalised RGB; boxes (B,3) px (c_x, c_y, s_i); image_size (B,2) px (W,H); focal (B,) px."""
        cfg = self.cfg
        if images.dim() != 4 or images.shape[1:] != (3, cfg.crop_size, cfg.crop_size):
            raise ValueError(f"images must be (B, 3, {cfg.crop_size}, {cfg.crop_size}), got {tuple(images.shape)}")
        boxes, image_size = at_least_float32(boxes), at_least_float32(image_size)
        focal = default_focal(image_size) if focal is None else at_least_float32(focal).reshape(-1)
        x, out = self.regressor_input(images, boxes, image_size, focal)
        rot, betas, weak = self.regressor(x)
        with torch.autocast(device_type=images.device.type, enabled=False):
            vertices, kp = hand_from_rotmats(self.hand, rot, betas, self.tip_vertex_ids)
            cam_t = weak_to_full_perspective(weak, boxes[:, :2], boxes[:, 2], image_size, focal)
            joints3d = kp + cam_t[:, None]
            j2d_proj = project_points(joints3d, focal, image_size)
            ulc = boxes[:, None, :2] - boxes[:, None, 2:3] / 2
            if self.joint_head is None:
                out["joints2d"] = (j2d_proj - ulc) * (cfg.crop_size / boxes[:, None, 2:3])
                conf = torch.ones(images.shape[0], device=images.device)
            else:
                conf = projection_confidence(at_least_float32(out["joints2d"]), j2d_proj, boxes[:, :2], boxes[:, 2], cfg.crop_size)
        out.update(pose=K.matrix_to_axis_angle(rot.detach()), rotmats=rot, betas=betas, weak_cam=weak, cam_t=cam_t,
                   joints3d=joints3d, joints3d_model=kp, vertices=vertices + cam_t[:, None],
                   joints2d_proj=j2d_proj, confidence=conf)
        return out


class DaHyFEstimator:
    """The capture pipeline's estimator interface around a trained image network (``needs_crops = True``).

    Left hands are handled as DESIGN.md §2 says: the crop is flipped horizontally (and its box mirrored
    in the image), the right-hand prediction is mirrored back (θ: y, z of every axis-angle negated;
    points: x negated; image points: u → W − u).
    """

    needs_crops = True

    def __init__(self, net: DaHyF, device: str = "cpu", meta: dict | None = None):
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.meta = dict(meta or {})

    @property
    def config(self) -> DaHyFConfig:
        return self.net.cfg

    @torch.no_grad()
    def predict(self, batch) -> dict:
        """Hand pose, shape and placement from image crops.

        Parameters
        ----------
        batch : a :class:`dahyf.net.batch.HandBatch`; is_right (B,), image_size (B, 2) px (W, H),
            focal (B,) px, crops (B, 224, 224, 3) uint8 RGB (the boxes cut out of the frames,
            ``dahyf.capture.crops``) and boxes (B, 3) px (c_x, c_y, s_i) are used.

        Returns
        -------
        dict: pose (B,16,3) rad, betas (B,10), transl (B,3) m, joints3d (B,21,3) m,
        joints2d_proj (B,21,2) px, joints2d (B,21,2) image px (the network's 2-D joints), confidence (B,).
        """
        from ..hand.mirror import mirror_points, mirror_pose

        is_right, image_size, focal, crops, boxes = batch.is_right, batch.image_size, batch.focal, batch.crops, batch.boxes
        if crops is None or boxes is None:
            raise ValueError("the DaHyF image network needs crops and boxes (needs_crops = True)")
        dev = self.device
        s_p = self.net.cfg.crop_size
        x = torch.as_tensor(crops, device=dev)
        if x.ndim != 4 or tuple(x.shape[1:]) != (s_p, s_p, 3):
            raise ValueError(f"crops must be (B, {s_p}, {s_p}, 3) uint8 RGB, got {tuple(x.shape)}")
        B = x.shape[0]
        right = torch.as_tensor(is_right, dtype=torch.bool, device=dev).reshape(B)
        left = ~right
        size = torch.as_tensor(image_size, dtype=torch.float32, device=dev).reshape(-1, 2).expand(B, 2)
        f = default_focal(size) if focal is None else torch.as_tensor(focal, dtype=torch.float32, device=dev).reshape(-1).expand(B)
        bx = torch.as_tensor(boxes, dtype=torch.float32, device=dev).reshape(B, 3).clone()
        x = x.float() / 255.0
        x = torch.where(left[:, None, None, None], x.flip(2), x)
        bx[left, 0] = size[left, 0] - bx[left, 0]
        mean = torch.tensor(IMAGE_MEAN, device=dev)
        std = torch.tensor(IMAGE_STD, device=dev)
        images = ((x - mean) / std).permute(0, 3, 1, 2).contiguous()
        out = self.net(images, bx, size, f)
        pose = torch.where(left[:, None, None], mirror_pose(out["pose"]), out["pose"])
        transl = torch.where(left[:, None], mirror_points(out["cam_t"]), out["cam_t"])
        joints3d = torch.where(left[:, None, None], mirror_points(out["joints3d"]), out["joints3d"])
        proj = out["joints2d_proj"].clone()
        proj[left, :, 0] = size[left, None, 0] - proj[left, :, 0]
        j2d = out["joints2d"] * (bx[:, None, 2:3] / s_p) + (bx[:, None, :2] - bx[:, None, 2:3] / 2)
        j2d[left, :, 0] = size[left, None, 0] - j2d[left, :, 0]
        return {"pose": pose, "betas": out["betas"], "transl": transl, "joints3d": joints3d,
                "joints2d_proj": proj, "joints2d": j2d, "confidence": out["confidence"]}


#: Checkpoint kind of the image network (registered in ``dahyf.net.checkpoint``).
CHECKPOINT_KIND = "dahyf"


def save_dahyf(path, net: DaHyF, meta: dict | None = None):
    """Write an inference checkpoint of ``net`` (kind 'dahyf', config inside) → Path."""
    from .checkpoint import save_checkpoint

    return save_checkpoint(path, CHECKPOINT_KIND, net.cfg.to_dict(), net.state_dict(), meta)


def build_estimator(config: dict, state_dict: dict, meta: dict, device: str = "cpu",
                    hand_model: str = "open") -> DaHyFEstimator:
    """Checkpoint builder of kind 'dahyf' (see :mod:`dahyf.net.checkpoint`).

    ``hand_model`` : the source of the network's hand model ('open', or the caller's MANO folder /
    file for a 'mano' checkpoint: :func:`dahyf.net.checkpoint.network_hand_model`).
    """
    from ..hand.model import load_hand_model

    cfg = DaHyFConfig.from_dict(config)
    net = DaHyF(cfg, hand=load_hand_model(hand_model, "right"))
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state_dict.items()})
    return DaHyFEstimator(net, device=device, meta=meta)
