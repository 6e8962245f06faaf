"""Synthetic training samples for the landmark variant of DaHyF (DESIGN.md §3, "The embedded default").

A sample is a posed hand (θ inside anatomical joint limits with finger coupling, a random global
orientation, a random shape β) placed in a random pinhole camera (image size, focal length, hand
anywhere in the frame at any size), its 21 keypoints projected to the image, and the same
keypoints with 2-D noise shaped like MediaPipe's measured error (``engine/assets/landmark_noise.json``,
see :mod:`dahyf.train.noise_calibration`) plus heavier-tailed outliers, and — when a world-landmark
noise model is given — MediaPipe-like world landmarks (``engine/assets/landmark_rendered.json``).
Keypoints are in the hand model's convention (the engine maps MediaPipe's into it). Corrupted
landmark sets (swapped fingers, random points, a mirrored hand) are the negatives of the confidence training.

Everything is drawn from a ``torch.Generator``, so a seed gives the same samples on every run.
Joint limits are expressed in anatomical terms (flexion, abduction, twist about axes built from the
model's rest joints), so they hold for any MANO-format hand model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..hand import kinematics as K
from ..hand import quaternion as Q
from ..hand.axes import anatomical_axes
from ..hand.tables import FINGER_JOINTS, FINGERS, NUM_JOINTS

DEG = math.pi / 180

#: Image sizes (W, H) px drawn uniformly: landscape, portrait and square videos.
IMAGE_SIZES = ((640, 480), (1280, 720), (1920, 1080), (480, 640), (720, 1280), (1080, 1920), (1024, 1024), (3840, 2160))
#: Focal length range as a multiple of the image diagonal (log-uniform).
FOCAL_RANGE = (0.55, 1.5)
#: Hand size (longer side of the keypoint box) as a fraction of min(W, H) (log-uniform).
HAND_SIZE_RANGE = (0.08, 0.6)
#: Where the hand centroid may fall, as a fraction of W and H (uniform).
POSITION_RANGE = (0.08, 0.92)
#: Noise difficulty multiplier range (log-uniform); 1.0 = the measured FreiHAND level (hard grasps).
DIFFICULTY_RANGE = (0.2, 1.0)
#: Student-t degrees of freedom of the per-keypoint residual noise (heavier tails than a Gaussian).
NOISE_DOF = 4.0
#: Probability that a landmark is an outlier, and the outlier displacement scale (hand sizes).
OUTLIER_PROB = 0.03
OUTLIER_SCALE = 0.25
#: Share of samples drawn without world landmarks (the network must work without them too).
WORLD_DROPOUT = 0.1


# ----------------------------------------------------------------------------------------------
# Anatomical joint frames and the pose sampler
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JointAxes:
    """Per-joint rotation axes in the model's rest frame (MANO local rotations act in that frame).

    flex : (16, 3) unit axis; positive rotation curls the bone towards the palm.
    abd : (16, 3) unit axis; rotation spreads the bone sideways (thumb: away from the palm).
    twist : (16, 3) unit axis along the bone.
    """

    flex: torch.Tensor
    abd: torch.Tensor
    twist: torch.Tensor


def joint_axes(rest_joints: np.ndarray, tips: np.ndarray) -> JointAxes:
    """Anatomical axes of a right hand (:func:`dahyf.hand.axes.anatomical_axes`) as float32 tensors."""
    flex, abd, twist = anatomical_axes(rest_joints, tips)
    f32 = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return JointAxes(f32(flex), f32(abd), f32(twist))


def _uniform(g: torch.Generator, n: int, lo: float, hi: float, *shape) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand((n, *shape), generator=g)


def _normal(g: torch.Generator, n: int, std: float, *shape) -> torch.Tensor:
    return std * torch.randn((n, *shape), generator=g)


#: Mixture weights of the natural pose prior (:func:`sample_finger_curl`): open / flat hands, the
#: relaxed cascade, a shared grasp level, gestures (each finger extended or curled), independent curls.
POSE_MODES = {"open": 0.2, "relaxed": 0.1, "grasp": 0.3, "gesture": 0.25, "independent": 0.15}


def sample_finger_curl(g: torch.Generator, n: int) -> torch.Tensor:
    """Per-finger curl in [0, 1] (0 straight, 1 fist) from a natural pose prior with finger coupling.

    A mixture (weights POSE_MODES) of: open / flat hands (every finger straight, curl ≤ 0.05); the
    relaxed hand (a cascade from the index, nearly straight, to the little finger, a little more
    curled); a shared grasp level with small per-finger deviations (neighbours move together, ring
    follows middle and pinky); gestures (each finger extended or curled — point, pinch, V, thumbs-up
    …, ring and pinky mostly together); and fully independent curls. Straight fingers are common
    in real footage and must not be learned as the mean of all curls.

    Returns
    -------
    (n, 5) in FINGERS order (thumb, index, middle, ring, pinky).
    """
    w = torch.tensor(list(POSE_MODES.values()))
    edges = torch.cumsum(w / w.sum(), 0)
    kind = torch.bucketize(torch.rand(n, generator=g), edges[:-1], right=True)   # 0 .. 4, POSE_MODES order
    open_ = _uniform(g, n, 0.0, 0.05, 5)
    relaxed = (torch.tensor([0.1, 0.05, 0.08, 0.12, 0.16]) * _uniform(g, n, 0.5, 2.0, 1)
               + _normal(g, n, 0.03, 5)).clamp(0, 1)
    grasp = torch.rand(n, 1, generator=g) ** 0.8
    shared = (grasp + _normal(g, n, 0.12, 5)).clamp(0, 1)
    shared[:, 3] = 0.5 * shared[:, 3] + 0.25 * (shared[:, 2] + shared[:, 4])
    curled = torch.rand(n, 5, generator=g) < 0.5
    tie = torch.rand(n, generator=g) < 0.8
    curled[:, 4] = torch.where(tie, curled[:, 3], curled[:, 4])
    gesture = torch.where(curled, _uniform(g, n, 0.7, 1.0, 5), _uniform(g, n, 0.0, 0.1, 5))
    independent = torch.rand(n, 5, generator=g)
    modes = torch.stack([open_, relaxed, shared, gesture, independent], dim=1)        # (n, 5 modes, 5 fingers)
    return modes[torch.arange(n), kind]


def random_rotations(g: torch.Generator, n: int) -> torch.Tensor:
    """Uniformly distributed rotations as axis-angle vectors, (n, 3) rad."""
    q = torch.randn(n, 4, generator=g)
    q = q / q.norm(dim=-1, keepdim=True)
    q = q * torch.where(q[:, :1] < 0, -1.0, 1.0)
    return Q.to_axis_angle(q)


def sample_poses(g: torch.Generator, n: int, axes: JointAxes) -> torch.Tensor:
    """Hand poses inside anatomical joint limits, with finger coupling and a random global orientation.

    Limits (degrees, flexion positive towards the palm): finger MCP flexion −25..95, abduction ±20
    (narrowing as the finger curls), PIP −5..115, DIP −10..85 coupled to ≈ 0.7·PIP (a straight
    finger's joints spread ±3°, a curled one's ±10°); thumb CMC flexion
    −20..55 and abduction −20..45, MCP −10..60, IP −15..85. Each local rotation is
    ``R = R_twist · R_abduction · R_flexion`` about the joint's anatomical axes.

    Returns
    -------
    (n, 16, 3) rad, axis-angle, flat_hand_mean convention.
    """
    curl = sample_finger_curl(g, n)
    flex = torch.zeros(n, NUM_JOINTS)
    abd = torch.zeros(n, NUM_JOINTS)
    twist = torch.zeros(n, NUM_JOINTS)
    for k, finger in enumerate(FINGERS):
        c = curl[:, k]
        j1, j2, j3 = FINGER_JOINTS[finger]
        if finger == "thumb":
            flex[:, j1] = (c * 45 + _normal(g, n, 10)).clamp(-20, 55)
            abd[:, j1] = (10 + _normal(g, n, 15)).clamp(-20, 45)
            twist[:, j1] = _normal(g, n, 8).clamp(-20, 20)
            flex[:, j2] = (c * 45 + _normal(g, n, 10)).clamp(-10, 60)
            flex[:, j3] = (c * 65 + _normal(g, n, 12)).clamp(-15, 85)
            small = 4.0
        else:
            # the spread of a straight finger is small (it is straight), of a half-curled one larger
            spread = 3.0 + 7.0 * c
            flex[:, j1] = (c * 85 + _normal(g, n, 1.0) * spread).clamp(-25, 95)
            flex[:, j2] = (c * 100 + _normal(g, n, 1.0) * spread).clamp(-5, 115)
            flex[:, j3] = (0.7 * flex[:, j2] + _normal(g, n, 1.0) * (0.8 * spread)).clamp(-10, 85)
            abd[:, j1] = (_normal(g, n, 10) * (1 - 0.7 * c)).clamp(-20, 20)
            twist[:, j1] = _normal(g, n, 4).clamp(-10, 10)
            small = 3.0
        for j in (j2, j3):
            abd[:, j] = _normal(g, n, small).clamp(-2 * small, 2 * small)
            twist[:, j] = _normal(g, n, small).clamp(-2 * small, 2 * small)
    fingers = slice(1, NUM_JOINTS)
    R = (K.batch_rodrigues(axes.twist[fingers] * (twist[:, fingers, None] * DEG))
         @ K.batch_rodrigues(axes.abd[fingers] * (abd[:, fingers, None] * DEG))
         @ K.batch_rodrigues(axes.flex[fingers] * (flex[:, fingers, None] * DEG)))
    pose = torch.zeros(n, NUM_JOINTS, 3)
    pose[:, 0] = random_rotations(g, n)
    pose[:, fingers] = K.matrix_to_axis_angle(R)
    return pose


def sample_betas(g: torch.Generator, n: int, std: float = 1.0, limit: float = 2.5) -> torch.Tensor:
    """Shape coefficients β ~ N(0, std²), clipped to ±limit. (n, 10)."""
    return (std * torch.randn(n, 10, generator=g)).clamp(-limit, limit)


# ----------------------------------------------------------------------------------------------
# Cameras and placement
# ----------------------------------------------------------------------------------------------
def sample_cameras(g: torch.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random image sizes and focal lengths.

    Returns
    -------
    image_size : (n, 2) px (W, H); focal : (n,) px.
    """
    sizes = torch.tensor(IMAGE_SIZES, dtype=torch.float32)
    image_size = sizes[torch.randint(len(IMAGE_SIZES), (n,), generator=g)]
    lo, hi = math.log(FOCAL_RANGE[0]), math.log(FOCAL_RANGE[1])
    focal = image_size.norm(dim=-1) * torch.exp(_uniform(g, n, lo, hi))
    return image_size, focal


def place_hands(g: torch.Generator, keypoints_model: torch.Tensor, image_size: torch.Tensor, focal: torch.Tensor,
                size_range=HAND_SIZE_RANGE, position_range=POSITION_RANGE) -> torch.Tensor:
    """Translations that put each hand anywhere in its frame at a random size.

    Parameters
    ----------
    keypoints_model : (n, 21, 3) m, keypoints of the posed hand without translation.
    image_size : (n, 2) px; focal : (n,) px.

    Returns
    -------
    (n, 3) m: the keypoint centroid lands on a uniformly drawn pixel, at the depth where the
    keypoints' larger xy extent spans the drawn fraction of min(W, H).
    """
    n = keypoints_model.shape[0]
    ext = (keypoints_model[..., :2].amax(1) - keypoints_model[..., :2].amin(1)).amax(-1)
    lo, hi = math.log(size_range[0]), math.log(size_range[1])
    size_px = torch.exp(_uniform(g, n, lo, hi)) * image_size.amin(-1)
    depth = focal * ext / size_px
    depth = torch.maximum(depth, 0.12 + 2 * ext)
    pix = _uniform(g, n, position_range[0], position_range[1], 2) * image_size
    ray = torch.cat([(pix - image_size / 2) / focal[:, None], torch.ones(n, 1)], dim=-1)
    centroid = keypoints_model.mean(1)
    return ray * depth[:, None] - centroid


# ----------------------------------------------------------------------------------------------
# Landmark noise and corruptions
# ----------------------------------------------------------------------------------------------
def keypoint_box_size(points2d: torch.Tensor) -> torch.Tensor:
    """Hand size in px: the longer side of the points' bounding box. (n, 21, 2) → (n,)."""
    return (points2d.amax(1) - points2d.amin(1)).amax(-1)


def add_landmark_noise(g: torch.Generator, points2d: torch.Tensor, noise: dict,
                       difficulty: torch.Tensor | None = None) -> torch.Tensor:
    """2-D noise shaped like the landmarker's measured error.

    Whole-hand similarity (shift, log-scale, in-plane rotation about the centroid) with the measured
    spreads, plus a per-keypoint Student-t residual (ν = NOISE_DOF, scaled to the measured per-keypoint
    std) and rare outliers, all multiplied by a per-sample difficulty.

    Parameters
    ----------
    points2d : (n, 21, 2) px, clean projected keypoints.
    noise : the calibrated noise model (``landmark_noise.json``).
    difficulty : (n,) multiplier of all spreads; default log-uniform in DIFFICULTY_RANGE.

    Returns
    -------
    (n, 21, 2) px.
    """
    n = points2d.shape[0]
    if difficulty is None:
        difficulty = torch.exp(_uniform(g, n, math.log(DIFFICULTY_RANGE[0]), math.log(DIFFICULTY_RANGE[1])))
    hs = keypoint_box_size(points2d) * difficulty
    centroid = points2d.mean(1, keepdim=True)
    ang = _normal(g, n, noise["rotation_std_deg"] * DEG) * difficulty
    scale = torch.exp(_normal(g, n, noise["log_scale_std"]) * difficulty)
    c, s = torch.cos(ang), torch.sin(ang)
    R = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    rel = torch.einsum("nij,nkj->nki", R, points2d - centroid) * scale[:, None, None]
    shift = _normal(g, n, noise["shift_std"], 1, 2) * hs[:, None, None]
    sigma = torch.tensor(noise["sigma"], dtype=points2d.dtype)
    # Student-t = normal / sqrt(chi²_ν / ν), with chi²_ν drawn as a sum of ν squared normals (seeded).
    w = torch.randn(n, 21, 1, generator=g).pow(2)
    for _ in range(int(NOISE_DOF) - 1):
        w = w + torch.randn(n, 21, 1, generator=g).pow(2)
    t = torch.randn(n, 21, 2, generator=g) / torch.sqrt(w / NOISE_DOF) / math.sqrt(NOISE_DOF / (NOISE_DOF - 2))
    resid = t * sigma[None, :, None] * hs[:, None, None]
    outlier = (torch.rand(n, 21, 1, generator=g) < OUTLIER_PROB).float()
    resid = resid + outlier * _normal(g, n, OUTLIER_SCALE, 21, 2) * hs[:, None, None]
    return centroid + rel + shift + resid


#: The kinds of corrupted landmark sets (negatives of the confidence training).
CORRUPTIONS = ("swapped_fingers", "random_points", "mirrored_hand")


def corrupt_landmarks(g: torch.Generator, points2d: torch.Tensor, kind: str) -> torch.Tensor:
    """Corrupted landmark sets: landmarks that do not come from one right hand.

    Parameters
    ----------
    points2d : (n, 21, 2) px, (noisy) landmarks of right hands.
    kind : 'swapped_fingers' (two fingers' 4 keypoints exchanged, plus the rest kept),
        'random_points' (21 points scattered over the hand's box),
        'mirrored_hand' (reflected about the vertical through the centroid: a left hand).

    Returns
    -------
    (n, 21, 2) px.
    """
    n = points2d.shape[0]
    out = points2d.clone()
    if kind == "swapped_fingers":
        for i in range(n):
            a, b = torch.randperm(5, generator=g)[:2].tolist()
            ia, ib = slice(1 + 4 * a, 5 + 4 * a), slice(1 + 4 * b, 5 + 4 * b)
            out[i, ia], out[i, ib] = points2d[i, ib], points2d[i, ia]
    elif kind == "random_points":
        lo, hi = points2d.amin(1, keepdim=True), points2d.amax(1, keepdim=True)
        out = lo + (hi - lo) * torch.rand(n, 21, 2, generator=g)
    elif kind == "mirrored_hand":
        cx = points2d[..., :1].mean(1, keepdim=True)
        out[..., 0] = 2 * cx[..., 0] - points2d[..., 0]
    else:
        raise ValueError(f"unknown corruption {kind!r}; expected one of {CORRUPTIONS}")
    return out


def synthetic_world_landmarks(g: torch.Generator, joints3d: torch.Tensor, world_noise: dict,
                              dropout: float = WORLD_DROPOUT) -> tuple[torch.Tensor, torch.Tensor]:
    """MediaPipe-like world landmarks of hands: their centred 3-D keypoints (camera axes, metres) with
    the lateral scale ``s``, the depth scale ``c`` (the share of the true depth extent MediaPipe
    shows: mostly little) and the per-keypoint residual drawn from the measured model, per sample.

    Parameters
    ----------
    joints3d : (n, 21, 3) m, camera frame; world_noise : the ``world`` entry of ``landmark_rendered.json``.
    dropout : share of samples without world landmarks (zeros, ``present`` False).

    Returns
    -------
    world (n, 21, 3) m, present (n,) bool.
    """
    n = joints3d.shape[0]
    X = joints3d - joints3d.mean(1, keepdim=True)
    s = world_noise["lateral_scale_mean"] + _normal(g, n, world_noise["lateral_scale_std"])
    c = world_noise["depth_scale_mean"] + _normal(g, n, world_noise["depth_scale_std"])
    scale = torch.stack([s, s, s * c], -1)[:, None]
    sigma = torch.tensor([world_noise["residual_std_xy_m"]] * 2 + [world_noise["residual_std_z_m"]])
    world = X * scale + torch.randn(n, 21, 3, generator=g) * sigma
    present = torch.rand(n, generator=g) >= dropout
    return world * present[:, None, None], present


# ----------------------------------------------------------------------------------------------
# Whole samples
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SyntheticBatch:
    """A batch of synthetic right-hand samples (camera coordinates, OpenCV convention).

    pose (n, 16, 3) rad; betas (n, 10); transl (n, 3) m; joints3d (n, 21, 3) m (keypoints, camera);
    landmarks_clean / landmarks (n, 21, 2) px (projected / with landmarker noise);
    image_size (n, 2) px; focal (n,) px; world (n, 21, 3) m and world_present (n,) bool:
    MediaPipe-like world landmarks (None without a world-landmark noise model).
    """

    pose: torch.Tensor
    betas: torch.Tensor
    transl: torch.Tensor
    joints3d: torch.Tensor
    landmarks_clean: torch.Tensor
    landmarks: torch.Tensor
    image_size: torch.Tensor
    focal: torch.Tensor
    world: torch.Tensor | None = None
    world_present: torch.Tensor | None = None

    def rows(self, sel) -> "SyntheticBatch":
        """The samples ``sel`` (a slice, indices or a boolean mask)."""
        from dataclasses import fields

        return SyntheticBatch(**{f.name: (None if getattr(self, f.name) is None else getattr(self, f.name)[sel])
                                 for f in fields(self)})


class SyntheticHands:
    """Sampler of synthetic landmark samples for one right-hand model.

    Parameters
    ----------
    hand_model : a right :class:`dahyf.hand.model.HandModel`.
    noise : the calibrated noise model dict (``landmark_noise.json``).
    world_noise : the world-landmark noise (``landmark_rendered.json``'s ``world``), or None for
        samples without world landmarks.
    """

    def __init__(self, hand_model, noise: dict, world_noise: dict | None = None):
        if getattr(hand_model, "side", "right") != "right":
            raise ValueError("SyntheticHands needs the right hand model (left hands are mirrored at run time)")
        self.hand_model = hand_model
        self.noise = noise
        self.world_noise = world_noise
        self.keypoint_layer = hand_model.keypoint_layer()
        out = hand_model(np.zeros((1, NUM_JOINTS, 3), np.float32))
        tips = out.keypoints[0, [4, 8, 12, 16, 20]]
        self.axes = joint_axes(out.joints[0], tips)

    @torch.no_grad()
    def sample(self, g: torch.Generator, n: int, difficulty: torch.Tensor | None = None,
               size_range=HAND_SIZE_RANGE, position_range=POSITION_RANGE) -> SyntheticBatch:
        """Draw n samples (see the module docstring)."""
        from ..geometry import project_points

        pose = sample_poses(g, n, self.axes)
        betas = sample_betas(g, n)
        image_size, focal = sample_cameras(g, n)
        rotmats = K.batch_rodrigues(pose)
        _, kp = self.keypoint_layer(rotmats, betas)
        transl = place_hands(g, kp, image_size, focal, size_range, position_range)
        joints3d = kp + transl[:, None]
        clean = project_points(joints3d, focal, image_size)
        noisy = add_landmark_noise(g, clean, self.noise, difficulty)
        world = present = None
        if self.world_noise is not None:
            world, present = synthetic_world_landmarks(g, joints3d, self.world_noise)
        return SyntheticBatch(pose, betas, transl, joints3d, clean, noisy, image_size, focal, world, present)
