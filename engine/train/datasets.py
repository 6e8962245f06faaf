"""Readers of the public hand datasets in their published layouts, augmentation, and a synthetic set.

Every reader yields the same sample dict (numpy, float32 unless noted)::

    image        (3, 224, 224)  normalised RGB crop (ImageNet mean / std)
    box          (3,) px        crop (c_x, c_y, s_i) in the (effective) image
    image_size   (2,) px        (W, H); the principal point is at (W/2, H/2) (see FreiHAND below)
    focal        ()   px
    joints2d     (21, 2) px     2-D joints in the crop;  joints2d_img (21, 2) px in the image
    joints3d     (21, 3) m      camera coordinates, OpenCV axes (x right, y down, z forward)
    pose (16, 3) rad, betas (10,)   MANO θ (flat_hand_mean convention) and β
    is_hand, has_joints3d, has_mano  ()  1.0 / 0.0

Layouts (as downloaded):

* **FreiHAND** ``FreiHAND_pub_v2/``: ``training/rgb/%08d.jpg`` (32 560 × 4 colour versions) and
  ``training_{K,xyz,mano,verts,scale}.json``; ``evaluation/rgb/%08d.jpg`` and
  ``evaluation_{K,xyz,mano,verts,scale}.json`` (the evaluation annotations of FreiHAND_pub_v2_eval).
  The principal point is taken into account exactly by using an *effective* image size
  ``(2 c_x, 2 c_y)`` whose centre is the principal point. MANO θ in FreiHAND uses
  ``flat_hand_mean=False``; it is converted by adding the model's ``hands_mean``.
* **HO3D v2 / v3** ``HO3D_v{2,3}/``: ``train.txt`` / ``evaluation.txt`` (``SEQ/FRAME`` lines),
  ``{train,evaluation}/SEQ/rgb/FRAME.{png,jpg}`` and ``.../meta/FRAME.pkl``. The meta pickles are read
  with the restricted unpickler of :mod:`dahyf.hand.mano_io` (numpy only, never plain ``pickle.load``).
  Joints are in HO3D's MANO+tips order and OpenGL axes: reordered to the 21-keypoint order and
  converted to OpenCV axes (y, z negated; the global orientation is premultiplied by diag(1, −1, −1)).
  The evaluation split has only the root joint and a hand box.
* **HanCo** ``HanCo/``: ``rgb/SEQ/camC/FRAME.jpg``, ``calib/SEQ/FRAME.json`` (``K``, ``M`` per camera)
  and ``xyz/SEQ/FRAME.json`` (21 × 3 world, m). Used for **negatives**: square crops that avoid the
  projected hand, labelled ``is_hand = 0`` (for L_c).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..constants import CROP_PADDING, CROP_SIZE
from ..errors import DaHyFUserError
from ..geometry import project_with_intrinsics as project
from ..hand.kinematics import batch_rodrigues, matrix_to_axis_angle
from ..hand.tables import KEYPOINT_SOURCES, NUM_KEYPOINTS
from ..net.dahyf_net import IMAGE_MEAN, IMAGE_STD

FREIHAND_TRAIN_SIZE = 32560
_OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0])


class DatasetLayoutError(DaHyFUserError, FileNotFoundError):
    """A dataset folder does not look like the published layout."""


# ------------------------------------------------------------------------------------ geometry
def joints_box(joints2d: np.ndarray, padding: float = CROP_PADDING) -> np.ndarray:
    """(21, 2) px → (3,) px square box (c_x, c_y, s_i) around the joints."""
    lo, hi = joints2d.min(0), joints2d.max(0)
    return np.array([*(0.5 * (lo + hi)), padding * max(float((hi - lo).max()), 1.0)], dtype=np.float64)


@dataclass(frozen=True)
class Augmentation:
    """Training augmentation ranges: rotation (deg), scale (×), crop jitter (× s_i), colour gain (±)."""

    rotation_deg: float = 30.0
    scale: tuple[float, float] = (0.85, 1.2)
    jitter: float = 0.1
    colour: float = 0.2
    p_rotate: float = 0.6


def crop_sample(image: np.ndarray, box: np.ndarray, image_size: np.ndarray, focal: float, joints2d_img: np.ndarray,
                joints3d: np.ndarray | None, pose: np.ndarray | None, rng: np.random.Generator | None = None,
                aug: Augmentation | None = None, crop_size: int = CROP_SIZE) -> dict:
    """Cut the (augmented) crop and move the labels with it.

    Scale and jitter change the box (the direction maps see the true box). Rotation by α turns the crop
    about its centre; the 3-D labels turn by α about the viewing ray through the box centre (exact for
    that ray, a small-angle approximation elsewhere), and the global orientation with them.

    Returns the sample dict (without ``image`` normalisation; ``crop`` is (s_p, s_p, 3) uint8, s_p = ``crop_size``).
    """
    box = np.asarray(box, np.float64).copy()
    angle = 0.0
    if rng is not None and aug is not None:
        box[2] *= rng.uniform(*aug.scale)
        box[:2] += rng.uniform(-aug.jitter, aug.jitter, 2) * box[2]
        if rng.random() < aug.p_rotate:
            angle = math.radians(rng.uniform(-aug.rotation_deg, aug.rotation_deg))
    cx, cy, side = box
    s = crop_size / side
    c, sn = math.cos(angle), math.sin(angle)
    # crop = s · R(α) · (p − centre) + (s_p/2, s_p/2)
    A = s * np.array([[c, -sn], [sn, c]])
    M = np.concatenate([A, (np.array([crop_size / 2, crop_size / 2]) - A @ np.array([cx, cy]))[:, None]], 1)
    crop = cv2.warpAffine(image, M, (crop_size, crop_size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    j2d_crop = joints2d_img @ A.T + M[:, 2]
    j2d_img = joints2d_img.copy()
    if angle != 0.0:
        # rotate the image-space joints about the box centre too (they define L_2d_proj)
        R2 = np.array([[c, -sn], [sn, c]])
        j2d_img = (joints2d_img - box[:2]) @ R2.T + box[:2]
        if joints3d is not None:
            ray = np.array([cx - image_size[0] / 2, cy - image_size[1] / 2, focal])
            R3 = batch_rodrigues(np.asarray(ray, np.float64) / np.linalg.norm(ray) * angle)
            joints3d = joints3d @ R3.T
            if pose is not None:
                pose = pose.copy()
                pose[0] = matrix_to_axis_angle(R3 @ batch_rodrigues(np.asarray(pose[0], np.float64)))
    if rng is not None and aug is not None and aug.colour > 0:
        gain = rng.uniform(1 - aug.colour, 1 + aug.colour, 3)
        crop = np.clip(crop.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    return {"crop": crop, "box": box, "joints2d": j2d_crop, "joints2d_img": j2d_img, "joints3d": joints3d, "pose": pose}


def _augmentation_rng(seed: int, idx: int) -> np.random.Generator:
    """A fresh generator for one augmented read of sample ``idx``.

    It mixes in a draw from torch's RNG (seeded by the trainer; in DataLoader workers seeded per worker
    and advancing every epoch), so a sample gets a new augmentation each epoch, reproducibly.
    """
    return np.random.default_rng((seed, idx, int(torch.randint(0, 2**31 - 1, ()).item())))


def normalise_crop(crop: np.ndarray) -> np.ndarray:
    """(224, 224, 3) uint8 RGB → (3, 224, 224) float32, ImageNet mean / std."""
    x = crop.astype(np.float32) / 255.0
    x = (x - np.asarray(IMAGE_MEAN, np.float32)) / np.asarray(IMAGE_STD, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def _finish(c: dict, image_size, focal, betas=None, has_mano=False, is_hand=True) -> dict:
    f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    j3 = c["joints3d"]
    pose = c["pose"]
    return {
        "image": normalise_crop(c["crop"]),
        "box": f32(c["box"]),
        "image_size": f32(image_size),
        "focal": np.float32(focal),
        "joints2d": f32(c["joints2d"]),
        "joints2d_img": f32(c["joints2d_img"]),
        "joints3d": f32(j3 if j3 is not None else np.zeros((NUM_KEYPOINTS, 3))),
        "pose": f32(pose if pose is not None else np.zeros((16, 3))),
        "betas": f32(betas if betas is not None else np.zeros(10)),
        "is_hand": np.float32(is_hand),
        "has_joints3d": np.float32(j3 is not None and is_hand),
        "has_mano": np.float32(has_mano and pose is not None and is_hand),
    }


def _hands_mean(hand_model: str) -> np.ndarray:
    """(45,) rad, the mean finger pose of a hand model ('open' or a MANO folder / file)."""
    from ..hand.model import load_hand_model

    return np.asarray(load_hand_model(hand_model, "right").arrays()["hands_mean"], np.float64)


def _read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetLayoutError(f"cannot read image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _load_json(path: Path):
    if not path.is_file():
        raise DatasetLayoutError(f"{path} is missing: expected the published layout (see dahyf.train.datasets)")
    with open(path) as f:
        return json.load(f)


# ------------------------------------------------------------------------------------ FreiHAND
class FreiHAND(Dataset):
    """FreiHAND v2 (Zimmermann et al., ICCV 2019) in its published layout.

    Parameters
    ----------
    root : folder holding ``training/`` or ``evaluation/`` and the ``*_K.json`` ... files.
    split : 'training' or 'evaluation'.
    augment : an :class:`Augmentation` (training) or None.
    hands_mean : (45,) rad, MANO's mean finger pose to convert FreiHAND θ (``flat_hand_mean=False``)
        to the flat_hand_mean convention; None: the ``hands_mean`` of ``hand_model``.
    seed : base seed of the per-sample augmentation.
    hand_model : 'open' or a MANO folder / file (the model the network is trained with).
    crop : 'joints' (a box around the annotated 2-D joints) or 'image' (the whole, already
        hand-centred image); default 'joints' for training and 'image' for evaluation, so that
        evaluation never looks at the ground truth to place its crop.
    """

    def __init__(self, root, split: str = "training", augment: Augmentation | None = None,
                 hands_mean: np.ndarray | None = None, seed: int = 0, hand_model: str = "open",
                 crop: str | None = None):
        if split not in ("training", "evaluation"):
            raise ValueError(f"split must be 'training' or 'evaluation', got {split!r}")
        self.crop = crop or ("image" if split == "evaluation" else "joints")
        if self.crop not in ("joints", "image"):
            raise ValueError(f"crop must be 'joints' or 'image', got {crop!r}")
        self.root, self.split, self.augment, self.seed = Path(root), split, augment, seed
        rgb = self.root / split / "rgb"
        if not rgb.is_dir():
            raise DatasetLayoutError(f"{rgb} not found: point --data at the FreiHAND_pub_v2 folder")
        self.K = np.asarray(_load_json(self.root / f"{split}_K.json"), np.float64)
        self.xyz = np.asarray(_load_json(self.root / f"{split}_xyz.json"), np.float64)
        mano_path = self.root / f"{split}_mano.json"
        self.mano = np.asarray(_load_json(mano_path), np.float64).reshape(len(self.K), -1) if mano_path.is_file() else None
        self.num_images = len(list(rgb.glob("*.jpg")))
        if self.num_images == 0:
            raise DatasetLayoutError(f"{rgb} holds no .jpg images")
        if hands_mean is None and self.mano is not None:
            hands_mean = _hands_mean(hand_model)
        self.hands_mean = None if hands_mean is None else np.asarray(hands_mean, np.float64).reshape(15, 3)

    def __len__(self) -> int:
        return self.num_images

    def mano_params(self, i: int) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
        """θ (16, 3) flat_hand_mean convention and β (10,) of annotation ``i``."""
        if self.mano is None:
            return None, None
        m = self.mano[i]
        pose = m[:48].reshape(16, 3).copy()
        if self.hands_mean is not None:
            pose[1:] += self.hands_mean
        return pose, m[48:58]

    def __getitem__(self, idx: int) -> dict:
        a = idx % len(self.K)  # the 4 colour versions share annotations
        image = _read_rgb(self.root / self.split / "rgb" / f"{idx:08d}.jpg")
        K = self.K[a]
        xyz = self.xyz[a]
        uv = project(xyz, K)
        focal = 0.5 * (K[0, 0] + K[1, 1])
        image_size = np.array([2 * K[0, 2], 2 * K[1, 2]])
        pose, betas = self.mano_params(a)
        rng = _augmentation_rng(self.seed, idx) if self.augment else None
        if self.crop == "image":
            h, w = image.shape[:2]
            box = np.array([w / 2, h / 2, max(w, h)], dtype=np.float64)
        else:
            box = joints_box(uv)
        c = crop_sample(image, box, image_size, focal, uv, xyz, pose, rng, self.augment)
        return _finish(c, image_size, focal, betas, has_mano=pose is not None)


# ------------------------------------------------------------------------------------ HO3D
def load_ho3d_meta(path: Path) -> dict:
    """Read one HO3D meta pickle with the restricted unpickler (numpy arrays and plain types only)."""
    from ..hand.mano_io import restricted_load

    try:
        meta = restricted_load(Path(path).read_bytes())
    except FileNotFoundError:
        raise DatasetLayoutError(f"{path} is missing") from None
    if not isinstance(meta, dict):
        raise DatasetLayoutError(f"{path}: expected a dict of annotations, got {type(meta).__name__}")
    return meta


class HO3D(Dataset):
    """HO3D v2 / v3 (Hampali et al., CVPR 2020) in its published layout; all hands are right hands.

    Parameters
    ----------
    root : the ``HO3D_v2`` / ``HO3D_v3`` folder; split : 'train' or 'evaluation';
    augment, seed, hands_mean, hand_model : as :class:`FreiHAND`; mano_flat_hand_mean : whether the meta θ
    already uses the flat-hand convention (False, the default: HO3D's θ is ``flat_hand_mean=False`` like
    FreiHAND's, so ``hands_mean`` is added).
    """

    def __init__(self, root, split: str = "train", augment: Augmentation | None = None, seed: int = 0,
                 hands_mean: np.ndarray | None = None, mano_flat_hand_mean: bool = False, hand_model: str = "open"):
        if split not in ("train", "evaluation"):
            raise ValueError(f"split must be 'train' or 'evaluation', got {split!r}")
        self.root, self.split, self.augment, self.seed = Path(root), split, augment, seed
        listing = self.root / f"{split}.txt"
        if not listing.is_file():
            raise DatasetLayoutError(f"{listing} not found: point --data at the HO3D_v2 / HO3D_v3 folder")
        self.items = [ln.strip() for ln in listing.read_text().splitlines() if ln.strip()]
        if not mano_flat_hand_mean and hands_mean is None:
            hands_mean = _hands_mean(hand_model)
        self.hands_mean = None if mano_flat_hand_mean else np.asarray(hands_mean, np.float64).reshape(15, 3)

    def __len__(self) -> int:
        return len(self.items)

    def _image_path(self, seq: str, frame: str) -> Path:
        d = self.root / self.split / seq / "rgb"
        for ext in (".png", ".jpg"):  # v2: png, v3: jpg
            if (d / (frame + ext)).is_file():
                return d / (frame + ext)
        raise DatasetLayoutError(f"no image {frame}.png / .jpg in {d}")

    def __getitem__(self, idx: int) -> dict:
        seq, frame = self.items[idx].split("/")
        meta = load_ho3d_meta(self.root / self.split / seq / "meta" / f"{frame}.pkl")
        image = _read_rgb(self._image_path(seq, frame))
        K = np.asarray(meta["camMat"], np.float64)
        focal = 0.5 * (K[0, 0] + K[1, 1])
        image_size = np.array([2 * K[0, 2], 2 * K[1, 2]])
        rng = _augmentation_rng(self.seed, idx) if self.augment else None
        j3 = np.asarray(meta.get("handJoints3D"), np.float64) if meta.get("handJoints3D") is not None else None
        if j3 is not None and j3.shape == (21, 3):
            xyz = (j3 @ _OPENGL_TO_OPENCV.T)[list(KEYPOINT_SOURCES)]
            uv = project(xyz, K)
            pose = betas = None
            if meta.get("handPose") is not None:
                pose = np.asarray(meta["handPose"], np.float64).reshape(16, 3).copy()
                pose[0] = matrix_to_axis_angle(_OPENGL_TO_OPENCV @ batch_rodrigues(np.asarray(pose[0], np.float64)))
                if self.hands_mean is not None:
                    pose[1:] += self.hands_mean
                betas = np.asarray(meta["handBeta"], np.float64)[:10]
            c = crop_sample(image, joints_box(uv), image_size, focal, uv, xyz, pose, rng, self.augment)
            return _finish(c, image_size, focal, betas, has_mano=pose is not None)
        # evaluation split: only the hand box (x0, y0, x1, y1)
        x0, y0, x1, y1 = np.asarray(meta["handBoundingBox"], np.float64)
        box = np.array([(x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * 1.2])
        c = crop_sample(image, box, image_size, focal, np.zeros((21, 2)), None, None)
        out = _finish(c, image_size, focal)
        out["has_joints3d"] = np.float32(0.0)
        return out


# ------------------------------------------------------------------------------------ HanCo
class HanCoNegatives(Dataset):
    """Non-hand crops from HanCo (Zimmermann et al., 2021) for the contrastive loss L_c.

    Each sample is the largest square (side ≥ ``min_side`` px) left of, right of, above or below the
    projected hand's box. ``max_items`` keeps that many frames, evenly spread over the whole set.
    """

    def __init__(self, root, image_dir: str = "rgb", cameras: tuple[int, ...] = tuple(range(8)), min_side: int = 40,
                 max_items: int | None = None):
        self.root = Path(root)
        rgb = self.root / image_dir
        if not rgb.is_dir() or not (self.root / "calib").is_dir() or not (self.root / "xyz").is_dir():
            raise DatasetLayoutError(f"{self.root} must hold {image_dir}/, calib/ and xyz/ (the HanCo layout)")
        self.image_dir, self.min_side = image_dir, min_side
        self.items = []
        for seq_dir in sorted(p for p in rgb.iterdir() if p.is_dir()):
            for cam in cameras:
                for img in sorted((seq_dir / f"cam{cam}").glob("*.jpg")):
                    self.items.append((seq_dir.name, cam, img.stem))
        if max_items and len(self.items) > max_items:  # evenly spread over all sequences and cameras
            keep = np.linspace(0, len(self.items) - 1, int(max_items)).round().astype(int)
            self.items = [self.items[i] for i in keep]
        if not self.items:
            raise DatasetLayoutError(f"no images under {rgb}/SEQ/camC/*.jpg")

    def __len__(self) -> int:
        return len(self.items)

    def negative_box(self, hand_uv: np.ndarray, width: int, height: int) -> np.ndarray:
        """(3,) px square box that avoids the hand's 2-D box (the largest of the four margins)."""
        lo, hi = hand_uv.min(0), hand_uv.max(0)
        cands = [  # (x0, y0, w, h) of the free margins
            (0, 0, lo[0], height), (hi[0], 0, width - hi[0], height),
            (0, 0, width, lo[1]), (0, hi[1], width, height - hi[1])]
        x0, y0, w, h = max(cands, key=lambda c: min(c[2], c[3]))
        side = max(min(w, h), self.min_side)
        return np.array([x0 + w / 2, y0 + h / 2, side])

    def __getitem__(self, idx: int) -> dict:
        seq, cam, frame = self.items[idx]
        image = _read_rgb(self.root / self.image_dir / seq / f"cam{cam}" / f"{frame}.jpg")
        calib = _load_json(self.root / "calib" / seq / f"{frame}.json")
        xyz = np.asarray(_load_json(self.root / "xyz" / seq / f"{frame}.json"), np.float64)
        K, M = np.asarray(calib["K"][cam], np.float64), np.asarray(calib["M"][cam], np.float64)
        cam_xyz = xyz @ M[:3, :3].T + M[:3, 3]
        uv = project(cam_xyz, K)
        H, W = image.shape[:2]
        box = self.negative_box(uv, W, H)
        focal = 0.5 * (K[0, 0] + K[1, 1])
        image_size = np.array([2 * K[0, 2], 2 * K[1, 2]])
        c = crop_sample(image, box, image_size, focal, uv, None, None)
        return _finish(c, image_size, focal, is_hand=False)


# ------------------------------------------------------------------------------------ synthetic
class SyntheticImages(Dataset):
    """Synthetic right hands drawn as coloured skeletons on noise, with exact labels (tests, smoke runs).

    Poses, shapes, cameras and placement come from :mod:`dahyf.train.synthetic` (anatomical limits);
    the image shows the projected 21-keypoint skeleton (one colour per finger, depth-shaded joints).
    ``negatives`` extra samples are skeleton-free noise crops (is_hand = 0). ``crop_size`` is s_p (224;
    smaller values go with a ``DaHyFConfig(crop_size=...)`` for quick CPU experiments).
    """

    def __init__(self, hand_model, n: int = 64, seed: int = 0, negatives: int = 0, image_scale: float = 0.5,
                 crop_size: int = CROP_SIZE):
        from ..geometry import project_points
        from . import synthetic as S

        g = torch.Generator().manual_seed(seed)
        axes = S.joint_axes(hand_model(torch.zeros(1, 16, 3)).joints[0].detach().numpy(),
                            hand_model(torch.zeros(1, 16, 3)).keypoints[0, [4, 8, 12, 16, 20]].detach().numpy())
        with torch.no_grad():
            self.pose = S.sample_poses(g, n, axes)
            self.betas = S.sample_betas(g, n, std=0.5)
            image_size, focal = S.sample_cameras(g, n)
            self.image_size = (image_size * image_scale).round()
            self.focal = focal * image_scale
            kp = hand_model(self.pose, self.betas).keypoints
            transl = S.place_hands(g, kp, self.image_size, self.focal, (0.25, 0.5), (0.25, 0.75))
            self.joints3d = kp + transl[:, None]
            self.uv = project_points(self.joints3d, self.focal, self.image_size)
        self.n, self.negatives, self.seed, self.crop_size = n, negatives, seed, crop_size

    def __len__(self) -> int:
        return self.n + self.negatives

    def render(self, i: int) -> np.ndarray:
        """(H, W, 3) uint8 image of sample ``i``."""
        from ..hand.tables import KEYPOINT_BONES

        W, H = (int(v) for v in self.image_size[i % self.n])
        rng = np.random.default_rng((self.seed, i))
        img = rng.integers(0, 60, (H, W, 3), dtype=np.uint8)
        if i >= self.n:
            return img
        uv = self.uv[i].numpy()
        z = self.joints3d[i, :, 2].numpy()
        colours = [(255, 80, 80), (80, 255, 80), (80, 80, 255), (255, 255, 80), (255, 80, 255)]
        thick = max(2, int(0.02 * float(np.ptp(uv, 0).max())))
        for p, c in KEYPOINT_BONES:
            col = colours[(c - 1) // 4]
            cv2.line(img, tuple(int(v) for v in uv[p]), tuple(int(v) for v in uv[c]), col, thick, cv2.LINE_AA)
        zn = (z - z.min()) / max(float(np.ptp(z)), 1e-6)
        for k in range(21):
            shade = int(255 * (1 - 0.7 * zn[k]))
            cv2.circle(img, tuple(int(v) for v in uv[k]), thick + 1, (shade, shade, shade), -1, cv2.LINE_AA)
        return img

    def __getitem__(self, i: int) -> dict:
        k = i % self.n
        img = self.render(i)
        uv = self.uv[k].numpy().astype(np.float64)
        box = joints_box(uv)
        if i >= self.n:  # negative: same box, no hand drawn
            c = crop_sample(img, box, self.image_size[k].numpy(), float(self.focal[k]), uv, None, None,
                            crop_size=self.crop_size)
            return _finish(c, self.image_size[k].numpy(), float(self.focal[k]), is_hand=False)
        c = crop_sample(img, box, self.image_size[k].numpy(), float(self.focal[k]), uv,
                        self.joints3d[k].numpy().astype(np.float64), self.pose[k].numpy().astype(np.float64),
                        crop_size=self.crop_size)
        return _finish(c, self.image_size[k].numpy(), float(self.focal[k]), self.betas[k].numpy(), has_mano=True)
