"""The sample clip's gesture script and its exact ground truth (no Blender, no pixels).

A scripted gesture sequence (open hand, each finger curling, thumb opposition, fist, pointing, a
wave with wrist rotation, translation across the frame) is written as a few scalar controls on
eased keyframes and turned into MANO poses θ with flexion axes measured on the model's own rest
skeleton. :func:`make_ground_truth` poses the hand model with them; ``dahyf.sample_video.render``
renders the result.

Conventions of the ground truth (all per frame ``t``):

- ``pose`` (T, 16, 3) rad, MANO axis-angle, ``flat_hand_mean=True``; ``betas`` (10,);
  ``transl`` (T, 3) m; the open hand model's output with these is in OpenCV camera coordinates
  (x right, y down, z forward, metres).
- ``focal`` px, ``principal_point`` (2,) px = image centre, ``image_size`` (W, H), ``fps``, ``side``.
- ``joints3d`` (T, 21, 3) m, keypoints in FreiHAND/MediaPipe order; ``joints2d`` (T, 21, 2) px,
  ``u = focal * x / z + W / 2`` (pixel ``i`` spans ``[i, i+1)``, as MediaPipe's ``x * W``).
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np

from ..assets import SAMPLE_DIR, SAMPLE_GT, SAMPLE_VIDEO
from ..fileio import atomic_write
from ..geometry import hand_frame as geometry_hand_frame
from ..geometry import project_points
from ..hand.kinematics import batch_rodrigues as rodrigues
from ..hand.kinematics import matrix_to_axis_angle as rotation_to_axis_angle
from ..hand.tables import FINGER_JOINTS, JOINT_NAMES

#: Image size (W, H) px, frame rate, and focal length px of the sample clip's camera.
IMAGE_SIZE = (640, 480)
FPS = 30
FOCAL = 600.0
#: Clip length in seconds.
DURATION_S = 7.0
#: File names inside the output folder.
VIDEO_NAME = SAMPLE_VIDEO.name
GT_NAME = SAMPLE_GT.name
DEFAULT_OUT = SAMPLE_DIR
#: Arrays of the full ground truth that only the renderer needs (not saved).
RENDER_ONLY = ("vertices", "faces", "arm_rotation")

#: Flexion limits per finger joint (MCP, PIP, DIP) at curl = 1, degrees (inside the usual
#: active ranges: MCP 0-90, PIP 0-110, DIP 0-80).
CURL_DEG = {
    "index": (70.0, 95.0, 60.0),
    "middle": (75.0, 98.0, 62.0),
    "ring": (78.0, 100.0, 60.0),
    "pinky": (82.0, 100.0, 58.0),
}
#: Abduction at the MCP joint at spread = 1, degrees, positive toward the little finger.
SPREAD_DEG = {"index": -12.0, "middle": -2.0, "ring": 7.0, "pinky": 16.0}
FINGERS4 = ("index", "middle", "ring", "pinky")

# ---------------------------------------------------------------------------------------------
# The gesture script
# ---------------------------------------------------------------------------------------------

#: Scalar controls of the gesture script. Curls in [0, 1]; angles in degrees.
CONTROLS = (
    "index", "middle", "ring", "pinky",       # finger curl, 0 straight, 1 fist
    "spread",                                  # finger abduction, 0 together, 1 spread
    "thumb_curl", "thumb_oppose",              # thumb MCP/IP flexion, CMC opposition
    "wrist_flex", "wrist_dev",                 # wrist: + palmar flexion, + ulnar deviation (deg)
    "roll",                                    # forearm pronation (+) / supination (-) (deg)
)

RELAXED = dict(index=0.06, middle=0.07, ring=0.08, pinky=0.09, spread=0.35,
               thumb_curl=0.1, thumb_oppose=0.1, wrist_flex=0.0, wrist_dev=0.0, roll=0.0)
FIST = dict(index=1.0, middle=1.0, ring=1.0, pinky=1.0, spread=0.0, thumb_curl=0.85, thumb_oppose=0.55)
POINT = dict(index=0.0, middle=1.0, ring=1.0, pinky=1.0, spread=0.1, thumb_curl=0.8, thumb_oppose=0.6)


def _key(t: float, base: dict | None = None, **changes) -> tuple[float, dict]:
    d = dict(base or {})
    d.update(changes)
    return (t, d)


def gesture_keys() -> list[tuple[float, dict]]:
    """Keyframes ``(time s, {control: value})`` of the gesture script; unset controls hold.

    Written on an 8 s timeline and scaled to ``DURATION_S``.
    """
    k = [_key(0.0, RELAXED)]
    # Each finger curls and straightens in turn (overlapping a little, as real hands do).
    for i, f in enumerate(FINGERS4):
        t0 = 0.45 + 0.6 * i
        k += [_key(t0, **{f: RELAXED[f]}), _key(t0 + 0.4, **{f: 1.0}), _key(t0 + 0.8, **{f: RELAXED[f]})]
    # Thumb opposition: the thumb tip travels across the palm toward the little finger's base.
    k += [_key(3.05, thumb_curl=0.1, thumb_oppose=0.1), _key(3.55, thumb_curl=0.45, thumb_oppose=1.0),
          _key(3.8, thumb_curl=0.45, thumb_oppose=1.0), _key(4.2, thumb_curl=0.1, thumb_oppose=0.1)]
    # Fist, pointing, open again.
    k += [_key(4.25, **{c: RELAXED[c] for c in FIST}), _key(4.75, FIST), _key(5.0, FIST),
          _key(5.45, POINT), _key(5.8, POINT), _key(6.25, {c: RELAXED[c] for c in FIST}, spread=0.6)]
    # Wave: wrist deviation back and forth with forearm rotation.
    t = 6.25
    for dev, roll, flex in ((-18.0, -35.0, -10.0), (22.0, 30.0, 8.0), (-18.0, -35.0, -10.0), (22.0, 30.0, 8.0)):
        t += 0.3
        k.append(_key(t, wrist_dev=dev, roll=roll, wrist_flex=flex))
    k.append(_key(8.0, wrist_dev=0.0, roll=0.0, wrist_flex=0.0, spread=0.35))
    return [(t * DURATION_S / 8.0, d) for t, d in k]


def _ease(s: np.ndarray) -> np.ndarray:
    """Smoothstep easing on [0, 1] (zero velocity at both ends)."""
    s = np.clip(s, 0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


def control_tracks(times: np.ndarray, keys: list[tuple[float, dict]] | None = None) -> dict[str, np.ndarray]:
    """Sample every control at ``times`` (s): eased interpolation between the keys that set it.

    Returns ``{control: (T,) values}``.
    """
    keys = gesture_keys() if keys is None else keys
    return {c: eased(times, sorted((t, d[c]) for t, d in keys if c in d)) for c in CONTROLS}


def eased(times: np.ndarray, points) -> np.ndarray:
    """(T,) values at ``times`` (s) of an eased (smoothstep) curve through ``points``: (time s, value)
    pairs in time order; held constant before the first and after the last."""
    kt = np.array([p[0] for p in points], np.float64)
    kv = np.array([p[1] for p in points], np.float64)
    i = np.clip(np.searchsorted(kt, times, side="right") - 1, 0, len(kt) - 1)
    j = np.minimum(i + 1, len(kt) - 1)
    span = np.where(j > i, kt[j] - kt[i], 1.0)
    s = _ease((times - kt[i]) / span)
    return kv[i] + (kv[j] - kv[i]) * np.where(j > i, s, 0.0)


def camera_path(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wrist position (T, 3) m in camera coordinates and in-image lean (T,) deg of the forearm.

    The hand drifts from the left of the frame to the right and back, bobbing a little, and
    moves slightly toward and away from the camera.
    """
    w = 2.0 * math.pi * times / DURATION_S
    x = -0.10 * np.cos(w)
    y = 0.055 + 0.015 * np.sin(2.0 * w)
    z = 0.50 + 0.04 * np.sin(w + 1.0)
    lean = 12.0 * np.sin(w) - 4.0
    return np.stack([x, y, z], axis=1), lean


# ---------------------------------------------------------------------------------------------
# From controls to MANO θ (axes measured on the model's own rest geometry)
# ---------------------------------------------------------------------------------------------

def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def rotation_angle_deg(Ra: np.ndarray, Rb: np.ndarray) -> np.ndarray:
    """Geodesic angle (…,) in degrees between rotation matrices (…, 3, 3)."""
    M = np.swapaxes(Ra, -1, -2) @ Rb
    cos = np.clip((np.trace(M, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
    return np.degrees(np.arccos(cos))


def hand_frame(rest_joints: np.ndarray) -> np.ndarray:
    """Anatomical frame of a right hand at rest, (3, 3) with columns (radial, distal, palmar).

    radial points from the little finger's knuckle to the index finger's; distal from the wrist
    to the middle finger's knuckle; palmar out of the palm (palmar = radial × distal): the columns
    of :func:`dahyf.geometry.hand_frame` (along, across, palm) as (−across, along, palm).
    """
    j = np.asarray(rest_joints, dtype=np.float64)
    idx, mid, pin = (FINGER_JOINTS[f][0] for f in ("index", "middle", "pinky"))
    H = geometry_hand_frame(j[0], j[idx], j[mid], j[pin], "R")
    return np.stack([-H[:, 1], H[:, 0], H[:, 2]], axis=1)


def pose_from_controls(ctrl: dict[str, np.ndarray], rest_joints: np.ndarray) -> np.ndarray:
    """Finger and thumb controls → local MANO rotations (T, 16, 3) rad (global orient left zero).

    Flexion axes come from the model's own rest skeleton: each finger bone direction ``d`` flexes
    about ``d × palmar`` (so that the tip moves toward the palm), and abducts about ``palmar``.
    """
    j = np.asarray(rest_joints, dtype=np.float64)
    F = hand_frame(j)
    radial, distal, palmar = F[:, 0], F[:, 1], F[:, 2]
    T = len(next(iter(ctrl.values())))
    pose = np.zeros((T, 16, 3))
    for f in FINGERS4:
        ids = FINGER_JOINTS[f]
        curl = ctrl[f][:, None]
        for k, jid in enumerate(ids):
            child = ids[k + 1] if k < 2 else None
            d = _unit(j[child] - j[jid]) if child is not None else _unit(j[jid] - j[ids[k - 1]])
            d = _unit(d - palmar * np.dot(d, palmar))
            flex_axis = np.cross(d, palmar)
            R = rodrigues(np.radians(CURL_DEG[f][k]) * curl * flex_axis)
            if k == 0:  # abduction about the palm normal (flexion happens in the abducted plane)
                ab = np.radians(SPREAD_DEG[f]) * ctrl["spread"][:, None] * (1.0 - 0.7 * curl)
                R = rodrigues(ab * palmar) @ R
            pose[:, jid] = rotation_to_axis_angle(R)
    # Thumb: opposition at the first joint swings the thumb out of the palm plane and across
    # toward the little finger while turning its pad toward the fingers; curl flexes joints 2, 3.
    t1, t2, t3 = FINGER_JOINTS["thumb"]
    tip_dir = _unit(j[t3] - j[t1])
    across = _unit(-radial * 0.55 + palmar * 0.8 + distal * 0.15)
    across = _unit(across - tip_dir * np.dot(across, tip_dir))
    swing_axis = _unit(np.cross(tip_dir, across))
    opp = ctrl["thumb_oppose"][:, None]
    R1 = rodrigues(np.radians(55.0) * opp * swing_axis) @ rodrigues(np.radians(-35.0) * opp * tip_dir)
    pose[:, t1] = rotation_to_axis_angle(R1)
    curl_dir = _unit(palmar * 0.75 - radial * 0.65)
    for jid, child, deg in ((t2, t3, 45.0), (t3, None, 65.0)):
        d = _unit(j[child] - j[jid]) if child is not None else _unit(j[t3] - j[t2])
        c = _unit(curl_dir - d * np.dot(curl_dir, d))
        pose[:, jid] = np.radians(deg) * ctrl["thumb_curl"][:, None] * _unit(np.cross(d, c))
    return pose


def global_rotations(ctrl: dict[str, np.ndarray], lean_deg: np.ndarray, rest_joints: np.ndarray,
                     tilt_deg: float = -12.0) -> tuple[np.ndarray, np.ndarray]:
    """Forearm and hand rotations, model rest frame → OpenCV camera, (T, 3, 3) each.

    At zero controls the hand is upright (fingers toward −y, image up), palm facing the camera,
    thumb toward +x (the image's right), as a raised right hand seen from the front.
    ``arm`` = lean about the viewing axis · base · pronation; ``hand`` = ``arm`` · wrist flexion ·
    wrist deviation (the forearm does not follow the wrist). ``tilt_deg`` turns the fingers away
    from the camera (negative) about the radial axis.
    """
    F = hand_frame(rest_joints)
    radial, distal, palmar = F[:, 0], F[:, 1], F[:, 2]
    target = np.stack([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]], axis=1)  # radial, distal, palmar
    base = target @ F.T
    # Tilt the hand back a little (fingers away from the camera) so the palm reads better.
    tilt = rodrigues(np.radians(tilt_deg) * radial)
    lean = rodrigues(np.radians(lean_deg)[:, None] * np.array([0.0, 0.0, 1.0]))
    roll = rodrigues(np.radians(ctrl["roll"])[:, None] * distal)
    arm = lean @ base @ tilt @ roll
    wrist = rodrigues(np.radians(ctrl["wrist_flex"])[:, None] * radial) @ rodrigues(
        np.radians(ctrl["wrist_dev"])[:, None] * palmar)
    return arm, arm @ wrist


def project(points: np.ndarray, focal: float, image_size=IMAGE_SIZE) -> np.ndarray:
    """Camera-frame points (…, 3) m → pixels (…, 2) in the clip (:func:`dahyf.geometry.project_points`)."""
    return project_points(np.asarray(points, dtype=np.float64), focal, tuple(image_size))


def model_digest(model) -> str:
    """Short SHA-256 of a hand model's arrays: tells whether the clip was rendered from this model."""
    h = hashlib.sha256()
    for k, v in sorted(model.arrays().items()):
        h.update(k.encode())
        h.update(np.ascontiguousarray(v, dtype=np.float64).tobytes())
    h.update(np.asarray(model.tip_vertex_ids, np.int64).tobytes())
    return h.hexdigest()[:16]


def make_ground_truth(model, fps: int = FPS, duration_s: float = DURATION_S) -> dict[str, np.ndarray]:
    """The full ground truth of the clip for a right hand model (``dahyf.HandModel``).

    Returns the GT dictionary (see the module docstring) plus ``vertices`` (T, V, 3) m,
    ``faces`` (F, 3) and ``arm_rotation`` (T, 3, 3), which the renderer needs.
    """
    import torch

    if model.side != "right":
        raise ValueError("the sample clip is scripted for a right hand model")
    T = int(round(fps * duration_s))
    times = np.arange(T) / fps
    rest = model.rest_joints
    ctrl = control_tracks(times)
    pose = pose_from_controls(ctrl, rest)
    wrist_pos, lean = camera_path(times)
    arm, hand = global_rotations(ctrl, lean, rest)
    pose[:, 0] = rotation_to_axis_angle(hand)
    betas = np.zeros(10)
    with torch.no_grad():
        zero = model(torch.zeros(1, 16, 3, dtype=torch.float64), torch.tensor(betas[None]))
        j0 = zero.joints[0, 0].numpy()
        # Global orientation rotates about the wrist joint, so wrist = j0 + transl.
        transl = wrist_pos - j0
        out = model(torch.tensor(pose), torch.tensor(np.tile(betas, (T, 1))), torch.tensor(transl))
    joints3d = out.keypoints.numpy()
    return {
        "pose": pose.astype(np.float32), "betas": betas.astype(np.float32), "transl": transl.astype(np.float32),
        "focal": np.float32(FOCAL), "principal_point": np.array(IMAGE_SIZE, np.float32) / 2,
        "image_size": np.array(IMAGE_SIZE, np.int32), "fps": np.float32(fps), "side": np.array("right"),
        "joints3d": joints3d.astype(np.float32), "joints2d": project(joints3d, FOCAL).astype(np.float32),
        "time_s": times.astype(np.float32),
        "joint_names": np.array(JOINT_NAMES), "model_digest": np.array(model_digest(model)),
        "vertices": out.vertices.numpy().astype(np.float32), "faces": model.faces.astype(np.int32),
        "arm_rotation": arm.astype(np.float32),
    }



def save_ground_truth(gt: dict, path: Path) -> None:
    """Write the GT npz (without the renderer-only arrays), atomically."""
    keep = {k: v for k, v in gt.items() if k not in RENDER_ONLY}
    with atomic_write(path) as fh:
        np.savez_compressed(fh, **keep)


def load_ground_truth(path: str | Path = SAMPLE_GT) -> dict[str, np.ndarray]:
    """Read a sample-clip ground-truth file into a dict of arrays."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `python -m dahyf.sample_video --out {path.parent}`.")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
