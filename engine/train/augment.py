"""Training crops: cut a box (the shared crop policy of ``dahyf.capture.crops``), augment it, move the labels.

Every reader of :mod:`dahyf.train.datasets` ends in :func:`finish_sample`, which gives the sample dict
the trainer reads (numpy, float32 unless noted)::

    image        (3, s_p, s_p)  normalised RGB crop (ImageNet mean / std)
    box          (3,) px        crop (c_x, c_y, s_i) in the (effective) image
    image_size   (2,) px        (W, H); the principal point is at (W/2, H/2)
    focal        ()   px
    joints2d     (21, 2) px     2-D joints in the crop;  joints2d_img (21, 2) px in the image
    joints3d     (21, 3) m      camera coordinates, OpenCV axes (x right, y down, z forward)
    pose (16, 3) rad, betas (10,)   MANO θ (flat_hand_mean convention) and β
    is_hand, has_joints3d, has_mano  ()  1.0 / 0.0
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..capture.crops import crop_affine, crop_box
from ..constants import CROP_SIZE
from ..hand.kinematics import batch_rodrigues, matrix_to_axis_angle
from ..hand.tables import NUM_KEYPOINTS
from ..net.dahyf_net import IMAGE_MEAN, IMAGE_STD


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
    crop = crop_box(image, box, crop_size, angle)
    M = crop_affine(box, crop_size, angle)
    j2d_crop = joints2d_img @ M[:, :2].T + M[:, 2]
    j2d_img = joints2d_img.copy()
    if angle != 0.0:
        # rotate the image-space joints about the box centre too (they define L_2d_proj)
        c, sn = math.cos(angle), math.sin(angle)
        j2d_img = (joints2d_img - box[:2]) @ np.array([[c, -sn], [sn, c]]).T + box[:2]
        if joints3d is not None:
            ray = np.array([box[0] - image_size[0] / 2, box[1] - image_size[1] / 2, focal])
            R3 = batch_rodrigues(ray / np.linalg.norm(ray) * angle)
            joints3d = joints3d @ R3.T
            if pose is not None:
                pose = pose.copy()
                pose[0] = matrix_to_axis_angle(R3 @ batch_rodrigues(np.asarray(pose[0], np.float64)))
    if rng is not None and aug is not None and aug.colour > 0:
        gain = rng.uniform(1 - aug.colour, 1 + aug.colour, 3)
        crop = np.clip(crop.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    return {"crop": crop, "box": box, "joints2d": j2d_crop, "joints2d_img": j2d_img, "joints3d": joints3d, "pose": pose}


def augmentation_rng(seed: int, idx: int) -> np.random.Generator:
    """A fresh generator for one augmented read of sample ``idx``.

    It mixes in a draw from torch's RNG (seeded by the trainer; in DataLoader workers seeded per worker
    and advancing every epoch), so a sample gets a new augmentation each epoch, reproducibly.
    """
    return np.random.default_rng((seed, idx, int(torch.randint(0, 2**31 - 1, ()).item())))


def normalise_crop(crop: np.ndarray) -> np.ndarray:
    """(s_p, s_p, 3) uint8 RGB → (3, s_p, s_p) float32, ImageNet mean / std."""
    x = crop.astype(np.float32) / 255.0
    x = (x - np.asarray(IMAGE_MEAN, np.float32)) / np.asarray(IMAGE_STD, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def finish_sample(c: dict, image_size, focal, betas=None, has_mano=False, is_hand=True) -> dict:
    """The sample dict of the module docstring from :func:`crop_sample`'s output and the camera."""
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
