"""Readers of the public hand datasets in their published layouts (samples as :mod:`dahyf.train.augment`).

Each dataset's keypoint convention — fingertip vertices, joint order, axes, θ convention — is one row
of ``dahyf.hand.tables.KEYPOINT_CONVENTIONS``. Crops follow the shared policy of
``dahyf.capture.crops`` (``CROP_PADDING`` × the 2-D keypoints' box): around the annotated joints in
training, around a detector's box in evaluation.

MANO labels (θ, β) only mean something for the real MANO model: readers take the MANO folder or file
(``hand_model``) and refuse the open hand model for them (its zero ``hands_mean`` and its own shape
space would contradict the 3-D joints); ``hand_model=None`` reads no MANO labels.

Layouts (as downloaded):

* **FreiHAND** ``FreiHAND_pub_v2/``: ``training/rgb/%08d.jpg`` (32 560 × 4 colour versions) and
  ``training_{K,xyz,mano,verts,scale}.json``; ``evaluation/rgb/%08d.jpg`` and
  ``evaluation_{K,xyz,...}.json``. The principal point is taken into account exactly by using an
  *effective* image size ``(2 c_x, 2 c_y)`` whose centre is the principal point.
* **HO3D v2 / v3** ``HO3D_v{2,3}/``: ``train.txt`` / ``evaluation.txt`` (``SEQ/FRAME`` lines),
  ``{train,evaluation}/SEQ/rgb/FRAME.{png,jpg}`` and ``.../meta/FRAME.pkl``, read with the restricted
  unpickler of :mod:`dahyf.hand.mano_io` (numpy only, never plain ``pickle.load``). The evaluation
  split has only the root joint and a hand box.
* **HanCo** ``HanCo/``: ``rgb/SEQ/camC/FRAME.jpg``, ``calib/SEQ/FRAME.json`` (``K``, ``M`` per camera)
  and ``xyz/SEQ/FRAME.json`` (21 × 3 world, m, FreiHAND order). Hand crops are positives and square
  crops beside the hand negatives (``is_hand = 0``) for L_c.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from torch.utils.data import Dataset

from ..capture.crops import hand_boxes
from ..errors import DaHyFUserError
from ..geometry import project_with_intrinsics as project
from ..hand.kinematics import batch_rodrigues, matrix_to_axis_angle
from ..hand.tables import KEYPOINT_CONVENTIONS
from .augment import Augmentation, augmentation_rng, crop_sample, finish_sample

FREIHAND_TRAIN_SIZE = 32560
#: OpenGL ↔ OpenCV camera axes (y and z flipped): a rotation, its own inverse.
OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0])


class DatasetLayoutError(DaHyFUserError, FileNotFoundError):
    """A dataset folder does not look like the published layout."""


class DatasetLabelError(DaHyFUserError, ValueError):
    """Labels that cannot be used as asked (MANO labels with the open hand model)."""


def joints_box(joints2d: np.ndarray) -> np.ndarray:
    """(N, 2) px → (3,) px, the shared crop policy (``dahyf.capture.crops.hand_boxes``) for one hand."""
    return hand_boxes(np.asarray(joints2d, np.float64)[None])[0].astype(np.float64)


def hands_mean_of(hand_model: str | None, dataset: str) -> np.ndarray | None:
    """(15, 3) rad MANO ``hands_mean`` of a MANO folder / file; None when no labels are read.

    Raises :class:`DatasetLabelError` for the open hand model.
    """
    if hand_model is None:
        return None
    if str(hand_model) == "open":
        raise DatasetLabelError(
            f"{dataset}'s MANO labels need the real MANO model: give --mano DIR (the folder with MANO_RIGHT.pkl). "
            "The open hand model has no hands_mean and its own shape space, so θ and β would contradict the 3-D joints.")
    from ..hand.model import load_hand_model

    return np.asarray(load_hand_model(hand_model, "right").arrays()["hands_mean"], np.float64).reshape(15, 3)


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


def _camera(K: np.ndarray) -> tuple[float, np.ndarray]:
    """Focal (mean of f_x, f_y) and the effective image size (2 c_x, 2 c_y) of intrinsics (3, 3)."""
    return 0.5 * (K[0, 0] + K[1, 1]), np.array([2 * K[0, 2], 2 * K[1, 2]])


# ------------------------------------------------------------------------------------ FreiHAND
class FreiHAND(Dataset):
    """FreiHAND v2 (Zimmermann et al., ICCV 2019) in its published layout.

    Parameters
    ----------
    root : folder holding ``training/`` or ``evaluation/`` and the ``*_K.json`` ... files.
    split : 'training' or 'evaluation'.
    augment : an :class:`Augmentation` (training) or None.
    seed : base seed of the per-sample augmentation.
    hand_model : MANO folder / file for the θ / β labels (θ is stored relative to MANO's
        ``hands_mean``: it is added), None for no MANO labels; 'open' is refused.
    boxes : (N, 3) px crop boxes per image (a detector's, evaluation); None: the box of the annotated
        2-D joints (training). Both follow the shared crop policy.
    """

    convention = KEYPOINT_CONVENTIONS["freihand"]
    num_negatives = 0

    def __init__(self, root, split: str = "training", augment: Augmentation | None = None, seed: int = 0,
                 hand_model: str | None = None, boxes: np.ndarray | None = None):
        if split not in ("training", "evaluation"):
            raise ValueError(f"split must be 'training' or 'evaluation', got {split!r}")
        self.root, self.split, self.augment, self.seed = Path(root), split, augment, seed
        rgb = self.root / split / "rgb"
        if not rgb.is_dir():
            raise DatasetLayoutError(f"{rgb} not found: point --data at the FreiHAND_pub_v2 folder")
        self.K = np.asarray(_load_json(self.root / f"{split}_K.json"), np.float64)
        xyz_path = self.root / f"{split}_xyz.json"
        self.xyz = np.asarray(_load_json(xyz_path), np.float64) if xyz_path.is_file() else None
        if self.xyz is None and boxes is None:
            raise DatasetLayoutError(f"{xyz_path} is missing: without annotated joints give the crop boxes "
                                     "(a detector's, see dahyf.train.predict)")
        mano_path = self.root / f"{split}_mano.json"
        self.hands_mean = hands_mean_of(hand_model, "FreiHAND") if mano_path.is_file() else None
        self.mano = (np.asarray(_load_json(mano_path), np.float64).reshape(len(self.K), -1)
                     if self.hands_mean is not None else None)
        self.num_images = len(list(rgb.glob("*.jpg")))
        if self.num_images == 0:
            raise DatasetLayoutError(f"{rgb} holds no .jpg images")
        self.boxes = None if boxes is None else np.asarray(boxes, np.float64).reshape(-1, 3)
        if self.boxes is not None and len(self.boxes) != self.num_images:
            raise ValueError(f"{len(self.boxes)} boxes for {self.num_images} images in {rgb}")

    def __len__(self) -> int:
        return self.num_images

    def image_path(self, idx: int) -> Path:
        return self.root / self.split / "rgb" / f"{idx:08d}.jpg"

    def mano_params(self, i: int) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
        """θ (16, 3) flat_hand_mean convention and β (10,) of annotation ``i`` (None without MANO labels)."""
        if self.mano is None:
            return None, None
        m = self.mano[i]
        pose = m[:48].reshape(16, 3).copy()
        if not self.convention.flat_hand_mean:
            pose[1:] += self.hands_mean
        return pose, m[48:58]

    def __getitem__(self, idx: int) -> dict:
        a = idx % len(self.K)  # the 4 colour versions share annotations
        image = _read_rgb(self.image_path(idx))
        K = self.K[a]
        focal, image_size = _camera(K)
        xyz = None if self.xyz is None else self.xyz[a]
        uv = np.zeros((21, 2)) if xyz is None else project(xyz, K)
        pose, betas = self.mano_params(a)
        rng = augmentation_rng(self.seed, idx) if self.augment else None
        box = joints_box(uv) if self.boxes is None else self.boxes[idx]
        c = crop_sample(image, box, image_size, focal, uv, xyz, pose, rng, self.augment)
        return finish_sample(c, image_size, focal, betas, has_mano=pose is not None)


# ------------------------------------------------------------------------------------ HO3D
def load_ho3d_meta(path: Path) -> dict:
    """Read one HO3D meta pickle with the restricted unpickler (numpy arrays and plain types only)."""
    from ..hand.mano_pickle import restricted_load_plain

    try:
        meta = restricted_load_plain(Path(path).read_bytes())
    except FileNotFoundError:
        raise DatasetLayoutError(f"{path} is missing") from None
    except Exception as exc:  # refused or damaged pickle
        raise DatasetLayoutError(f"{path} is not a readable HO3D meta file ({type(exc).__name__}: {exc})") from None
    if not isinstance(meta, dict):
        raise DatasetLayoutError(f"{path}: expected a dict of annotations, got {type(meta).__name__}")
    return meta


class HO3D(Dataset):
    """HO3D v2 / v3 (Hampali et al., CVPR 2020) in its published layout; all hands are right hands.

    Joints are stored as the 16 MANO joints then the 5 tips, in OpenGL axes, θ as full rotations
    (``KEYPOINT_CONVENTIONS['ho3d']``): reordered to the 21-keypoint order and turned into OpenCV
    axes (y, z negated; the global orientation premultiplied by diag(1, −1, −1)).

    Parameters
    ----------
    root : the ``HO3D_v2`` / ``HO3D_v3`` folder; split : 'train' or 'evaluation';
    augment, seed, hand_model : as :class:`FreiHAND` (HO3D's θ needs no ``hands_mean``, but its β is
    MANO's: the open hand model is refused all the same).
    """

    convention = KEYPOINT_CONVENTIONS["ho3d"]
    num_negatives = 0

    def __init__(self, root, split: str = "train", augment: Augmentation | None = None, seed: int = 0,
                 hand_model: str | None = None):
        if split not in ("train", "evaluation"):
            raise ValueError(f"split must be 'train' or 'evaluation', got {split!r}")
        self.root, self.split, self.augment, self.seed = Path(root), split, augment, seed
        listing = self.root / f"{split}.txt"
        if not listing.is_file():
            raise DatasetLayoutError(f"{listing} not found: point --data at the HO3D_v2 / HO3D_v3 folder")
        self.items = [ln.strip() for ln in listing.read_text().splitlines() if ln.strip()]
        self.hands_mean = hands_mean_of(hand_model, "HO3D") if split == "train" else None

    def __len__(self) -> int:
        return len(self.items)

    def _image_path(self, seq: str, frame: str) -> Path:
        d = self.root / self.split / seq / "rgb"
        for ext in (".png", ".jpg"):  # v2: png, v3: jpg
            if (d / (frame + ext)).is_file():
                return d / (frame + ext)
        raise DatasetLayoutError(f"no image {frame}.png / .jpg in {d}")

    def labels(self, meta: dict) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(21, 3) m OpenCV keypoints, θ (16, 3) flat convention OpenCV, β (10,) from a train meta dict."""
        conv = self.convention
        xyz = (np.asarray(meta["handJoints3D"], np.float64) @ OPENGL_TO_OPENCV.T)[list(conv.file_to_keypoints)]
        if self.hands_mean is None or meta.get("handPose") is None:
            return xyz, None, None
        pose = np.asarray(meta["handPose"], np.float64).reshape(16, 3).copy()
        pose[0] = matrix_to_axis_angle(OPENGL_TO_OPENCV @ batch_rodrigues(pose[0]))
        if not conv.flat_hand_mean:
            pose[1:] += self.hands_mean
        return xyz, pose, np.asarray(meta["handBeta"], np.float64)[:10]

    def __getitem__(self, idx: int) -> dict:
        seq, frame = self.items[idx].split("/")
        meta = load_ho3d_meta(self.root / self.split / seq / "meta" / f"{frame}.pkl")
        image = _read_rgb(self._image_path(seq, frame))
        K = np.asarray(meta["camMat"], np.float64)
        focal, image_size = _camera(K)
        j3 = meta.get("handJoints3D")
        if j3 is not None and np.asarray(j3).shape == (21, 3):
            xyz, pose, betas = self.labels(meta)
            uv = project(xyz, K)
            rng = augmentation_rng(self.seed, idx) if self.augment else None
            c = crop_sample(image, joints_box(uv), image_size, focal, uv, xyz, pose, rng, self.augment)
            return finish_sample(c, image_size, focal, betas, has_mano=pose is not None)
        # evaluation split: only the hand box (x0, y0, x1, y1), cropped by the same policy
        x0, y0, x1, y1 = np.asarray(meta["handBoundingBox"], np.float64)
        c = crop_sample(image, joints_box(np.array([[x0, y0], [x1, y1]])), image_size, focal, np.zeros((21, 2)), None, None)
        return finish_sample(c, image_size, focal)


# ------------------------------------------------------------------------------------ HanCo
class _HanCo(Dataset):
    """HanCo frames (Zimmermann et al., 2021): image, camera and projected hand of each (sequence, camera, frame)."""

    def __init__(self, root, image_dir: str = "rgb", cameras: tuple[int, ...] = tuple(range(8)),
                 max_items: int | None = None):
        self.root = Path(root)
        rgb = self.root / image_dir
        if not rgb.is_dir() or not (self.root / "calib").is_dir() or not (self.root / "xyz").is_dir():
            raise DatasetLayoutError(f"{self.root} must hold {image_dir}/, calib/ and xyz/ (the HanCo layout)")
        self.image_dir = image_dir
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

    def frame(self, idx: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, np.ndarray]:
        """image (H, W, 3), camera xyz (21, 3) m, uv (21, 2) px, focal px, effective image size (2,) px."""
        seq, cam, frame = self.items[idx]
        image = _read_rgb(self.root / self.image_dir / seq / f"cam{cam}" / f"{frame}.jpg")
        calib = _load_json(self.root / "calib" / seq / f"{frame}.json")
        xyz = np.asarray(_load_json(self.root / "xyz" / seq / f"{frame}.json"), np.float64)
        K, M = np.asarray(calib["K"][cam], np.float64), np.asarray(calib["M"][cam], np.float64)
        cam_xyz = xyz @ M[:3, :3].T + M[:3, 3]
        focal, image_size = _camera(K)
        return image, cam_xyz, project(cam_xyz, K), focal, image_size


class HanCoPositives(_HanCo):
    """HanCo hand crops (``is_hand = 1``, 2-D and 3-D joints, no MANO labels): L_c's positives."""

    num_negatives = 0

    def __init__(self, root, image_dir: str = "rgb", cameras: tuple[int, ...] = tuple(range(8)),
                 max_items: int | None = None, augment: Augmentation | None = None, seed: int = 0):
        super().__init__(root, image_dir, cameras, max_items)
        self.augment, self.seed = augment, seed

    def __getitem__(self, idx: int) -> dict:
        image, xyz, uv, focal, image_size = self.frame(idx)
        rng = augmentation_rng(self.seed, idx) if self.augment else None
        c = crop_sample(image, joints_box(uv), image_size, focal, uv, xyz, None, rng, self.augment)
        return finish_sample(c, image_size, focal)


class HanCoNegatives(_HanCo):
    """Non-hand crops from HanCo: the largest square (side ≥ ``min_side`` px) left of, right of, above or
    below the projected hand's box (``is_hand = 0``, for L_c)."""

    def __init__(self, root, image_dir: str = "rgb", cameras: tuple[int, ...] = tuple(range(8)), min_side: int = 40,
                 max_items: int | None = None):
        super().__init__(root, image_dir, cameras, max_items)
        self.min_side = min_side

    @property
    def num_negatives(self) -> int:
        return len(self)

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
        image, _, uv, focal, image_size = self.frame(idx)
        H, W = image.shape[:2]
        c = crop_sample(image, self.negative_box(uv, W, H), image_size, focal, uv, None, None)
        return finish_sample(c, image_size, focal, is_hand=False)


def count_negatives(dataset) -> int | None:
    """Non-hand samples of a dataset (sums over ``ConcatDataset`` parts); None when a part does not say."""
    parts = getattr(dataset, "datasets", None)
    if parts is not None:
        counts = [count_negatives(d) for d in parts]
        return None if any(c is None for c in counts) else sum(counts)
    n = getattr(dataset, "num_negatives", None)
    return None if n is None else int(n)
